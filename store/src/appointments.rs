//! Appointments and their history. An appointment is booked, then rescheduled, cancelled, or
//! ends as attended or no-show; every change is kept as an event. Each change owes the patient
//! a notice, created in the same transaction: booking → `booking`, a new time → `reschedule`,
//! cancel → `cancellation`, no-show → `no_show_follow_up` (a no-show never closes anything).

use crate::db::{Tx, on_tx};
use crate::error::{Error, Result, Violations};
use crate::id::Id;
use crate::notices::{self, NewNotice, Notice, NoticeKind};
use crate::text_enum::text_enum;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

text_enum! {
    pub enum AppointmentStatus {
        Booked = "booked",
        Rescheduled = "rescheduled",
        Cancelled = "cancelled",
        Attended = "attended",
        NoShow = "no_show",
    }
}

impl AppointmentStatus {
    /// Still to happen: a time is set and nothing has closed it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Booked | AppointmentStatus::Rescheduled
        )
    }
}

text_enum! {
    pub enum AppointmentKind {
        InPerson = "in_person",
        Phone = "phone",
        Video = "video",
        HomeVisit = "home_visit",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Appointment {
    pub id: Id,
    /// The clinic that booked it.
    pub organisation_id: Id,
    pub patient_id: Id,
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: i32,
    pub place: String,
    pub kind: AppointmentKind,
    pub status: AppointmentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AppointmentEvent {
    pub id: Id,
    pub appointment_id: Id,
    pub at: DateTime<Utc>,
    /// The status the appointment had after this event.
    pub status: AppointmentStatus,
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: i32,
    pub place: String,
    pub reason: Option<String>,
    pub actor: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppointment {
    pub patient_id: Id,
    /// RFC 3339 with an offset, e.g. `2026-12-03T10:30:00+01:00`.
    pub starts_at: DateTime<Utc>,
    #[serde(default = "default_duration")]
    pub duration_minutes: i32,
    /// Where to come, as the patient should read it: address, floor, door.
    pub place: String,
    #[serde(default = "default_kind")]
    pub kind: AppointmentKind,
}

fn default_duration() -> i32 {
    30
}

fn default_kind() -> AppointmentKind {
    AppointmentKind::InPerson
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reschedule {
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: Option<i32>,
    pub place: Option<String>,
    pub reason: Option<String>,
}

fn validate_time(field: &str, starts_at: DateTime<Utc>, now: DateTime<Utc>, v: &mut Violations) {
    if starts_at <= now {
        v.add(
            field,
            "is in the past; an appointment must start in the future",
        );
    } else if starts_at > now + TimeDelta::days(2 * 366) {
        v.add(field, "is more than two years ahead; check the year");
    }
}

fn validate_duration(minutes: i32, v: &mut Violations) {
    if !(5..=720).contains(&minutes) {
        v.add("duration_minutes", "must be between 5 and 720 minutes");
    }
}

fn validate_place(place: &str, v: &mut Violations) {
    let n = place.trim().chars().count();
    if n == 0 || n > 300 {
        v.add(
            "place",
            "say where the patient should come (1–300 characters)",
        );
    }
}

fn clean_reason(reason: Option<String>) -> Result<Option<String>> {
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(Error::invalid(
            "reason",
            "keep the reason under 500 characters",
        ));
    }
    Ok(reason)
}

async fn insert_event(
    tx: &mut Tx,
    a: &Appointment,
    reason: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO appointment_events (id, appointment_id, at, status, starts_at, duration_minutes, place, reason, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Id::new(now))
        .bind(a.id)
        .bind(now)
        .bind(a.status)
        .bind(a.starts_at)
        .bind(a.duration_minutes)
        .bind(&a.place)
        .bind(reason)
        .bind(actor)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(())
}

async fn owe_notice(
    tx: &mut Tx,
    a: &Appointment,
    kind: NoticeKind,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Notice> {
    notices::supersede_for_appointment(tx, a.id, now).await?;
    notices::create(
        tx,
        NewNotice {
            organisation_id: a.organisation_id,
            patient_id: a.patient_id,
            appointment_id: Some(a.id),
            kind,
            deadline,
        },
        now,
    )
    .await
}

/// Books an appointment for a patient the caller may see (checked by the caller of this
/// function) and creates its booking notice.
pub async fn book(
    tx: &mut Tx,
    organisation_id: Id,
    new: NewAppointment,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Appointment, Notice)> {
    let mut v = Violations::default();
    validate_time("starts_at", new.starts_at, now, &mut v);
    validate_duration(new.duration_minutes, &mut v);
    validate_place(&new.place, &mut v);
    v.finish()?;
    let a = Appointment {
        id: Id::new(now),
        organisation_id,
        patient_id: new.patient_id,
        starts_at: crate::clock::truncate(new.starts_at),
        duration_minutes: new.duration_minutes,
        place: new.place.trim().to_owned(),
        kind: new.kind,
        status: AppointmentStatus::Booked,
        created_at: now,
        updated_at: now,
    };
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO appointments (id, organisation_id, patient_id, starts_at, duration_minutes, place, kind, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(a.id)
        .bind(a.organisation_id)
        .bind(a.patient_id)
        .bind(a.starts_at)
        .bind(a.duration_minutes)
        .bind(&a.place)
        .bind(a.kind)
        .bind(a.status)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    insert_event(tx, &a, None, actor, now).await?;
    let notice = owe_notice(tx, &a, NoticeKind::Booking, Some(a.starts_at), now).await?;
    Ok((a, notice))
}

pub async fn get(tx: &mut Tx, id: Id) -> Result<Appointment> {
    on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, patient_id, starts_at, duration_minutes, place, kind, status, created_at, updated_at
             FROM appointments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?
    })
    .ok_or(Error::NotFound("appointment"))
}

/// A patient's appointments, soonest first.
pub async fn for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<Appointment>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, organisation_id, patient_id, starts_at, duration_minutes, place, kind, status, created_at, updated_at
             FROM appointments WHERE patient_id = $1 ORDER BY starts_at, id",
        )
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

pub async fn history(tx: &mut Tx, appointment_id: Id) -> Result<Vec<AppointmentEvent>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, appointment_id, at, status, starts_at, duration_minutes, place, reason, actor
             FROM appointment_events WHERE appointment_id = $1 ORDER BY at, id",
        )
        .bind(appointment_id)
        .fetch_all(c)
        .await?
    }))
}

