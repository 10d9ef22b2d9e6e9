//! The steps of notices' contact plans: one row per step, with its channel, the contact point it
//! uses, its state, when it is due and when its acknowledgement window ends, and a lease so that
//! several workers (or instances) never run the same step twice.
//!
//! Leasing: PostgreSQL locks candidate rows with `FOR UPDATE SKIP LOCKED`; SQLite has one writer
//! at a time (`BEGIN IMMEDIATE`), so a compare-and-set `UPDATE … RETURNING` is enough. Both repeat
//! the lease check in the outer `WHERE`. `lease_until` is Unix milliseconds and 0 when free.

use crate::contact_points::{ContactPoint, contact_point_columns};
use crate::db::{Tx, TxInner, on_tx};
use crate::notices::{self, dispatch_facts_query};
use sqlx::FromRow;

/// The columns of a [`Step`], for `concat!` into each query: sqlx takes only static SQL.
macro_rules! step_columns {
    () => {
        "id, notice_id, position, channel, contact_point_id, status, reason, due_at, window_ends_at, body, \
         attempts, lease_owner, lease_until, idempotency_key, provider_ref, sent_at, finished_at, created_at, \
         updated_at"
    };
}
use crate::error::{Error, Result};
use crate::id::Id;
use crate::text_enum::text_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;

text_enum! {
    pub enum ChannelKind {
        /// SMS to a phone the patient gave.
        Sms = "sms",
        /// A printed letter to a verified address.
        Letter = "letter",
        /// A message passed on by a low-threshold service.
        Relay = "relay",
        /// An outreach team goes to find the person.
        Outreach = "outreach",
        /// The patient's coordinator takes over (when no relay or outreach step could be planned).
        Coordinator = "coordinator",
        /// An SMS to a next of kin the patient consented to: "ask them to call us", never
        /// appointment details or the code. Only in a chain whose policy names it.
        NextOfKin = "next_of_kin",
    }
}

impl ChannelKind {
    /// The default chain, cheapest and fastest first, ending with people.
    pub const DEFAULT_CHAIN: [ChannelKind; 4] = [
        ChannelKind::Sms,
        ChannelKind::Letter,
        ChannelKind::Relay,
        ChannelKind::Outreach,
    ];

    /// Outreach and the coordinator have no window: a person holds the task until they close
    /// it with an outcome.
    pub fn held_by_a_person(self) -> bool {
        matches!(self, ChannelKind::Outreach | ChannelKind::Coordinator)
    }

    /// Only people close a human step; automatic channels end by an ack, a failure or a timeout.
    pub fn is_human(self) -> bool {
        matches!(
            self,
            ChannelKind::Relay | ChannelKind::Outreach | ChannelKind::Coordinator
        )
    }
}

text_enum! {
    pub enum StepStatus {
        /// In the plan, not yet due.
        Planned = "planned",
        /// Due; waiting for a worker (or, for a letter, for the print batch).
        Queued = "queued",
        /// A worker holds the lease and is calling the channel.
        Sending = "sending",
        /// Handed to the provider or to people; waiting for an acknowledgement.
        Sent = "sent",
        /// The provider reports it reached the phone or address.
        Delivered = "delivered",
        /// It cannot reach the patient (undeliverable, returned, not seen): escalates at once.
        Failed = "failed",
        /// The patient acknowledged through this step.
        Acknowledged = "acknowledged",
        /// Its window ended without an acknowledgement: the next step takes over.
        Expired = "expired",
        /// Never run; `reason` says why (no contact point, too late, …).
        Skipped = "skipped",
        /// Not needed any more: the notice was acknowledged or superseded first.
        Cancelled = "cancelled",
    }
}

