//! Hand-over (overlevering) of a patient (who their coordinator is), a task or a notice to
//! another person or organisation. It is a two-step act: offered, then accepted (or declined,
//! or withdrawn). Until it is accepted the one who offered keeps it and is reminded; one open
//! offer per subject at a time. Every step is kept and shown on the patient's timeline.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;

macro_rules! handover_columns {
    () => {
        "id, subject_kind, subject_id, patient_id, from_staff_id, from_organisation_id, \
         to_staff_id, to_organisation_id, status, note, offered_at, decided_at, decided_by, \
         decision_note, reminded_at"
    };
}

text_enum! {
    pub enum SubjectKind {
        /// The patient: accepting makes you their coordinator.
        Patient = "patient",
        Task = "task",
        /// A notice a person holds (taken over, or its coordinator follow-up).
        Notice = "notice",
    }
}

text_enum! {
    pub enum HandoverStatus {
        Offered = "offered",
        Accepted = "accepted",
        Declined = "declined",
        Withdrawn = "withdrawn",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Handover {
    pub id: Id,
    pub subject_kind: SubjectKind,
    pub subject_id: Id,
    pub patient_id: Id,
    pub from_staff_id: Id,
    pub from_organisation_id: Id,
    /// A named person, or anyone in `to_organisation_id` when empty.
    pub to_staff_id: Option<Id>,
    pub to_organisation_id: Id,
    pub status: HandoverStatus,
    pub note: Option<String>,
    pub offered_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Id>,
    pub decision_note: Option<String>,
    pub reminded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewHandover {
    pub subject_kind: SubjectKind,
    pub subject_id: Id,
    pub patient_id: Id,
    pub from_staff_id: Id,
    pub from_organisation_id: Id,
    pub to_staff_id: Option<Id>,
    pub to_organisation_id: Id,
    pub note: Option<String>,
}

pub async fn offer(tx: &mut Tx, new: NewHandover, now: DateTime<Utc>) -> Result<Handover> {
    let open: Option<Id> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT id FROM handovers WHERE subject_kind = $1 AND subject_id = $2 AND status = 'offered'",
        )
        .bind(new.subject_kind)
        .bind(new.subject_id)
        .fetch_optional(c)
        .await?
    });
    if open.is_some() {
        return Err(Error::Conflict(format!(
            "this {} is already offered to someone; withdraw that offer first",
            new.subject_kind
        )));
    }
    let id = Id::new(now);
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO handovers (id, subject_kind, subject_id, patient_id, from_staff_id, from_organisation_id, to_staff_id, to_organisation_id, status, note, offered_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'offered', $9, $10)",
        )
        .bind(id)
        .bind(new.subject_kind)
        .bind(new.subject_id)
        .bind(new.patient_id)
        .bind(new.from_staff_id)
        .bind(new.from_organisation_id)
        .bind(new.to_staff_id)
        .bind(new.to_organisation_id)
        .bind(&new.note)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    get(tx, id).await
}

pub async fn get(tx: &mut Tx, id: Id) -> Result<Handover> {
    on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            handover_columns!(),
            " FROM handovers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("hand-over"))
}

/// Accepts, declines or withdraws an open offer. False if it was decided already.
pub async fn decide(
    tx: &mut Tx,
    id: Id,
    status: HandoverStatus,
    by: Id,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE handovers SET status = $2, decided_by = $3, decision_note = $4, decided_at = $5
             WHERE id = $1 AND status = 'offered'",
        )
        .bind(id)
        .bind(status)
        .bind(by)
        .bind(note)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    }) > 0)
}

pub async fn for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<Handover>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            handover_columns!(),
            " FROM handovers WHERE patient_id = $1 ORDER BY offered_at, id"
        ))
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// Open offers to this person, or to their organisation without a name.
pub async fn incoming(
    tx: &mut Tx,
    staff_id: Option<Id>,
    organisation_id: Id,
) -> Result<Vec<Handover>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            handover_columns!(),
            " FROM handovers WHERE status = 'offered'
               AND ((to_staff_id IS NOT NULL AND to_staff_id = $1)
                    OR (to_staff_id IS NULL AND to_organisation_id = $2))
             ORDER BY offered_at, id"
        ))
        .bind(staff_id)
        .bind(organisation_id)
        .fetch_all(c)
        .await?
    }))
}

/// Offers this person made that are still open.
pub async fn outgoing(tx: &mut Tx, staff_id: Id) -> Result<Vec<Handover>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            handover_columns!(),
            " FROM handovers WHERE status = 'offered' AND from_staff_id = $1 ORDER BY offered_at, id"
        ))
        .bind(staff_id)
        .fetch_all(c)
        .await?
    }))
}

/// Open offers made before `before` whose offerer has not been reminded.
pub async fn unanswered(tx: &mut Tx, before: DateTime<Utc>) -> Result<Vec<Handover>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            handover_columns!(),
            " FROM handovers WHERE status = 'offered' AND COALESCE(reminded_at, offered_at) < $1
             ORDER BY offered_at LIMIT 200"
        ))
        .bind(before)
        .fetch_all(c)
        .await?
    }))
}

/// Notes a reminder of an offer last offered or reminded before `before` (compare-and-set: of
/// two instances chasing at once, one reminds).
pub async fn mark_reminded(
    tx: &mut Tx,
    id: Id,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE handovers SET reminded_at = $2
             WHERE id = $1 AND status = 'offered' AND COALESCE(reminded_at, offered_at) < $3",
        )
        .bind(id)
        .bind(now)
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()
    }) > 0)
}
