//! The reach report: of the notices created in a period, how many reached the patient before
//! the appointment, through which channel and how fast, how many ended with a named person
//! holding them, and how many ended in silence. One definition, used by the product's report
//! (`GET /api/v1/reports/reach`) and by the reach simulation for each strategy.
//!
//! A notice is *finished* once its appointment has begun (or, without one, once it closed);
//! one still running before its appointment is *in flight* and not judged yet, and one replaced
//! before its appointment (a new time, a cancellation) is not judged at all. A finished notice
//! that was not acknowledged either had a named person holding it when its run ended (it was
//! taken over, or a person held one of its tasks) or it ended in **silence** — what kontaktvei
//! exists to prevent.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use crate::id::Id;
use crate::notices::NoticeStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Reach {
    /// Notices created in the period.
    pub notices: i64,
    /// Still running before their appointment: not judged yet.
    pub in_flight: i64,
    /// Replaced by a later notice about the same appointment (a new time, a cancellation).
    pub superseded: i64,
    pub acknowledged: i64,
    /// Of the finished appointment notices (not superseded), the share acknowledged before the
    /// appointment began (0–1).
    pub acked_before_appointment: f64,
    /// Finished without an acknowledgement, held by a named person when its run ended (its
    /// appointment, or for a notice without one, when it closed): taken over, or one of its
    /// tasks claimed by or given to them.
    pub handed_over_to_human: i64,
    /// Finished with neither an acknowledgement nor a named person holding them.
    pub silent_ends: i64,
    /// From the notice's creation to its acknowledgement.
    pub median_hours_to_ack: Option<f64>,
    /// Acknowledgements by the channel of the step they came through (`direct`: no step).
    pub reached_by_channel: BTreeMap<String, i64>,
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    status: NoticeStatus,
    deadline: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    holder_staff_id: Option<Id>,
    ack_at: Option<DateTime<Utc>>,
    ack_channel: Option<String>,
    held: bool,
    /// An automatic step is still at work (a notice without an appointment is in flight then).
    running: bool,
}

/// Each notice with its acknowledgement and whether a named person held one of its tasks at the
/// moment its run ended (its appointment; without one, when it closed, or `as_of`).
async fn rows(
    tx: &mut Tx,
    organisation_id: Option<Id>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    as_of: DateTime<Utc>,
) -> Result<Vec<Row>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT n.status, n.deadline, n.created_at, n.closed_at, n.holder_staff_id,
                    a.at AS ack_at, s.channel AS ack_channel,
                    EXISTS (SELECT 1 FROM tasks t WHERE t.notice_id = n.id
                            AND t.assignee_id IS NOT NULL AND t.claimed_at IS NOT NULL
                            AND t.claimed_at <= COALESCE(n.deadline, n.closed_at, $4)
                            AND (t.closed_at IS NULL OR t.closed_at >= COALESCE(n.deadline, n.closed_at, $4))) AS held,
                    EXISTS (SELECT 1 FROM steps w WHERE w.notice_id = n.id
                            AND w.status IN ('planned', 'queued', 'sending', 'sent', 'delivered')
                            AND w.channel IN ('sms', 'letter', 'relay', 'next_of_kin')) AS running
             FROM notices n
             LEFT JOIN acks a ON a.notice_id = n.id
             LEFT JOIN steps s ON s.id = a.step_id
             WHERE ($1 IS NULL OR n.organisation_id = $1) AND n.created_at >= $2 AND n.created_at < $3
             ORDER BY n.id",
        )
        .bind(organisation_id)
        .bind(from)
        .bind(to)
        .bind(as_of)
        .fetch_all(c)
        .await?
    }))
}

/// The reach of the notices created in `[from, to)` (of one organisation, or all), judged as
/// of `as_of`.
pub async fn reach(
    tx: &mut Tx,
    organisation_id: Option<Id>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    as_of: DateTime<Utc>,
) -> Result<Reach> {
    Ok(summarise(
        &rows(tx, organisation_id, from, to, as_of).await?,
        as_of,
    ))
}

