//! Saved responses for POST requests carrying an `Idempotency-Key`, per organisation. The
//! first request with a key claims it; a retry with the same body gets the saved response, a
//! reuse with another body is refused. A claim whose request died without an answer is
//! released after a minute so the client's retry can go through.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: run the request, then [`save`] or [`release`].
    New,
    /// Seen before with the same request: answer with this.
    Replay(SavedResponse),
    /// Seen before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

#[derive(sqlx::FromRow)]
struct Row {
    request_hash: String,
    response_status: Option<i32>,
    content_type: Option<String>,
    response_body: Option<String>,
    created_at: DateTime<Utc>,
}

const ABANDONED_AFTER: TimeDelta = TimeDelta::minutes(1);

pub async fn claim(
    tx: &mut Tx,
    organisation_id: Id,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<Claim> {
    let inserted = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO idempotency_keys (organisation_id, idempotency_key, request_hash, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (organisation_id, idempotency_key) DO NOTHING",
        )
        .bind(organisation_id)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let row: Row = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT request_hash, response_status, content_type, response_body, created_at
             FROM idempotency_keys WHERE organisation_id = $1 AND idempotency_key = $2",
        )
        .bind(organisation_id)
        .bind(key)
        .fetch_one(c)
        .await?
    });
    if row.request_hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    match (row.response_status, row.content_type, row.response_body) {
        (Some(status), Some(content_type), Some(body)) => Ok(Claim::Replay(SavedResponse {
            status: u16::try_from(status).unwrap_or(500),
            content_type,
            body,
        })),
        _ if row.created_at < now - ABANDONED_AFTER => {
            // Take the abandoned claim over: only one caller's compare-and-set wins.
            let taken = on_tx!(tx, |c| {
                sqlx::query(
                    "UPDATE idempotency_keys SET created_at = $3
                     WHERE organisation_id = $1 AND idempotency_key = $2 AND created_at = $4 AND response_status IS NULL",
                )
                .bind(organisation_id)
                .bind(key)
                .bind(now)
                .bind(row.created_at)
                .execute(c)
                .await?
                .rows_affected()
            });
            Ok(if taken == 1 {
                Claim::New
            } else {
                Claim::InProgress
            })
        }
        _ => Ok(Claim::InProgress),
    }
}

pub async fn save(
    tx: &mut Tx,
    organisation_id: Id,
    key: &str,
    response: &SavedResponse,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE idempotency_keys SET response_status = $3, content_type = $4, response_body = $5
             WHERE organisation_id = $1 AND idempotency_key = $2",
        )
        .bind(organisation_id)
        .bind(key)
        .bind(i32::from(response.status))
        .bind(&response.content_type)
        .bind(&response.body)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Gives the key back after a failure that the client may retry (a server error).
pub async fn release(tx: &mut Tx, organisation_id: Id, key: &str) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE organisation_id = $1 AND idempotency_key = $2 AND response_status IS NULL",
        )
        .bind(organisation_id)
        .bind(key)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}
