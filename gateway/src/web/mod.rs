//! The staff web pages: server-rendered HTML in Norwegian bokmål under `/staff`, outside the
//! API and its key check. A page needs a login by taking a [`StaffSession`]; a form it posts is
//! checked against the session's CSRF token by taking a [`CsrfForm`].
//!
//! Logging in has two steps, kept apart so another identity provider (HelseID over OpenID
//! Connect) can be added without touching the pages: a provider finds out which staff member
//! this is ([`password`] today), then [`session::start`] gives the browser a session.
//!
//! Modules: [`layout`] (templates and the headers of every page), [`session`] (cookie,
//! extractors), [`password`] (the password provider), `login`, `start`, `tasks`, `print` and
//! `report` (the pages).

mod admin;
mod clinic;
mod coordinator;
pub mod layout;
mod login;
pub mod password;
mod print;
mod report;
pub mod session;
mod start;
mod tasks;

use crate::context::AppContext;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kontaktvei_store::staff::Role;
pub use layout::Page;
pub use session::{CsrfForm, StaffSession};
use std::sync::Arc;

/// The pages' routes, with the layer that renders their templates.
pub fn router() -> Router<AppContext> {
    // The templates are part of the binary; the unit tests compile every one of them.
    let pages = Arc::new(layout::Pages::new().expect("the embedded staff page templates compile"));
    Router::new()
        .route("/staff", get(start::show))
        .route("/staff/", get(|| async { Redirect::to("/staff") }))
        .route("/staff/login", get(login::form).post(login::submit))
        .route("/staff/logout", post(login::logout))
        .route("/staff/utskrift", get(print::show))
        .route("/staff/utskrift/skriv-ut-na", post(print::print_now))
        .route("/staff/utskrift/retur", post(print::returned))
        .route("/staff/utskrift/{id}/brev.pdf", get(print::pdf))
        .route("/staff/utskrift/{id}/skrevet-ut", post(print::printed))
        .route("/staff/utskrift/{id}/postlagt", post(print::posted))
        .route("/staff/rapport", get(report::show))
        .route("/staff/oppgaver", get(tasks::show))
        .route("/staff/oppgaver/{id}/ta", post(tasks::claim))
        .route("/staff/oppgaver/{id}/forsok", post(tasks::attempt))
        .route("/staff/oppgaver/{id}/avslutt", post(tasks::close))
        .merge(clinic::routes())
        .merge(coordinator::routes())
        .merge(admin::routes())
        .layer(axum::middleware::from_fn_with_state(pages, layout::render))
}

/// A role as the pages name it.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "administrator",
        Role::Clinic => "poliklinikk",
        Role::Print => "utskrift",
        Role::Relay => "lavterskeltilbud",
        Role::Outreach => "oppsøkende team",
        Role::Coordinator => "koordinator",
    }
}

/// Why a page could not be shown. Each becomes a page (or, without a login, a redirect to it).
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not logged in")]
    LoginNeeded,
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    #[error("the form could not be read")]
    BadForm,
    #[error(transparent)]
    Store(#[from] kontaktvei_store::Error),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    /// The person may not, or the task moved on meanwhile: said on a page, with the way back.
    #[error("{0}")]
    Refused(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::LoginNeeded => Redirect::to("/staff/login").into_response(),
            WebError::Csrf => Page::message(
                StatusCode::FORBIDDEN,
                "Skjemaet ble avvist",
                "Skjemaet var for gammelt, eller det kom ikke fra denne siden. Gå tilbake, last inn siden på nytt og prøv igjen.",
                ("/staff", "Til startsiden"),
            )
            .into_response(),
            WebError::BadForm => Page::message(
                StatusCode::BAD_REQUEST,
                "Skjemaet kunne ikke leses",
                "Gå tilbake, last inn siden på nytt og prøv igjen.",
                ("/staff", "Til startsiden"),
            )
            .into_response(),
            WebError::Refused(why) => tasks::refused(&why).into_response(),
            WebError::Store(kontaktvei_store::Error::NotFound(_)) => Page::message(
                StatusCode::NOT_FOUND,
                "Finnes ikke",
                "Oppgaven finnes ikke, eller den er ikke din å se.",
                ("/staff/oppgaver", "Tilbake til oppgavene"),
            )
            .into_response(),
            WebError::Store(_) | WebError::Password(_) => {
                // The error chain names tables and constraints, never passwords or patient data.
                tracing::error!(error = %self, "a staff page failed");
                Page::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Noe gikk galt hos oss",
                    "Ingenting ble halvveis lagret. Prøv igjen om litt, og si fra til driftsansvarlig om det skjer igjen.",
                    ("/staff", "Til startsiden"),
                )
                .into_response()
            }
        }
    }
}
