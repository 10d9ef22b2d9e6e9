//! Tasks: work for people. A relay request for a low-threshold service, an outreach task for a
//! team, or a follow-up for the patient's coordinator (koordinator) — created by the escalation
//! engine when a human step is due, or when a no-show or a failed chain needs someone.
//!
//! One person holds a task at a time (claim / unclaim with a reason); every claim, attempt,
//! reminder and closure is a row in `task_events`. Only a person closes a task, with an outcome
//! from the closed list its kind allows; the scheduler decides what the outcome sets off.

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result, Violations};
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The columns of a [`Task`], for `concat!` into each query: sqlx takes only static SQL.
macro_rules! task_columns {
    () => {
        "id, kind, organisation_id, patient_id, notice_id, step_id, assignee_id, status, reason, \
         due_at, outcome, created_at, closed_at, priority, channel, message, claim_by, \
         claimed_at, closed_by, outcome_note, unclaimed_escalated_at, owner_reminded_at, \
         lead_reminded_at"
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

text_enum! {
    pub enum TaskPriority {
        Normal = "normal",
        /// No one claimed it in time, or the appointment is close.
        High = "high",
    }
}

text_enum! {
    /// How a relay request is carried out.
    pub enum ContactMode {
        /// Staff tell the patient when they come in.
        InPerson = "in_person",
        /// Staff call the patient (or the service's direct line the patient uses).
        Phone = "phone",
    }
}

text_enum! {
    /// How a person closed a task. Which ones a kind allows: [`TaskOutcome::allowed_for`].
    pub enum TaskOutcome {
        /// Relay: a staff member told the patient in person (an attested acknowledgement).
        ToldInPerson = "told_in_person",
        /// Relay, phone variant: they reached the patient by phone and told them.
        ToldByPhone = "told_by_phone",
        /// Relay: the patient did not come in while the request was open.
        NotSeen = "not_seen",
        /// Relay, phone variant: no one answered.
        NoAnswer = "no_answer",
        /// The patient did not want the message or the contact; a person decides what next.
        Declined = "declined",
        /// Outreach: the team met the patient and gave them the message.
        MetAndInformed = "met_and_informed",
        /// Outreach: looked and did not find them.
        NotFound = "not_found",
        /// Outreach: the patient lives elsewhere now; new whereabouts recorded.
        Moved = "moved",
        /// The contact point the task was made from is wrong.
        WrongContact = "wrong_contact",
        /// The patient is in hospital, prison or another institution.
        Admitted = "admitted",
        /// Coordinator: reached the patient and gave them the message.
        Reached = "reached",
        /// Coordinator: takes the notice over personally (they now hold it, by name).
        TakenOver = "taken_over",
    }
}

impl TaskOutcome {
    pub fn allowed_for(kind: TaskKind) -> &'static [TaskOutcome] {
        use TaskOutcome::*;
        match kind {
            TaskKind::Relay => &[ToldInPerson, ToldByPhone, NotSeen, NoAnswer, Declined],
            TaskKind::Outreach => &[
                MetAndInformed,
                NotFound,
                Declined,
                Moved,
                WrongContact,
                Admitted,
            ],
            TaskKind::CoordinatorFollowUp => &[Reached, TakenOver],
        }
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
    /// The one person who holds it: who claimed it, or the coordinator it was given to.
    pub assignee_id: Option<Id>,
    pub status: TaskStatus,
    /// Why the task exists, for the person who picks it up.
    pub reason: String,
    pub due_at: DateTime<Utc>,
    pub outcome: Option<TaskOutcome>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub priority: TaskPriority,
    pub channel: ContactMode,
    /// What to tell the patient: neutral text with the acknowledgement code.
    pub message: Option<String>,
    /// Unclaimed after this, the team lead and the coordinator are told.
    pub claim_by: Option<DateTime<Utc>>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Id>,
    pub outcome_note: Option<String>,
    pub unclaimed_escalated_at: Option<DateTime<Utc>>,
    pub owner_reminded_at: Option<DateTime<Utc>>,
    pub lead_reminded_at: Option<DateTime<Utc>>,
}

impl Task {
    pub fn is_open(&self) -> bool {
        matches!(self.status, TaskStatus::Open | TaskStatus::Claimed)
    }
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
    pub priority: TaskPriority,
    pub channel: ContactMode,
    pub message: Option<String>,
    pub claim_by: Option<DateTime<Utc>>,
}

/// Creates the task; a step gets at most one (a retried step finds its task already there).
/// Returns the id and whether it is new.
pub async fn create(tx: &mut Tx, new: NewTask, now: DateTime<Utc>) -> Result<(Id, bool)> {
    if let Some(step_id) = new.step_id {
        let existing: Option<Id> = on_tx!(tx, |c| {
            sqlx::query_scalar("SELECT id FROM tasks WHERE step_id = $1")
                .bind(step_id)
                .fetch_optional(c)
                .await?
        });
        if let Some(id) = existing {
            return Ok((id, false));
        }
    }
    let id = Id::new(now);
    // A coordinator's task is theirs from the start: it is held by a named person.
    let status = if new.assignee_id.is_some() {
        TaskStatus::Claimed
    } else {
        TaskStatus::Open
    };
    let claimed_at = new.assignee_id.map(|_| now);
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO tasks (id, kind, organisation_id, patient_id, notice_id, step_id, assignee_id, status, reason, due_at, created_at, priority, channel, message, claim_by, claimed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(id)
        .bind(new.kind)
        .bind(new.organisation_id)
        .bind(new.patient_id)
        .bind(new.notice_id)
        .bind(new.step_id)
        .bind(new.assignee_id)
        .bind(status)
        .bind(&new.reason)
        .bind(new.due_at)
        .bind(now)
        .bind(new.priority)
        .bind(new.channel)
        .bind(&new.message)
        .bind(new.claim_by)
        .bind(claimed_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok((id, true))
}

/// Closes the notice's open tasks as no longer needed. Returns the ones it cancelled.
pub async fn cancel_for_notice(
    tx: &mut Tx,
    notice_id: Id,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Id>> {
    let ids: Vec<Id> = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT id FROM tasks WHERE notice_id = $1 AND status IN ('open', 'claimed')",
        )
        .bind(notice_id)
        .fetch_all(c)
        .await?
    });
    for &id in &ids {
        cancel(tx, id, why, now).await?;
    }
    Ok(ids)
}

/// Cancels one open task (its step's window ended, its notice closed): no person's outcome.
pub async fn cancel(tx: &mut Tx, id: Id, why: &str, now: DateTime<Utc>) -> Result<bool> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE tasks SET status = 'cancelled', outcome_note = $2, closed_at = $3
             WHERE id = $1 AND status IN ('open', 'claimed')",
        )
        .bind(id)
        .bind(why)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    if changed > 0 {
        record_event(tx, id, EventKind::Cancelled, None, "system", now, |e| {
            e.note = Some(why.to_owned())
        })
        .await?;
    }
    Ok(changed > 0)
}