impl StepStatus {
    /// How far along a step is. State only moves forward: a late or repeated report that would
    /// move a step back is ignored.
    pub fn rank(self) -> u8 {
        match self {
            StepStatus::Planned => 0,
            StepStatus::Queued => 1,
            StepStatus::Sending => 2,
            StepStatus::Sent => 3,
            StepStatus::Delivered => 4,
            StepStatus::Failed
            | StepStatus::Acknowledged
            | StepStatus::Expired
            | StepStatus::Skipped
            | StepStatus::Cancelled => 5,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() == 5
    }

    /// Running: handed on and waiting for an acknowledgement within its window.
    pub fn is_waiting(self) -> bool {
        matches!(self, StepStatus::Sent | StepStatus::Delivered)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Step {
    pub id: Id,
    pub notice_id: Id,
    pub position: i32,
    pub channel: ChannelKind,
    pub contact_point_id: Option<Id>,
    pub status: StepStatus,
    /// Why it was skipped or failed, e.g. `too_late`, `no_contact_point`, `undeliverable`.
    pub reason: Option<String>,
    /// When it may start (for a planned step: when it would start if every earlier step ran
    /// its full window).
    pub due_at: Option<DateTime<Utc>>,
    /// When the wait for an acknowledgement ends and the next step takes over.
    pub window_ends_at: Option<DateTime<Utc>>,
    /// The rendered message; holds the ack code, so it is never logged.
    #[serde(skip)]
    pub body: Option<String>,
    pub attempts: i32,
    #[serde(skip)]
    pub lease_owner: Option<String>,
    #[serde(skip)]
    pub lease_until: i64,
    /// Travels to the provider so a retried send never reaches the patient twice.
    pub idempotency_key: Option<String>,
    pub provider_ref: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StepEvent {
    pub step_id: Id,
    pub at: DateTime<Utc>,
    pub status: StepStatus,
    pub detail: Option<String>,
}

/// A step as planned, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub channel: ChannelKind,
    pub contact_point_id: Option<Id>,
    pub status: StepStatus,
    pub reason: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub window_ends_at: Option<DateTime<Utc>>,
    pub body: Option<String>,
}

/// Stores a notice's plan. A step that starts out queued (the first to run) was planned and
/// queued at the same instant, and its history says so: a `planned` event, then its `queued`.
pub async fn insert_plan(
    tx: &mut Tx,
    notice_id: Id,
    steps: &[NewStep],
    now: DateTime<Utc>,
) -> Result<Vec<Id>> {
    insert_steps(tx, notice_id, 0, steps, true, now).await
}

/// Stores steps at positions `first_position`, `first_position + 1`, … with their first events
/// (with `planned_first`, a queued step's `planned` event before its `queued` one).
async fn insert_steps(
    tx: &mut Tx,
    notice_id: Id,
    first_position: i32,
    steps: &[NewStep],
    planned_first: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Id>> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    // (step id, position, step)
    let rows: Vec<(Id, i32, &NewStep)> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let position = i32::try_from(i)
                .ok()
                .and_then(|i| first_position.checked_add(i))
                .unwrap_or(i32::MAX);
            (Id::new(now), position, s)
        })
        .collect();
    // (event id, step id, status, detail)
    let mut events: Vec<(Id, Id, StepStatus, Option<&str>)> = Vec::with_capacity(rows.len() + 1);
    for (id, _, s) in &rows {
        if planned_first && s.status == StepStatus::Queued {
            // As if stored planned, then moved to the queue (which gives no detail).
            events.push((Id::new(now), *id, StepStatus::Planned, s.reason.as_deref()));
            events.push((Id::new(now), *id, StepStatus::Queued, None));
        } else {
            events.push((Id::new(now), *id, s.status, s.reason.as_deref()));
        }
    }
    // All steps in one statement and their first events in another, not a round trip per step.
    macro_rules! steps_insert {
        () => {{
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO steps (id, notice_id, position, channel, contact_point_id, status, reason,
                                    due_at, window_ends_at, body, created_at, updated_at) ",
            );
            q.push_values(&rows, |mut row, (id, position, s)| {
                row.push_bind(*id)
                    .push_bind(notice_id)
                    .push_bind(*position)
                    .push_bind(s.channel)
                    .push_bind(s.contact_point_id)
                    .push_bind(s.status)
                    .push_bind(&s.reason)
                    .push_bind(s.due_at)
                    .push_bind(s.window_ends_at)
                    .push_bind(&s.body)
                    .push_bind(now)
                    .push_bind(now);
            });
            q
        }};
    }
    macro_rules! push_events {
        ($q:expr) => {
            $q.push("INSERT INTO step_events (id, step_id, at, status, detail) ");
            $q.push_values(&events, |mut row, (event_id, step_id, status, detail)| {
                row.push_bind(*event_id)
                    .push_bind(*step_id)
                    .push_bind(now)
                    .push_bind(*status)
                    .push_bind(*detail);
            });
        };
    }
    match &mut tx.inner {
        TxInner::Postgres(t) => {
            steps_insert!().build().execute(&mut **t).await?;
            let mut events = sqlx::QueryBuilder::new("");
            push_events!(events);
            events.build().execute(&mut **t).await?;
        }
        // SQLite runs both statements in one round trip (as in `transition`).
        TxInner::Sqlite(t) => {
            let mut both = steps_insert!();
            both.push("; ");
            push_events!(both);
            both.build().execute(&mut **t).await?;
        }
    }
    Ok(rows.into_iter().map(|(id, ..)| id).collect())
}

