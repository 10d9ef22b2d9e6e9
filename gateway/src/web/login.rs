//! Logging in and out with a username and password: `GET /staff/login` (the form),
//! `POST /staff/login`, `POST /staff/logout`.
//!
//! CSRF on the login form. There is no session yet, so the session's token cannot protect it;
//! we use a double-submit cookie. Showing the form sets `kv_login_csrf` (random, `HttpOnly`,
//! `SameSite=Strict`, `Path=/staff/login`, an hour) and puts the same value in the form's
//! hidden `csrf` field; a login is only tried when both arrive and match. Another site can
//! neither read the cookie nor make the browser send it with a cross-site POST (`Strict`), so
//! it cannot log a nurse in to an account of the attacker's choosing. We chose this over an
//! Origin/Referer check because it does not depend on knowing our own public address behind a
//! reverse proxy, nor on browsers and privacy tools sending those headers.
//!
//! Every refusal — unknown username, wrong password, locked login — reads the same and names
//! the lockout rule, so the page does not tell which it was (see [`super::password`]).

use super::password;
use super::session::{
    self, CsrfForm, FORM_LIMIT, cookie, looks_like_token, same_secret, set_cookie,
};
use super::{Page, StaffSession, WebError};
use crate::context::AppContext;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;
use std::fmt;

const LOGIN_CSRF_COOKIE: &str = "kv_login_csrf";
/// How long a login form may stay open before it must be reloaded.
const LOGIN_CSRF_SECONDS: u32 = 3600;

const REFUSED: &str = "Vi kunne ikke logge deg inn. Sjekk brukernavn og passord. \
    Etter 5 feil passord på rad blir innloggingen sperret i 15 minutter; \
    vent i så fall og prøv igjen, eller spør en administrator.";
const EMPTY: &str = "Skriv inn både brukernavn og passord.";
const STALE_FORM: &str =
    "Innloggingsskjemaet var for gammelt, eller det kom ikke fra denne siden. Prøv igjen.";

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

// By hand: the password must never reach a log line.
impl fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginForm").finish_non_exhaustive()
    }
}

/// A logout form carries nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The login form with its double-submit cookie.
fn login_page(
    ctx: &AppContext,
    status: StatusCode,
    csrf: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let page = Page::new(
        "login.html",
        context! {
            title => "Logg inn",
            staff => Value::from(()),
            csrf => csrf,
            username => username,
            error => error,
        },
    )
    .with_status(status);
    let mut response = page.into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            ctx,
            LOGIN_CSRF_COOKIE,
            csrf,
            "/staff/login",
            Some(LOGIN_CSRF_SECONDS),
        ),
    );
    response
}

pub async fn form(State(ctx): State<AppContext>, headers: HeaderMap) -> Result<Response, WebError> {
    if StaffSession::find(&ctx, &headers).await?.is_some() {
        return Ok(Redirect::to("/staff").into_response());
    }
    // Keep a token the browser already has, so two open tabs both work.
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE)
        .filter(|t| looks_like_token(t))
        .map_or_else(new_token, str::to_owned);
    Ok(login_page(&ctx, StatusCode::OK, &csrf, "", None))
}

pub async fn submit(State(ctx): State<AppContext>, req: Request) -> Result<Response, WebError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| WebError::BadForm)?;
    let form: LoginForm = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadForm)?;
    let expected = cookie(&parts.headers, LOGIN_CSRF_COOKIE).filter(|t| looks_like_token(t));
    if !expected.is_some_and(|t| same_secret(t, &form.csrf)) {
        tracing::info!("a login without a matching login form token was refused");
        return Ok(login_page(
            &ctx,
            StatusCode::FORBIDDEN,
            &new_token(),
            &form.username,
            Some(STALE_FORM),
        ));
    }
    if form.username.trim().is_empty() || form.password.is_empty() {
        return Ok(login_page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.csrf,
            &form.username,
            Some(EMPTY),
        ));
    }
    let Some(staff_id) = password::identify(&ctx, &form.username, &form.password).await? else {
        return Ok(login_page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.csrf,
            &form.username,
            Some(REFUSED),
        ));
    };
    let mut response = session::start(&ctx, staff_id, password::PROVIDER).await?;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&ctx, LOGIN_CSRF_COOKIE, "", "/staff/login", Some(0)),
    );
    Ok(response)
}

pub async fn logout(
    State(ctx): State<AppContext>,
    CsrfForm { session, .. }: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    session::end(&ctx, &session).await
}
