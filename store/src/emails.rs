//! E-mails to staff, queued in the database and sent by the mail worker: a count of what is
//! waiting and a link to the staff pages — never a patient's name, code or message. A failed
//! send is retried with backoff; one that keeps failing is marked `failed` for admins to see.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;

macro_rules! email_columns {
    () => {
        "id, staff_id, organisation_id, to_address, subject, body, status, attempts, \
         next_attempt_at, last_error, transport, created_at, sent_at"
    };
}

text_enum! {
    pub enum EmailStatus {
        Pending = "pending",
        Sent = "sent",
        /// The default install keeps mails here for admins to read instead of sending them.
        Outbox = "outbox",
        /// Gave up: the server refused it for good, or every retry failed.
        Failed = "failed",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StaffEmail {
    pub id: Id,
    pub staff_id: Id,
    pub organisation_id: Id,
    pub to_address: String,
    pub subject: String,
    pub body: String,
    pub status: EmailStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub transport: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[allow(clippy::too_many_arguments)]
pub async fn enqueue(
    tx: &mut Tx,
    staff_id: Id,
    organisation_id: Id,
    to_address: &str,
    subject: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Id> {
    let id = Id::new(now);
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO staff_emails (id, staff_id, organisation_id, to_address, subject, body, status, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)",
        )
        .bind(id)
        .bind(staff_id)
        .bind(organisation_id)
        .bind(to_address)
        .bind(subject)
        .bind(body)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(id)
}

/// Takes pending mails that are due: each is pushed to `lease_until` first (compare-and-set),
/// so another instance does not send it too, and a crash mid-send retries it after the lease.
pub async fn lease_due(
    tx: &mut Tx,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<StaffEmail>> {
    let due: Vec<StaffEmail> = on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            email_columns!(),
            " FROM staff_emails WHERE status = 'pending' AND next_attempt_at <= $1
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await?
    });
    let mut won = Vec::with_capacity(due.len());
    for mail in due {
        let changed = on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE staff_emails SET next_attempt_at = $3
                 WHERE id = $1 AND status = 'pending' AND next_attempt_at = $2",
            )
            .bind(mail.id)
            .bind(mail.next_attempt_at)
            .bind(lease_until)
            .execute(c)
            .await?
            .rows_affected()
        });
        if changed > 0 {
            won.push(mail);
        }
    }
    Ok(won)
}

/// Sent, or kept in the outbox.
pub async fn mark_done(
    tx: &mut Tx,
    id: Id,
    status: EmailStatus,
    transport: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_emails SET status = $2, transport = $3, sent_at = $4, attempts = attempts + 1,
                    last_error = NULL
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(status)
        .bind(transport)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// A failed try: again at `retry_at`, or (None) never — the mail is `failed`.
pub async fn mark_attempt_failed(
    tx: &mut Tx,
    id: Id,
    error: &str,
    transport: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_emails SET attempts = attempts + 1, last_error = $2, transport = $3,
                    status = CASE WHEN $4 IS NULL THEN 'failed' ELSE 'pending' END,
                    next_attempt_at = COALESCE($4, next_attempt_at)
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(error)
        .bind(transport)
        .bind(retry_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// An organisation's mails, newest first, optionally of one status.
pub async fn list(
    tx: &mut Tx,
    organisation_id: Id,
    status: Option<EmailStatus>,
    limit: i64,
) -> Result<Vec<StaffEmail>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            email_columns!(),
            " FROM staff_emails WHERE organisation_id = $1 AND ($2 IS NULL OR status = $2)
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(organisation_id)
        .bind(status)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}

/// Mails given up on, across organisations (a metric for the operator).
pub async fn failed_count(tx: &mut Tx) -> Result<i64> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT COUNT(*) FROM staff_emails WHERE status = 'failed'")
            .fetch_one(c)
            .await?
    }))
}