pub async fn record_event(
    tx: &mut Tx,
    step_id: Id,
    status: StepStatus,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO step_events (id, step_id, at, status, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Id::new(now))
        .bind(step_id)
        .bind(now)
        .bind(status)
        .bind(detail)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

pub async fn for_notice(tx: &mut Tx, notice_id: Id) -> Result<Vec<Step>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE notice_id = $1 ORDER BY position"
        ))
        .bind(notice_id)
        .fetch_all(c)
        .await?
    }))
}

pub async fn get(tx: &mut Tx, id: Id) -> Result<Step> {
    on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("step"))
}

pub async fn by_provider_ref(tx: &mut Tx, provider_ref: &str) -> Result<Option<Step>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE provider_ref = $1"
        ))
        .bind(provider_ref)
        .fetch_optional(c)
        .await?
    }))
}

/// What happened to the notice's steps, in order: by time, then by position in the plan, then
/// by how far along (ids within one instant are not ordered).
pub async fn events_for_notice(tx: &mut Tx, notice_id: Id) -> Result<Vec<StepEvent>> {
    let positions: Vec<(Id, i32)> = on_tx!(tx, |c| {
        sqlx::query_as("SELECT id, position FROM steps WHERE notice_id = $1")
            .bind(notice_id)
            .fetch_all(c)
            .await?
    });
    let position = |id: Id| {
        positions
            .iter()
            .find(|(s, _)| *s == id)
            .map_or(0, |(_, p)| *p)
    };
    let mut events: Vec<StepEvent> = on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT e.step_id, e.at, e.status, e.detail FROM step_events e JOIN steps s ON s.id = e.step_id
             WHERE s.notice_id = $1",
        )
        .bind(notice_id)
        .fetch_all(c)
        .await?
    });
    events.sort_by_key(|e| (e.at, position(e.step_id), e.status.rank()));
    Ok(events)
}

