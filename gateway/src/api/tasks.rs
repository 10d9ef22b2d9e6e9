//! Work for people: the task lists of each role (`mine`, `team`, `org`), one task with its
//! history, and what people do with a task — claim, unclaim with a reason, record an attempt,
//! close with an outcome. Also what staff are told (notifications) and the e-mails that told
//! them (for admins).
//!
//! A low-threshold service sees its relay requests and only what it needs to pass the message
//! on: who (name, birth year, the description the patient agreed to), what to say, by when.
//! An outreach team sees its outreach tasks; coordinators, clinics and admins their
//! organisation's tasks. Every read of a task is a read of patient data and is audited.

use super::{Items, audit, roles};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::{ApiJson, ApiQuery, Ids};
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::routing;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use kontaktvei_scheduler::human::Closing;
use kontaktvei_store::contact_points::{self, ContactKind, NewContactPoint};
use kontaktvei_store::emails::{self, EmailStatus, StaffEmail};
use kontaktvei_store::notifications::{self, Notification};
use kontaktvei_store::staff::{self, Role};
use kontaktvei_store::tasks::{
    self, ContactMode, NewAttempt, Task, TaskEvent, TaskFilter, TaskKind, TaskOutcome,
    TaskPriority, TaskStatus,
};
use kontaktvei_store::{Id, Tx, appointments, notices, organisations, patients};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/tasks", routing::get(list))
        .route("/tasks/{id}", routing::get(get))
        .route("/tasks/{id}/claim", routing::post(claim))
        .route("/tasks/{id}/unclaim", routing::post(unclaim))
        .route("/tasks/{id}/attempts", routing::post(attempt))
        .route("/tasks/{id}/close", routing::post(close))
        .route("/notifications", routing::get(list_notifications))
        .route("/notifications/{id}/read", routing::post(read_notification))
        .route("/emails", routing::get(list_emails))
}

/// The kinds of task a role works on; `None`: every kind of its organisation.
fn kinds_for(role: Role) -> Result<Option<TaskKind>, ApiError> {
    match role {
        Role::Relay => Ok(Some(TaskKind::Relay)),
        Role::Outreach => Ok(Some(TaskKind::Outreach)),
        Role::Admin | Role::Clinic | Role::Coordinator => Ok(None),
        Role::Print => Err(ApiError::Forbidden(
            "the print room works on letters, not on tasks about patients".into(),
        )),
    }
}

/// The task if the caller may see it; otherwise 404, so its existence does not leak.
async fn visible_task(tx: &mut Tx, caller: &Caller, id: Id) -> ApiResult<Task> {
    let task = tasks::get(tx, id).await?;
    let kind = kinds_for(caller.role)?;
    if task.organisation_id != caller.organisation_id || kind.is_some_and(|k| k != task.kind) {
        return Err(ApiError::NotFound("task"));
    }
    Ok(task)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonRef {
    pub id: Id,
    pub name: String,
}

/// Who the task is about: enough to recognise them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientRef {
    pub id: Id,
    pub name: String,
    pub birth_year: i32,
    /// What the patient agreed staff may know to find them, e.g. "usually in on Tuesdays".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppointmentRef {
    pub starts_at: DateTime<Utc>,
    pub place: String,
}

/// A task as its role sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    pub id: Id,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub priority: TaskPriority,
    /// in_person, or phone (call the patient or the service's line they use).
    pub channel: ContactMode,
    pub reason: String,
    pub due_at: DateTime<Utc>,
    /// Not claimed by then: the team lead and the coordinator are told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_by: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub patient: PatientRef,
    /// What to tell the patient (with their acknowledgement code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The number to call, for a relay request by phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Outreach and coordinator: where the patient was last known to be, and the contact notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub whereabouts: Vec<String>,
    /// Not shown to a low-threshold service: it passes the message on, no more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment: Option<AppointmentRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<PersonRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TaskOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<PersonRef>,
    /// The outcomes this task may be closed with.
    pub outcomes: Vec<TaskOutcome>,
    /// Claims, attempts, reminders, closure (on `GET /tasks/{id}` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<TaskEvent>,
}

async fn person_ref(tx: &mut Tx, id: Option<Id>) -> ApiResult<Option<PersonRef>> {
    Ok(match id {
        Some(id) => {
            let s = staff::get_staff(tx, id).await?;
            Some(PersonRef {
                id: s.id,
                name: s.name,
            })
        }
        None => None,
    })
}