pub async fn get(tx: &mut Tx, id: Id) -> Result<Task> {
    on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("task"))
}

pub async fn for_step(tx: &mut Tx, step_id: Id) -> Result<Option<Task>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE step_id = $1"
        ))
        .bind(step_id)
        .fetch_optional(c)
        .await?
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

/// Which tasks a list shows.
#[derive(Debug, Clone)]
pub struct TaskFilter {
    pub organisation_id: Id,
    /// Only tasks this person holds.
    pub assignee_id: Option<Id>,
    pub kind: Option<TaskKind>,
    pub patient_id: Option<Id>,
    pub statuses: Vec<TaskStatus>,
    /// Only open tasks nobody holds.
    pub unclaimed_only: bool,
    /// Only tasks due before this instant.
    pub due_before: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// The organisation's tasks that pass the filter, soonest due first.
pub async fn list(tx: &mut Tx, f: &TaskFilter) -> Result<Vec<Task>> {
    let has = |s: TaskStatus| f.statuses.contains(&s);
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE organisation_id = $1
               AND ($2 IS NULL OR assignee_id = $2)
               AND ($3 IS NULL OR kind = $3)
               AND ($4 IS NULL OR patient_id = $4)
               AND ((status = 'open' AND $5) OR (status = 'claimed' AND $6)
                    OR (status = 'closed' AND $7) OR (status = 'cancelled' AND $8))
               AND (NOT $9 OR assignee_id IS NULL)
               AND ($10 IS NULL OR due_at < $10)
             ORDER BY due_at, id LIMIT $11"
        ))
        .bind(f.organisation_id)
        .bind(f.assignee_id)
        .bind(f.kind)
        .bind(f.patient_id)
        .bind(has(TaskStatus::Open))
        .bind(has(TaskStatus::Claimed))
        .bind(has(TaskStatus::Closed))
        .bind(has(TaskStatus::Cancelled))
        .bind(f.unclaimed_only)
        .bind(f.due_before)
        .bind(f.limit)
        .fetch_all(c)
        .await?
    }))
}

