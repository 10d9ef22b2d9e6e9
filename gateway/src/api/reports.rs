//! The reach report on real data: of the notices an organisation made in a period, the share
//! acknowledged before the appointment, by which channel, how fast, how many ended with a named
//! person and how many in silence; which contact points failed; which patients have no working
//! way to reach them; hand-overs still open. The same measures as the reach simulation.

use super::roles;
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::ApiQuery;
use crate::problem::{ApiError, ApiResult};
use axum::extract::State;
use axum::routing;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use kontaktvei_store::Id;
use kontaktvei_store::reports::{self, Reach};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppContext> {
    Router::new().route("/reports/reach", routing::get(reach))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReachQuery {
    /// Notices made from (RFC 3339); default 30 days before `to`.
    from: Option<DateTime<Utc>>,
    /// …until (exclusive); default now.
    to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientRef {
    pub id: Id,
    pub name: String,
    pub birth_year: i32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReachReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(flatten)]
    pub reach: Reach,
    /// Contact points of the organisation's patients that failed in the period.
    pub failed_contact_points: i64,
    /// How many of the organisation's patients have no working contact point now…
    pub patients_without_working_contact_point: i64,
    /// …and who they are (at most 1,000), for roles that may see patient records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patients_without_working_contact_point_list: Option<Vec<PatientRef>>,
    /// Hand-overs offered by or to the organisation, not yet answered.
    pub open_handovers: i64,
}

/// The organisation's reach report for a period.
#[utoipa::path(get, path = "/reports/reach", tag = "reports", params(ReachQuery),
    responses((status = 200, body = ReachReport), (status = 403, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn reach(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReachQuery>,
) -> ApiResult<Json<ReachReport>> {
    caller.require(roles::READ_REPORT, "read the reach report")?;
    let now = ctx.clock.now();
    let to = q.to.unwrap_or(now);
    let from = q.from.unwrap_or(to - TimeDelta::days(30));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    if to - from > TimeDelta::days(366) {
        return Err(ApiError::invalid(
            "from",
            "a report covers at most 366 days; ask for a shorter period",
        ));
    }
    let mut tx = ctx.store.begin().await?;
    let reach = reports::reach(&mut tx, Some(caller.organisation_id), from, to, now).await?;
    let r = reports::reachability(&mut tx, caller.organisation_id, from, to, now).await?;
    // Names only for those who may read patient records; every name shown is a read.
    let list = if caller.require(roles::READ_APPOINTMENT, "").is_ok() {
        let named = reports::read_patients(
            &mut tx,
            &r.patients_without_working_contact_point,
            &caller.actor(),
            now,
        )
        .await?;
        Some(
            named
                .into_iter()
                .map(|p| PatientRef {
                    id: p.id,
                    name: p.name,
                    birth_year: p.birth_year,
                })
                .collect(),
        )
    } else {
        None
    };
    tx.commit().await?;
    Ok(Json(ReachReport {
        from,
        to,
        reach,
        failed_contact_points: r.failed_contact_points,
        patients_without_working_contact_point: r.patients_without_working_contact_point.len()
            as i64,
        patients_without_working_contact_point_list: list,
        open_handovers: r.open_handovers,
    }))
}
