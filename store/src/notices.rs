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

/// The columns of a [`Notice`], for `concat!` into each query: sqlx takes only static SQL.
macro_rules! notice_columns {
    () => {
        "id, organisation_id, patient_id, appointment_id, kind, status, deadline, created_at, \
         updated_at, closed_at, holder_staff_id, template_lang, templates_used"
    };
}

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
        /// Owed to the patient; its contact plan is not made yet.
        Pending = "pending",
        /// Its contact plan is running.
        Active = "active",
        /// The patient acknowledged it (reply code, code at a desk or by phone, link, or a
        /// person who told them).
        Acknowledged = "acknowledged",
        /// A named person took it over with an outcome.
        HandedOver = "handed_over",
        /// A later notice about the same appointment replaced it before it was acknowledged.
        Superseded = "superseded",
    }
}

impl NoticeStatus {
    /// Still owed: nobody has acknowledged it or taken it over.
    pub fn is_open(self) -> bool {
        matches!(self, NoticeStatus::Pending | NoticeStatus::Active)
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
    /// When it stopped being owed (acknowledged, handed over or superseded).
    pub closed_at: Option<DateTime<Utc>>,
    /// The named person who took it over (`handed_over`), or to whom it was handed on.
    pub holder_staff_id: Option<Id>,
    /// The language its texts were written in (the patient's, or `nb` when there was no
    /// template in theirs).
    pub template_lang: Option<String>,
    /// Per channel, the template version its text came from: `default` or an override's number.
    #[sqlx(json(nullable))]
    #[schema(value_type = Option<Object>)]
    pub templates_used: Option<std::collections::BTreeMap<String, String>>,
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
        closed_at: None,
        holder_staff_id: None,
        template_lang: None,
        templates_used: None,
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

/// Marks the appointment's open notices as superseded, cancels their remaining steps and open
/// tasks, and returns their ids.
pub async fn supersede_for_appointment(
    tx: &mut Tx,
    appointment_id: Id,
    now: DateTime<Utc>,
) -> Result<Vec<Id>> {
    let open: Vec<Id> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT id FROM notices WHERE appointment_id = $1 AND status IN ('pending', 'active')",
        )
        .bind(appointment_id)
        .fetch_all(c)
        .await?
    });
    for id in &open {
        close(tx, *id, NoticeStatus::Superseded, now).await?;
        crate::steps::cancel_remaining(tx, *id, "superseded", now).await?;
        crate::tasks::cancel_for_notice(tx, *id, "the notice was superseded by a newer one", now)
            .await?;
    }
    Ok(open)
}

/// Closes an open notice with a final status; false if it was already closed (the first
/// acknowledgement wins, later ones change nothing).
pub async fn close(tx: &mut Tx, id: Id, status: NoticeStatus, now: DateTime<Utc>) -> Result<bool> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE notices SET status = $2, closed_at = $3, updated_at = $3
             WHERE id = $1 AND status IN ('pending', 'active')",
        )
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(moved == 1)
}

/// A named person takes an open notice over: it is no longer owed by the machine, and they
/// hold it. False if it was closed already.
pub async fn hand_over(tx: &mut Tx, id: Id, staff_id: Id, now: DateTime<Utc>) -> Result<bool> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE notices SET status = 'handed_over', holder_staff_id = $2, closed_at = $3, updated_at = $3
             WHERE id = $1 AND status IN ('pending', 'active')",
        )
        .bind(id)
        .bind(staff_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(moved == 1)
}

