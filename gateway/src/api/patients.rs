//! Patients, the organisations they are shared with, their contact points, timeline and
//! access log. Every read and change is audited, a refusal too; a patient not shared with the
//! caller's organisation is "not found". A low-threshold service is refused all of these (403):
//! it sees a patient only through its relay requests (`GET /tasks`), with what it needs to pass
//! the message on.

use super::{Items, audit, denied, roles, visible_patient};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::{ApiJson, ApiQuery, Ids};
use crate::problem::ApiResult;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing;
use axum::{Json, Router};
use kontaktvei_store::audit::AuditEvent;
use kontaktvei_store::contact_points::{self, ContactKind, ContactPoint, NewContactPoint};
use kontaktvei_store::organisations;
use kontaktvei_store::patients::{self, NewPatient, Patient, PatientFilter, PatientUpdate, Share};
use kontaktvei_store::timeline::{self, TimelineEntry};
use kontaktvei_store::{Error as StoreError, Id};
use serde::Deserialize;

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/patients", routing::get(list).post(create))
        .route("/patients/{id}", routing::get(get).patch(update))
        .route(
            "/patients/{id}/shares",
            routing::get(list_shares).post(add_share),
        )
        .route(
            "/patients/{id}/contact-points",
            routing::get(list_contact_points).post(add_contact_point),
        )
        .route(
            "/patients/{id}/contact-points/{contact_point_id}/retire",
            routing::post(retire_contact_point),
        )
        .route(
            "/patients/{id}/contact-points/{contact_point_id}/withdraw-consent",
            routing::post(withdraw_consent),
        )
        .route("/patients/{id}/timeline", routing::get(timeline))
        .route("/patients/{id}/audit", routing::get(audit_log))
}

/// Registers a patient; the caller's organisation can see them from now on.
#[utoipa::path(post, path = "/patients", tag = "patients", request_body = NewPatient,
    responses((status = 201, body = Patient), (status = 403, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn create(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(new): ApiJson<NewPatient>,
) -> ApiResult<(StatusCode, Json<Patient>)> {
    if let Err(e) = caller.require(roles::WRITE_PATIENT, "register patients") {
        return Err(denied(&ctx, &caller, "patient.create", None, e).await);
    }
    let mut tx = ctx.store.begin().await?;
    let patient = patients::create(&mut tx, caller.organisation_id, new, ctx.clock.now()).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "patient.create",
        Some(patient.id),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(patient)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Part of the name, any case.
    q: Option<String>,
    birth_year: Option<i32>,
    /// 1–200, default 50.
    limit: Option<u32>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// The patients shared with the caller's organisation, oldest first, searchable by name and
/// birth year, a page at a time.
#[utoipa::path(get, path = "/patients", tag = "patients", params(ListQuery),
    responses((status = 200, body = Items<Patient>), (status = 403, body = crate::problem::Problem)))]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Items<Patient>>> {
    if let Err(e) = caller.require(roles::READ_PATIENT, "look up patients") {
        return Err(denied(&ctx, &caller, "patient.list", None, e).await);
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(StoreError::invalid("limit", "must be between 1 and 200").into());
    }
    let after = match &query.cursor {
        None => None,
        Some(c) => Some(c.parse::<Id>().map_err(|_| {
            StoreError::invalid(
                "cursor",
                "not a cursor from a previous page; start again without it",
            )
        })?),
    };
    let filter = PatientFilter {
        name_contains: query.q.filter(|q| !q.trim().is_empty()),
        birth_year: query.birth_year,
        after,
        limit,
    };
    let mut tx = ctx.store.begin().await?;
    let (items, more) = patients::list(&mut tx, caller.organisation_id, &filter).await?;
    for p in &items {
        audit(&ctx, &mut tx, &caller, "patient.list", Some(p.id), None).await?;
    }
    tx.commit().await?;
    let next_cursor = more
        .then(|| items.last().map(|p| p.id.to_string()))
        .flatten();
    Ok(Json(Items { items, next_cursor }))
}

#[utoipa::path(get, path = "/patients/{id}", tag = "patients",
    responses((status = 200, body = Patient), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Patient>> {
    let patient = visible_patient(
        &ctx,
        &caller,
        id,
        roles::READ_PATIENT,
        "read patient records",
        "patient.read",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    audit(&ctx, &mut tx, &caller, "patient.read", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(patient))
}

/// Changes some fields; leave out what stays, send `null` to clear an optional field.
#[utoipa::path(patch, path = "/patients/{id}", tag = "patients", request_body = PatientUpdate,
    responses((status = 200, body = Patient), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn update(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(change): ApiJson<PatientUpdate>,
) -> ApiResult<Json<Patient>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::WRITE_PATIENT,
        "change patient records",
        "patient.update",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let patient =
        patients::update(&mut tx, caller.organisation_id, id, change, ctx.clock.now()).await?;
    audit(&ctx, &mut tx, &caller, "patient.update", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(patient))
}

/// The organisations that can see this patient.
#[utoipa::path(get, path = "/patients/{id}/shares", tag = "patients", responses((status = 200, body = Items<Share>), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem)))]
pub async fn list_shares(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Items<Share>>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::READ_PATIENT,
        "read patient records",
        "share.list",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let shares = patients::shares(&mut tx, id).await?;
    audit(&ctx, &mut tx, &caller, "share.list", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(Items::all(shares)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    organisation_id: Id,
}

/// Shares the patient with another organisation (e.g. the municipal home services). Adding a
/// relay or outreach contact point shares with that organisation by itself.
#[utoipa::path(post, path = "/patients/{id}/shares", tag = "patients", request_body = NewShare,
    responses((status = 201, body = Items<Share>), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn add_share(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(new): ApiJson<NewShare>,
) -> ApiResult<(StatusCode, Json<Items<Share>>)> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::SHARE_PATIENT,
        "share patients",
        "patient.share",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    match organisations::get(&mut tx, new.organisation_id).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(StoreError::invalid(
                "organisation_id",
                "no organisation has this id; see GET /api/v1/organisations",
            )
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    patients::share(&mut tx, id, new.organisation_id, ctx.clock.now()).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "patient.share",
        Some(id),
        Some(new.organisation_id),
    )
    .await?;
    let shares = patients::shares(&mut tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(Items::all(shares))))
}

/// Adds a way to reach the patient. The body's `kind` decides the other fields: `sms` and
/// `next_of_kin` need `phone`, `postal` needs `lines`, `postal_code` and `place`, `relay` and
/// `outreach` need `organisation_id`.
#[utoipa::path(post, path = "/patients/{id}/contact-points", tag = "contact points", request_body = NewContactPoint,
    responses((status = 201, body = ContactPoint), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn add_contact_point(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    ApiJson(new): ApiJson<NewContactPoint>,
) -> ApiResult<(StatusCode, Json<ContactPoint>)> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::WRITE_CONTACT_POINT,
        "add contact points",
        "contact_point.add",
    )
    .await?;
    if matches!(new.kind, ContactKind::Relay | ContactKind::Outreach) {
        // Such a contact point shares the patient with that service.
        caller.require(roles::SHARE_PATIENT, "add relay or outreach contact points")?;
    }
    let mut tx = ctx.store.begin().await?;
    let now = ctx.clock.now();
    let cp = contact_points::add(&mut tx, id, new, &caller.label(), now).await?;
    if let Some(org) = cp.organisation_id
        && patients::share(&mut tx, id, org, now).await?
    {
        audit(&ctx, &mut tx, &caller, "patient.share", Some(id), Some(org)).await?;
    }
    audit(
        &ctx,
        &mut tx,
        &caller,
        "contact_point.add",
        Some(id),
        Some(cp.id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(cp)))
}

/// All of the patient's contact points, retired ones included, oldest first.
#[utoipa::path(get, path = "/patients/{id}/contact-points", tag = "contact points",
    responses((status = 200, body = Items<ContactPoint>), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem)))]