/// Leases up to `limit` steps of the given channels that are due (`queued` with `due_at` passed,
/// or `sending` under an expired lease) and marks them `sending`. The lease lasts until
/// `lease_until_ms`; a worker that dies leaves it to expire, and the step is leased again with
/// the same attempt number — so the same idempotency key reaches the provider.
///
/// The limit is written into the statement, not bound (here and in [`windows_ended`]): SQLite
/// prepares a statement again every time its LIMIT parameter is bound, since the value may
/// change the plan, and the engine runs both every round. With the limit in the text, the
/// cached statement is reused; the limit is a number, so nothing can be injected.
pub async fn lease_due(
    tx: &mut Tx,
    owner: &str,
    channels: &[ChannelKind],
    now: DateTime<Utc>,
    lease_until_ms: i64,
    limit: i64,
) -> Result<Vec<Step>> {
    let now_ms = now.timestamp_millis();
    // All channels in one statement: the engine asks every round, so a statement per channel
    // would multiply the cost of an idle round by the number of channels.
    let names: Vec<String> = channels.iter().map(|c| c.as_str().to_owned()).collect();
    let leased: Vec<Step> = match &mut tx.inner {
        TxInner::Postgres(t) => {
            sqlx::query_as(AssertSqlSafe(format!(
                concat!("UPDATE steps SET lease_owner = $1, lease_until = $2, status = 'sending', updated_at = $3
                 WHERE id IN (
                     SELECT id FROM steps
                     WHERE channel = ANY($4) AND status IN ('queued', 'sending') AND due_at <= $3 AND lease_until < $5
                     ORDER BY due_at, id LIMIT {limit}
                     FOR UPDATE SKIP LOCKED)
                   AND lease_until < $5
                 RETURNING ", step_columns!()),
                limit = limit
            )))
            .bind(owner)
            .bind(lease_until_ms)
            .bind(now)
            .bind(&names)
            .bind(now_ms)
            .fetch_all(&mut **t)
            .await?
        }
        TxInner::Sqlite(t) => {
            sqlx::query_as(AssertSqlSafe(format!(
                concat!("UPDATE steps SET lease_owner = $1, lease_until = $2, status = 'sending', updated_at = $3
                 WHERE id IN (
                     SELECT id FROM steps
                     WHERE channel IN (SELECT value FROM json_each($4)) AND status IN ('queued', 'sending') AND due_at <= $3 AND lease_until < $5
                     ORDER BY due_at, id LIMIT {limit})
                   AND lease_until < $5
                 RETURNING ", step_columns!()),
                limit = limit
            )))
            .bind(owner)
            .bind(lease_until_ms)
            .bind(now)
            .bind(serde_json::Value::from(names).to_string())
            .bind(now_ms)
            .fetch_all(&mut **t)
            .await?
        }
    };
    Ok(leased)
}

/// Moves a step to `to` if it is still in one of `from` (compare-and-set: a late or repeated
/// report finds the step already moved on and changes nothing). Releases any lease. Returns
/// whether it moved.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    tx: &mut Tx,
    id: Id,
    from: &[StepStatus],
    to: StepStatus,
    reason: Option<&str>,
    changes: StepChanges,
    now: DateTime<Utc>,
) -> Result<bool> {
    // Compare-and-set in one statement: the UPDATE only matches while the step is in a state we
    // may move from (PostgreSQL re-checks the condition on the newest row version after waiting
    // for a concurrent writer's lock, so a report and a send racing cannot both move it). A
    // step never moves back to an earlier state unless the new one ends it.
    let allowed: Vec<&str> = from
        .iter()
        .filter(|s| to.is_final() || s.rank() <= to.rank())
        .map(|s| s.as_str())
        .collect();
    if allowed.is_empty() {
        return Ok(false);
    }
    let finished_at = to.is_final().then_some(now);
    // The move and its event row go in one round trip to the database: this is the engine's
    // most frequent write. PostgreSQL inserts the event from the UPDATE's RETURNING; SQLite,
    // which has no UPDATE inside WITH, runs two statements, the INSERT only if the UPDATE
    // changed a row.
    macro_rules! cas {
        ($sql:expr, $allowed:expr, $c:expr) => {
            sqlx::query($sql)
                .bind(id)
                .bind($allowed)
                .bind(to)
                .bind(reason)
                .bind(changes.due_at)
                .bind(changes.window_ends_at)
                .bind(&changes.idempotency_key)
                .bind(&changes.provider_ref)
                .bind(changes.sent_at)
                .bind(finished_at)
                .bind(now)
                .bind(Id::new(now))
                .execute($c)
                .await?
                .rows_affected()
        };
    }
    macro_rules! set {
        () => {
            "UPDATE steps SET status = $3, reason = COALESCE($4, reason), due_at = COALESCE($5, due_at),
                    window_ends_at = COALESCE($6, window_ends_at), idempotency_key = COALESCE($7, idempotency_key),
                    provider_ref = COALESCE($8, provider_ref), sent_at = COALESCE($9, sent_at),
                    finished_at = COALESCE($10, finished_at),
                    lease_owner = NULL, lease_until = 0, updated_at = $11"
        };
    }
    let changed = match &mut tx.inner {
        TxInner::Postgres(t) => cas!(
            concat!(
                "WITH moved AS (",
                set!(),
                " WHERE id = $1 AND status = ANY($2) RETURNING id)
                 INSERT INTO step_events (id, step_id, at, status, detail)
                 SELECT $12, id, $11, $3, $4 FROM moved"
            ),
            &allowed,
            &mut **t
        ),
        // SQLite rewrites every index on a column its SET clause names, whether the value
        // changes or not (PostgreSQL compares values): so here the statement names only the
        // columns this move sets. A lease is held only in `sending`, so only a move from
        // `sending` has one to release. Each variant is prepared once and cached.
        TxInner::Sqlite(t) => {
            let mut sql =
                String::from("UPDATE steps SET status = $3, reason = COALESCE($4, reason)");
            for (set, column) in [
                (changes.due_at.is_some(), ", due_at = $5"),
                (changes.window_ends_at.is_some(), ", window_ends_at = $6"),
                (changes.idempotency_key.is_some(), ", idempotency_key = $7"),
                (changes.provider_ref.is_some(), ", provider_ref = $8"),
                (
                    allowed.contains(&StepStatus::Sending.as_str()),
                    ", lease_owner = NULL, lease_until = 0",
                ),
            ] {
                if set {
                    sql.push_str(column);
                }
            }
            sql.push_str(
                ", sent_at = COALESCE($9, sent_at), finished_at = COALESCE($10, finished_at),
                   updated_at = $11
                 WHERE id = $1 AND status IN (SELECT value FROM json_each($2));
                 INSERT INTO step_events (id, step_id, at, status, detail)
                 SELECT $12, $1, $11, $3, $4 WHERE changes() = 1",
            );
            cas!(
                AssertSqlSafe(sql),
                serde_json::Value::from(allowed).to_string(),
                &mut **t
            )
        }
    };
    // PostgreSQL counts the event row; SQLite counts the step and the event.
    Ok(changed > 0)
}

/// Fields a transition may set (left `None`, they keep their value).
#[derive(Debug, Clone, Default)]
pub struct StepChanges {
    pub due_at: Option<DateTime<Utc>>,
    pub window_ends_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub provider_ref: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Gives a lease back after a transient error: the step is queued again for `retry_at`, as the
/// next attempt (with a new idempotency key, since the provider refused the last one).
pub async fn release_for_retry(
    tx: &mut Tx,
    id: Id,
    retry_at: DateTime<Utc>,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE steps SET status = 'queued', due_at = $2, attempts = attempts + 1, lease_owner = NULL,
                    lease_until = 0, updated_at = $3
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(retry_at)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    record_event(tx, id, StepStatus::Queued, Some(detail), now).await
}

/// Steps waiting for an acknowledgement whose window has ended.
pub async fn windows_ended(tx: &mut Tx, now: DateTime<Utc>, limit: i64) -> Result<Vec<Step>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(AssertSqlSafe(format!(
            concat!("SELECT ", step_columns!(), " FROM steps WHERE status IN ('sent', 'delivered', 'queued') AND window_ends_at <= $1 ORDER BY window_ends_at, id LIMIT {limit}"),
            limit = limit
        )))
        .bind(now)
        .fetch_all(c)
        .await?
    }))
}

