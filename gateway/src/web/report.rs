//! Rapport (`/staff/rapport`): the reach report for coordinators and admins (and the clinic that
//! books) — the last 30 days by default, or a period they choose: how many notices reached the
//! patient before the appointment, through which channel, how fast, how many ended held by a
//! named person or in silence; failed contact points; patients with no working way to reach
//! them (named, each read audited); open hand-overs. The same measures as the API and the
//! reach simulation.

use super::start::staff_context;
use super::{Page, StaffSession, WebError};
use crate::api::roles;
use crate::context::AppContext;
use axum::extract::{Query, State};
use chrono::{NaiveDate, NaiveTime, TimeDelta};
use kontaktvei_scheduler::calendar::{oslo_date, oslo_instant};
use kontaktvei_store::audit::Actor;
use kontaktvei_store::{organisations, reports};
use minijinja::context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct Period {
    fra: Option<String>,
    til: Option<String>,
}

fn channel_label(c: &str) -> &str {
    match c {
        "sms" => "SMS",
        "letter" => "brev",
        "relay" => "lavterskeltilbud",
        "outreach" => "oppsøkende team",
        "coordinator" => "koordinator",
        "next_of_kin" => "pårørende",
        "direct" => "direkte (kode ved skranken eller lenke)",
        other => other,
    }
}

pub async fn show(
    State(ctx): State<AppContext>,
    session: StaffSession,
    Query(p): Query<Period>,
) -> Result<Page, WebError> {
    if !roles::READ_REPORT.roles.contains(&session.role) {
        return Err(WebError::Refused(
            "Rapporten er for koordinatorer, poliklinikker og administratorer.".into(),
        ));
    }
    let now = ctx.clock.now();
    let today = oslo_date(now);
    let parse = |s: &Option<String>, default: NaiveDate| -> Result<NaiveDate, WebError> {
        match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                WebError::Refused(format!("«{s}» er ikke en dato; skriv den som 2026-03-31."))
            }),
        }
    };
    let til = parse(&p.til, today)?;
    let fra = parse(&p.fra, til - TimeDelta::days(30))?;
    if fra > til || til - fra > TimeDelta::days(366) {
        return Err(WebError::Refused(
            "Velg en periode der fra-datoen er før til-datoen, og som er høyst ett år.".into(),
        ));
    }
    let from = oslo_instant(fra, NaiveTime::MIN);
    let to = oslo_instant(til + TimeDelta::days(1), NaiveTime::MIN);
    let mut tx = ctx.store.begin().await?;
    let reach = reports::reach(&mut tx, Some(session.organisation_id), from, to, now).await?;
    let r = reports::reachability(&mut tx, session.organisation_id, from, to, now).await?;
    // Names only for those who may read patient records (not a low-threshold service).
    let kind = organisations::get(&mut tx, session.organisation_id)
        .await?
        .kind;
    let may_see_names = roles::READ_APPOINTMENT.allows(session.role, kind);
    let mut unreachable = Vec::new();
    if may_see_names {
        let actor = Actor {
            organisation_id: Some(session.organisation_id),
            label: format!("staff:{}", session.staff_id),
            request_id: None,
        };
        let ids = &r.patients_without_working_contact_point;
        for p in reports::read_patients(&mut tx, ids, &actor, now).await? {
            unreachable.push(format!("{}, født {}", p.name, p.birth_year));
        }
    }
    tx.commit().await?;
    let channels: Vec<_> = reach
        .reached_by_channel
        .iter()
        .map(|(c, n)| context! { label => channel_label(c), count => n })
        .collect();
    Ok(Page::new(
        "report.html",
        context! {
            title => "Rapport",
            fra => fra.to_string(),
            til => til.to_string(),
            notices => reach.notices,
            in_flight => reach.in_flight,
            acknowledged => reach.acknowledged,
            in_time => format!("{:.1} %", reach.acked_before_appointment * 100.0).replace('.', ","),
            to_human => reach.handed_over_to_human,
            silent => reach.silent_ends,
            median => reach.median_hours_to_ack.map(|h| format!("{h:.1} timer").replace('.', ",")),
            channels,
            failed => r.failed_contact_points,
            unreachable_count => r.patients_without_working_contact_point.len(),
            unreachable,
            may_see_names,
            open_handovers => r.open_handovers,
            ..staff_context(&session)
        },
    ))
}