pub(crate) async fn view(tx: &mut Tx, task: Task, with_history: bool) -> ApiResult<TaskView> {
    let patient = patients::get(tx, task.patient_id).await?;
    let points = contact_points::list(tx, task.patient_id).await?;
    let now_live = |c: &&contact_points::ContactPoint| {
        matches!(
            c.status,
            contact_points::ContactStatus::Active | contact_points::ContactStatus::Confirmed
        )
    };
    let step_cp = match task.step_id {
        Some(id) => kontaktvei_store::steps::get(tx, id).await?.contact_point_id,
        None => None,
    };
    let via = points.iter().find(|c| Some(c.id) == step_cp);
    let is_relay = task.kind == TaskKind::Relay;
    let description = if is_relay {
        via.and_then(|c| c.note.clone())
    } else {
        Some(patient.contact_notes.clone()).filter(|n| !n.is_empty())
    };
    let mut whereabouts = Vec::new();
    if !is_relay {
        for c in points.iter().filter(now_live) {
            let line = match c.kind {
                ContactKind::Postal => c.address.as_ref().map(|a| {
                    format!(
                        "address: {}, {} {}",
                        a.lines.join(", "),
                        a.postal_code,
                        a.place
                    )
                }),
                ContactKind::Relay | ContactKind::Outreach => match c.organisation_id {
                    Some(org) => {
                        let name = organisations::get(tx, org).await?.name;
                        Some(match &c.note {
                            Some(n) => format!("{}: {name} ({n})", c.kind),
                            None => format!("{}: {name}", c.kind),
                        })
                    }
                    None => None,
                },
                ContactKind::Sms => c.phone.as_ref().map(|p| format!("phone: {p}")),
                ContactKind::NextOfKin => None,
            };
            whereabouts.extend(line);
        }
    }
    let appointment = match (is_relay, task.notice_id) {
        (false, Some(n)) => match notices::get(tx, n).await?.appointment_id {
            Some(a) => {
                let a = appointments::get(tx, a).await?;
                Some(AppointmentRef {
                    starts_at: a.starts_at,
                    place: a.place,
                })
            }
            None => None,
        },
        _ => None,
    };
    let history = if with_history {
        tasks::events(tx, task.id).await?
    } else {
        Vec::new()
    };
    Ok(TaskView {
        id: task.id,
        kind: task.kind,
        status: task.status,
        priority: task.priority,
        channel: task.channel,
        reason: task.reason.clone(),
        due_at: task.due_at,
        claim_by: task.claim_by,
        created_at: task.created_at,
        patient: PatientRef {
            id: patient.id,
            name: patient.name,
            birth_year: patient.birth_year,
            description,
        },
        message: task.message.clone(),
        phone: if task.channel == ContactMode::Phone {
            via.and_then(|c| c.phone.clone())
        } else {
            None
        },
        whereabouts,
        appointment,
        notice_id: if is_relay { None } else { task.notice_id },
        holder: person_ref(tx, task.assignee_id).await?,
        claimed_at: task.claimed_at,
        outcome: task.outcome,
        outcome_note: task.outcome_note.clone(),
        closed_at: task.closed_at,
        closed_by: person_ref(tx, task.closed_by).await?,
        outcomes: if task.is_open() {
            TaskOutcome::allowed_for(task.kind).to_vec()
        } else {
            Vec::new()
        },
        history,
    })
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `mine` (tasks you hold), `team` (default: open tasks of the kinds your role works on) or
    /// `org` (all of the organisation's; coordinators and admins). A bare `?mine`, `?team` or
    /// `?org` works too.
    scope: Option<String>,
    mine: Option<String>,
    team: Option<String>,
    org: Option<String>,
    /// relay, outreach or coordinator_follow_up.
    kind: Option<String>,
    /// Comma-separated: open, claimed, closed, cancelled. Default: open,claimed.
    status: Option<String>,
    patient_id: Option<Id>,
    /// `true`: only tasks nobody holds.
    unclaimed: Option<bool>,
    /// `true`: only tasks past their due time.
    overdue: Option<bool>,
    /// 1–500, default 200.
    limit: Option<u32>,
}

