//! Notices: what the patient is owed and, once the escalation engine runs, each step taken to
//! reach them. Until then `steps` is empty and a notice stays `pending`.

use super::{Items, audit, denied, roles, visible_patient};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::Ids;
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::routing;
use axum::{Json, Router};
use kontaktvei_store::notices::{self, Notice};
use serde::Serialize;

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/notices/{id}", routing::get(get))
        .route("/patients/{id}/notices", routing::get(list_for_patient))
}

/// One step of a notice's contact plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub channel: String,
    pub status: String,
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    #[serde(flatten)]
    pub notice: Notice,
    /// The contact plan's steps in order; empty until the escalation engine plans the notice.
    pub steps: Vec<StepView>,
}

#[utoipa::path(get, path = "/notices/{id}", tag = "notices",
    responses((status = 200, body = NoticeView), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<NoticeView>> {
    if let Err(e) = caller.require(roles::READ_APPOINTMENT, "read notices") {
        return Err(denied(&ctx, &caller, "notice.read", None, e).await);
    }
    let mut tx = ctx.store.begin().await?;
    let notice = notices::get(&mut tx, id).await?;
    if kontaktvei_store::patients::get_visible(&mut tx, caller.organisation_id, notice.patient_id)
        .await
        .is_err()
    {
        return Err(denied(
            &ctx,
            &caller,
            "notice.read",
            Some(notice.patient_id),
            ApiError::NotFound("notice"),
        )
        .await);
    }
    audit(
        &ctx,
        &mut tx,
        &caller,
        "notice.read",
        Some(notice.patient_id),
        Some(id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(NoticeView {
        notice,
        steps: Vec::new(),
    }))
}

/// The patient's notices, newest first.
#[utoipa::path(get, path = "/patients/{id}/notices", tag = "notices", responses((status = 200, body = Items<Notice>)))]
pub async fn list_for_patient(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Items<Notice>>> {
    let mut tx = ctx.store.begin().await?;
    visible_patient(
        &ctx,
        &mut tx,
        &caller,
        id,
        roles::READ_APPOINTMENT,
        "read notices",
        "notice.list",
    )
    .await?;
    let items = notices::for_patient(&mut tx, id).await?;
    audit(&ctx, &mut tx, &caller, "notice.list", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}
