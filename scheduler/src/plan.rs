//! Contact plans: which channel, through which contact point, and when — decided once, when the
//! notice is created, and stored as its steps.
//!
//! The plan walks the policy's chain (by default sms → letter → relay → outreach). Each step
//! needs a live contact point of its kind; it must be able to reach the patient before the
//! notice's deadline (the appointment), given that every earlier step may run its full window
//! first. A step that cannot is `skipped` with its reason, and the plan moves on. The last step
//! is always a person: without a relay or outreach step the patient's coordinator gets the task.

use crate::calendar::{
    PostalCalendar, WeeklyHours, add_working_days, next_print_cutoff, oslo_instant,
};
use crate::policy::Policy;
use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Europe::Oslo;
use kontaktvei_store::Id;
use kontaktvei_store::contact_points::{ContactKind, ContactPoint, ContactStatus};
use kontaktvei_store::steps::{ChannelKind, NewStep, StepStatus};
use std::collections::HashMap;

/// Why a step was skipped. Stored as its `reason`.
pub mod reason {
    pub const NO_CONTACT_POINT: &str = "no_contact_point";
    pub const CONTACT_POINT_FAILED: &str = "contact_point_failed";
    pub const CONTACT_POINT_EXPIRED: &str = "contact_point_expired";
    /// The patient asked us to stop SMS to the number; a person must decide first.
    pub const CONTACT_POINT_PAUSED: &str = "contact_point_paused";
    pub const TOO_LATE: &str = "too_late";
    pub const NEVER_OPEN_IN_TIME: &str = "service_not_open_before_deadline";
}

/// How long before the appointment a person must hold an unanswered notice: windows of
/// automatic steps end then, and a person's task must be claimed by then.
pub const PERSON_MARGIN: TimeDelta = TimeDelta::hours(1);

/// When a person's task made at `from` must be claimed: within the policy's claim window, and
/// an hour before the appointment at the latest (at once, if that has passed).
pub fn claim_by(
    from: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    policy: &Policy,
) -> DateTime<Utc> {
    let window = from + policy.outreach_claim_window();
    deadline
        .filter(|_| policy.latency_aware)
        .map_or(window, |d| window.min(d - PERSON_MARGIN))
        .max(from)
}

/// What the plan is made from.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub now: DateTime<Utc>,
    /// The notice is useless after this (the appointment's start); `None` for a follow-up.
    pub deadline: Option<DateTime<Utc>>,
    pub contact_points: &'a [ContactPoint],
    pub policy: &'a Policy,
    pub postal: &'a PostalCalendar,
    /// Opening hours of the organisations that relay messages, by id.
    pub opening_hours: &'a HashMap<Id, WeeklyHours>,
}

/// The latest time letters are delivered in the day; a letter "arrives" at this hour.
fn delivery_time() -> NaiveTime {
    NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default()
}

/// The end of a working day, for windows counted in working days.
fn end_of_day() -> NaiveTime {
    NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default()
}

/// The best live contact point of a kind: confirmed before merely active, then the most
/// recently verified, then the newest. Also reports why none is usable.
fn pick(
    points: &[ContactPoint],
    kind: ContactKind,
    now: DateTime<Utc>,
) -> Result<&ContactPoint, &'static str> {
    let of_kind: Vec<&ContactPoint> = points
        .iter()
        .filter(|c| c.kind == kind && c.status != ContactStatus::Retired)
        .collect();
    let live = of_kind
        .iter()
        .copied()
        .filter(|c| c.is_live(now))
        .max_by_key(|c| {
            (
                c.status == ContactStatus::Confirmed,
                c.verified_at,
                c.created_at,
            )
        });
    match live {
        Some(c) => Ok(c),
        None if of_kind.iter().any(|c| c.status == ContactStatus::Failed) => {
            Err(reason::CONTACT_POINT_FAILED)
        }
        None if of_kind.iter().any(|c| c.status == ContactStatus::Paused) => {
            Err(reason::CONTACT_POINT_PAUSED)
        }
        None if !of_kind.is_empty() => Err(reason::CONTACT_POINT_EXPIRED),
        None => Err(reason::NO_CONTACT_POINT),
    }
}

fn skipped(channel: ChannelKind, contact_point_id: Option<Id>, why: &str) -> NewStep {
    NewStep {
        channel,
        contact_point_id,
        status: StepStatus::Skipped,
        reason: Some(why.to_owned()),
        due_at: None,
        window_ends_at: None,
        body: None,
    }
}

fn planned(
    channel: ChannelKind,
    contact_point_id: Option<Id>,
    due_at: DateTime<Utc>,
    window_ends_at: DateTime<Utc>,
) -> NewStep {
    NewStep {
        channel,
        contact_point_id,
        status: StepStatus::Planned,
        reason: None,
        due_at: Some(due_at),
        window_ends_at: Some(window_ends_at),
        body: None,
    }
}

