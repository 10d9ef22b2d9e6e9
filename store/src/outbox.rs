//! The outbox: the built-in SMS provider of a fresh install. Messages are stored here and shown
//! at `GET /api/v1/outbox`; nothing leaves the machine. A message is stored once per
//! idempotency key, however often the send is retried.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OutboxMessage {
    pub id: Id,
    pub notice_id: Id,
    /// `None` for a confirmation reply to an acknowledgement.
    pub step_id: Option<Id>,
    /// E.164 phone number.
    pub to: String,
    pub body: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
}

/// Stores the message unless one with the same idempotency key exists; returns the stored id.
pub async fn put(
    tx: &mut Tx,
    notice_id: Id,
    step_id: Option<Id>,
    to: &str,
    body: &str,
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> Result<Id> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO outbox_messages (id, notice_id, step_id, to_phone, body, idempotency_key, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(Id::new(now))
        .bind(notice_id)
        .bind(step_id)
        .bind(to)
        .bind(body)
        .bind(idempotency_key)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT id FROM outbox_messages WHERE idempotency_key = $1")
            .bind(idempotency_key)
            .fetch_one(c)
            .await?
    }))
}

/// Messages to notices of `organisation_id`, newest first.
pub async fn list(tx: &mut Tx, organisation_id: Id, limit: i64) -> Result<Vec<OutboxMessage>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT m.id, m.notice_id, m.step_id, m.to_phone AS \"to\", m.body, m.idempotency_key, m.created_at
             FROM outbox_messages m JOIN notices n ON n.id = m.notice_id
             WHERE n.organisation_id = $1 ORDER BY m.id DESC LIMIT $2",
        )
        .bind(organisation_id)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}

/// Every message (for tests and the simulator), oldest first.
pub async fn all(tx: &mut Tx) -> Result<Vec<OutboxMessage>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, notice_id, step_id, to_phone AS \"to\", body, idempotency_key, created_at
             FROM outbox_messages ORDER BY id",
        )
        .fetch_all(c)
        .await?
    }))
}