/// Reach over time: of the finished appointment notices (as judged in [`reach`]), the share
/// acknowledged within each number of hours after the notice was made, every `step` hours up
/// to `max`.
pub async fn ack_curve(
    tx: &mut Tx,
    organisation_id: Option<Id>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    as_of: DateTime<Utc>,
    step: u32,
    max: u32,
) -> Result<Vec<(u32, f64)>> {
    let rows = rows(tx, organisation_id, from, to, as_of).await?;
    let judged: Vec<&Row> = rows.iter().filter(|r| is_judged(r, as_of)).collect();
    let mut hours: Vec<f64> = judged
        .iter()
        .filter_map(|r| {
            r.ack_at
                .map(|at| (at - r.created_at).num_seconds() as f64 / 3600.0)
        })
        .collect();
    hours.sort_by(f64::total_cmp);
    let total = judged.len().max(1) as f64;
    Ok((0..=max)
        .step_by(step.max(1) as usize)
        .map(|h| {
            let within = hours.partition_point(|x| *x <= f64::from(h));
            (h, (within as f64 / total * 10_000.0).round() / 10_000.0)
        })
        .collect())
}

/// An appointment notice whose run is over and that was not replaced.
fn is_judged(row: &Row, as_of: DateTime<Utc>) -> bool {
    row.deadline.is_some() && !replaced(row) && !in_flight(row, as_of)
}

/// Replaced before its appointment by a newer notice (a new time, a cancellation): not judged.
/// A notice closed by the attendance record, after the appointment began, is judged like any
/// other whose appointment came.
fn replaced(row: &Row) -> bool {
    row.status == NoticeStatus::Superseded
        && match (row.closed_at, row.deadline) {
            (Some(closed), Some(deadline)) => closed < deadline,
            _ => true,
        }
}

/// Still running before its appointment (or, without one, still with the machine).
fn in_flight(row: &Row, as_of: DateTime<Utc>) -> bool {
    row.status.is_open()
        && match row.deadline {
            Some(d) => d > as_of,
            None => row.running,
        }
}

fn summarise(rows: &[Row], as_of: DateTime<Utc>) -> Reach {
    let mut r = Reach {
        notices: rows.len() as i64,
        in_flight: 0,
        superseded: 0,
        acknowledged: 0,
        acked_before_appointment: 0.0,
        handed_over_to_human: 0,
        silent_ends: 0,
        median_hours_to_ack: None,
        reached_by_channel: BTreeMap::new(),
    };
    let mut hours = Vec::new();
    let (mut judged, mut in_time) = (0_i64, 0_i64);
    for row in rows {
        if let Some(at) = row.ack_at {
            r.acknowledged += 1;
            hours.push((at - row.created_at).num_seconds() as f64 / 3600.0);
            let channel = row.ack_channel.clone().unwrap_or_else(|| "direct".into());
            *r.reached_by_channel.entry(channel).or_default() += 1;
        }
        if replaced(row) {
            r.superseded += 1;
            continue;
        }
        if in_flight(row, as_of) {
            r.in_flight += 1;
            continue;
        }
        if let Some(deadline) = row.deadline {
            judged += 1;
            if row.ack_at.is_some_and(|at| at < deadline) {
                in_time += 1;
            }
        }
        if row.ack_at.is_some() {
            continue;
        }
        // A named person took it over, or held one of its tasks when its run ended.
        let named =
            (row.status == NoticeStatus::HandedOver && row.holder_staff_id.is_some()) || row.held;
        if named {
            r.handed_over_to_human += 1;
        } else {
            r.silent_ends += 1;
        }
    }
    if judged > 0 {
        // Rounded so the same data always prints the same figure.
        r.acked_before_appointment = (in_time as f64 / judged as f64 * 10_000.0).round() / 10_000.0;
    }
    if !hours.is_empty() {
        hours.sort_by(f64::total_cmp);
        let mid = hours.len() / 2;
        let median = if hours.len() % 2 == 0 {
            (hours[mid - 1] + hours[mid]) / 2.0
        } else {
            hours[mid]
        };
        r.median_hours_to_ack = Some((median * 100.0).round() / 100.0);
    }
    r
}