/// The events of all of a patient's appointments, for the timeline.
pub async fn history_for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<AppointmentEvent>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT e.id, e.appointment_id, e.at, e.status, e.starts_at, e.duration_minutes, e.place, e.reason, e.actor
             FROM appointment_events e JOIN appointments a ON a.id = e.appointment_id
             WHERE a.patient_id = $1 ORDER BY e.at, e.id",
        )
        .bind(patient_id)
        .fetch_all(c)
        .await?
    }))
}

/// Writes the new state only if the appointment is still in the status we read — a
/// compare-and-set, so two clerks changing it at once cannot both win.
async fn save_transition(tx: &mut Tx, a: &Appointment, from: AppointmentStatus) -> Result<()> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE appointments SET starts_at = $3, duration_minutes = $4, place = $5, status = $6, updated_at = $7
             WHERE id = $1 AND status = $2",
        )
        .bind(a.id)
        .bind(from)
        .bind(a.starts_at)
        .bind(a.duration_minutes)
        .bind(&a.place)
        .bind(a.status)
        .bind(a.updated_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Err(Error::Conflict(
            "the appointment was changed by someone else; fetch it and try again".into(),
        ));
    }
    Ok(())
}

fn ensure_open(a: &Appointment, doing: &str) -> Result<()> {
    if a.status.is_open() {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "cannot {doing}: the appointment is already {}",
            a.status
        )))
    }
}

