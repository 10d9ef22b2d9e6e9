//! Print batches and their letters: the letters frozen at the print cut-off, in postal-code order,
//! then printed, posted (which sets each letter's expected delivery) or returned.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

text_enum! {
    pub enum BatchStatus {
        /// Made; waiting to be printed.
        Ready = "ready",
        Printed = "printed",
        Posted = "posted",
    }
}

text_enum! {
    pub enum LetterStatus {
        /// In a batch, not yet posted.
        Batched = "batched",
        Posted = "posted",
        /// Came back: the address did not work.
        Returned = "returned",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PrintBatch {
    pub id: Id,
    pub organisation_id: Id,
    pub created_at: DateTime<Utc>,
    pub letters: i32,
    pub pages: i32,
    pub status: BatchStatus,
    pub printed_at: Option<DateTime<Utc>>,
    pub posted_on: Option<NaiveDate>,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Letter {
    pub id: Id,
    pub step_id: Id,
    pub notice_id: Id,
    pub batch_id: Id,
    /// Printed on the letter; typed or scanned when it comes back.
    pub reference: String,
    pub postal_code: String,
    /// Its place in the batch (postal-code order).
    pub position: i32,
    pub pages: i32,
    pub status: LetterStatus,
    pub expected_from: Option<NaiveDate>,
    pub expected_to: Option<NaiveDate>,
    pub returned_at: Option<DateTime<Utc>>,
    pub return_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn create_batch(tx: &mut Tx, b: &PrintBatch) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO print_batches (id, organisation_id, created_at, letters, pages, status, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(b.id)
        .bind(b.organisation_id)
        .bind(b.created_at)
        .bind(b.letters)
        .bind(b.pages)
        .bind(b.status)
        .bind(&b.created_by)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

pub async fn add_letter(tx: &mut Tx, l: &Letter) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO letters (id, step_id, notice_id, batch_id, reference, postal_code, position, pages, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(l.id)
        .bind(l.step_id)
        .bind(l.notice_id)
        .bind(l.batch_id)
        .bind(&l.reference)
        .bind(&l.postal_code)
        .bind(l.position)
        .bind(l.pages)
        .bind(l.status)
        .bind(l.created_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

pub async fn batch(tx: &mut Tx, id: Id) -> Result<PrintBatch> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, created_at, letters, pages, status, printed_at, posted_on, created_by
             FROM print_batches WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("print batch"))
}

/// An organisation's batches, newest first.
pub async fn batches(tx: &mut Tx, organisation_id: Id, limit: i64) -> Result<Vec<PrintBatch>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, created_at, letters, pages, status, printed_at, posted_on, created_by
             FROM print_batches WHERE organisation_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(organisation_id)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}

pub async fn letters_in(tx: &mut Tx, batch_id: Id) -> Result<Vec<Letter>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, step_id, notice_id, batch_id, reference, postal_code, position, pages, status, expected_from,
                    expected_to, returned_at, return_reason, created_at
             FROM letters WHERE batch_id = $1 ORDER BY position",
        )
        .bind(batch_id)
        .fetch_all(c)
        .await?
    }))
}

pub async fn letter_by_reference(tx: &mut Tx, reference: &str) -> Result<Option<Letter>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, step_id, notice_id, batch_id, reference, postal_code, position, pages, status, expected_from,
                    expected_to, returned_at, return_reason, created_at
             FROM letters WHERE reference = $1",
        )
        .bind(reference)
        .fetch_optional(c)
        .await?
    }))
}

/// Marks a batch printed (from ready) or posted (from ready or printed); false if it had
/// already moved past.
pub async fn set_batch_status(
    tx: &mut Tx,
    id: Id,
    to: BatchStatus,
    posted_on: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE print_batches SET status = $2,
                    printed_at = CASE WHEN $2 = 'printed' THEN $3 ELSE printed_at END,
                    posted_on = COALESCE($4, posted_on)
             WHERE id = $1 AND (($2 = 'printed' AND status = 'ready') OR ($2 = 'posted' AND status IN ('ready', 'printed')))",
        )
        .bind(id)
        .bind(to)
        .bind(now)
        .bind(posted_on)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(moved == 1)
}

pub async fn set_letter_posted(
    tx: &mut Tx,
    id: Id,
    expected_from: NaiveDate,
    expected_to: NaiveDate,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE letters SET status = 'posted', expected_from = $2, expected_to = $3 WHERE id = $1 AND status = 'batched'",
        )
        .bind(id)
        .bind(expected_from)
        .bind(expected_to)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Records a returned letter; false if it was already recorded.
pub async fn set_letter_returned(
    tx: &mut Tx,
    id: Id,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE letters SET status = 'returned', returned_at = $2, return_reason = $3 WHERE id = $1 AND status <> 'returned'",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(moved == 1)
}

/// A batch's letters were downloaded: one audit row per letter, since each holds a name and an
/// address.
pub async fn audit_download(
    tx: &mut Tx,
    batch_id: Id,
    actor: &crate::audit::Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    for letter in letters_in(tx, batch_id).await? {
        let patient = crate::notices::get(tx, letter.notice_id).await?.patient_id;
        crate::audit::record(
            tx,
            actor,
            "letter.download",
            Some(patient),
            Some(letter.id),
            crate::audit::Outcome::Allowed,
            now,
        )
        .await?;
    }
    Ok(())
}
