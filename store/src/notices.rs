//! Notices: one row per message the patient is owed — a booking, a change, a cancellation, a
//! reminder, a no-show follow-up or a free notice. A notice starts `pending`; the escalation
//! engine plans and runs its steps. When a newer notice makes an older one pointless (the time
//! changed again, the appointment was cancelled or took place), the older one is `superseded`.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;

text_enum! {
    pub enum NoticeKind {
        Booking = "booking",
        Reschedule = "reschedule",
        Cancellation = "cancellation",
        Reminder = "reminder",
        NoShowFollowUp = "no_show_follow_up",
        Free = "free",
    }
}

text_enum! {
    pub enum NoticeStatus {
        /// Owed to the patient; not yet acknowledged.
        Pending = "pending",
        /// A later notice about the same appointment replaced it before it was acknowledged.
        Superseded = "superseded",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notice {
    pub id: Id,
    pub organisation_id: Id,
    pub patient_id: Id,
    pub appointment_id: Option<Id>,
    pub kind: NoticeKind,
    pub status: NoticeStatus,
    /// The notice is useless after this instant (the appointment's start, for appointment notices).
    pub deadline: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewNotice {
    pub organisation_id: Id,
    pub patient_id: Id,
    pub appointment_id: Option<Id>,
    pub kind: NoticeKind,
    pub deadline: Option<DateTime<Utc>>,
}

pub async fn create(tx: &mut Tx, new: NewNotice, now: DateTime<Utc>) -> Result<Notice> {
    let notice = Notice {
        id: Id::new(now),
        organisation_id: new.organisation_id,
        patient_id: new.patient_id,
        appointment_id: new.appointment_id,
        kind: new.kind,
        status: NoticeStatus::Pending,
        deadline: new.deadline,
        created_at: now,
        updated_at: now,
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO notices (id, organisation_id, patient_id, appointment_id, kind, status, deadline, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(notice.id)
        .bind(notice.organisation_id)
        .bind(notice.patient_id)
        .bind(notice.appointment_id)
        .bind(notice.kind)
        .bind(notice.status)
        .bind(notice.deadline)
        .bind(notice.created_at)
        .bind(notice.updated_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(notice)
}

/// Marks the appointment's still-pending notices as superseded; returns how many.
pub async fn supersede_for_appointment(
    tx: &mut Tx,
    appointment_id: Id,
    now: DateTime<Utc>,
) -> Result<u64> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE notices SET status = 'superseded', updated_at = $2 WHERE appointment_id = $1 AND status = 'pending'",
        )
        .bind(appointment_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    }))
}

pub async fn get(tx: &mut Tx, id: Id) -> Result<Notice> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, patient_id, appointment_id, kind, status, deadline, created_at, updated_at
             FROM notices WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("notice"))
}

/// A patient's notices, newest first.
pub async fn for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<Notice>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, patient_id, appointment_id, kind, status, deadline, created_at, updated_at
             FROM notices WHERE patient_id = $1 ORDER BY id DESC",
        )
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// The notices about one appointment, oldest first.
pub async fn for_appointment(tx: &mut Tx, appointment_id: Id) -> Result<Vec<Notice>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, patient_id, appointment_id, kind, status, deadline, created_at, updated_at
             FROM notices WHERE appointment_id = $1 ORDER BY id",
        )
        .bind(appointment_id)
        .fetch_all(c)
        .await?
    }))
}