pub async fn list_contact_points(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Items<ContactPoint>>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::READ_PATIENT,
        "read patient records",
        "contact_point.list",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let items = contact_points::list(&mut tx, id).await?;
    audit(&ctx, &mut tx, &caller, "contact_point.list", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retire {
    /// Why it is no longer usable, e.g. "moved out of the shelter".
    reason: String,
}

/// Takes a contact point out of use. It stays in the record with the reason.
#[utoipa::path(post, path = "/patients/{id}/contact-points/{contact_point_id}/retire", tag = "contact points", request_body = Retire,
    responses((status = 200, body = ContactPoint), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
pub async fn retire_contact_point(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id, cp_id]): Ids<2>,
    ApiJson(body): ApiJson<Retire>,
) -> ApiResult<Json<ContactPoint>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::WRITE_CONTACT_POINT,
        "retire contact points",
        "contact_point.retire",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let cp = contact_points::retire(&mut tx, id, cp_id, &body.reason, ctx.clock.now()).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "contact_point.retire",
        Some(id),
        Some(cp.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(cp))
}

/// The patient withdrew consent to contact a next of kin: retired at once, kept for the record.
#[utoipa::path(post, path = "/patients/{id}/contact-points/{contact_point_id}/withdraw-consent", tag = "contact points",
    responses((status = 200, body = ContactPoint), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
pub async fn withdraw_consent(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id, cp_id]): Ids<2>,
) -> ApiResult<Json<ContactPoint>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::WRITE_CONTACT_POINT,
        "change consent",
        "contact_point.withdraw_consent",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let cp = contact_points::withdraw_consent(&mut tx, id, cp_id, ctx.clock.now()).await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "contact_point.withdraw_consent",
        Some(id),
        Some(cp.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(cp))
}

/// What happened with this patient, oldest first: contact points, appointments, notices.
#[utoipa::path(get, path = "/patients/{id}/timeline", tag = "patients",
    responses((status = 200, body = Items<TimelineEntry>), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem)))]
pub async fn timeline(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Items<TimelineEntry>>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::READ_APPOINTMENT,
        "read a patient's timeline",
        "timeline.read",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let items = timeline::for_patient(&mut tx, id).await?;
    audit(&ctx, &mut tx, &caller, "timeline.read", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

/// Who read or changed this patient's data, newest first (Normen: the patient may ask).
#[utoipa::path(get, path = "/patients/{id}/audit", tag = "patients",
    responses((status = 200, body = Items<AuditEvent>), (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem)))]
pub async fn audit_log(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Items<AuditEvent>>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::READ_AUDIT,
        "read the access log",
        "audit.read",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    // Read before this request's own row is written, so the answer shows earlier accesses.
    let items = kontaktvei_store::audit::for_patient(&mut tx, id, 1000).await?;
    audit(&ctx, &mut tx, &caller, "audit.read", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}