/// Steps whose lease expired long ago or that are overdue by `overdue_ms`: the auditor reports them.
pub async fn stuck(tx: &mut Tx, now: DateTime<Utc>, overdue: DateTime<Utc>) -> Result<i64> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM steps
             WHERE (status IN ('planned', 'queued') AND due_at <= $2)
                OR (status = 'sending' AND lease_until < $1 AND channel <> 'letter')",
        )
        .bind(now.timestamp_millis())
        .bind(overdue)
        .fetch_one(c)
        .await?
    }))
}

/// Cancels every step of the notice that has not finished (the notice was acknowledged or
/// superseded). Returns the ids of the cancelled steps.
pub async fn cancel_remaining(
    tx: &mut Tx,
    notice_id: Id,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Id>> {
    // All of them in one compare-and-set (as `transition` does for one step: only steps still
    // in a state that may end so are moved), then their events in one INSERT: an
    // acknowledgement sets aside up to a whole chain, and this was a round trip per step.
    let mut moved: Vec<(Id, i32)> = on_tx!(tx, |c| {
        sqlx::query_as(
            "UPDATE steps SET status = 'cancelled', reason = $2, finished_at = $3,
                    lease_owner = NULL, lease_until = 0, updated_at = $3
             WHERE notice_id = $1 AND status IN ('planned', 'queued', 'sending', 'sent', 'delivered')
             RETURNING id, position",
        )
        .bind(notice_id)
        .bind(reason)
        .bind(now)
        .fetch_all(c)
        .await?
    });
    if moved.is_empty() {
        return Ok(Vec::new());
    }
    moved.sort_by_key(|(_, position)| *position);
    on_tx!(tx, |c| {
        let mut events =
            sqlx::QueryBuilder::new("INSERT INTO step_events (id, step_id, at, status, detail) ");
        events.push_values(&moved, |mut row, (id, _)| {
            row.push_bind(Id::new(now))
                .push_bind(*id)
                .push_bind(now)
                .push_bind(StepStatus::Cancelled)
                .push_bind(reason);
        });
        events.build().execute(c).await?.rows_affected()
    });
    Ok(moved.into_iter().map(|(id, _)| id).collect())
}

/// Adds a step at the end of the notice's plan (the coordinator, when the chain ran out).
pub async fn append(tx: &mut Tx, notice_id: Id, step: &NewStep, now: DateTime<Utc>) -> Result<Id> {
    let next: Option<i32> = on_tx!(tx, |c| {
        sqlx::query_scalar("SELECT MAX(position) + 1 FROM steps WHERE notice_id = $1")
            .bind(notice_id)
            .fetch_one(c)
            .await?
    });
    let ids = insert_steps(
        tx,
        notice_id,
        next.unwrap_or(0),
        std::slice::from_ref(step),
        false,
        now,
    )
    .await?;
    Ok(ids[0])
}

/// The step whose message carried this idempotency key (a provider's delivery report names it).
pub async fn by_idempotency_key(tx: &mut Tx, key: &str) -> Result<Option<Step>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE idempotency_key = $1"
        ))
        .bind(key)
        .fetch_optional(c)
        .await?
    }))
}

