//! `Idempotency-Key` on POST: the same key with the same request returns the saved response
//! (status and body) without running the handler again; the same key with a different request
//! is 422. Keys are scoped to the caller's organisation. Server errors are not saved, so a
//! retry after one runs again.

use crate::auth::Caller;
use crate::context::AppContext;
use crate::problem::{ApiError, PROBLEM_JSON};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kontaktvei_store::idempotency::{self, Claim, SavedResponse};
use sha2::{Digest, Sha256};

const MAX_BODY: usize = 1 << 20;

pub async fn idempotent(State(ctx): State<AppContext>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 255 => k.trim().to_owned(),
        _ => {
            return ApiError::BadRequest(
                "Idempotency-Key must be 1–255 visible ASCII characters, e.g. a UUID".into(),
            )
            .into_response();
        }
    };
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return ApiError::Unauthorized.into_response();
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::BadRequest("the request body is larger than 1 MiB".into())
                .into_response();
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path());
    hasher.update([0]);
    hasher.update(&bytes);
    let hash = hex::encode(hasher.finalize());

    let org = caller.organisation_id;
    let claim = async {
        let mut tx = ctx.store.begin().await?;
        let claim = idempotency::claim(&mut tx, org, &key, &hash, ctx.clock.now()).await?;
        tx.commit().await?;
        Ok::<_, kontaktvei_store::Error>(claim)
    }
    .await;
    match claim {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Claim::Mismatch) => return ApiError::IdempotencyMismatch.into_response(),
        Ok(Claim::InProgress) => return ApiError::IdempotencyInProgress.into_response(),
        Ok(Claim::Replay(saved)) => return replay(saved),
        Ok(Claim::New) => {}
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let outcome = async {
        let mut tx = ctx.store.begin().await?;
        if parts.status.is_server_error() {
            idempotency::release(&mut tx, org, &key).await?;
        } else {
            let saved = SavedResponse {
                status: parts.status.as_u16(),
                content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            };
            idempotency::save(&mut tx, org, &key, &saved).await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = outcome {
        tracing::error!(error = %e, "could not save the idempotent response");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(saved: SavedResponse) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut response = (status, saved.body).into_response();
    let content_type = HeaderValue::from_str(&saved.content_type)
        .unwrap_or(HeaderValue::from_static(PROBLEM_JSON));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