/// Who holds the notice now (a hand-over accepted).
pub async fn set_holder(tx: &mut Tx, id: Id, staff_id: Id, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query("UPDATE notices SET holder_staff_id = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(staff_id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Stores the plan's policy snapshot, the hashes of the ack code and link token and where its
/// texts came from, and marks the notice active.
pub async fn activate(tx: &mut Tx, id: Id, a: &Activation<'_>, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE notices SET status = 'active', policy = $2, ack_code_hash = $3, link_token_hash = $4,
                    template_lang = $5, templates_used = $6, updated_at = $7
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(sqlx::types::Json(a.policy))
        .bind(a.code_hash)
        .bind(a.token_hash)
        .bind(a.template_lang)
        .bind(sqlx::types::Json(a.templates_used))
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// What a notice is activated with.
#[derive(Debug)]
pub struct Activation<'a> {
    /// The policy it is planned under (a snapshot: later policy edits do not touch it).
    pub policy: &'a serde_json::Value,
    pub code_hash: &'a str,
    pub token_hash: &'a str,
    /// The language its texts were written in, and per channel the template version used.
    pub template_lang: &'a str,
    pub templates_used: &'a std::collections::BTreeMap<String, String>,
}

/// Whether an open notice already uses this ack code (codes are unique among open notices).
pub async fn code_in_use(tx: &mut Tx, code_hash: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM notices WHERE ack_code_hash = $1 AND closed_at IS NULL",
        )
        .bind(code_hash)
        .fetch_one(c)
        .await?
    });
    Ok(n > 0)
}

/// The notice an ack code belongs to: the open one if any, else the most recent closed one (so a
/// late reply can be answered "already confirmed").
pub async fn by_code_hash(tx: &mut Tx, code_hash: &str) -> Result<Option<Notice>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            concat!("SELECT ", notice_columns!(), " FROM notices WHERE ack_code_hash = $1 ORDER BY CASE WHEN closed_at IS NULL THEN 0 ELSE 1 END, id DESC LIMIT 1"),
        )
        .bind(code_hash)
        .fetch_optional(c)
        .await?
    }))
}

pub async fn by_link_token_hash(tx: &mut Tx, token_hash: &str) -> Result<Option<Notice>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notice_columns!(),
            " FROM notices WHERE link_token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(c)
        .await?
    }))
}

/// The policy snapshot the notice was planned with.
pub async fn policy_snapshot(tx: &mut Tx, id: Id) -> Result<Option<serde_json::Value>> {
    let row: Option<Option<sqlx::types::Json<serde_json::Value>>> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT policy FROM notices WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?
    });
    Ok(row.flatten().map(|j| j.0))
}

/// What the engine needs to send one of a notice's steps, read in one statement: the notice's
/// patient, organisation, deadline and policy snapshot, the patient's coordinator and the
/// organisation's SMS sender name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DispatchFacts {
    pub patient_id: Id,
    pub organisation_id: Id,
    pub deadline: Option<DateTime<Utc>>,
    /// The policy the notice was planned under, as [`policy_snapshot`] gives it.
    pub policy: Option<sqlx::types::Json<serde_json::Value>>,
    pub coordinator_id: Option<Id>,
    pub sms_sender: Option<String>,
}

/// The [`DispatchFacts`] query up to its WHERE clause (which names the notice `n`).
macro_rules! dispatch_facts_query {
    () => {
        "SELECT n.patient_id, n.organisation_id, n.deadline, n.policy, p.coordinator_id, o.sms_sender
         FROM notices n
         JOIN patients p ON p.id = n.patient_id
         JOIN organisations o ON o.id = n.organisation_id "
    };
}
pub(crate) use dispatch_facts_query;

pub async fn get(tx: &mut Tx, id: Id) -> Result<Notice> {
    on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notice_columns!(),
            " FROM notices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("notice"))
}

/// A notice with the policy snapshot it was planned with (as [`policy_snapshot`] gives it),
/// in one statement: escalating needs both.
pub async fn get_with_policy(tx: &mut Tx, id: Id) -> Result<(Notice, Option<serde_json::Value>)> {
    #[derive(sqlx::FromRow)]
    struct WithPolicy {
        #[sqlx(flatten)]
        notice: Notice,
        policy: Option<sqlx::types::Json<serde_json::Value>>,
    }
    let row: WithPolicy = on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notice_columns!(),
            ", policy FROM notices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("notice"))?;
    Ok((row.notice, row.policy.map(|j| j.0)))
}

/// A patient's notices, newest first.
pub async fn for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<Notice>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notice_columns!(),
            " FROM notices WHERE patient_id = $1 ORDER BY id DESC"
        ))
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// The notices about one appointment, oldest first.
pub async fn for_appointment(tx: &mut Tx, appointment_id: Id) -> Result<Vec<Notice>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notice_columns!(),
            " FROM notices WHERE appointment_id = $1 ORDER BY id"
        ))
        .bind(appointment_id)
        .fetch_all(c)
        .await?
    }))
}