/// When a step of `channel` through `cp` could start at or after `from`, and when its wait for
/// an acknowledgement would end. `None` if it could not reach the patient before the deadline.
pub fn timing(
    channel: ChannelKind,
    cp: Option<&ContactPoint>,
    from: DateTime<Utc>,
    input: &PlanInput<'_>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), &'static str> {
    let policy = input.policy;
    // A chain blind to latency (a baseline in the reach simulation) ignores the appointment.
    let deadline = input.deadline.filter(|_| policy.latency_aware);
    let before_deadline = |t: DateTime<Utc>| deadline.is_none_or(|d| t < d);
    // A window ends an hour before the appointment (never before the step starts), so a person
    // holds an unanswered notice by the time it begins.
    let cap = |start: DateTime<Utc>, t: DateTime<Utc>| {
        deadline.map_or(t, |d| t.min(d - PERSON_MARGIN)).max(start)
    };
    match channel {
        ChannelKind::Sms | ChannelKind::NextOfKin => {
            let start = policy.quiet_hours().not_quiet(from);
            if !before_deadline(start) {
                return Err(reason::TOO_LATE);
            }
            Ok((start, cap(start, start + policy.sms_window())))
        }
        ChannelKind::Letter => {
            let postal_code = cp
                .and_then(|c| c.address.as_ref())
                .map(|a| a.postal_code.as_str())
                .unwrap_or("");
            let print = next_print_cutoff(from, policy.print_cutoff);
            let posted_on = print.with_timezone(&Oslo).date_naive();
            // Plan on the late end of Posten's spread (D+5: 97 % delivered), not the hopeful D+2.
            let (_, latest) = input.postal.delivery_window(postal_code, posted_on);
            let arrives = oslo_instant(latest, delivery_time());
            if !before_deadline(arrives) {
                return Err(reason::TOO_LATE);
            }
            let window = oslo_instant(
                add_working_days(latest, policy.letter_ack_working_days),
                end_of_day(),
            );
            Ok((print, cap(arrives, window)))
        }
        ChannelKind::Relay => {
            let hours = cp
                .and_then(|c| c.organisation_id)
                .and_then(|id| input.opening_hours.get(&id));
            let horizon = input
                .deadline
                .map_or(TimeDelta::days(14), |d| (d - from).max(TimeDelta::zero()));
            // A service with no opening hours recorded is taken at its word that staff are there.
            let start = match hours {
                Some(h) => h
                    .next_open(from, Oslo, horizon)
                    .ok_or(reason::NEVER_OPEN_IN_TIME)?,
                None => from,
            };
            if !before_deadline(start) {
                return Err(reason::TOO_LATE);
            }
            // The window ends when the service closes for the last time within it.
            let window = start + policy.relay_window();
            let end = hours
                .and_then(|h| h.last_closing(start, window, Oslo))
                .unwrap_or(window);
            Ok((start, cap(start, end)))
        }
        ChannelKind::Outreach | ChannelKind::Coordinator => {
            // People can still act after the deadline (a missed appointment needs follow-up too),
            // so human steps are never too late; a task must be claimed in time to act.
            Ok((from, claim_by(from, deadline, policy)))
        }
    }
}

/// The plan for a notice, in order. Every step is either `planned` (with when it would start
/// if all earlier steps ran their full window, and when its window would end) or `skipped`
/// with a reason. The first planned step is the one to run now.
pub fn build(input: &PlanInput<'_>) -> Vec<NewStep> {
    let mut steps = Vec::new();
    let mut cursor = input.now;
    for &channel in &input.policy.chain {
        let contact_kind = match channel {
            ChannelKind::Sms => ContactKind::Sms,
            ChannelKind::Letter => ContactKind::Postal,
            ChannelKind::Relay => ContactKind::Relay,
            ChannelKind::Outreach => ContactKind::Outreach,
            ChannelKind::NextOfKin => ContactKind::NextOfKin,
            ChannelKind::Coordinator => {
                continue;
            }
        };
        let cp = match pick(input.contact_points, contact_kind, input.now) {
            Ok(cp) => cp,
            Err(why) => {
                steps.push(skipped(channel, None, why));
                continue;
            }
        };
        match timing(channel, Some(cp), cursor, input) {
            Ok((start, window_end)) => {
                let mut step = planned(channel, Some(cp.id), start, window_end);
                if channel.held_by_a_person() {
                    // Held until a person closes it; it must be claimed by `window_end`.
                    step.window_ends_at = None;
                }
                steps.push(step);
                cursor = window_end;
            }
            Err(why) => steps.push(skipped(channel, Some(cp.id), why)),
        }
    }
    let ends_with_person = steps
        .iter()
        .rev()
        .find(|s| s.status == StepStatus::Planned)
        .is_some_and(|s| s.channel.is_human());
    if !ends_with_person && input.policy.person_last {
        // Never end in silence: the coordinator decides what happens next. Their task has no
        // window: it stays theirs until they close it.
        let mut step = planned(ChannelKind::Coordinator, None, cursor, cursor);
        step.window_ends_at = None;
        steps.push(step);
    }
    steps
}
