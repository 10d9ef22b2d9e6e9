//! Tasks: work for people. A relay request for a low-threshold service, an outreach task for a
//! team, or a follow-up for the patient's coordinator (koordinator) — created by the escalation
//! engine when a human step is due, or when a no-show or a failed chain needs someone.
//! A task is closed only by a person, with an outcome; the human-channels work adds claiming
//! and hand-over on top of these rows.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The columns of a [`Task`], for `concat!` into each query: sqlx takes only static SQL.
macro_rules! task_columns {
    () => {
        "id, kind, organisation_id, patient_id, notice_id, step_id, assignee_id, status, reason, \
         due_at, outcome, created_at, closed_at"
    };
}

text_enum! {
    pub enum TaskKind {
        /// Pass the message on when the patient comes in (lavterskeltilbud).
        Relay = "relay",
        /// Go and find the person (oppsøkende team).
        Outreach = "outreach",
        /// The coordinator decides what happens next.
        CoordinatorFollowUp = "coordinator_follow_up",
    }
}

text_enum! {
    pub enum TaskStatus {
        Open = "open",
        Claimed = "claimed",
        Closed = "closed",
        /// No longer needed: the notice was acknowledged or superseded first.
        Cancelled = "cancelled",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Task {
    pub id: Id,
    pub kind: TaskKind,
    /// The organisation whose staff do it.
    pub organisation_id: Id,
    pub patient_id: Id,
    pub notice_id: Option<Id>,
    pub step_id: Option<Id>,
    pub assignee_id: Option<Id>,
    pub status: TaskStatus,
    /// Why the task exists, for the person who picks it up.
    pub reason: String,
    pub due_at: DateTime<Utc>,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub kind: TaskKind,
    pub organisation_id: Id,
    pub patient_id: Id,
    pub notice_id: Option<Id>,
    pub step_id: Option<Id>,
    pub assignee_id: Option<Id>,
    pub reason: String,
    pub due_at: DateTime<Utc>,
}

/// Creates the task; a step gets at most one (a retried step finds its task already there).
pub async fn create(tx: &mut Tx, new: NewTask, now: DateTime<Utc>) -> Result<Id> {
    if let Some(step_id) = new.step_id {
        let existing: Option<Id> = on_tx!(tx, |c| {
            sqlx::query_scalar("SELECT id FROM tasks WHERE step_id = $1")
                .bind(step_id)
                .fetch_optional(c)
                .await?
        });
        if let Some(id) = existing {
            return Ok(id);
        }
    }
    let id = Id::new(now);
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO tasks (id, kind, organisation_id, patient_id, notice_id, step_id, assignee_id, status, reason, due_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10)",
        )
        .bind(id)
        .bind(new.kind)
        .bind(new.organisation_id)
        .bind(new.patient_id)
        .bind(new.notice_id)
        .bind(new.step_id)
        .bind(new.assignee_id)
        .bind(&new.reason)
        .bind(new.due_at)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(id)
}

/// Closes the notice's open tasks as no longer needed.
pub async fn cancel_for_notice(
    tx: &mut Tx,
    notice_id: Id,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', outcome = $2, closed_at = $3
             WHERE notice_id = $1 AND status IN ('open', 'claimed')",
        )
        .bind(notice_id)
        .bind(outcome)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    }))
}

pub async fn for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<Task>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE patient_id = $1 ORDER BY id"
        ))
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// An organisation's open and claimed tasks, soonest due first.
pub async fn open_for_organisation(tx: &mut Tx, organisation_id: Id) -> Result<Vec<Task>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            concat!("SELECT ", task_columns!(), " FROM tasks WHERE organisation_id = $1 AND status IN ('open', 'claimed') ORDER BY due_at, id"),
        )
        .bind(organisation_id)
        .fetch_all(c)
        .await?
    }))
}

pub async fn for_notice(tx: &mut Tx, notice_id: Id) -> Result<Vec<Task>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE notice_id = $1 ORDER BY id"
        ))
        .bind(notice_id)
        .fetch_all(c)
        .await?
    }))
}
