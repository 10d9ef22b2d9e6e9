//! Sessions of the staff pages: the `kv_session` cookie, the [`StaffSession`] extractor that
//! every page takes, and [`CsrfForm`], the extractor every POST handler takes.
//!
//! This is the seam between "how did this person log in" and "what may they see": an identity
//! provider (the password form today, HelseID over OpenID Connect later) only has to find the
//! staff member and call [`start`]; pages only ever see a [`StaffSession`].
//!
//! The cookie holds a random 256-bit token (the database keeps its SHA-256). It is `HttpOnly`,
//! `SameSite=Strict`, limited to `/staff`, `Secure` when the public address is https, and has
//! no `Max-Age`, so it is gone when the browser closes (shared computers at a desk). The server
//! ends a session after 8 hours, or after an hour without a request.

use super::WebError;
use crate::context::AppContext;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use kontaktvei_scheduler::human::Person;
use kontaktvei_store::accounts;
use kontaktvei_store::audit::{self, Actor, Outcome};
use kontaktvei_store::staff::Role;
use kontaktvei_store::{Id, Tx};
use serde::de::DeserializeOwned;
use std::fmt;

pub const SESSION_COOKIE: &str = "kv_session";
/// The largest form body a page accepts.
pub const FORM_LIMIT: usize = 64 * 1024;

/// The logged-in staff member. Taking it in a handler is what makes a page need a login:
/// without a live session the request is answered with a redirect to the login page.
#[derive(Clone)]
pub struct StaffSession {
    pub staff_id: Id,
    pub organisation_id: Id,
    pub role: Role,
    pub name: String,
    /// The session's row id (the token's hash).
    id: String,
    csrf: String,
}

impl StaffSession {
    /// The token every form of this session carries in its hidden `csrf` field.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// How the audit log and the task history name this person: `staff:{id}`.
    pub fn label(&self) -> String {
        format!("staff:{}", self.staff_id)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            organisation_id: Some(self.organisation_id),
            label: self.label(),
            request_id: None,
        }
    }

    /// This person as the engine's human steps know them (claims, closings, hand-overs).
    pub fn person(&self) -> Person {
        Person {
            staff_id: self.staff_id,
            organisation_id: self.organisation_id,
            role: self.role,
            label: self.label(),
        }
    }

    /// Writes an allowed audit row for what this person read or did, in the page's transaction.
    pub async fn audit(
        &self,
        ctx: &AppContext,
        tx: &mut Tx,
        action: &str,
        patient_id: Option<Id>,
        target_id: Option<Id>,
    ) -> Result<(), WebError> {
        audit::record(
            tx,
            &self.actor(),
            action,
            patient_id,
            target_id,
            Outcome::Allowed,
            ctx.clock.now(),
        )
        .await?;
        Ok(())
    }
}

impl fmt::Debug for StaffSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaffSession")
            .field("staff_id", &self.staff_id)
            .field("organisation_id", &self.organisation_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The value of one cookie in the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Tokens we hand out are 64 hex digits; anything else is not looked up.
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Equal strings, compared in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A `Set-Cookie` value for `/staff…` (`max_age` 0 deletes the cookie).
pub fn set_cookie(
    ctx: &AppContext,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u32>,
) -> HeaderValue {
    let secure = if ctx.engine.public_base_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let max_age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict{max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("kv_invalid=; Max-Age=0"))
}

/// Step two of every login, whichever provider did step one: starts a session for the staff
/// member, sets the cookie and sends the browser to the start page.
pub async fn start(ctx: &AppContext, staff_id: Id, provider: &str) -> Result<Response, WebError> {
    let mut tx = ctx.store.begin().await?;
    let session = accounts::create_session(&mut tx, staff_id, provider, ctx.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(%staff_id, provider, "staff session started");
    let mut response = Redirect::to("/staff").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(ctx, SESSION_COOKIE, &session.token, "/staff", None),
    );
    Ok(response)
}

/// Ends the session (logout) and deletes the cookie; the browser goes to the login page.
pub async fn end(ctx: &AppContext, session: &StaffSession) -> Result<Response, WebError> {
    let mut tx = ctx.store.begin().await?;
    accounts::revoke_session(&mut tx, &session.id, ctx.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(staff_id = %session.staff_id, "staff session ended");
    let mut response = Redirect::to("/staff/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(ctx, SESSION_COOKIE, "", "/staff", Some(0)),
    );
    Ok(response)
}

impl StaffSession {
    /// The live session of this request, if any (for pages that work both ways, such as the
    /// login page). Keeps the session alive.
    pub async fn find(ctx: &AppContext, headers: &HeaderMap) -> Result<Option<Self>, WebError> {
        let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| looks_like_token(t)) else {
            return Ok(None);
        };
        let now = ctx.clock.now();
        let mut tx = ctx.store.begin_read().await?;
        let found = accounts::session(&mut tx, token, now).await?;
        tx.commit().await?;
        let Some(found) = found else {
            return Ok(None);
        };
        if found.needs_touch(now) {
            let mut tx = ctx.store.begin().await?;
            accounts::touch_session(&mut tx, &found.id, now).await?;
            tx.commit().await?;
        }
        Ok(Some(StaffSession {
            staff_id: found.staff_id,
            organisation_id: found.organisation_id,
            role: found.role,
            name: found.name,
            id: found.id,
            csrf: found.csrf_token,
        }))
    }
}

impl FromRequestParts<AppContext> for StaffSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, WebError> {
        if let Some(session) = parts.extensions.get::<StaffSession>() {
            return Ok(session.clone());
        }
        let session = StaffSession::find(ctx, &parts.headers)
            .await?
            .ok_or(WebError::LoginNeeded)?;
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

/// A form posted by a logged-in staff member, after its `csrf` field was found to match the
/// session's token (else 403). Every POST handler of the pages takes one, so none can forget
/// the check. `T` gets the form's other fields.
#[derive(Debug)]
pub struct CsrfForm<T> {
    pub session: StaffSession,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppContext> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, ctx: &AppContext) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let session = StaffSession::from_request_parts(&mut parts, ctx).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| WebError::BadForm)?;
        let sent = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if !sent.is_some_and(|sent| same_secret(&sent, session.csrf_token())) {
            tracing::warn!(staff_id = %session.staff_id, "a staff form without the session's CSRF token was refused");
            return Err(WebError::Csrf);
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadForm)?;
        Ok(CsrfForm { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; kv_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "kv_session"), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "kv"), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