/// An organisation's open and claimed tasks, soonest due first.
pub async fn open_for_organisation(tx: &mut Tx, organisation_id: Id) -> Result<Vec<Task>> {
    list(
        tx,
        &TaskFilter {
            organisation_id,
            assignee_id: None,
            kind: None,
            patient_id: None,
            statuses: vec![TaskStatus::Open, TaskStatus::Claimed],
            unclaimed_only: false,
            due_before: None,
            limit: 1000,
        },
    )
    .await
}

/// Why a claim or close was refused, in words for the person who tried.
async fn refuse(tx: &mut Tx, id: Id, doing: &str) -> Error {
    match get(tx, id).await {
        Ok(t) if !t.is_open() => Error::Conflict(format!(
            "cannot {doing}: the task is already {} (reload to see its outcome)",
            t.status
        )),
        Ok(t) if t.assignee_id.is_none() => Error::Conflict(format!(
            "cannot {doing}: nobody holds this task; it is open for the team to claim"
        )),
        Ok(_) => Error::Conflict(format!(
            "cannot {doing}: another person holds this task; ask them to unclaim it or hand it over"
        )),
        Err(e) => e,
    }
}

/// `staff_id` takes an open task; nobody else can until they unclaim it or hand it over.
pub async fn claim(
    tx: &mut Tx,
    id: Id,
    staff_id: Id,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Task> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE tasks SET status = 'claimed', assignee_id = $2, claimed_at = $3
             WHERE id = $1 AND status = 'open'",
        )
        .bind(id)
        .bind(staff_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        let task = get(tx, id).await?;
        if task.status == TaskStatus::Claimed && task.assignee_id == Some(staff_id) {
            return Ok(task); // claiming twice is harmless
        }
        return Err(refuse(tx, id, "claim it").await);
    }
    record_event(
        tx,
        id,
        EventKind::Claimed,
        Some(staff_id),
        actor,
        now,
        |_| {},
    )
    .await?;
    get(tx, id).await
}

/// The holder lets go of a task, saying why; it is open for the team again.
pub async fn unclaim(
    tx: &mut Tx,
    id: Id,
    staff_id: Id,
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Task> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid(
            "reason",
            "say why you give the task back (1–500 characters), e.g. \"off sick this week\"",
        ));
    }
    // Back with the team, the task gets as long to be claimed as it first had (at least an
    // hour), and is chased again if nobody takes it: given back is not let go.
    let before = get(tx, id).await?;
    let claim_by = before
        .claim_by
        .map(|first| now + (first - before.created_at).max(chrono::TimeDelta::hours(1)));
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE tasks SET status = 'open', assignee_id = NULL, claimed_at = NULL,
                    owner_reminded_at = NULL, lead_reminded_at = NULL,
                    claim_by = $3, unclaimed_escalated_at = NULL
             WHERE id = $1 AND status = 'claimed' AND assignee_id = $2",
        )
        .bind(id)
        .bind(staff_id)
        .bind(claim_by)
        .execute(c)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Err(refuse(tx, id, "unclaim it").await);
    }
    record_event(
        tx,
        id,
        EventKind::Unclaimed,
        Some(staff_id),
        actor,
        now,
        |e| e.note = Some(reason.to_owned()),
    )
    .await?;
    get(tx, id).await
}