/// Notes the key a step is about to be sent with and reads what sending it needs: the
/// [`notices::DispatchFacts`] and the step's contact point, if it has one. The key is stored
/// before the provider is called, so a delivery report that overtakes our own bookkeeping
/// still finds its step. On SQLite all of it is one round trip, its statements' rows read in
/// order (the engine does this for every send).
pub async fn prepare_dispatch(
    tx: &mut Tx,
    step: &Step,
    key: &str,
) -> Result<(notices::DispatchFacts, Option<ContactPoint>)> {
    macro_rules! note_key {
        () => {
            "UPDATE steps SET idempotency_key = $2 WHERE id = $1"
        };
    }
    macro_rules! contact_point {
        ($param:literal) => {
            concat!(
                "SELECT ",
                contact_point_columns!(),
                " FROM contact_points WHERE id = ",
                $param
            )
        };
    }
    match &mut tx.inner {
        TxInner::Postgres(t) => {
            sqlx::query(note_key!())
                .bind(step.id)
                .bind(key)
                .execute(&mut **t)
                .await?;
            let facts = sqlx::query_as(concat!(dispatch_facts_query!(), "WHERE n.id = $1"))
                .bind(step.notice_id)
                .fetch_optional(&mut **t)
                .await?
                .ok_or(Error::NotFound("notice"))?;
            let cp = match step.contact_point_id {
                Some(id) => Some(
                    sqlx::query_as(contact_point!("$1"))
                        .bind(id)
                        .fetch_optional(&mut **t)
                        .await?
                        .ok_or(Error::NotFound("contact point"))?,
                ),
                None => None,
            };
            Ok((facts, cp))
        }
        TxInner::Sqlite(t) => {
            let query = match step.contact_point_id {
                Some(_) => concat!(
                    note_key!(),
                    "; ",
                    dispatch_facts_query!(),
                    "WHERE n.id = $3; ",
                    contact_point!("$4")
                ),
                None => concat!(
                    note_key!(),
                    "; ",
                    dispatch_facts_query!(),
                    "WHERE n.id = $3"
                ),
            };
            let rows = sqlx::query(query)
                .bind(step.id)
                .bind(key)
                .bind(step.notice_id)
                .bind(step.contact_point_id)
                .fetch_all(&mut **t)
                .await?;
            let facts = rows.first().ok_or(Error::NotFound("notice"))?;
            let facts = notices::DispatchFacts::from_row(facts)?;
            let cp = match step.contact_point_id {
                Some(_) => Some(ContactPoint::from_row(
                    rows.get(1).ok_or(Error::NotFound("contact point"))?,
                )?),
                None => None,
            };
            Ok((facts, cp))
        }
    }
}

/// Records when and through what a step went out, for a step a delivery report has already
/// moved past `sending` (the report overtook our own bookkeeping). The status stays.
pub async fn record_sent_after_report(
    tx: &mut Tx,
    id: Id,
    changes: &StepChanges,
    now: DateTime<Utc>,
) -> Result<bool> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE steps SET window_ends_at = COALESCE($2, window_ends_at), provider_ref = COALESCE($3, provider_ref),
                    sent_at = COALESCE($4, sent_at), updated_at = $5
             WHERE id = $1 AND status = 'delivered' AND sent_at IS NULL",
        )
        .bind(id)
        .bind(changes.window_ends_at)
        .bind(&changes.provider_ref)
        .bind(changes.sent_at)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    if moved == 1 {
        record_event(
            tx,
            id,
            StepStatus::Sent,
            Some("recorded after its delivery report"),
            now,
        )
        .await?;
    }
    Ok(moved == 1)
}

/// Letter steps waiting for the print run whose time has come, oldest first.
pub async fn due_letters(tx: &mut Tx, now: DateTime<Utc>) -> Result<Vec<Step>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            concat!("SELECT ", step_columns!(), " FROM steps WHERE channel = 'letter' AND status = 'queued' AND due_at <= $1 ORDER BY due_at, id"),
        )
        .bind(now)
        .fetch_all(c)
        .await?
    }))
}
