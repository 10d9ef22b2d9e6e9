//! Appointments: book, read, reschedule, cancel and record attendance. Each change owes the
//! patient a notice (created with it, in the same transaction); the answer lists the
//! appointment's notices and its history.

use super::{Items, audit, denied, roles, visible_patient};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::{ApiJson, Ids};
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing;
use axum::{Json, Router};
use kontaktvei_store::appointments::{
    self, Appointment, AppointmentEvent, AppointmentStatus, NewAppointment, Reschedule,
};
use kontaktvei_store::{Id, Tx, notices};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/appointments", routing::post(book))
        .route("/appointments/{id}", routing::get(get))
        .route("/appointments/{id}/reschedule", routing::post(reschedule))
        .route("/appointments/{id}/cancel", routing::post(cancel))
        .route("/appointments/{id}/attendance", routing::post(attendance))
        .route(
            "/patients/{id}/appointments",
            routing::get(list_for_patient),
        )
}

/// An appointment with the ids of the notices it owes (oldest first) and its history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppointmentView {
    #[serde(flatten)]
    pub appointment: Appointment,
    pub notice_ids: Vec<Id>,
    pub history: Vec<AppointmentEvent>,
}

async fn view(tx: &mut Tx, appointment: Appointment) -> ApiResult<AppointmentView> {
    let notice_ids = notices::for_appointment(tx, appointment.id)
        .await?
        .into_iter()
        .map(|n| n.id)
        .collect();
    let history = appointments::history(tx, appointment.id).await?;
    Ok(AppointmentView {
        appointment,
        notice_ids,
        history,
    })
}

/// Loads an appointment the caller may act on: its patient must be shared with the caller's
/// organisation; changing it also needs the organisation that booked it. Call it before opening
/// the request's transaction (a refusal is audited in a transaction of its own); the later
/// change is a compare-and-set on the status read here.
async fn load(
    ctx: &AppContext,
    caller: &Caller,
    id: Id,
    write: bool,
    action: &str,
) -> ApiResult<Appointment> {
    let (access, doing) = if write {
        (roles::WRITE_APPOINTMENT, "change appointments")
    } else {
        (roles::READ_APPOINTMENT, "read appointments")
    };
    let mut tx = ctx.store.begin_read().await?;
    let appointment = appointments::get(&mut tx, id).await?;
    let visible = kontaktvei_store::patients::get_visible(
        &mut tx,
        caller.organisation_id,
        appointment.patient_id,
    )
    .await;
    tx.commit().await?;
    let refusal = if let Err(e) = caller.require(access, doing) {
        Some(e)
    } else if visible.is_err() {
        Some(ApiError::NotFound("appointment"))
    } else if write && appointment.organisation_id != caller.organisation_id {
        Some(ApiError::Forbidden(
            "only the organisation that booked the appointment may change it".into(),
        ))
    } else {
        None
    };
    match refusal {
        Some(e) => Err(denied(ctx, caller, action, Some(appointment.patient_id), e).await),
        None => Ok(appointment),
    }
}