/// Gives an open task to a person (a hand-over accepted, or the team lead taking a task nobody
/// claimed), possibly in another organisation; `why` goes in its history.
pub async fn reassign(
    tx: &mut Tx,
    id: Id,
    organisation_id: Id,
    staff_id: Id,
    actor: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE tasks SET status = 'claimed', organisation_id = $2, assignee_id = $3,
                    claimed_at = $4, owner_reminded_at = NULL, lead_reminded_at = NULL
             WHERE id = $1 AND status IN ('open', 'claimed')",
        )
        .bind(id)
        .bind(organisation_id)
        .bind(staff_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Err(refuse(tx, id, "hand it over").await);
    }
    record_event(
        tx,
        id,
        EventKind::Claimed,
        Some(staff_id),
        actor,
        now,
        |e| e.note = Some(why.to_owned()),
    )
    .await
}

/// One try at the task: where, when, and what came of it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttempt {
    /// Where the team looked or what they did, e.g. "Kirkens Bymisjon, Skippergata".
    pub place: String,
    /// When; defaults to now.
    pub at: Option<DateTime<Utc>>,
    /// What came of it, e.g. "not there; staff saw him yesterday".
    pub result: String,
    pub note: Option<String>,
}

pub async fn record_attempt(
    tx: &mut Tx,
    id: Id,
    staff_id: Id,
    actor: &str,
    attempt: &NewAttempt,
    now: DateTime<Utc>,
) -> Result<TaskEvent> {
    let mut v = Violations::default();
    let text = |v: &mut Violations, field: &str, s: &str, what: &str| {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 500 {
            v.add(field, format!("say {what} (1–500 characters)"));
        }
    };
    text(&mut v, "place", &attempt.place, "where you looked");
    text(&mut v, "result", &attempt.result, "what came of it");
    if attempt.at.is_some_and(|at| at > now) {
        v.add(
            "at",
            "an attempt cannot be in the future; leave it out for now",
        );
    }
    if attempt
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > 2000)
    {
        v.add("note", "keep the note under 2,000 characters");
    }
    v.finish()?;
    let task = get(tx, id).await?;
    if !task.is_open() {
        return Err(refuse(tx, id, "record an attempt").await);
    }
    let event_id = record_event_id(
        tx,
        id,
        EventKind::Attempt,
        Some(staff_id),
        actor,
        now,
        |e| {
            e.place = Some(attempt.place.trim().to_owned());
            e.attempted_at = Some(attempt.at.unwrap_or(now));
            e.result = Some(attempt.result.trim().to_owned());
            e.note = attempt.note.clone();
        },
    )
    .await?;
    events(tx, id)
        .await?
        .into_iter()
        .find(|e| e.id == event_id)
        .ok_or(Error::NotFound("task event"))
}

/// A person closes an open task with an outcome. False if it was already closed.
pub async fn close(
    tx: &mut Tx,
    id: Id,
    staff_id: Id,
    actor: &str,
    outcome: TaskOutcome,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE tasks SET status = 'closed', outcome = $2, outcome_note = $3, closed_at = $4,
                    closed_by = $5, assignee_id = COALESCE(assignee_id, $5)
             WHERE id = $1 AND status IN ('open', 'claimed')",
        )
        .bind(id)
        .bind(outcome)
        .bind(note)
        .bind(now)
        .bind(staff_id)
        .execute(c)
        .await?
        .rows_affected()
    });
    if changed > 0 {
        record_event(tx, id, EventKind::Closed, Some(staff_id), actor, now, |e| {
            e.result = Some(outcome.as_str().to_owned());
            e.note = note.map(str::to_owned);
        })
        .await?;
    }
    Ok(changed > 0)
}

/// Open outreach tasks nobody claimed by their claim time, not yet escalated.
pub async fn unclaimed_past_claim_time(tx: &mut Tx, now: DateTime<Utc>) -> Result<Vec<Task>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE status = 'open' AND claim_by < $1
               AND unclaimed_escalated_at IS NULL ORDER BY claim_by LIMIT 200"
        ))
        .bind(now)
        .fetch_all(c)
        .await?
    }))
}

