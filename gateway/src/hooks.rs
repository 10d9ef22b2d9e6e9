//! Callbacks from SMS providers: delivery reports and replies from phones, at
//! `/hooks/sms/{provider}/{secret}/dlr` and `/hooks/sms/{provider}/{secret}/inbound` (GET with a
//! query string, as Kannel calls them, or POST with JSON, as aggregators do).
//!
//! The secret in the path guards them (providers rarely sign callbacks; put an IP allowlist in
//! the reverse proxy too). A wrong secret or an unknown provider is 401 and an audit event, never
//! a state change. Each provider is rate-limited. For Kannel, the text we answer a reply with is
//! sent back to the phone; other providers get the confirmation as a new SMS.

use crate::context::AppContext;
use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kontaktvei_channels::sms::config::{Callbacks, Hook};
use kontaktvei_channels::sms::reports;
use kontaktvei_scheduler::replies::ReportOutcome;
use kontaktvei_store::audit::{self, Actor};
use std::collections::HashMap;

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The provider's hook if the secret is right; a refusal is audited.
async fn authorise(ctx: &AppContext, provider: &str, secret: &str) -> Result<Hook, ApiError> {
    let hook = ctx
        .hooks
        .get(provider)
        .filter(|h| !h.secret.is_empty() && constant_time_eq(&h.secret, secret))
        .cloned();
    match hook {
        Some(h) => {
            if ctx.hook_limiter.check_key(&provider.to_owned()).is_err() {
                return Err(ApiError::TooManyAttempts);
            }
            Ok(h)
        }
        None => {
            let actor = Actor {
                organisation_id: None,
                label: format!("hook:{}", provider.chars().take(40).collect::<String>()),
                request_id: None,
            };
            let recorded =
                audit::record_denied(&ctx.store, &actor, "sms.hook", None, ctx.clock.now()).await;
            if let Err(e) = recorded {
                tracing::error!(error = %e, "could not audit a refused callback");
            }
            tracing::warn!(provider = %actor.label, "callback with a wrong secret or for an unknown provider refused");
            Err(ApiError::Unauthorized)
        }
    }
}

fn query_map(query: Option<String>, body: &Bytes) -> HashMap<String, String> {
    let mut map: HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    // Kannel may POST form-encoded parameters instead.
    if !body.is_empty() && body.first() != Some(&b'{') {
        map.extend(form_urlencoded::parse(body).into_owned());
    }
    map
}

/// Reads a callback the way its provider sends it: Kannel's query (or form) parameters, or a
/// JSON body read through the provider's configured shapes. A bad one is 400.
fn read_callback<T>(
    hook: &Hook,
    query: Option<String>,
    body: &Bytes,
    kannel: fn(&HashMap<String, String>) -> Result<T, reports::ParseError>,
    json: fn(&reports::JsonShapes, &serde_json::Value) -> Result<T, reports::ParseError>,
) -> Result<T, ApiError> {
    let read = match &hook.callbacks {
        Callbacks::Kannel => kannel(&query_map(query, body)),
        Callbacks::Json(shapes) => match serde_json::from_slice(body) {
            Ok(value) => json(shapes, &value),
            Err(_) => Err(reports::ParseError("the body is not JSON".into())),
        },
        Callbacks::None => Err(reports::ParseError(
            "this provider sends no callbacks".into(),
        )),
    };
    read.map_err(|e| ApiError::BadRequest(format!("cannot read this callback: {e}")))
}

pub async fn dlr(
    State(ctx): State<AppContext>,
    Path((provider, secret)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let hook = match authorise(&ctx, &provider, &secret).await {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let report = match read_callback(&hook, query, &body, reports::kannel_dlr, reports::json_dlr) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let mut tx = ctx.store.begin().await?;
        let outcome = ctx
            .engine
            .delivery_report(&mut tx, &provider, &report)
            .await?;
        tx.commit().await?;
        Ok::<_, kontaktvei_scheduler::engine::Error>(outcome)
    }
    .await;
    match result {
        // An unknown reference is answered 200 too: the provider should stop retrying it.
        Ok(ReportOutcome::Recorded { .. } | ReportOutcome::UnknownReference) => {
            (StatusCode::OK, "OK").into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn inbound(
    State(ctx): State<AppContext>,
    Path((provider, secret)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let hook = match authorise(&ctx, &provider, &secret).await {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let sms = match read_callback(
        &hook,
        query,
        &body,
        reports::kannel_inbound,
        reports::json_inbound,
    ) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let mut tx = ctx.store.begin().await?;
        let outcome = ctx.engine.inbound_sms(&mut tx, &provider, &sms).await?;
        tx.commit().await?;
        Ok::<_, kontaktvei_scheduler::engine::Error>(outcome)
    }
    .await;
    let outcome = match result {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match (&hook.callbacks, outcome.reply, outcome.notice_id) {
        // Kannel sends our answer back to the phone.
        (Callbacks::Kannel, Some(reply), _) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], reply).into_response()
        }
        (Callbacks::Kannel, None, _) => (StatusCode::OK, "").into_response(),
        (_, Some(reply), Some(notice_id)) => {
            let engine = ctx.engine.clone();
            let reference = format!("reply-{}", outcome.message_id);
            tokio::spawn(async move {
                engine
                    .send_reply(notice_id, &sms.from, &reply, &reference)
                    .await
            });
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({"status": "ok"})),
            )
                .into_response()
        }
        _ => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
    }
}