/// How an organisation's patients can be reached now: contact points that failed in the
/// period, and the patients it sees with no working contact point at all.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reachability {
    pub failed_contact_points: i64,
    /// Patients shared with the organisation whose every contact point failed, was retired,
    /// paused or expired (or who have none).
    pub patients_without_working_contact_point: Vec<Id>,
    /// Hand-overs offered by or to the organisation and not yet answered.
    pub open_handovers: i64,
}

pub async fn reachability(
    tx: &mut Tx,
    organisation_id: Id,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Reachability> {
    Ok(on_tx!(tx, |c| {
        // A failed contact point's failure time is not stored; its step's failure is.
        let failed_contact_points: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM contact_points cp
             JOIN patient_shares ps ON ps.patient_id = cp.patient_id AND ps.organisation_id = $1
             WHERE cp.status = 'failed' AND cp.created_at < $3
               AND EXISTS (SELECT 1 FROM steps s WHERE s.contact_point_id = cp.id AND s.status = 'failed'
                           AND s.updated_at >= $2 AND s.updated_at < $3)",
        )
        .bind(organisation_id)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *c)
        .await?;
        let unreachable: Vec<Id> = sqlx::query_scalar(
            "SELECT p.id FROM patients p
             JOIN patient_shares ps ON ps.patient_id = p.id AND ps.organisation_id = $1
             WHERE NOT EXISTS (SELECT 1 FROM contact_points cp WHERE cp.patient_id = p.id
                               AND cp.status IN ('active', 'confirmed')
                               AND (cp.expires_at IS NULL OR cp.expires_at > $2))
             ORDER BY p.id LIMIT 1000",
        )
        .bind(organisation_id)
        .bind(now)
        .fetch_all(&mut *c)
        .await?;
        let open_handovers: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM handovers WHERE status = 'offered'
               AND (from_organisation_id = $1 OR to_organisation_id = $1)",
        )
        .bind(organisation_id)
        .fetch_one(&mut *c)
        .await?;
        Reachability {
            failed_contact_points,
            patients_without_working_contact_point: unreachable,
            open_handovers,
        }
    }))
}

/// The report's patients by name, for someone who may read their records: each one shown is a
/// read, written to the audit log as `report.reach`.
pub async fn read_patients(
    tx: &mut Tx,
    ids: &[Id],
    actor: &crate::audit::Actor,
    now: DateTime<Utc>,
) -> Result<Vec<crate::patients::Patient>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let p = crate::patients::get(tx, *id).await?;
        crate::audit::record(
            tx,
            actor,
            "report.reach",
            Some(p.id),
            None,
            crate::audit::Outcome::Allowed,
            now,
        )
        .await?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn row(status: NoticeStatus, deadline_h: Option<i64>, ack_h: Option<i64>) -> Row {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        Row {
            status,
            deadline: deadline_h.map(|h| t0 + TimeDelta::hours(h)),
            created_at: t0,
            closed_at: None,
            holder_staff_id: None,
            ack_at: ack_h.map(|h| t0 + TimeDelta::hours(h)),
            ack_channel: ack_h.map(|_| "sms".into()),
            held: false,
            running: false,
        }
    }

    #[test]
    fn each_notice_is_judged_once() {
        use NoticeStatus::*;
        let as_of = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::hours(100);
        let mut held = row(Active, Some(50), None);
        held.held = true;
        let rows = vec![
            row(Acknowledged, Some(50), Some(2)),  // in time
            row(Acknowledged, Some(50), Some(60)), // late
            row(Active, Some(50), None),           // silent: the appointment came and went
            row(Active, Some(500), None),          // in flight
            row(Superseded, Some(50), None),       // replaced
            held,                                  // a person holds it
            row(Active, None, None),               // no deadline, nobody: silent
        ];
        let r = summarise(&rows, as_of);
        assert_eq!(r.notices, 7);
        assert_eq!(r.in_flight, 1);
        assert_eq!(r.superseded, 1);
        assert_eq!(r.acknowledged, 2);
        assert_eq!(
            r.acked_before_appointment, 0.25,
            "1 of the 4 judged appointment notices"
        );
        assert_eq!(r.handed_over_to_human, 1);
        assert_eq!(r.silent_ends, 2);
        assert_eq!(r.median_hours_to_ack, Some(31.0));
        assert_eq!(r.reached_by_channel.get("sms"), Some(&2));
    }
}