/// Claimed relay and outreach tasks past due whose owner (or, `lead`, the lead) has not been
/// reminded. Coordinators' follow-ups are theirs until they close them and are not chased.
pub async fn overdue(tx: &mut Tx, due_before: DateTime<Utc>, lead: bool) -> Result<Vec<Task>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE status = 'claimed' AND kind IN ('relay', 'outreach') AND due_at < $1
               AND ((NOT $2 AND owner_reminded_at IS NULL)
                    OR ($2 AND owner_reminded_at IS NOT NULL AND lead_reminded_at IS NULL))
             ORDER BY due_at LIMIT 200"
        ))
        .bind(due_before)
        .bind(lead)
        .fetch_all(c)
        .await?
    }))
}

/// Which chase a task has had: set once (compare-and-set, so two instances do not both chase).
#[derive(Debug, Clone, Copy)]
pub enum Chase {
    Unclaimed,
    Owner,
    Lead,
}

pub async fn mark_chased(tx: &mut Tx, id: Id, chase: Chase, now: DateTime<Utc>) -> Result<bool> {
    let changed = on_tx!(tx, |c| {
        let sql = match chase {
            Chase::Unclaimed => {
                "UPDATE tasks SET unclaimed_escalated_at = $2, priority = 'high'
                 WHERE id = $1 AND unclaimed_escalated_at IS NULL AND status = 'open'"
            }
            Chase::Owner => {
                "UPDATE tasks SET owner_reminded_at = $2 WHERE id = $1 AND owner_reminded_at IS NULL"
            }
            Chase::Lead => {
                "UPDATE tasks SET lead_reminded_at = $2, priority = 'high'
                 WHERE id = $1 AND lead_reminded_at IS NULL"
            }
        };
        sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
    });
    if changed > 0 {
        let kind = match chase {
            Chase::Unclaimed => EventKind::UnclaimedEscalated,
            Chase::Owner => EventKind::OwnerReminded,
            Chase::Lead => EventKind::LeadReminded,
        };
        record_event(tx, id, kind, None, "system", now, |_| {}).await?;
    }
    Ok(changed > 0)
}

text_enum! {
    pub enum EventKind {
        Claimed = "claimed",
        Unclaimed = "unclaimed",
        Attempt = "attempt",
        Closed = "closed",
        Cancelled = "cancelled",
        UnclaimedEscalated = "unclaimed_escalated",
        OwnerReminded = "owner_reminded",
        LeadReminded = "lead_reminded",
    }
}

/// One thing that happened to a task.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TaskEvent {
    pub id: Id,
    pub task_id: Id,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub staff_id: Option<Id>,
    pub actor: String,
    pub place: Option<String>,
    pub attempted_at: Option<DateTime<Utc>>,
    pub result: Option<String>,
    pub note: Option<String>,
}

async fn record_event(
    tx: &mut Tx,
    task_id: Id,
    kind: EventKind,
    staff_id: Option<Id>,
    actor: &str,
    now: DateTime<Utc>,
    fill: impl FnOnce(&mut TaskEvent),
) -> Result<()> {
    record_event_id(tx, task_id, kind, staff_id, actor, now, fill)
        .await
        .map(|_| ())
}

async fn record_event_id(
    tx: &mut Tx,
    task_id: Id,
    kind: EventKind,
    staff_id: Option<Id>,
    actor: &str,
    now: DateTime<Utc>,
    fill: impl FnOnce(&mut TaskEvent),
) -> Result<Id> {
    let mut e = TaskEvent {
        id: Id::new(now),
        task_id,
        at: now,
        kind,
        staff_id,
        actor: actor.to_owned(),
        place: None,
        attempted_at: None,
        result: None,
        note: None,
    };
    fill(&mut e);
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO task_events (id, task_id, at, kind, staff_id, actor, place, attempted_at, result, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.id)
        .bind(e.task_id)
        .bind(e.at)
        .bind(e.kind)
        .bind(e.staff_id)
        .bind(&e.actor)
        .bind(&e.place)
        .bind(e.attempted_at)
        .bind(&e.result)
        .bind(&e.note)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(e.id)
}

pub async fn events(tx: &mut Tx, task_id: Id) -> Result<Vec<TaskEvent>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, task_id, at, kind, staff_id, actor, place, attempted_at, result, note
             FROM task_events WHERE task_id = $1 ORDER BY at, id",
        )
        .bind(task_id)
        .fetch_all(c)
        .await?
    }))
}
