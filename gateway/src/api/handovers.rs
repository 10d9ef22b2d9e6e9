//! Hand-over between people and organisations: offer a patient (their coordinator role), a
//! task or a notice you hold; the other side accepts or declines; you may withdraw. Until it
//! is accepted you keep it. Offers to you and from you are listed here, and every step is on
//! the patient's timeline.

use super::{Items, audit, roles};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::{ApiJson, ApiQuery, Ids};
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing;
use axum::{Json, Router};
use kontaktvei_store::handovers::{self, Handover, HandoverStatus, SubjectKind};
use kontaktvei_store::{Id, patients};
use serde::Deserialize;

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/handovers", routing::get(list).post(offer))
        .route("/handovers/{id}/accept", routing::post(accept))
        .route("/handovers/{id}/decline", routing::post(decline))
        .route("/handovers/{id}/withdraw", routing::post(withdraw))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `incoming` (default: offers to you or your organisation) or `outgoing` (yours, open).
    direction: Option<String>,
}

/// Open hand-over offers to you (or your organisation), or the ones you made.
#[utoipa::path(get, path = "/handovers", tag = "hand-over", params(ListQuery),
    responses((status = 200, body = Items<Handover>)))]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Items<Handover>>> {
    caller.require(roles::TASKS, "read hand-overs")?;
    let mut tx = ctx.store.begin().await?;
    let items = match q.direction.as_deref().unwrap_or("incoming") {
        "incoming" => handovers::incoming(&mut tx, caller.staff_id, caller.organisation_id).await?,
        "outgoing" => {
            let person = caller.person("have hand-overs of your own")?;
            handovers::outgoing(&mut tx, person.staff_id).await?
        }
        _ => {
            return Err(ApiError::invalid("direction", "use incoming or outgoing"));
        }
    };
    for h in &items {
        audit(
            &ctx,
            &mut tx,
            &caller,
            "handover.read",
            Some(h.patient_id),
            Some(h.id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// patient, task or notice.
    pub subject_kind: String,
    pub subject_id: Id,
    /// A named person…
    pub to_staff_id: Option<Id>,
    /// …or anyone in an organisation.
    pub to_organisation_id: Option<Id>,
    /// What the other person needs to know.
    pub note: Option<String>,
}

/// Offers something you hold to another person or organisation.
#[utoipa::path(post, path = "/handovers", tag = "hand-over", request_body = Offer,
    responses((status = 201, body = Handover), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn offer(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(body): ApiJson<Offer>,
) -> ApiResult<(StatusCode, Json<Handover>)> {
    caller.require(roles::TASKS, "hand things over")?;
    let person = caller.person("hand something over")?;
    let kind: SubjectKind = body
        .subject_kind
        .parse()
        .map_err(|e: String| ApiError::invalid("subject_kind", e))?;
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::invalid(
            "note",
            "keep the note under 2,000 characters",
        ));
    }
    let mut tx = ctx.store.begin().await?;
    // The subject must be something the caller's organisation may see.
    let patient_id = match kind {
        SubjectKind::Patient => body.subject_id,
        SubjectKind::Task => {
            kontaktvei_store::tasks::get(&mut tx, body.subject_id)
                .await?
                .patient_id
        }
        SubjectKind::Notice => {
            kontaktvei_store::notices::get(&mut tx, body.subject_id)
                .await?
                .patient_id
        }
    };
    patients::get_visible(&mut tx, caller.organisation_id, patient_id).await?;
    let h = ctx
        .engine
        .offer_handover(
            &mut tx,
            &person,
            kontaktvei_scheduler::human::Offer {
                subject_kind: kind,
                subject_id: body.subject_id,
                to_staff_id: body.to_staff_id,
                to_organisation_id: body.to_organisation_id,
                note: body.note,
            },
        )
        .await?;
    audit(
        &ctx,
        &mut tx,
        &caller,
        "handover.offer",
        Some(h.patient_id),
        Some(h.id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(h)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub note: Option<String>,
}

async fn decide(
    ctx: AppContext,
    caller: Caller,
    id: Id,
    decision: HandoverStatus,
    body: &[u8],
) -> ApiResult<Json<Handover>> {
    caller.require(roles::TASKS, "answer hand-overs")?;
    let person = caller.person("answer a hand-over")?;
    // The body is optional: `{"note": "…"}` or nothing.
    let note = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::extract::parse_json::<Decision>(body)?.note
    };
    let mut tx = ctx.store.begin().await?;
    let h = ctx
        .engine
        .decide_handover(&mut tx, id, &person, decision, note.as_deref())
        .await?;
    let action = format!("handover.{}", decision.as_str());
    audit(
        &ctx,
        &mut tx,
        &caller,
        &action,
        Some(h.patient_id),
        Some(id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(h))
}

/// Accepts an offer made to you or your organisation: it is yours from now on.
#[utoipa::path(post, path = "/handovers/{id}/accept", tag = "hand-over",
    responses((status = 200, body = Handover), (status = 409, body = crate::problem::Problem)))]
pub async fn accept(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Handover>> {
    decide(ctx, caller, id, HandoverStatus::Accepted, &body).await
}

/// Declines an offer; the one who offered keeps it and is told.
#[utoipa::path(post, path = "/handovers/{id}/decline", tag = "hand-over",
    responses((status = 200, body = Handover), (status = 409, body = crate::problem::Problem)))]
pub async fn decline(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Handover>> {
    decide(ctx, caller, id, HandoverStatus::Declined, &body).await
}

/// Withdraws an offer you made.
#[utoipa::path(post, path = "/handovers/{id}/withdraw", tag = "hand-over",
    responses((status = 200, body = Handover), (status = 409, body = crate::problem::Problem)))]
pub async fn withdraw(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Handover>> {
    decide(ctx, caller, id, HandoverStatus::Withdrawn, &body).await
}