/// Books an appointment and creates its booking notice.
#[utoipa::path(post, path = "/appointments", tag = "appointments", request_body = NewAppointment,
    responses((status = 201, body = AppointmentView), (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn book(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(new): ApiJson<NewAppointment>,
) -> ApiResult<(StatusCode, Json<AppointmentView>)> {
    let patient_id = new.patient_id;
    visible_patient(
        &ctx,
        &caller,
        patient_id,
        roles::WRITE_APPOINTMENT,
        "book appointments",
        "appointment.book",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let (appointment, notice) = appointments::book(
        &mut tx,
        caller.organisation_id,
        new,
        &caller.label(),
        ctx.clock.now(),
    )
    .await?;
    ctx.engine.plan(&mut tx, &notice).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "appointment.book",
        Some(patient_id),
        Some(appointment.id),
    )
    .await?;
    let view = view(&mut tx, appointment).await?;
    tx.commit().await?;
    tracing::info!(appointment_id = %view.appointment.id, notice_id = %notice.id, "appointment booked");
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/appointments/{id}", tag = "appointments",
    responses((status = 200, body = AppointmentView), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<AppointmentView>> {
    let appointment = load(&ctx, &caller, id, false, "appointment.read").await?;
    let mut tx = ctx.store.begin().await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "appointment.read",
        Some(appointment.patient_id),
        Some(id),
    )
    .await?;
    let view = view(&mut tx, appointment).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// The patient's appointments, soonest first.
#[utoipa::path(get, path = "/patients/{id}/appointments", tag = "appointments",
    responses((status = 200, body = Items<Appointment>)))]
pub async fn list_for_patient(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Items<Appointment>>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::READ_APPOINTMENT,
        "read appointments",
        "appointment.list",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let items = appointments::for_patient(&mut tx, id).await?;
    audit(&ctx, &mut tx, &caller, "appointment.list", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

/// Moves the appointment; the earlier pending notices are superseded by a `reschedule` notice.
#[utoipa::path(post, path = "/appointments/{id}/reschedule", tag = "appointments", request_body = Reschedule,
    responses((status = 200, body = AppointmentView), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn reschedule(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(change): ApiJson<Reschedule>,
) -> ApiResult<Json<AppointmentView>> {
    let appointment = load(&ctx, &caller, id, true, "appointment.reschedule").await?;
    let mut tx = ctx.store.begin().await?;
    let (appointment, notice) = appointments::reschedule(
        &mut tx,
        appointment,
        change,
        &caller.label(),
        ctx.clock.now(),
    )
    .await?;
    ctx.engine.plan(&mut tx, &notice).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "appointment.reschedule",
        Some(appointment.patient_id),
        Some(id),
    )
    .await?;
    let view = view(&mut tx, appointment).await?;
    tx.commit().await?;
    Ok(Json(view))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    reason: Option<String>,
}

/// Cancels the appointment; the patient is owed a `cancellation` notice.
#[utoipa::path(post, path = "/appointments/{id}/cancel", tag = "appointments", request_body = Cancel,
    responses((status = 200, body = AppointmentView), (status = 409, body = crate::problem::Problem)))]
pub async fn cancel(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(body): ApiJson<Cancel>,
) -> ApiResult<Json<AppointmentView>> {
    let appointment = load(&ctx, &caller, id, true, "appointment.cancel").await?;
    let mut tx = ctx.store.begin().await?;
    let (appointment, notice) = appointments::cancel(
        &mut tx,
        appointment,
        body.reason,
        &caller.label(),
        ctx.clock.now(),
    )
    .await?;
    ctx.engine.plan(&mut tx, &notice).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "appointment.cancel",
        Some(appointment.patient_id),
        Some(id),
    )
    .await?;
    let view = view(&mut tx, appointment).await?;
    tx.commit().await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attendance {
    /// `attended` or `no_show`.
    status: AppointmentStatus,
}

/// Records whether the patient came. A no-show never closes anything: it owes the patient a
/// `no_show_follow_up` notice.
#[utoipa::path(post, path = "/appointments/{id}/attendance", tag = "appointments", request_body = Attendance,
    responses((status = 200, body = AppointmentView), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn attendance(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(body): ApiJson<Attendance>,
) -> ApiResult<Json<AppointmentView>> {
    let appointment = load(&ctx, &caller, id, true, "appointment.attendance").await?;
    let mut tx = ctx.store.begin().await?;
    let (appointment, follow_up) = appointments::record_attendance(
        &mut tx,
        appointment,
        body.status,
        &caller.label(),
        ctx.clock.now(),
    )
    .await?;
    if let Some(notice) = &follow_up {
        ctx.engine.plan(&mut tx, notice).await?;
        ctx.engine.no_show(&mut tx, notice).await?;
    }
    audit(
        &ctx,
        &mut tx,
        &caller,
        "appointment.attendance",
        Some(appointment.patient_id),
        Some(id),
    )
    .await?;
    let view = view(&mut tx, appointment).await?;
    tx.commit().await?;
    Ok(Json(view))
}
