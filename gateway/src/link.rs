//! The one-click acknowledgement page, `/k/{token}`, for patients: no login, no BankID.
//! Opening the link only shows a button — link scanners in mail and chat apps fetch pages but
//! do not press buttons — and pressing it acknowledges the notice. The page says nothing about
//! the appointment or the clinic, in case the link is passed on.

use crate::context::AppContext;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use kontaktvei_scheduler::AckResult;
use kontaktvei_store::acks::{self, AckMethod};
use kontaktvei_store::notices;

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"nb\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;font-size:1.2rem;line-height:1.5}}\
         button{{font-size:1.3rem;padding:.8rem 1.6rem;border-radius:.4rem;border:0;background:#0b5394;color:#fff;cursor:pointer}}\
         button:focus{{outline:3px solid #f1c232}}</style></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    response
}

fn unknown() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Lenken virker ikke",
        "<p>Denne lenken er ikke gyldig. Sjekk at hele lenken ble med, eller svar på meldingen med koden du fikk.</p>",
    )
}

fn already() -> Response {
    page(
        StatusCode::OK,
        "Takk",
        "<p>Vi har allerede registrert at du har fått beskjeden.</p>",
    )
}

fn looks_like_token(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn show(State(ctx): State<AppContext>, Path(token): Path<String>) -> Response {
    if !looks_like_token(&token) {
        return unknown();
    }
    let found = async {
        let mut tx = ctx.store.begin_read().await?;
        let n = notices::by_link_token_hash(&mut tx, &acks::hash(&token)).await?;
        tx.commit().await?;
        Ok::<_, kontaktvei_store::Error>(n)
    }
    .await;
    match found {
        Ok(Some(n)) if n.status.is_open() => page(
            StatusCode::OK,
            "Bekreft at du har fått beskjeden",
            "<p>Trykk på knappen, så vet vi at beskjeden har nådd deg. Du trenger ikke logge inn.</p>\
             <form method=\"post\"><button type=\"submit\">Jeg har fått beskjeden</button></form>",
        ),
        Ok(Some(_)) => already(),
        Ok(None) => unknown(),
        Err(e) => {
            tracing::error!(error = %e, "link page failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Prøv igjen litt senere",
                "<p>Noe gikk galt hos oss. Prøv igjen om litt.</p>",
            )
        }
    }
}

pub async fn confirm(State(ctx): State<AppContext>, Path(token): Path<String>) -> Response {
    if !looks_like_token(&token) {
        return unknown();
    }
    let result = async {
        let mut tx = ctx.store.begin().await?;
        let Some(notice) = notices::by_link_token_hash(&mut tx, &acks::hash(&token)).await? else {
            return Ok(None);
        };
        let result = ctx
            .engine
            .acknowledge(
                &mut tx,
                notice.id,
                AckMethod::Link,
                "patient:link",
                None,
                None,
            )
            .await?;
        if matches!(result, AckResult::Acknowledged { .. }) {
            let actor = kontaktvei_store::audit::Actor {
                organisation_id: None,
                label: "patient:link".into(),
                request_id: None,
            };
            kontaktvei_store::audit::record(
                &mut tx,
                &actor,
                "ack.link",
                Some(notice.patient_id),
                Some(notice.id),
                kontaktvei_store::audit::Outcome::Allowed,
                ctx.clock.now(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<_, kontaktvei_scheduler::engine::Error>(Some(result))
    }
    .await;
    match result {
        Ok(Some(AckResult::Acknowledged { .. })) => page(
            StatusCode::OK,
            "Takk!",
            "<p>Vi har registrert at du har fått beskjeden. Du kan lukke denne siden.</p>",
        ),
        Ok(Some(AckResult::AlreadyClosed { .. })) => already(),
        Ok(None) => unknown(),
        Err(e) => {
            tracing::error!(error = %e, "link acknowledgement failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Prøv igjen litt senere",
                "<p>Noe gikk galt hos oss. Prøv igjen om litt.</p>",
            )
        }
    }
}
