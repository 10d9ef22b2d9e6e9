//! Notices: what the patient is owed, and every step taken to reach them — which channel,
//! through which contact point, when, what happened, and why a step was skipped.

use super::{Items, audit, roles, visible_patient};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::Ids;
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::routing;
use axum::{Json, Router};
use kontaktvei_channels::sms::segments::{self, Segments};
use kontaktvei_store::acks::{self, Ack};
use kontaktvei_store::inbound::InboundMessage;
use kontaktvei_store::notices::{self, Notice};
use kontaktvei_store::steps::{self, Step, StepEvent};
use kontaktvei_store::tasks::{self, Task};
use serde::Serialize;

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/notices/{id}", routing::get(get))
        .route("/patients/{id}/notices", routing::get(list_for_patient))
}

/// One step of a notice's contact plan, with what happened to it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepView {
    #[serde(flatten)]
    pub step: Step,
    /// Every state and report, in order: which provider took it, each delivery report.
    pub history: Vec<StepEvent>,
    /// For an SMS: its encoding and how many segments it takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsInfo>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SmsInfo {
    #[serde(flatten)]
    pub segments: Segments,
    /// Set when the text needs more than three segments (costly, and may arrive in pieces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    #[serde(flatten)]
    pub notice: Notice,
    /// The contact plan's steps in order.
    pub steps: Vec<StepView>,
    /// How and by whom it was acknowledged, once it is.
    pub ack: Option<Ack>,
    /// Work for people created for this notice.
    pub tasks: Vec<Task>,
    /// SMS from the patient's phone about this notice: acks, replies for staff, STOP.
    pub replies: Vec<InboundMessage>,
}

#[utoipa::path(get, path = "/notices/{id}", tag = "notices",
    responses((status = 200, body = NoticeView), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<NoticeView>> {
    let notice = {
        let mut tx = ctx.store.begin_read().await?;
        let notice = notices::get(&mut tx, id).await?;
        tx.commit().await?;
        notice
    };
    visible_patient(
        &ctx,
        &caller,
        notice.patient_id,
        roles::READ_APPOINTMENT,
        "read notices",
        "notice.read",
    )
    .await
    .map_err(|e| {
        if matches!(e, ApiError::NotFound(_)) {
            ApiError::NotFound("notice")
        } else {
            e
        }
    })?;
    let mut tx = ctx.store.begin().await?;
    let all_steps = steps::for_notice(&mut tx, id).await?;
    let events = steps::events_for_notice(&mut tx, id).await?;
    let steps = all_steps
        .into_iter()
        .map(|step| {
            let history = events
                .iter()
                .filter(|e| e.step_id == step.id)
                .cloned()
                .collect();
            let sms = (step.channel == kontaktvei_store::steps::ChannelKind::Sms)
                .then(|| step.body.as_deref().map(segments::count))
                .flatten()
                .map(|segments| SmsInfo {
                    warning: (segments.segments > segments::WARN_ABOVE)
                        .then(|| format!("the text needs {} SMS segments", segments.segments)),
                    segments,
                });
            StepView { step, history, sms }
        })
        .collect();
    let ack = acks::for_notice(&mut tx, id).await?;
    let tasks = tasks::for_notice(&mut tx, id).await?;
    let replies = kontaktvei_store::inbound::for_notice(&mut tx, id).await?;
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
        steps,
        ack,
        tasks,
        replies,
    }))
}

/// The patient's notices, newest first.
#[utoipa::path(get, path = "/patients/{id}/notices", tag = "notices", responses((status = 200, body = Items<Notice>)))]
pub async fn list_for_patient(
    State(ctx): State<AppContext>,
    caller: Caller,
    Ids([id]): Ids<1>,
) -> ApiResult<Json<Items<Notice>>> {
    visible_patient(
        &ctx,
        &caller,
        id,
        roles::READ_APPOINTMENT,
        "read notices",
        "notice.list",
    )
    .await?;
    let mut tx = ctx.store.begin().await?;
    let items = notices::for_patient(&mut tx, id).await?;
    audit(&ctx, &mut tx, &caller, "notice.list", Some(id), None).await?;
    tx.commit().await?;
    Ok(Json(Items::all(items)))
}
