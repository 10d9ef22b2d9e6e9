//! What staff are told: a new task for their team, a task nobody claimed, a task past due, a
//! chain that ran out, a no-show, a returned letter, a failed contact point, a hand-over offered.
//! Each row names one staff member (or, when the organisation has nobody in that role, the
//! organisation as a whole). The API and pages list them; e-mails summarise them without
//! patient data (`emails`).

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use crate::staff::Role;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;

macro_rules! notification_columns {
    () => {
        "id, organisation_id, staff_id, kind, patient_id, task_id, notice_id, handover_id, \
         created_at, read_at, emailed_at"
    };
}

text_enum! {
    pub enum NotificationKind {
        /// A new relay request or outreach task for the team.
        NewTask = "new_task",
        /// An outreach task nobody claimed in its claim window.
        TaskUnclaimed = "task_unclaimed",
        /// A task you hold (or your team member holds) is past due.
        TaskOverdue = "task_overdue",
        /// Every automatic step ran out without an acknowledgement: the coordinator has it now.
        ChainFailed = "chain_failed",
        /// A person closed a task in a way that needs the coordinator's decision (declined,
        /// admitted, moved).
        NeedsDecision = "needs_decision",
        NoShow = "no_show",
        LetterReturned = "letter_returned",
        ContactPointFailed = "contact_point_failed",
        HandoverOffered = "handover_offered",
        /// Your offer is still not accepted: you still hold it.
        HandoverPending = "handover_pending",
        HandoverAccepted = "handover_accepted",
        HandoverDeclined = "handover_declined",
    }
}

impl NotificationKind {
    /// How an e-mail names a count of these, in bokmål: "2 nye oppgaver til teamet".
    pub fn summary_nb(self, count: usize) -> String {
        let (one, many) = match self {
            Self::NewTask => ("ny oppgave til teamet", "nye oppgaver til teamet"),
            Self::TaskUnclaimed => ("oppgave som ingen har tatt", "oppgaver som ingen har tatt"),
            Self::TaskOverdue => ("oppgave over fristen", "oppgaver over fristen"),
            Self::ChainFailed => (
                "varsel der ingen kanal nådde fram",
                "varsler der ingen kanal nådde fram",
            ),
            Self::NeedsDecision => (
                "sak som trenger din avgjørelse",
                "saker som trenger din avgjørelse",
            ),
            Self::NoShow => ("pasient som ikke møtte", "pasienter som ikke møtte"),
            Self::LetterReturned => ("brev i retur", "brev i retur"),
            Self::ContactPointFailed => (
                "kontaktpunkt som ikke virker",
                "kontaktpunkter som ikke virker",
            ),
            Self::HandoverOffered => ("overlevering til deg", "overleveringer til deg"),
            Self::HandoverPending => (
                "overlevering som ikke er tatt imot ennå",
                "overleveringer som ikke er tatt imot ennå",
            ),
            Self::HandoverAccepted => ("overlevering tatt imot", "overleveringer tatt imot"),
            Self::HandoverDeclined => ("overlevering avslått", "overleveringer avslått"),
        };
        format!("{count} {}", if count == 1 { one } else { many })
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notification {
    pub id: Id,
    pub organisation_id: Id,
    /// Who is told; `None` when the organisation had nobody in the role (its admins see it).
    pub staff_id: Option<Id>,
    pub kind: NotificationKind,
    pub patient_id: Option<Id>,
    pub task_id: Option<Id>,
    pub notice_id: Option<Id>,
    pub handover_id: Option<Id>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    pub emailed_at: Option<DateTime<Utc>>,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, Default)]
pub struct About {
    pub patient_id: Option<Id>,
    pub task_id: Option<Id>,
    pub notice_id: Option<Id>,
    pub handover_id: Option<Id>,
}

pub async fn notify(
    tx: &mut Tx,
    organisation_id: Id,
    staff_id: Option<Id>,
    kind: NotificationKind,
    about: About,
    now: DateTime<Utc>,
) -> Result<Id> {
    let ids = notify_each(tx, organisation_id, &[staff_id], kind, about, now).await?;
    Ok(ids[0])
}

/// Rows sent in one INSERT: a team can be large (a clinic's coordinators grow with its
/// patients), and SQLite allows at most 32,766 bound values in a statement.
const ROWS_PER_INSERT: usize = 500;

/// The same notification for each of these recipients (`None`: the organisation as a whole),
/// a few hundred rows to a statement rather than one round trip per person.
async fn notify_each(
    tx: &mut Tx,
    organisation_id: Id,
    staff_ids: &[Option<Id>],
    kind: NotificationKind,
    about: About,
    now: DateTime<Utc>,
) -> Result<Vec<Id>> {
    let ids: Vec<Id> = staff_ids.iter().map(|_| Id::new(now)).collect();
    for (ids, staff_ids) in ids
        .chunks(ROWS_PER_INSERT)
        .zip(staff_ids.chunks(ROWS_PER_INSERT))
    {
        on_tx!(tx, |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO staff_notifications (id, organisation_id, staff_id, kind, patient_id, task_id, notice_id, handover_id, created_at) ",
            );
            insert.push_values(ids.iter().zip(staff_ids), |mut row, (id, staff_id)| {
                row.push_bind(*id)
                    .push_bind(organisation_id)
                    .push_bind(*staff_id)
                    .push_bind(kind)
                    .push_bind(about.patient_id)
                    .push_bind(about.task_id)
                    .push_bind(about.notice_id)
                    .push_bind(about.handover_id)
                    .push_bind(now);
            });
            insert.build().execute(c).await?.rows_affected()
        });
    }
    Ok(ids)
}