/// The caller's tasks, soonest due first.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListQuery),
    responses((status = 200, body = Items<TaskView>), (status = 403, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Items<TaskView>>> {
    caller.require(roles::TASKS, "read tasks")?;
    let role_kind = kinds_for(caller.role)?;
    let flags: Vec<&str> = [("mine", &q.mine), ("team", &q.team), ("org", &q.org)]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect();
    let scope = match (q.scope.as_deref(), flags.as_slice()) {
        (Some(s), []) => s,
        (None, [one]) => one,
        (None, []) => "team",
        _ => {
            return Err(ApiError::invalid(
                "scope",
                "give one scope: mine, team or org (as ?scope=mine or ?mine)",
            ));
        }
    };
    let mut filter = TaskFilter {
        organisation_id: caller.organisation_id,
        assignee_id: None,
        kind: role_kind,
        patient_id: q.patient_id,
        statuses: vec![TaskStatus::Open, TaskStatus::Claimed],
        unclaimed_only: q.unclaimed.unwrap_or(false),
        due_before: q.overdue.unwrap_or(false).then(|| ctx.clock.now()),
        limit: i64::from(q.limit.unwrap_or(200)),
    };
    if !(1..=500).contains(&filter.limit) {
        return Err(ApiError::invalid("limit", "give a limit from 1 to 500"));
    }
    match scope {
        "mine" => {
            filter.assignee_id = Some(caller.person("have tasks of your own")?.staff_id);
        }
        "team" => {}
        "org" => {
            if !matches!(caller.role, Role::Admin | Role::Coordinator) {
                return Err(ApiError::Forbidden(
                    "only coordinators and admins see all of the organisation's tasks; use scope=team".into(),
                ));
            }
            filter.kind = None;
        }
        _ => {
            return Err(ApiError::invalid(
                "scope",
                "unknown scope; use mine, team or org",
            ));
        }
    }
    if let Some(k) = &q.kind {
        let k: TaskKind = k
            .parse()
            .map_err(|e: String| ApiError::invalid("kind", e))?;
        if filter.kind.is_some_and(|r| r != k) {
            return Err(ApiError::Forbidden(format!(
                "your role ({}) works on {} tasks only",
                caller.role,
                filter.kind.map(|k| k.as_str()).unwrap_or_default()
            )));
        }
        filter.kind = Some(k);
    }
    if let Some(s) = &q.status {
        filter.statuses = s
            .split(',')
            .map(|w| w.trim().parse::<TaskStatus>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::invalid("status", e))?;
    }
    let mut tx = ctx.store.begin().await?;
    let found = tasks::list(&mut tx, &filter).await?;
    let mut items = Vec::with_capacity(found.len());
    for t in found {
        audit(
            &ctx,
            &mut tx,
            &caller,
            "task.read",
            Some(t.patient_id),
            Some(t.id),
        )
        .await?;
        items.push(view(&mut tx, t, false).await?);
    }
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

/// One task with its history.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    responses((status = 200, body = TaskView), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<TaskView>> {
    caller.require(roles::TASKS, "read tasks")?;
    let mut tx = ctx.store.begin().await?;
    let task = visible_task(&mut tx, &caller, id).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "task.read",
        Some(task.patient_id),
        Some(id),
    )
    .await?;
    let v = view(&mut tx, task, true).await?;
    tx.commit().await?;
    Ok(Json(v))
}

/// Takes the task: you hold it until you close it, give it back, or hand it over.
#[utoipa::path(post, path = "/tasks/{id}/claim", tag = "tasks",
    responses((status = 200, body = TaskView), (status = 403, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
pub async fn claim(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<TaskView>> {
    caller.require(roles::TASKS, "claim tasks")?;
    let person = caller.person("claim a task")?;
    let mut tx = ctx.store.begin().await?;
    let task = visible_task(&mut tx, &caller, id).await?;
    let task = tasks::claim(
        &mut tx,
        task.id,
        person.staff_id,
        &person.label,
        ctx.clock.now(),
    )
    .await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "task.claim",
        Some(task.patient_id),
        Some(id),
    )
    .await?;
    let v = view(&mut tx, task, true).await?;
    tx.commit().await?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unclaim {
    /// Why you give it back, e.g. "off sick this week".
    pub reason: String,
}

/// Gives the task back to the team, saying why.
#[utoipa::path(post, path = "/tasks/{id}/unclaim", tag = "tasks", request_body = Unclaim,
    responses((status = 200, body = TaskView), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn unclaim(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(body): ApiJson<Unclaim>,
) -> ApiResult<Json<TaskView>> {
    caller.require(roles::TASKS, "unclaim tasks")?;
    let person = caller.person("give a task back")?;
    let mut tx = ctx.store.begin().await?;
    let task = visible_task(&mut tx, &caller, id).await?;
    let task = tasks::unclaim(
        &mut tx,
        task.id,
        person.staff_id,
        &person.label,
        &body.reason,
        ctx.clock.now(),
    )
    .await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "task.unclaim",
        Some(task.patient_id),
        Some(id),
    )
    .await?;
    let v = view(&mut tx, task, true).await?;
    tx.commit().await?;
    Ok(Json(v))
}

/// Records one try: where, when, what came of it. Only the person who holds the task.
#[utoipa::path(post, path = "/tasks/{id}/attempts", tag = "tasks", request_body = NewAttempt,
    responses((status = 201, body = TaskEvent), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn attempt(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(body): ApiJson<NewAttempt>,
) -> ApiResult<(axum::http::StatusCode, Json<TaskEvent>)> {
    caller.require(roles::TASKS, "record attempts")?;
    let person = caller.person("record an attempt")?;
    let mut tx = ctx.store.begin().await?;
    let task = visible_task(&mut tx, &caller, id).await?;
    if task.kind == TaskKind::Outreach && task.assignee_id != Some(person.staff_id) {
        return Err(ApiError::Conflict(
            "claim the task first: attempts are recorded by the person who holds it".into(),
        ));
    }
    let event = tasks::record_attempt(
        &mut tx,
        task.id,
        person.staff_id,
        &person.label,
        &body,
        ctx.clock.now(),
    )
    .await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "task.attempt",
        Some(task.patient_id),
        Some(id),
    )
    .await?;
    tx.commit().await?;
    Ok((axum::http::StatusCode::CREATED, Json(event)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    /// One of the task's `outcomes`.
    pub outcome: String,
    pub note: Option<String>,
    /// With `moved`: the new whereabouts (added with provenance `verified_in_person`).
    pub new_contact_point: Option<NewContactPoint>,
}

/// Closes the task with an outcome. Only a person closes a task; what happens next follows
/// from the outcome (an attested acknowledgement, the next step at once, or the coordinator).
#[utoipa::path(post, path = "/tasks/{id}/close", tag = "tasks", request_body = Close,
    responses((status = 200, body = TaskView), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn close(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(body): ApiJson<Close>,
) -> ApiResult<Json<TaskView>> {
    caller.require(roles::TASKS, "close tasks")?;
    let person = caller.person("close a task")?;
    let outcome: TaskOutcome = body
        .outcome
        .trim()
        .parse()
        .map_err(|e: String| ApiError::invalid("outcome", e))?;
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::invalid(
            "note",
            "keep the note under 2,000 characters",
        ));
    }
    let mut tx = ctx.store.begin().await?;
    let task = visible_task(&mut tx, &caller, id).await?;
    let closed = ctx
        .engine
        .close_task(
            &mut tx,
            task.id,
            &person,
            Closing {
                outcome,
                note: body
                    .note
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                new_contact_point: body.new_contact_point,
            },
        )
        .await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "task.close",
        Some(closed.patient_id),
        Some(id),
    )
    .await?;
    let v = view(&mut tx, closed, true).await?;
    tx.commit().await?;
    tracing::info!(task_id = %id, outcome = %outcome, "task closed");
    Ok(Json(v))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// `true`: only unread ones.
    unread: Option<bool>,
}

/// What you have been told (a personal key), or the organisation's (an admin's shared key),
/// newest first.
#[utoipa::path(get, path = "/notifications", tag = "tasks", params(NotificationQuery),
    responses((status = 200, body = Items<Notification>)))]
pub async fn list_notifications(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Json<Items<Notification>>> {
    let unread = q.unread.unwrap_or(false);
    let mut tx = ctx.store.begin_read().await?;
    let items = match caller.staff_id {
        Some(s) => {
            notifications::for_staff(&mut tx, s, caller.organisation_id, unread, 200).await?
        }
        None => {
            caller.require(
                roles::ADMIN,
                "read the organisation's notifications without a personal key",
            )?;
            notifications::for_organisation(&mut tx, caller.organisation_id, unread, 200).await?
        }
    };
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

/// Marks a notification as read.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "tasks",
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
pub async fn read_notification(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<axum::http::StatusCode> {
    let mut tx = ctx.store.begin().await?;
    let done = notifications::mark_read(
        &mut tx,
        id,
        caller.organisation_id,
        caller.staff_id,
        ctx.clock.now(),
    )
    .await?;
    tx.commit().await?;
    if done {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("unread notification"))
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EmailQuery {
    /// pending, sent, outbox or failed.
    status: Option<String>,
}

/// E-mails to the organisation's staff, newest first: whether each was sent, and why not.
/// They never hold patient data.
#[utoipa::path(get, path = "/emails", tag = "tasks", params(EmailQuery),
    responses((status = 200, body = Items<StaffEmail>), (status = 403, body = crate::problem::Problem)))]
pub async fn list_emails(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EmailQuery>,
) -> ApiResult<Json<Items<StaffEmail>>> {
    caller.require(roles::ADMIN, "read staff e-mails")?;
    let status = match &q.status {
        Some(s) => Some(
            s.parse::<EmailStatus>()
                .map_err(|e| ApiError::invalid("status", e))?,
        ),
        None => None,
    };
    let mut tx = ctx.store.begin_read().await?;
    let items = emails::list(&mut tx, caller.organisation_id, status, 200).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}