pub async fn reschedule(
    tx: &mut Tx,
    mut a: Appointment,
    change: Reschedule,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Appointment, Notice)> {
    ensure_open(&a, "reschedule")?;
    let mut v = Violations::default();
    validate_time("starts_at", change.starts_at, now, &mut v);
    if let Some(d) = change.duration_minutes {
        validate_duration(d, &mut v);
    }
    if let Some(p) = &change.place {
        validate_place(p, &mut v);
    }
    v.finish()?;
    let reason = clean_reason(change.reason)?;
    let from = a.status;
    a.starts_at = crate::clock::truncate(change.starts_at);
    a.duration_minutes = change.duration_minutes.unwrap_or(a.duration_minutes);
    a.place = change.place.map(|p| p.trim().to_owned()).unwrap_or(a.place);
    a.status = AppointmentStatus::Rescheduled;
    a.updated_at = now;
    save_transition(tx, &a, from).await?;
    insert_event(tx, &a, reason.as_deref(), actor, now).await?;
    let notice = owe_notice(tx, &a, NoticeKind::Reschedule, Some(a.starts_at), now).await?;
    Ok((a, notice))
}

pub async fn cancel(
    tx: &mut Tx,
    mut a: Appointment,
    reason: Option<String>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Appointment, Notice)> {
    ensure_open(&a, "cancel")?;
    let reason = clean_reason(reason)?;
    let from = a.status;
    a.status = AppointmentStatus::Cancelled;
    a.updated_at = now;
    save_transition(tx, &a, from).await?;
    insert_event(tx, &a, reason.as_deref(), actor, now).await?;
    // The patient should hear of a cancellation before they would have set out.
    let notice = owe_notice(tx, &a, NoticeKind::Cancellation, Some(a.starts_at), now).await?;
    Ok((a, notice))
}

/// Records attended (from two hours before the start) or no-show (once it has started). A no-show creates a follow-up
/// notice; attendance closes the appointment's pending notices.
pub async fn record_attendance(
    tx: &mut Tx,
    mut a: Appointment,
    status: AppointmentStatus,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Appointment, Option<Notice>)> {
    if !matches!(
        status,
        AppointmentStatus::Attended | AppointmentStatus::NoShow
    ) {
        return Err(Error::invalid(
            "status",
            "attendance is either \"attended\" or \"no_show\"",
        ));
    }
    ensure_open(&a, "record attendance")?;
    // A patient may check in early; nobody can fail to turn up before the time has come.
    let earliest = match status {
        AppointmentStatus::Attended => a.starts_at - TimeDelta::hours(2),
        _ => a.starts_at,
    };
    if now < earliest {
        return Err(Error::Conflict(format!(
            "too early to record {status}: the appointment starts {}",
            crate::clock::oslo_display(a.starts_at)
        )));
    }
    let from = a.status;
    a.status = status;
    a.updated_at = now;
    save_transition(tx, &a, from).await?;
    insert_event(tx, &a, None, actor, now).await?;
    let notice = if status == AppointmentStatus::NoShow {
        Some(owe_notice(tx, &a, NoticeKind::NoShowFollowUp, None, now).await?)
    } else {
        notices::supersede_for_appointment(tx, a.id, now).await?;
        None
    };
    Ok((a, notice))
}

/// Open appointments starting in `[from, to)` whose notices are all closed and at least one was
/// acknowledged, and that have no reminder yet: the patient knows, so a reminder is due.
pub async fn needing_reminder(
    tx: &mut Tx,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Appointment>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT a.id, a.organisation_id, a.patient_id, a.starts_at, a.duration_minutes, a.place, a.kind, a.status,
                    a.created_at, a.updated_at
             FROM appointments a
             WHERE a.status IN ('booked', 'rescheduled') AND a.starts_at >= $1 AND a.starts_at < $2
               AND EXISTS (SELECT 1 FROM notices n WHERE n.appointment_id = a.id AND n.status = 'acknowledged')
               AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.appointment_id = a.id AND n.status IN ('pending', 'active'))
               AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.appointment_id = a.id AND n.kind = 'reminder')
             ORDER BY a.starts_at, a.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await?
    }))
}