/// Tells the organisation's staff in these roles (only its team leads, with `leads_only`,
/// falling back to the whole role when it has no lead). Nobody in the role: the organisation.
pub async fn notify_team(
    tx: &mut Tx,
    organisation_id: Id,
    roles: &[Role],
    leads_only: bool,
    kind: NotificationKind,
    about: About,
    now: DateTime<Utc>,
) -> Result<usize> {
    let staff = crate::staff::list_staff(tx, organisation_id).await?;
    let in_role: Vec<_> = staff.iter().filter(|s| roles.contains(&s.role)).collect();
    let leads: Vec<_> = staff.iter().filter(|s| s.team_lead).collect();
    let recipients = if leads_only && !leads.is_empty() {
        leads
    } else {
        in_role
    };
    let recipients: Vec<Option<Id>> = if recipients.is_empty() {
        vec![None]
    } else {
        recipients.iter().map(|s| Some(s.id)).collect()
    };
    notify_each(tx, organisation_id, &recipients, kind, about, now).await?;
    Ok(recipients.len())
}

/// Tells the patient's coordinator; without one, the coordinators of `fallback_organisation`
/// (the clinic that owns the notice), and without those, that organisation.
pub async fn notify_coordinator(
    tx: &mut Tx,
    patient_id: Id,
    fallback_organisation: Id,
    kind: NotificationKind,
    about: About,
    now: DateTime<Utc>,
) -> Result<usize> {
    let about = About {
        patient_id: Some(patient_id),
        ..about
    };
    let coordinator: Option<Option<Id>> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT coordinator_id FROM patients WHERE id = $1")
            .bind(patient_id)
            .fetch_optional(c)
            .await?
    });
    if let Some(staff_id) = coordinator.flatten() {
        let staff = crate::staff::get_staff(tx, staff_id).await?;
        notify(tx, staff.organisation_id, Some(staff_id), kind, about, now).await?;
        return Ok(1);
    }
    notify_team(
        tx,
        fallback_organisation,
        &[Role::Coordinator],
        false,
        kind,
        about,
        now,
    )
    .await
}

/// A person's notifications, and their organisation's that name nobody, newest first.
pub async fn for_staff(
    tx: &mut Tx,
    staff_id: Id,
    organisation_id: Id,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<Notification>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM staff_notifications
             WHERE (staff_id = $1 OR (staff_id IS NULL AND organisation_id = $2))
               AND (NOT $3 OR read_at IS NULL)
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind(staff_id)
        .bind(organisation_id)
        .bind(unread_only)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}

/// An organisation's notifications (for its admins and for keys that act for nobody).
pub async fn for_organisation(
    tx: &mut Tx,
    organisation_id: Id,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<Notification>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM staff_notifications WHERE organisation_id = $1 AND (NOT $2 OR read_at IS NULL)
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(organisation_id)
        .bind(unread_only)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}

pub async fn mark_read(
    tx: &mut Tx,
    id: Id,
    organisation_id: Id,
    staff_id: Option<Id>,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_notifications SET read_at = $4
             WHERE id = $1 AND organisation_id = $2 AND (staff_id IS NULL OR staff_id = $3)
               AND read_at IS NULL",
        )
        .bind(id)
        .bind(organisation_id)
        .bind(staff_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    }) > 0)
}

/// Everything of one notice or patient, for the timeline and for tests.
pub async fn for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<Notification>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM staff_notifications WHERE patient_id = $1 ORDER BY created_at, id"
        ))
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// Not yet e-mailed notifications of staff who have an address and this digest setting,
/// oldest first.
pub async fn unmailed(tx: &mut Tx, digest: &str, limit: i64) -> Result<Vec<Notification>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT n.id, n.organisation_id, n.staff_id, n.kind, n.patient_id, n.task_id, n.notice_id,
                    n.handover_id, n.created_at, n.read_at, n.emailed_at
             FROM staff_notifications n JOIN staff s ON s.id = n.staff_id
             WHERE n.emailed_at IS NULL AND n.read_at IS NULL AND s.email IS NOT NULL
               AND s.email_digest = $1
             ORDER BY n.created_at, n.id LIMIT $2",
        )
        .bind(digest)
        .bind(limit)
        .fetch_all(c)
        .await?
    }))
}

/// Marks one notification as summarised in an e-mail (compare-and-set: once).
pub async fn mark_emailed(tx: &mut Tx, id: Id, now: DateTime<Utc>) -> Result<bool> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE staff_notifications SET emailed_at = $2 WHERE id = $1 AND emailed_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    }) > 0)
}
