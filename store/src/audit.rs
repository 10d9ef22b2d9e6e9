//! The audit log (Normen: access to health data is logged, and patients can learn who looked).
//! Append-only — the database refuses UPDATE and DELETE on it. It records who, which patient,
//! what action and when, never the data itself.

use crate::db::{Store, Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Who is acting: the organisation, a label for the credential or person (`api_key:<id>`,
/// `staff:<id>`, `operator`), and the request id that ties the row to the log lines.
#[derive(Debug, Clone)]
pub struct Actor {
    pub organisation_id: Option<Id>,
    pub label: String,
    pub request_id: Option<String>,
}

impl Actor {
    /// The operator at the command line (`kontaktvei admin …`).
    pub fn operator() -> Self {
        Actor {
            organisation_id: None,
            label: "operator".into(),
            request_id: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: Id,
    pub at: DateTime<Utc>,
    pub organisation_id: Option<Id>,
    pub actor: String,
    /// What was done, as `thing.verb`: `patient.read`, `appointment.book`, …
    pub action: String,
    pub patient_id: Option<Id>,
    /// The id of the record acted on, when it is not the patient itself.
    pub subject: Option<String>,
    /// `allowed`, or `denied` when the caller was refused.
    pub outcome: String,
    pub request_id: Option<String>,
}

pub async fn record(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    patient_id: Option<Id>,
    subject: Option<Id>,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<()> {
    let subject = subject.map(|s| s.to_string());
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO audit_events (id, at, organisation_id, actor, action, patient_id, subject, outcome, request_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Id::new(now))
        .bind(now)
        .bind(actor.organisation_id)
        .bind(&actor.label)
        .bind(action)
        .bind(patient_id)
        .bind(&subject)
        .bind(outcome.as_str())
        .bind(&actor.request_id)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Writes a refused access in a transaction of its own: the refused request's own is rolled
/// back, and the refusal must stay on record.
pub async fn record_denied(
    store: &Store,
    actor: &Actor,
    action: &str,
    patient_id: Option<Id>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = store.begin().await?;
    record(
        &mut tx,
        actor,
        action,
        patient_id,
        None,
        Outcome::Denied,
        now,
    )
    .await?;
    tx.commit().await
}

/// The newest events about one patient first.
pub async fn for_patient(tx: &mut Tx, patient_id: Id, limit: i64) -> Result<Vec<AuditEvent>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, at, organisation_id, actor, action, patient_id, subject, outcome, request_id
             FROM audit_events WHERE patient_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(patient_id)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}
