//! The escalation rule walked through in virtual time, against the real store on SQLite and
//! (when `KONTAKTVEI_TEST_DATABASE_URL` is set; required under `CI=true`) PostgreSQL. Each test
//! reads like a sentence of DESIGN.md's escalation rule.

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use common::{FreshDb, both};
use kontaktvei_scheduler::calendar::PostalCalendar;
use kontaktvei_scheduler::cron::Cron;
use kontaktvei_scheduler::{Engine, EngineConfig};

use kontaktvei_scheduler::human::{Closing, Offer, Person};
use kontaktvei_store::acks::AckMethod;
use kontaktvei_store::appointments::{self, AppointmentStatus};
use kontaktvei_store::contact_points::{self, NewContactPoint};
use kontaktvei_store::due::DueWork;
use kontaktvei_store::handovers;
use kontaktvei_store::handovers::{HandoverStatus, SubjectKind};
use kontaktvei_store::notices::{self, Notice, NoticeStatus};
use kontaktvei_store::notifications::{self, NotificationKind};
use kontaktvei_store::organisations::{self, NewOrganisation, OrganisationKind};
use kontaktvei_store::patients::{self, NewPatient};
use kontaktvei_store::staff::{self, NewStaff, Role};
use kontaktvei_store::steps::{self, ChannelKind, Step, StepStatus};
use kontaktvei_store::tasks::{NewAttempt, TaskKind, TaskOutcome, TaskPriority, TaskStatus};
use kontaktvei_store::{Clock, Id, ManualClock, Store, outbox, tasks};
use std::sync::Arc;

struct World {
    store: Store,
    clock: Arc<ManualClock>,
    engine: Arc<Engine>,
    cron: Cron,
    clinic: Id,
    service: Id,
    team: Id,
}

/// Oslo wall-clock time.
fn oslo(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Oslo.with_ymd_and_hms(y, m, d, h, min, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

impl World {
    async fn new(store: Store, start: DateTime<Utc>) -> World {
        let clock = Arc::new(ManualClock::new(start));
        let engine = Arc::new(Engine::new(
            store.clone(),
            clock.clone(),
            EngineConfig {
                public_base_url: "http://127.0.0.1:8080".into(),
                instance: "test".into(),
                postal: PostalCalendar::default(),
            },
        ));
        let mut tx = store.begin().await.unwrap();
        let org = |name: &str, kind| NewOrganisation {
            name: name.into(),
            kind,
            time_zone: "Europe/Oslo".into(),
            staff_email: None,
        };
        let clinic =
            organisations::create(&mut tx, org("Poliklinikk", OrganisationKind::Clinic), start)
                .await
                .unwrap()
                .id;
        let service = organisations::create(
            &mut tx,
            org("Dagsenteret", OrganisationKind::LowThresholdService),
            start,
        )
        .await
        .unwrap()
        .id;
        let team =
            organisations::create(&mut tx, org("FACT", OrganisationKind::OutreachTeam), start)
                .await
                .unwrap()
                .id;
        tx.commit().await.unwrap();
        let cron = Cron::new(engine.clone(), "test");
        World {
            store,
            clock,
            engine,
            cron,
            clinic,
            service,
            team,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A patient with the given kinds of contact points.
    async fn patient(&self, kinds: &[&str]) -> Id {
        let now = self.now();
        let mut tx = self.store.begin().await.unwrap();
        let new = NewPatient {
            name: "Kari Nordmann".into(),
            birth_year: Some(1979),
            birth_date: None,
            language: None,
            contact_notes: String::new(),
            national_id: None,
            coordinator_id: None,
        };
        let p = patients::create(&mut tx, self.clinic, new, now)
            .await
            .unwrap();
        for kind in kinds {
            let json = match *kind {
                "sms" => {
                    serde_json::json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient"})
                }
                "postal" => {
                    serde_json::json!({"kind": "postal", "lines": ["Kari Nordmann", "c/o Kirkens Bymisjon", "Storgata 1"], "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"})
                }
                "relay" => {
                    serde_json::json!({"kind": "relay", "organisation_id": self.service, "provenance": "verified_in_person"})
                }
                "outreach" => {
                    serde_json::json!({"kind": "outreach", "organisation_id": self.team, "provenance": "verified_in_person"})
                }
                other => panic!("{other}"),
            };
            let new: NewContactPoint = serde_json::from_value(json).unwrap();
            contact_points::add(&mut tx, p.id, new, "test", now)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        p.id
    }

    /// Books an appointment at `starts_at` and plans its notice, as the gateway does.
    async fn book(&self, patient_id: Id, starts_at: DateTime<Utc>) -> Notice {
        common::book_and_plan(
            &self.store,
            &self.engine,
            self.clinic,
            patient_id,
            starts_at,
        )
        .await
    }

    /// What the worker does each round: the engine, then the scheduled jobs that are due.
    async fn run(&self) {
        self.due_work_is_what_a_round_finds().await;
        self.engine.run_until_idle().await.unwrap();
        self.cron.run_due(self.now()).await.unwrap();
        self.due_work_is_what_a_round_finds().await;
        self.engine.run_until_idle().await.unwrap();
    }

    /// The engine's one-statement question "is anything due?" gives the answer of the queries
    /// a round runs, asked here in a transaction that is rolled back (the lease is not kept).
    /// Run before every round of every scenario, on both databases.
    async fn due_work_is_what_a_round_finds(&self) {
        let said = self.engine.due_work().await.unwrap();
        let now = self.now();
        let times = self.engine.chase_times(now);
        let mut tx = self.store.begin().await.unwrap();
        let kinds = self.engine.channel_kinds();
        let lease_until = (now + TimeDelta::minutes(1)).timestamp_millis();
        let leased = steps::lease_due(&mut tx, "oracle", &kinds, now, lease_until, 1)
            .await
            .unwrap();
        let ended = steps::windows_ended(&mut tx, now, 1).await.unwrap();
        let unclaimed = tasks::unclaimed_past_claim_time(&mut tx, now)
            .await
            .unwrap();
        let owner = tasks::overdue(&mut tx, now, false).await.unwrap();
        let lead = tasks::overdue(&mut tx, times.lead_due_before, true)
            .await
            .unwrap();
        let offers = handovers::unanswered(&mut tx, times.handover_before)
            .await
            .unwrap();
        // At once: on PostgreSQL a dropped transaction keeps its lease's row lock until its
        // connection is next used, and the engine's own lease would skip the row.
        tx.rollback().await.unwrap();
        let found = DueWork {
            steps: !leased.is_empty(),
            windows: !ended.is_empty(),
            chase: !(unclaimed.is_empty()
                && owner.is_empty()
                && lead.is_empty()
                && offers.is_empty()),
        };
        assert_eq!(said, found, "due_work at {now}");
    }

    /// Moves virtual time on, running the engine every 10 minutes on the way, as the worker would.
    async fn advance(&self, by: TimeDelta) {
        let end = self.now() + by;
        while self.now() < end {
            let step = (end - self.now()).min(TimeDelta::minutes(10));
            self.clock.advance(step);
            self.run().await;
        }
    }

    async fn steps(&self, notice: &Notice) -> Vec<Step> {
        let mut tx = self.store.begin_read().await.unwrap();
        let s = steps::for_notice(&mut tx, notice.id).await.unwrap();
        tx.commit().await.unwrap();
        s
    }

    async fn summary(&self, notice: &Notice) -> Vec<(ChannelKind, StepStatus, Option<String>)> {
        self.steps(notice)
            .await
            .into_iter()
            .map(|s| (s.channel, s.status, s.reason))
            .collect()
    }

    async fn notice(&self, notice: &Notice) -> Notice {
        let mut tx = self.store.begin_read().await.unwrap();
        let n = notices::get(&mut tx, notice.id).await.unwrap();
        tx.commit().await.unwrap();
        n
    }

    /// The code the patient got, read from the message of the notice's first planned step.
    async fn code(&self, notice: &Notice) -> String {
        let steps = self.steps(notice).await;
        let body = steps.iter().find_map(|s| s.body.clone()).unwrap();
        let is_code = |w: &&str| {
            w.len() == 6
                && w.bytes()
                    .all(|b| kontaktvei_store::acks::CODE_ALPHABET.contains(&b))
        };
        body.split(|c: char| !c.is_ascii_alphanumeric())
            .find(is_code)
            .expect("the message carries a code")
            .to_owned()
    }

    async fn ack_with_code(&self, code: &str, method: AckMethod) -> NoticeStatus {
        let mut tx = self.store.begin().await.unwrap();
        let hash = kontaktvei_store::acks::hash(&kontaktvei_store::acks::normalise_code(code));
        let notice = notices::by_code_hash(&mut tx, &hash)
            .await
            .unwrap()
            .expect("the code names a notice");
        self.engine
            .acknowledge(&mut tx, notice.id, method, "test", None, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        self.notice(&notice).await.status
    }

    /// A staff member of `organisation`.
    async fn staff(&self, organisation: Id, role: Role, team_lead: bool) -> Id {
        let mut tx = self.store.begin().await.unwrap();
        let new = NewStaff {
            name: format!("{role} {}", if team_lead { "lead" } else { "member" }),
            email: Some("staff@example.no".into()),
            role,
            team_lead,
            email_digest: None,
        };
        let s = staff::create_staff(&mut tx, organisation, new, self.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        s.id
    }

    async fn set_coordinator(&self, patient: Id, staff_id: Id) {
        let mut tx = self.store.begin().await.unwrap();
        patients::set_coordinator(&mut tx, patient, staff_id, self.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn person(&self, staff_id: Id) -> Person {
        let mut tx = self.store.begin_read().await.unwrap();
        let s = staff::get_staff(&mut tx, staff_id).await.unwrap();
        tx.commit().await.unwrap();
        Person {
            staff_id,
            organisation_id: s.organisation_id,
            role: s.role,
            label: format!("staff:{staff_id}"),
        }
    }

    /// The notice's newest task of this kind.
    async fn task(&self, notice: &Notice, kind: TaskKind) -> tasks::Task {
        let mut tx = self.store.begin_read().await.unwrap();
        let all = tasks::for_notice(&mut tx, notice.id).await.unwrap();
        tx.commit().await.unwrap();
        all.into_iter()
            .rev()
            .find(|t| t.kind == kind)
            .unwrap_or_else(|| panic!("a {kind} task"))
    }

    /// What this person has been told, oldest first.
    async fn told(&self, staff_id: Id) -> Vec<NotificationKind> {
        let mut tx = self.store.begin_read().await.unwrap();
        let s = staff::get_staff(&mut tx, staff_id).await.unwrap();
        let all = notifications::for_staff(&mut tx, staff_id, s.organisation_id, false, 1000)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        all.into_iter()
            .rev()
            .filter(|n| n.staff_id == Some(staff_id))
            .map(|n| n.kind)
            .collect()
    }

    /// A person closes a task, as the API does.
    async fn close(
        &self,
        task: Id,
        by: Id,
        outcome: TaskOutcome,
        new_contact_point: Option<NewContactPoint>,
    ) -> Result<tasks::Task, kontaktvei_scheduler::engine::Error> {
        let person = self.person(by).await;
        let mut tx = self.store.begin().await.unwrap();
        let closing = Closing {
            outcome,
            note: None,
            new_contact_point,
        };
        let result = self
            .engine
            .close_task(&mut tx, task, &person, closing)
            .await;
        if result.is_ok() {
            tx.commit().await.unwrap();
        }
        result
    }

    async fn outbox(&self) -> Vec<outbox::OutboxMessage> {
        let mut tx = self.store.begin_read().await.unwrap();
        let all = outbox::all(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        all
    }
}

async fn on(backend: &str, start: DateTime<Utc>, scenario: impl AsyncFnOnce(World)) {
    let Some(db) = FreshDb::new(backend).await else {
        return;
    };
    let store = db.store(4).await;
    let world = World::new(store.clone(), start).await;
    scenario(world).await;
    store.close().await;
    db.remove().await;
}

use ChannelKind::*;
use StepStatus::*;

/// A Tuesday morning in a normal week.
fn tuesday_morning() -> DateTime<Utc> {
    oslo(2026, 3, 10, 9, 0)
}

async fn an_sms_acknowledged_at_once_ends_the_notice(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "postal", "relay", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(14)).await;
        w.run().await;
        let sent = w.outbox().await;
        assert_eq!(sent.len(), 1, "one SMS");
        assert_eq!(sent[0].to, "+4791234567");
        let code = w.code(&notice).await;
        assert!(sent[0].body.contains(&code), "the SMS carries the code");
        assert_eq!(
            w.ack_with_code(&code, AckMethod::SmsReply).await,
            NoticeStatus::Acknowledged
        );
        let summary = w.summary(&notice).await;
        assert_eq!(summary[0].1, Acknowledged);
        assert!(summary[1..].iter().all(|s| s.1 == Cancelled), "{summary:?}");
        // The phone is now known to work.
        let mut tx = w.store.begin_read().await.unwrap();
        let cps = contact_points::list(&mut tx, p).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            cps.iter().find(|c| c.phone.is_some()).unwrap().status,
            contact_points::ContactStatus::Confirmed
        );
        // Time passing changes nothing any more.
        w.advance(TimeDelta::days(3)).await;
        assert_eq!(w.outbox().await.len(), 1);
    })
    .await;
}

async fn a_silent_sms_escalates_to_the_letter_and_a_late_reply_stops_it(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "postal", "relay", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(14)).await;
        w.run().await;
        w.advance(TimeDelta::hours(23)).await;
        assert_eq!(
            w.summary(&notice).await[0].1,
            Sent,
            "still waiting within the 24 h window"
        );
        w.advance(TimeDelta::hours(2)).await;
        let summary = w.summary(&notice).await;
        assert_eq!(summary[0].1, Expired);
        assert_eq!(
            (summary[1].0, summary[1].1),
            (Letter, Queued),
            "the letter waits for the print batch"
        );
        // A late reply to the SMS still counts, and the letter is never printed.
        let code = w.code(&notice).await;
        assert_eq!(
            w.ack_with_code(&code, AckMethod::SmsReply).await,
            NoticeStatus::Acknowledged
        );
        let summary = w.summary(&notice).await;
        assert_eq!(
            summary[0].1, Acknowledged,
            "the SMS reached her after all: {summary:?}"
        );
        assert_eq!(summary[1], (Letter, Cancelled, Some("acknowledged".into())));
        assert_eq!(summary[2].1, Cancelled);
        assert_eq!(summary[3].1, Cancelled);
    })
    .await;
}

async fn a_booking_two_days_ahead_skips_the_letter_as_too_late(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "postal", "relay", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(2)).await;
        let summary = w.summary(&notice).await;
        assert_eq!(
            summary[1],
            (Letter, Skipped, Some("too_late".into())),
            "{summary:?}"
        );
        assert_eq!(summary[2].1, Planned, "the relay is planned instead");
    })
    .await;
}

async fn a_letter_booked_on_maundy_thursday_waits_for_the_easter_holidays(backend: &str) {
    // Maundy Thursday 2026 is 2 April; the next print run is Tuesday 7 April at 14:00.
    on(backend, oslo(2026, 4, 2, 10, 0), async |w| {
        let p = w.patient(&["postal", "outreach"]).await;
        let notice = w.book(p, oslo(2026, 4, 30, 10, 0)).await;
        let steps = w.steps(&notice).await;
        assert_eq!(steps[0].channel, Sms);
        assert_eq!(steps[0].reason.as_deref(), Some("no_contact_point"));
        assert_eq!(steps[1].channel, Letter);
        assert_eq!(steps[1].status, Queued);
        assert_eq!(
            steps[1].due_at,
            Some(oslo(2026, 4, 7, 14, 0)),
            "printed after Easter Monday"
        );
        // And a booking for the Tuesday after Easter cannot be reached by letter at all.
        let soon = w.book(p, oslo(2026, 4, 8, 10, 0)).await;
        assert_eq!(
            w.summary(&soon).await[1],
            (Letter, Skipped, Some("too_late".into()))
        );
    })
    .await;
}

async fn an_sms_due_in_quiet_hours_waits_until_eight(backend: &str) {
    on(backend, oslo(2026, 3, 10, 23, 30), async |w| {
        let p = w.patient(&["sms", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        let first = &w.steps(&notice).await[0];
        assert_eq!(first.due_at, Some(oslo(2026, 3, 11, 8, 0)));
        w.run().await;
        assert!(w.outbox().await.is_empty(), "nothing at 23:30");
        w.advance(TimeDelta::minutes(8 * 60 + 20)).await; // 07:50
        assert!(w.outbox().await.is_empty(), "nothing at 07:50");
        w.advance(TimeDelta::minutes(20)).await; // 08:10
        assert_eq!(w.outbox().await.len(), 1, "sent after 08:00");
    })
    .await;
}

async fn the_night_summer_time_begins_still_wakes_at_eight(backend: &str) {
    // 29 March 2026: clocks jump from 02:00 to 03:00. An SMS booked at 22:00 the evening
    // before goes at 08:00 CEST = 06:00 UTC, not 07:00 UTC.
    on(backend, oslo(2026, 3, 28, 22, 0), async |w| {
        let p = w.patient(&["sms", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        let first = &w.steps(&notice).await[0];
        assert_eq!(
            first.due_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 29, 6, 0, 0).unwrap())
        );
    })
    .await;
}

async fn a_relay_is_planned_only_while_the_service_is_open(backend: &str) {
    on(backend, oslo(2026, 3, 13, 16, 0), async |w| {
        // The day centre is open Tuesdays and Thursdays 10–14. Booked on a Friday afternoon.
        let mut tx = w.store.begin().await.unwrap();
        let hours: organisations::OpeningHours = serde_json::from_value(serde_json::json!({
            "tue": [{"opens": "10:00", "closes": "14:00"}],
            "thu": [{"opens": "10:00", "closes": "14:00"}],
        }))
        .unwrap();
        organisations::update(
            &mut tx,
            w.service,
            organisations::OrganisationUpdate {
                opening_hours: Some(hours),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let p = w.patient(&["relay", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(12)).await;
        let relay = w
            .steps(&notice)
            .await
            .into_iter()
            .find(|s| s.channel == Relay)
            .unwrap();
        assert_eq!(
            relay.due_at,
            Some(oslo(2026, 3, 17, 10, 0)),
            "Tuesday at opening"
        );
        w.run().await;
        let mut tx = w.store.begin_read().await.unwrap();
        let open = tasks::open_for_organisation(&mut tx, w.service)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(open.is_empty(), "no relay request while closed");
        w.advance(TimeDelta::days(4)).await; // Tuesday 16:00
        let mut tx = w.store.begin_read().await.unwrap();
        let open = tasks::open_for_organisation(&mut tx, w.service)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            open.len(),
            1,
            "the relay request reached the day centre on Tuesday"
        );
        // Its window ends when the centre closes on Thursday, not 72 hours after Tuesday's
        // opening (Friday morning, when nobody is there to answer).
        let relay = w
            .steps(&notice)
            .await
            .into_iter()
            .find(|s| s.channel == Relay)
            .unwrap();
        assert_eq!(relay.window_ends_at, Some(oslo(2026, 3, 19, 14, 0)));
        w.advance(TimeDelta::days(2)).await; // Thursday 16:00
        let summary = w.summary(&notice).await;
        assert!(
            summary.contains(&(Relay, Expired, Some("no_ack_in_window".into())))
                && summary.last().unwrap().0 == Outreach,
            "after Thursday's close the outreach team has it: {summary:?}"
        );
    })
    .await;
}

/// A task given back to the team is not let go: it gets a new claim window and is chased
/// again; an outreach outcome that stops the chain tells the coordinator it needs a decision.
async fn a_task_given_back_is_chased_again_and_a_refusal_needs_a_decision(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["outreach"]).await;
        let coordinator = w.staff(w.clinic, Role::Coordinator, false).await;
        w.set_coordinator(p, coordinator).await;
        let lead = w.staff(w.team, Role::Outreach, true).await;
        let nurse = w.staff(w.team, Role::Outreach, false).await;
        let notice = w.book(p, w.now() + TimeDelta::days(5)).await;
        w.run().await;
        w.advance(TimeDelta::hours(25)).await;
        let task = w.task(&notice, TaskKind::Outreach).await;
        assert_eq!(task.assignee_id, Some(lead), "unclaimed: the lead holds it");
        // The lead gives it back to the team; nobody claims it; it comes back to the lead.
        let mut tx = w.store.begin().await.unwrap();
        let back = tasks::unclaim(&mut tx, task.id, lead, "staff:lead", "on leave", w.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(back.status, TaskStatus::Open);
        assert_eq!(back.unclaimed_escalated_at, None);
        assert_eq!(back.claim_by, Some(w.now() + TimeDelta::hours(24)));
        w.advance(TimeDelta::hours(25)).await;
        let task = w.task(&notice, TaskKind::Outreach).await;
        assert_eq!(
            (task.status, task.assignee_id),
            (TaskStatus::Claimed, Some(lead)),
            "chased again"
        );
        let unclaimed = w
            .told(coordinator)
            .await
            .iter()
            .filter(|k| **k == NotificationKind::TaskUnclaimed)
            .count();
        assert_eq!(unclaimed, 2, "the coordinator is told each time");
        // The nurse takes it, finds the patient, who declines: the coordinator must decide.
        let mut tx = w.store.begin().await.unwrap();
        tasks::unclaim(
            &mut tx,
            task.id,
            lead,
            "staff:lead",
            "Nina knows her",
            w.now(),
        )
        .await
        .unwrap();
        let person = w.person(nurse).await;
        tasks::claim(&mut tx, task.id, nurse, &person.label, w.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        w.close(task.id, nurse, TaskOutcome::Declined, None)
            .await
            .unwrap();
        w.run().await;
        assert!(
            w.told(coordinator)
                .await
                .contains(&NotificationKind::NeedsDecision)
        );
        assert_eq!(w.notice(&notice).await.status, NoticeStatus::Active);
        let coordinator_task = w.task(&notice, TaskKind::CoordinatorFollowUp).await;
        assert_eq!(coordinator_task.assignee_id, Some(coordinator));
    })
    .await;
}

async fn a_team_without_a_lead_leaves_the_notice_with_the_coordinator(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["outreach"]).await;
        let coordinator = w.staff(w.clinic, Role::Coordinator, false).await;
        w.set_coordinator(p, coordinator).await;
        w.staff(w.team, Role::Outreach, false).await; // no team lead
        let notice = w.book(p, w.now() + TimeDelta::days(5)).await;
        w.run().await;
        w.advance(TimeDelta::hours(25)).await;
        let task = w.task(&notice, TaskKind::Outreach).await;
        assert_eq!(task.status, TaskStatus::Cancelled, "nobody would hold it");
        let summary = w.summary(&notice).await;
        assert!(
            summary.contains(&(Outreach, Expired, Some("unclaimed_and_no_team_lead".into()))),
            "{summary:?}"
        );
        assert!(
            w.told(coordinator)
                .await
                .contains(&NotificationKind::TaskUnclaimed)
        );
        let held = w.task(&notice, TaskKind::CoordinatorFollowUp).await;
        assert_eq!(
            held.assignee_id,
            Some(coordinator),
            "no lead: the coordinator holds the notice by name"
        );
    })
    .await;
}

async fn a_no_show_creates_the_follow_up_and_the_coordinators_task(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "outreach"]).await;
        let booking = w.book(p, w.now() + TimeDelta::hours(3)).await;
        w.advance(TimeDelta::hours(4)).await;
        let mut tx = w.store.begin().await.unwrap();
        let appointment = appointments::get(&mut tx, booking.appointment_id.unwrap())
            .await
            .unwrap();
        let (_, follow_up) = appointments::record_attendance(
            &mut tx,
            appointment,
            AppointmentStatus::NoShow,
            "test",
            w.now(),
        )
        .await
        .unwrap();
        let follow_up = follow_up.expect("a no-show owes a follow-up notice");
        w.engine.plan(&mut tx, &follow_up).await.unwrap();
        w.engine.no_show(&mut tx, &follow_up).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(w.notice(&booking).await.status, NoticeStatus::Superseded);
        assert_eq!(
            w.notice(&follow_up).await.status,
            NoticeStatus::Active,
            "the no-show closes nothing"
        );
        let mut tx = w.store.begin_read().await.unwrap();
        let for_patient = tasks::for_patient(&mut tx, p).await.unwrap();
        tx.commit().await.unwrap();
        assert!(
            for_patient
                .iter()
                .any(|t| t.kind == tasks::TaskKind::CoordinatorFollowUp
                    && t.notice_id == Some(follow_up.id))
        );
        w.run().await;
        assert_eq!(
            w.outbox().await.len(),
            2,
            "the booking SMS and the follow-up SMS"
        );
    })
    .await;
}

async fn an_ack_after_escalation_cancels_the_later_steps(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "relay", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        w.run().await;
        w.advance(TimeDelta::hours(25)).await;
        let summary = w.summary(&notice).await;
        assert_eq!(summary[2].0, Relay);
        assert_eq!(summary[2].1, Sent, "the relay request is out: {summary:?}");
        let code = w.code(&notice).await;
        assert_eq!(
            w.ack_with_code(&code, AckMethod::CodeAtDesk).await,
            NoticeStatus::Acknowledged
        );
        let summary = w.summary(&notice).await;
        assert_eq!(summary[2].1, Acknowledged);
        assert_eq!(
            summary[3].1, Cancelled,
            "the outreach task is never created"
        );
        let mut tx = w.store.begin_read().await.unwrap();
        let open = tasks::open_for_organisation(&mut tx, w.service)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(open.is_empty(), "the relay request is closed");
        // A second ack changes nothing.
        assert_eq!(
            w.ack_with_code(&code, AckMethod::CodeAtDesk).await,
            NoticeStatus::Acknowledged
        );
        // Every step set aside ended then, with one event saying why, however many acks came.
        let steps = w.steps(&notice).await;
        let mut tx = w.store.begin_read().await.unwrap();
        let events = steps::events_for_notice(&mut tx, notice.id).await.unwrap();
        tx.commit().await.unwrap();
        let cancelled: Vec<&Step> = steps.iter().filter(|s| s.status == Cancelled).collect();
        assert!(!cancelled.is_empty(), "{steps:?}");
        for step in cancelled {
            assert_eq!(step.reason.as_deref(), Some("acknowledged"));
            assert!(
                step.finished_at.is_some() && step.lease_owner.is_none(),
                "{step:?}"
            );
            let why: Vec<_> = events
                .iter()
                .filter(|e| e.step_id == step.id && e.status == Cancelled)
                .map(|e| e.detail.as_deref())
                .collect();
            assert_eq!(why, [Some("acknowledged")], "{step:?}");
        }
    })
    .await;
}

async fn a_chain_without_people_ends_with_the_coordinator(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(5)).await;
        let summary = w.summary(&notice).await;
        assert_eq!(summary.last().unwrap().0, Coordinator, "{summary:?}");
        w.advance(TimeDelta::days(2)).await;
        let summary = w.summary(&notice).await;
        assert_eq!(
            summary.last().unwrap().1,
            Sent,
            "the coordinator has the task: {summary:?}"
        );
        let mut tx = w.store.begin_read().await.unwrap();
        let open = tasks::open_for_organisation(&mut tx, w.clinic)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].kind, tasks::TaskKind::CoordinatorFollowUp);
        // It never ends in silence: weeks later the task is still there, the notice still open.
        w.advance(TimeDelta::days(20)).await;
        assert_eq!(w.notice(&notice).await.status, NoticeStatus::Active);
    })
    .await;
}

async fn an_unclaimed_outreach_task_goes_to_the_lead_and_the_coordinator(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["outreach"]).await;
        let coordinator = w.staff(w.clinic, Role::Coordinator, false).await;
        w.set_coordinator(p, coordinator).await;
        let lead = w.staff(w.team, Role::Outreach, true).await;
        let nurse = w.staff(w.team, Role::Outreach, false).await;
        let notice = w.book(p, w.now() + TimeDelta::days(5)).await;
        w.run().await;
        let step = w.steps(&notice).await.last().unwrap().clone();
        assert_eq!((step.channel, step.status), (Outreach, Sent));
        assert_eq!(
            step.window_ends_at, None,
            "a person holds it until they close it"
        );
        let task = w.task(&notice, TaskKind::Outreach).await;
        assert_eq!(task.claim_by, Some(w.now() + TimeDelta::hours(24)));
        assert_eq!(w.told(nurse).await, vec![NotificationKind::NewTask]);
        w.advance(TimeDelta::hours(25)).await;
        // Nothing moved on by itself: the lead holds it now, and the coordinator knows.
        let summary = w.summary(&notice).await;
        assert_eq!(summary.last().unwrap().0, Outreach, "{summary:?}");
        let task = w.task(&notice, TaskKind::Outreach).await;
        assert_eq!(
            (task.status, task.assignee_id),
            (TaskStatus::Claimed, Some(lead)),
            "the lead holds it now"
        );
        assert_eq!(task.priority, TaskPriority::High);
        assert!(task.unclaimed_escalated_at.is_some());
        assert!(
            w.told(lead)
                .await
                .contains(&NotificationKind::TaskUnclaimed)
        );
        assert!(
            w.told(coordinator)
                .await
                .contains(&NotificationKind::TaskUnclaimed)
        );
        assert!(
            !w.told(nurse)
                .await
                .contains(&NotificationKind::TaskUnclaimed),
            "the lead, not everyone"
        );
        // Told once, however long it stays unclaimed.
        w.advance(TimeDelta::hours(5)).await;
        let unclaimed = w
            .told(lead)
            .await
            .iter()
            .filter(|k| **k == NotificationKind::TaskUnclaimed)
            .count();
        assert_eq!(unclaimed, 1);
    })
    .await;
}

/// The walk: SMS silent → letter returned → relay "not seen" → outreach task →
/// unclaimed → lead and coordinator told → claimed → "moved" with a new address → the
/// coordinator has it → takes it over by name.
async fn the_whole_chain_ends_with_a_named_person(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "postal", "relay", "outreach"]).await;
        let coordinator = w.staff(w.clinic, Role::Coordinator, false).await;
        w.set_coordinator(p, coordinator).await;
        let lead = w.staff(w.team, Role::Outreach, true).await;
        let nurse = w.staff(w.team, Role::Outreach, false).await;
        let worker = w.staff(w.service, Role::Relay, false).await;
        let notice = w.book(p, w.now() + TimeDelta::days(20)).await;
        w.run().await;
        // The SMS goes unanswered; the letter is printed, posted, and comes back.
        w.advance(TimeDelta::hours(30)).await;
        assert_eq!(w.summary(&notice).await[0].1, Expired);
        let batch = w.batches().await[0].clone();
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .mark_batch_posted(&mut tx, batch.id, w.now().with_timezone(&Oslo).date_naive())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        w.advance(TimeDelta::days(2)).await;
        let reference = w.letters(batch.id).await[0].reference.clone();
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .letter_returned(&mut tx, &reference, "flyttet")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        w.run().await;
        assert!(
            w.told(coordinator)
                .await
                .contains(&NotificationKind::LetterReturned)
        );
        assert!(
            w.told(coordinator)
                .await
                .contains(&NotificationKind::ContactPointFailed)
        );
        // The drop-in centre has a relay request; the patient does not come in.
        let relay = w.task(&notice, TaskKind::Relay).await;
        assert_eq!(relay.status, TaskStatus::Open);
        let code = w.code(&notice).await;
        assert!(relay.message.as_deref().is_some_and(|m| m.contains(&code)));
        assert_eq!(w.told(worker).await, vec![NotificationKind::NewTask]);
        w.close(relay.id, worker, TaskOutcome::NotSeen, None)
            .await
            .unwrap();
        w.run().await;
        let summary = w.summary(&notice).await;
        assert_eq!(
            summary[2],
            (Relay, Failed, Some("not_seen".into())),
            "{summary:?}"
        );
        assert_eq!((summary[3].0, summary[3].1), (Outreach, Sent));
        // Nobody claims the outreach task in its window.
        w.advance(TimeDelta::hours(25)).await;
        assert!(
            w.told(lead)
                .await
                .contains(&NotificationKind::TaskUnclaimed)
        );
        assert!(
            w.told(coordinator)
                .await
                .contains(&NotificationKind::TaskUnclaimed)
        );
        // The lead holds it now and gives it back to the team; the nurse claims it, looks, and
        // finds the patient has moved.
        let task = w.task(&notice, TaskKind::Outreach).await;
        assert_eq!(task.assignee_id, Some(lead));
        let person = w.person(nurse).await;
        let mut tx = w.store.begin().await.unwrap();
        tasks::unclaim(
            &mut tx,
            task.id,
            lead,
            "staff:lead",
            "Nina knows him",
            w.now(),
        )
        .await
        .unwrap();
        let claimed = tasks::claim(&mut tx, task.id, nurse, &person.label, w.now())
            .await
            .unwrap();
        assert_eq!(claimed.assignee_id, Some(nurse));
        let attempt = NewAttempt {
            place: "Skippergata 8".into(),
            at: None,
            result: "not there; staff say he moved to a flat in Grorud".into(),
            note: None,
        };
        tasks::record_attempt(&mut tx, task.id, nurse, &person.label, &attempt, w.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let new_address: NewContactPoint = serde_json::from_value(serde_json::json!({
            "kind": "postal", "lines": ["Ola Nordmann", "Grorudveien 5"],
            "postal_code": "0976", "place": "Oslo", "provenance": "stated_by_patient"
        }))
        .unwrap();
        w.close(task.id, nurse, TaskOutcome::Moved, Some(new_address))
            .await
            .unwrap();
        w.run().await;
        let mut tx = w.store.begin_read().await.unwrap();
        let added = contact_points::list(&mut tx, p)
            .await
            .unwrap()
            .into_iter()
            .last()
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            added.provenance,
            contact_points::Provenance::VerifiedInPerson
        );
        assert_eq!(added.verified_by.as_deref(), Some(person.label.as_str()));
        let summary = w.summary(&notice).await;
        assert_eq!(
            summary[3],
            (Outreach, Failed, Some("moved".into())),
            "{summary:?}"
        );
        assert_eq!(summary.last().unwrap().0, Coordinator);
        let follow_up = w.task(&notice, TaskKind::CoordinatorFollowUp).await;
        assert_eq!(
            follow_up.assignee_id,
            Some(coordinator),
            "held by a named person"
        );
        assert!(
            w.told(coordinator)
                .await
                .contains(&NotificationKind::ChainFailed)
        );
        // The coordinator takes the notice over: it ends with a named human, never in silence.
        w.close(follow_up.id, coordinator, TaskOutcome::TakenOver, None)
            .await
            .unwrap();
        let n = w.notice(&notice).await;
        assert_eq!(n.status, NoticeStatus::HandedOver);
        assert_eq!(n.holder_staff_id, Some(coordinator));
        let mut tx = w.store.begin_read().await.unwrap();
        let timeline = kontaktvei_store::timeline::for_patient(&mut tx, p)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for event in [
            "task.claimed",
            "task.attempt",
            "task.closed",
            "notice.handed_over",
        ] {
            assert!(
                timeline.iter().any(|e| e.event == event),
                "{event} on the timeline"
            );
        }
    })
    .await;
}

async fn told_in_person_acknowledges_and_cancels_the_rest(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["relay", "outreach"]).await;
        let worker = w.staff(w.service, Role::Relay, false).await;
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        w.run().await;
        let relay = w.task(&notice, TaskKind::Relay).await;
        // An outreach nurse's outcome does not fit a relay request.
        let wrong = w.close(relay.id, worker, TaskOutcome::MetAndInformed, None).await;
        assert!(matches!(wrong, Err(kontaktvei_scheduler::engine::Error::Store(kontaktvei_store::Error::Invalid(ref e))) if e[0].field == "outcome"), "{wrong:?}");
        let closed = w.close(relay.id, worker, TaskOutcome::ToldInPerson, None).await.unwrap();
        assert_eq!(closed.status, TaskStatus::Closed);
        assert_eq!(closed.closed_by, Some(worker));
        let n = w.notice(&notice).await;
        assert_eq!(n.status, NoticeStatus::Acknowledged);
        let mut tx = w.store.begin_read().await.unwrap();
        let ack = kontaktvei_store::acks::for_notice(&mut tx, notice.id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ack.method, AckMethod::RelayAttested);
        assert_eq!(ack.actor, format!("staff:{worker}"), "who told them");
        let summary = w.summary(&notice).await;
        assert_eq!((summary[2].0, summary[2].1), (Relay, Acknowledged), "{summary:?}");
        assert_eq!(summary[3], (Outreach, Cancelled, Some("acknowledged".into())));
        // A second closing changes nothing.
        assert!(w.close(relay.id, worker, TaskOutcome::NotSeen, None).await.is_err());
    })
    .await;
}

async fn only_the_holder_works_an_outreach_task_and_overdue_work_is_chased(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["outreach"]).await;
        let lead = w.staff(w.team, Role::Outreach, true).await;
        let nurse = w.staff(w.team, Role::Outreach, false).await;
        let other = w.staff(w.team, Role::Outreach, false).await;
        let notice = w.book(p, w.now() + TimeDelta::days(3)).await;
        w.run().await;
        let task = w.task(&notice, TaskKind::Outreach).await;
        assert_eq!(task.priority, TaskPriority::Normal);
        let unclaimed = w.close(task.id, nurse, TaskOutcome::NotFound, None).await;
        assert!(matches!(
            unclaimed,
            Err(kontaktvei_scheduler::engine::Error::Store(
                kontaktvei_store::Error::Conflict(_)
            ))
        ));
        let mut tx = w.store.begin().await.unwrap();
        tasks::claim(&mut tx, task.id, nurse, "staff:nurse", w.now())
            .await
            .unwrap();
        assert!(
            tasks::claim(&mut tx, task.id, other, "staff:other", w.now())
                .await
                .is_err(),
            "one holder at a time"
        );
        assert!(
            tasks::unclaim(&mut tx, task.id, other, "staff:other", "not mine", w.now())
                .await
                .is_err()
        );
        tx.commit().await.unwrap();
        assert!(
            w.close(task.id, other, TaskOutcome::NotFound, None)
                .await
                .is_err(),
            "only the holder closes it"
        );
        // Past due (the appointment): the holder is reminded, a day later the lead.
        w.advance(TimeDelta::days(3) + TimeDelta::hours(1)).await;
        assert!(w.told(nurse).await.contains(&NotificationKind::TaskOverdue));
        assert!(!w.told(lead).await.contains(&NotificationKind::TaskOverdue));
        w.advance(TimeDelta::hours(25)).await;
        assert!(w.told(lead).await.contains(&NotificationKind::TaskOverdue));
        // Given back with a reason, it is the team's again.
        let mut tx = w.store.begin().await.unwrap();
        assert!(
            tasks::unclaim(&mut tx, task.id, nurse, "staff:nurse", " ", w.now())
                .await
                .is_err(),
            "a reason is needed"
        );
        let back = tasks::unclaim(
            &mut tx,
            task.id,
            nurse,
            "staff:nurse",
            "off sick this week",
            w.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!((back.status, back.assignee_id), (TaskStatus::Open, None));
    })
    .await;
}

async fn a_hand_over_is_offered_then_accepted(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["outreach"]).await;
        let nurse = w.staff(w.team, Role::Outreach, false).await;
        let colleague = w.staff(w.team, Role::Outreach, false).await;
        let coordinator = w.staff(w.clinic, Role::Coordinator, false).await;
        let successor = w.staff(w.clinic, Role::Coordinator, false).await;
        w.set_coordinator(p, coordinator).await;
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        w.run().await;
        let task = w.task(&notice, TaskKind::Outreach).await;
        let mut tx = w.store.begin().await.unwrap();
        tasks::claim(&mut tx, task.id, nurse, "staff:nurse", w.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let nurse_p = w.person(nurse).await;
        let colleague_p = w.person(colleague).await;
        let mut tx = w.store.begin().await.unwrap();
        // Only the holder offers; not to themselves.
        assert!(
            w.engine
                .offer_handover(
                    &mut tx,
                    &colleague_p,
                    Offer {
                        subject_kind: SubjectKind::Task,
                        subject_id: task.id,
                        to_staff_id: Some(nurse),
                        to_organisation_id: None,
                        note: None
                    }
                )
                .await
                .is_err()
        );
        assert!(
            w.engine
                .offer_handover(
                    &mut tx,
                    &nurse_p,
                    Offer {
                        subject_kind: SubjectKind::Task,
                        subject_id: task.id,
                        to_staff_id: Some(nurse),
                        to_organisation_id: None,
                        note: None
                    }
                )
                .await
                .is_err()
        );
        let offer = w
            .engine
            .offer_handover(
                &mut tx,
                &nurse_p,
                Offer {
                    subject_kind: SubjectKind::Task,
                    subject_id: task.id,
                    to_staff_id: Some(colleague),
                    to_organisation_id: None,
                    note: Some("I am away next week".into()),
                },
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(
            w.told(colleague)
                .await
                .contains(&NotificationKind::HandoverOffered)
        );
        // Until accepted, the nurse keeps it and is reminded after a day.
        w.advance(TimeDelta::hours(25)).await;
        assert_eq!(
            w.task(&notice, TaskKind::Outreach).await.assignee_id,
            Some(nurse)
        );
        assert!(
            w.told(nurse)
                .await
                .contains(&NotificationKind::HandoverPending)
        );
        // Still unanswered a day later: reminded again, once more, not every round.
        w.advance(TimeDelta::hours(12)).await;
        w.advance(TimeDelta::hours(13)).await;
        let pending = w
            .told(nurse)
            .await
            .iter()
            .filter(|k| **k == NotificationKind::HandoverPending)
            .count();
        assert_eq!(pending, 2, "reminded each day until someone answers");
        let mut tx = w.store.begin().await.unwrap();
        assert!(
            w.engine
                .decide_handover(&mut tx, offer.id, &nurse_p, HandoverStatus::Accepted, None)
                .await
                .is_err(),
            "not the nurse's to accept"
        );
        let accepted = w
            .engine
            .decide_handover(
                &mut tx,
                offer.id,
                &colleague_p,
                HandoverStatus::Accepted,
                None,
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(accepted.status, HandoverStatus::Accepted);
        assert_eq!(
            w.task(&notice, TaskKind::Outreach).await.assignee_id,
            Some(colleague)
        );
        assert!(
            w.told(nurse)
                .await
                .contains(&NotificationKind::HandoverAccepted)
        );
        // The patient's coordinator hands the patient over; declined, then accepted.
        let coord_p = w.person(coordinator).await;
        let succ_p = w.person(successor).await;
        let mut tx = w.store.begin().await.unwrap();
        let first = w
            .engine
            .offer_handover(
                &mut tx,
                &coord_p,
                Offer {
                    subject_kind: SubjectKind::Patient,
                    subject_id: p,
                    to_staff_id: Some(successor),
                    to_organisation_id: None,
                    note: None,
                },
            )
            .await
            .unwrap();
        assert!(
            w.engine
                .offer_handover(
                    &mut tx,
                    &coord_p,
                    Offer {
                        subject_kind: SubjectKind::Patient,
                        subject_id: p,
                        to_staff_id: Some(successor),
                        to_organisation_id: None,
                        note: None
                    }
                )
                .await
                .is_err(),
            "one open offer at a time"
        );
        w.engine
            .decide_handover(
                &mut tx,
                first.id,
                &succ_p,
                HandoverStatus::Declined,
                Some("full caseload"),
            )
            .await
            .unwrap();
        assert_eq!(
            patients::get(&mut tx, p).await.unwrap().coordinator_id,
            Some(coordinator),
            "declined: the coordinator keeps the patient"
        );
        let second = w
            .engine
            .offer_handover(
                &mut tx,
                &coord_p,
                Offer {
                    subject_kind: SubjectKind::Patient,
                    subject_id: p,
                    to_staff_id: None,
                    to_organisation_id: Some(w.clinic),
                    note: None,
                },
            )
            .await
            .unwrap();
        w.engine
            .decide_handover(&mut tx, second.id, &succ_p, HandoverStatus::Accepted, None)
            .await
            .unwrap();
        assert_eq!(
            patients::get(&mut tx, p).await.unwrap().coordinator_id,
            Some(successor)
        );
        let timeline = kontaktvei_store::timeline::for_patient(&mut tx, p)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for event in ["handover.offered", "handover.accepted", "handover.declined"] {
            assert!(
                timeline.iter().any(|e| e.event == event),
                "{event} on the timeline"
            );
        }
    })
    .await;
}

async fn a_next_of_kin_is_asked_only_to_have_the_patient_call(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let policy = kontaktvei_scheduler::Policy {
            chain: vec![Sms, NextOfKin, Outreach],
            letter_contact_text: "22 33 44 55".into(),
            ..Default::default()
        };
        let mut tx = w.store.begin().await.unwrap();
        organisations::set_policy(&mut tx, w.clinic, &serde_json::to_value(&policy).unwrap())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let p = w.patient(&["sms", "outreach"]).await;
        let kin = |consent_by: Option<&str>| -> NewContactPoint {
            serde_json::from_value(serde_json::json!({
                "kind": "next_of_kin", "phone": "+4799887766", "contact_name": "Anne",
                "relation": "sister", "provenance": "stated_by_patient",
                "consent_recorded": true, "consent_given_by": consent_by,
            }))
            .unwrap()
        };
        let mut tx = w.store.begin().await.unwrap();
        let refused = contact_points::add(&mut tx, p, kin(None), "test", w.now()).await;
        assert!(matches!(refused, Err(kontaktvei_store::Error::Invalid(ref e)) if e[0].field == "consent_given_by"), "{refused:?}");
        let cp = contact_points::add(&mut tx, p, kin(Some("the patient, to nurse Kari")), "test", w.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(cp.consent_scope.as_deref(), Some(contact_points::NEXT_OF_KIN_SCOPE));
        assert_eq!(cp.consent_given_at, Some(w.now()));
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        let code = w.code(&notice).await;
        w.run().await;
        w.advance(TimeDelta::hours(25)).await;
        let summary = w.summary(&notice).await;
        assert_eq!((summary[1].0, summary[1].1), (NextOfKin, Sent), "{summary:?}");
        let to_kin = w.outbox().await.into_iter().find(|m| m.to == "+4799887766").unwrap();
        assert!(to_kin.body.contains("Anne") && to_kin.body.contains("22 33 44 55"), "{}", to_kin.body);
        for secret in [code.as_str(), "Storgata", "kl.", "time"] {
            assert!(!to_kin.body.contains(secret), "no appointment details: {}", to_kin.body);
        }
        // The patient withdraws consent: retired at once, never used again.
        let mut tx = w.store.begin().await.unwrap();
        let retired = contact_points::withdraw_consent(&mut tx, p, cp.id, w.now()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(retired.status, contact_points::ContactStatus::Retired);
        let again = w.book(p, w.now() + TimeDelta::days(10)).await;
        assert_eq!(w.summary(&again).await[1], (NextOfKin, Skipped, Some("no_contact_point".into())));
    })
    .await;
}

async fn a_failed_delivery_escalates_at_once(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "relay", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        // The plan is stored in order, each step with its first event (the first step also
        // with its move to the queue).
        let planned = w.steps(&notice).await;
        assert!(planned.len() >= 3, "{planned:?}");
        let mut tx = w.store.begin_read().await.unwrap();
        let events = steps::events_for_notice(&mut tx, notice.id).await.unwrap();
        tx.commit().await.unwrap();
        for (i, step) in planned.iter().enumerate() {
            assert_eq!(step.position, i as i32);
            let mut statuses: Vec<StepStatus> = events
                .iter()
                .filter(|e| e.step_id == step.id)
                .map(|e| e.status)
                .collect();
            statuses.sort_by_key(|s| s.as_str());
            let expected = if i == 0 {
                vec![Planned, Queued]
            } else {
                vec![step.status]
            };
            assert_eq!(statuses, expected, "step {i}: {step:?}");
        }
        assert_eq!(planned[0].status, Queued);
        w.run().await;
        let sms = w.steps(&notice).await[0].clone();
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .report_failure(&mut tx, sms.id, "undeliverable")
            .await
            .unwrap();
        // A repeated report is harmless.
        w.engine
            .report_failure(&mut tx, sms.id, "undeliverable")
            .await
            .unwrap();
        // Each move left one event, written with it; the repeated report moved nothing.
        let sms_events: Vec<_> = steps::events_for_notice(&mut tx, notice.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.step_id == sms.id)
            .map(|e| (e.status, e.detail))
            .collect();
        assert_eq!(
            sms_events.last(),
            Some(&(Failed, Some("undeliverable".into()))),
            "{sms_events:?}"
        );
        assert_eq!(
            sms_events.iter().filter(|(s, _)| *s == Failed).count(),
            1,
            "{sms_events:?}"
        );
        assert!(
            sms_events.iter().any(|(s, _)| *s == StepStatus::Sent),
            "{sms_events:?}"
        );
        tx.commit().await.unwrap();
        let summary = w.summary(&notice).await;
        assert_eq!(summary[0], (Sms, Failed, Some("undeliverable".into())));
        assert_eq!((summary[2].0, summary[2].1), (Relay, Queued), "{summary:?}");
        // The number is marked failed, so the next plan skips it.
        let again = w.book(p, w.now() + TimeDelta::days(12)).await;
        assert_eq!(
            w.summary(&again).await[0],
            (Sms, Skipped, Some("contact_point_failed".into()))
        );
    })
    .await;
}

async fn an_acknowledged_appointment_gets_a_reminder_two_days_before(backend: &str) {
    // Booked on Monday for Thursday at 10:00; acknowledged at once.
    on(backend, oslo(2026, 3, 9, 10, 0), async |w| {
        let p = w.patient(&["sms", "outreach"]).await;
        let booking = w.book(p, oslo(2026, 3, 12, 10, 0)).await;
        w.run().await;
        let code = w.code(&booking).await;
        w.ack_with_code(&code, AckMethod::SmsReply).await;
        w.advance(TimeDelta::hours(22)).await; // Tuesday 08:00
        assert_eq!(
            w.outbox().await.len(),
            1,
            "no reminder before Tuesday's 09:00 pass"
        );
        w.advance(TimeDelta::hours(2)).await; // Tuesday 10:00
        let sent = w.outbox().await;
        assert_eq!(
            sent.len(),
            2,
            "the reminder went on Tuesday, two days before"
        );
        assert!(sent[1].body.starts_with("Påminnelse"), "{}", sent[1].body);
        // Once only: the next days' passes add nothing.
        w.advance(TimeDelta::days(2)).await;
        assert_eq!(w.outbox().await.len(), 2);
    })
    .await;
}

async fn an_unacknowledged_appointment_gets_no_reminder_on_top_of_its_escalation(backend: &str) {
    on(backend, oslo(2026, 3, 9, 10, 0), async |w| {
        let p = w.patient(&["sms", "outreach"]).await;
        let booking = w.book(p, oslo(2026, 3, 12, 10, 0)).await;
        w.advance(TimeDelta::hours(24)).await; // Tuesday 10:00
        let kinds: Vec<_> = w.outbox().await.iter().map(|m| m.notice_id).collect();
        assert!(
            kinds.iter().all(|id| *id == booking.id),
            "only the booking's own steps"
        );
    })
    .await;
}

async fn a_cron_occurrence_fires_once_across_instances(backend: &str) {
    on(backend, oslo(2026, 3, 9, 9, 1), async |w| {
        let other = Cron::new(w.engine.clone(), "another instance");
        let (a, b) = tokio::join!(w.cron.run_due(w.now()), other.run_due(w.now()));
        let (a, b) = (a.unwrap(), b.unwrap());
        for job in ["reminder", "auditor"] {
            assert_eq!(
                a.contains(&job) as u8 + b.contains(&job) as u8,
                1,
                "{job}: {a:?} {b:?}"
            );
        }
        // The same occurrence again: nobody runs it.
        assert!(w.cron.run_due(w.now()).await.unwrap().is_empty());
    })
    .await;
}

async fn the_auditor_reports_steps_that_should_have_run(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms", "outreach"]).await;
        w.book(p, w.now() + TimeDelta::days(10)).await;
        // No worker runs for 20 minutes.
        w.clock.advance(TimeDelta::minutes(20));
        w.cron.run_due(w.now()).await.unwrap();
        assert_eq!(w.cron.stuck_steps(), 1, "the SMS is 20 minutes overdue");
        // A worker comes back; the next audit finds nothing.
        w.engine.run_until_idle().await.unwrap();
        w.clock.advance(TimeDelta::minutes(5));
        w.cron.run_due(w.now()).await.unwrap();
        assert_eq!(w.cron.stuck_steps(), 0);
    })
    .await;
}

async fn an_sms_that_would_arrive_after_the_appointment_is_not_sent(backend: &str) {
    // Booked at 22:00 for 07:30 the next morning: the SMS would wait for 08:00 — too late.
    on(backend, oslo(2026, 3, 10, 22, 0), async |w| {
        let p = w.patient(&["sms", "outreach"]).await;
        let notice = w.book(p, oslo(2026, 3, 11, 7, 30)).await;
        assert_eq!(
            w.summary(&notice).await[0],
            (Sms, Skipped, Some("too_late".into())),
            "planned as too late"
        );
        // And if a queued SMS reaches its deadline while waiting (a retry), it is dropped.
        let later = w.book(p, oslo(2026, 3, 11, 8, 5)).await;
        assert_eq!(
            w.summary(&later).await[0].1,
            Queued,
            "08:00 is before 08:05"
        );
        w.clock.set(oslo(2026, 3, 11, 8, 10)); // the worker was down until after the appointment
        w.run().await;
        let summary = w.summary(&later).await;
        assert_eq!(
            summary[0],
            (Sms, Skipped, Some("too_late".into())),
            "{summary:?}"
        );
        assert!(
            w.outbox().await.is_empty(),
            "nothing sent after the appointment"
        );
        assert_eq!(summary.last().unwrap().0, Outreach, "people take over");
    })
    .await;
}

/// An SMS provider that is down for the first `failures` calls, then accepts; it records the
/// idempotency keys it was called with.
#[derive(Debug)]
struct FlakySms {
    failures: std::sync::Mutex<u32>,
    keys: std::sync::Mutex<Vec<String>>,
}

impl kontaktvei_channels::Channel for FlakySms {
    fn kind(&self) -> ChannelKind {
        Sms
    }

    fn dispatch<'a>(
        &'a self,
        step: &'a kontaktvei_channels::Dispatch,
    ) -> kontaktvei_channels::BoxFuture<'a, kontaktvei_channels::Outcome> {
        Box::pin(async move {
            self.keys.lock().unwrap().push(step.idempotency_key.clone());
            let mut left = self.failures.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                kontaktvei_channels::Outcome::Retry {
                    after: None,
                    reason: "provider answered 503".into(),
                }
            } else {
                kontaktvei_channels::Outcome::Sent {
                    provider_ref: Some("ref-1".into()),
                }
            }
        })
    }
}

async fn a_passing_provider_error_is_retried_with_backoff_inside_the_window(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let flaky = Arc::new(FlakySms {
            failures: std::sync::Mutex::new(2),
            keys: std::sync::Mutex::new(Vec::new()),
        });
        let engine = Engine::new(
            w.store.clone(),
            w.clock.clone(),
            EngineConfig {
                public_base_url: "http://127.0.0.1:8080".into(),
                instance: "flaky".into(),
                postal: PostalCalendar::default(),
            },
        )
        .with_channel(flaky.clone());
        let p = w.patient(&["sms", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(10)).await;
        engine.run_until_idle().await.unwrap();
        let first = w.steps(&notice).await[0].clone();
        assert_eq!(first.status, Queued, "waiting to retry");
        let wait = first.due_at.unwrap() - w.now();
        assert!(
            wait >= TimeDelta::seconds(24) && wait <= TimeDelta::seconds(36),
            "about 30 s with jitter: {wait}"
        );
        // It retries, with growing waits, until the provider accepts.
        for _ in 0..10 {
            w.clock.advance(TimeDelta::minutes(2));
            engine.run_until_idle().await.unwrap();
        }
        let first = w.steps(&notice).await[0].clone();
        assert_eq!(first.status, Sent);
        assert_eq!(first.provider_ref.as_deref(), Some("ref-1"));
        let keys = flaky.keys.lock().unwrap().clone();
        assert_eq!(keys.len(), 3, "two refusals and one success");
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(
            unique.len(),
            3,
            "each new attempt has its own key: {keys:?}"
        );
        assert_eq!(
            first.idempotency_key.as_deref(),
            keys.last().map(String::as_str)
        );
    })
    .await;
}

impl World {
    async fn batches(&self) -> Vec<kontaktvei_store::print::PrintBatch> {
        let mut tx = self.store.begin_read().await.unwrap();
        let b = kontaktvei_store::print::batches(&mut tx, self.clinic, 100)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        b
    }

    async fn letters(&self, batch: Id) -> Vec<kontaktvei_store::print::Letter> {
        let mut tx = self.store.begin_read().await.unwrap();
        let l = kontaktvei_store::print::letters_in(&mut tx, batch)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        l
    }
}

async fn letters_before_the_cut_off_go_in_that_days_batch(backend: &str) {
    // Tuesday 10:00: the letter is due for today's 14:00 print run.
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["postal", "outreach"]).await;
        let early = w.book(p, w.now() + TimeDelta::days(30)).await;
        w.advance(TimeDelta::hours(5)).await; // 14:00
        let batches = w.batches().await;
        assert_eq!(batches.len(), 1, "today's batch");
        assert_eq!(batches[0].letters, 1);
        let letters = w.letters(batches[0].id).await;
        assert_eq!(letters[0].notice_id, early.id);
        assert!(letters[0].reference.starts_with("BR-"));
        assert_eq!(
            w.summary(&early).await[1].1,
            Sending,
            "in the batch, not yet posted"
        );
        // Booked after the cut-off: tomorrow's batch.
        w.advance(TimeDelta::minutes(10)).await; // 14:10
        let late = w.book(p, w.now() + TimeDelta::days(30)).await;
        w.advance(TimeDelta::hours(12)).await; // Wednesday 02:10
        assert_eq!(
            w.batches().await.len(),
            1,
            "nothing before tomorrow's cut-off"
        );
        w.advance(TimeDelta::hours(12)).await; // Wednesday 14:10
        let batches = w.batches().await;
        assert_eq!(batches.len(), 2);
        assert_eq!(w.letters(batches[0].id).await[0].notice_id, late.id);
        // Days with nothing due make no batch.
        w.advance(TimeDelta::days(1)).await;
        assert_eq!(w.batches().await.len(), 2);
    })
    .await;
}

async fn a_letter_due_over_easter_is_printed_the_tuesday_after(backend: &str) {
    on(backend, oslo(2026, 4, 2, 10, 0), async |w| {
        let p = w.patient(&["postal", "outreach"]).await;
        w.book(p, oslo(2026, 4, 30, 10, 0)).await;
        w.advance(TimeDelta::days(4) + TimeDelta::hours(20)).await; // Monday 6 April (Easter Monday) 06:00
        assert!(w.batches().await.is_empty(), "no print run over Easter");
        w.advance(TimeDelta::hours(32)).await; // Tuesday 7 April 14:00
        assert_eq!(w.batches().await.len(), 1);
    })
    .await;
}

async fn two_instances_make_one_batch(backend: &str) {
    on(backend, oslo(2026, 3, 10, 13, 50), async |w| {
        let p = w.patient(&["postal", "outreach"]).await;
        w.book(p, w.now() + TimeDelta::days(30)).await;
        w.clock.set(oslo(2026, 3, 10, 14, 1));
        let other = Cron::new(w.engine.clone(), "another instance");
        let (a, b) = tokio::join!(w.cron.run_due(w.now()), other.run_due(w.now()));
        a.unwrap();
        b.unwrap();
        assert_eq!(w.batches().await.len(), 1);
    })
    .await;
}

async fn a_posted_letter_waits_for_its_window_then_escalates(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["postal", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(30)).await;
        w.advance(TimeDelta::hours(5)).await; // the 14:00 batch
        let batch = w.batches().await[0].clone();
        let mut tx = w.store.begin().await.unwrap();
        assert!(
            w.engine
                .mark_batch_printed(&mut tx, batch.id)
                .await
                .unwrap()
        );
        let posted_on = chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        assert!(
            w.engine
                .mark_batch_posted(&mut tx, batch.id, posted_on)
                .await
                .unwrap()
        );
        assert!(
            !w.engine
                .mark_batch_posted(&mut tx, batch.id, posted_on)
                .await
                .unwrap(),
            "once"
        );
        tx.commit().await.unwrap();
        let letter = &w.letters(batch.id).await[0];
        // Posted Tuesday 10 March (ISO week 11, odd: this address gets post Tue/Thu, and
        // Mon/Wed/Fri in even weeks). D+2 working days is Thursday 12, a delivery day; D+5 is
        // Tuesday 17, but week 12 delivers Mon/Wed/Fri, so Wednesday 18.
        assert_eq!(
            letter.expected_from,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 12)
        );
        assert_eq!(
            letter.expected_to,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 18)
        );
        let step = w.steps(&notice).await[1].clone();
        assert_eq!(step.status, Sent);
        // Two working days after the latest expected day, at 16:00: Friday 20 March.
        assert_eq!(step.window_ends_at, Some(oslo(2026, 3, 20, 16, 0)));
        w.advance(TimeDelta::days(10)).await; // Friday 20 March 14:00
        assert_eq!(w.summary(&notice).await[1].1, Sent);
        w.advance(TimeDelta::hours(3)).await;
        let summary = w.summary(&notice).await;
        assert_eq!(summary[1].1, Expired);
        assert_eq!(summary[3].0, Outreach);
        assert_eq!(summary[3].1, Sent, "the outreach team has it: {summary:?}");
    })
    .await;
}

async fn a_returned_letter_escalates_at_once(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["postal", "outreach"]).await;
        let notice = w.book(p, w.now() + TimeDelta::days(30)).await;
        w.advance(TimeDelta::hours(5)).await;
        let batch = w.batches().await[0].clone();
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .mark_batch_posted(
                &mut tx,
                batch.id,
                chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        w.advance(TimeDelta::days(3)).await;
        let reference = w.letters(batch.id).await[0].reference.clone();
        let mut tx = w.store.begin().await.unwrap();
        // Typed in lower case at the desk; recorded twice by mistake.
        w.engine
            .letter_returned(&mut tx, &reference.to_lowercase(), "ukjent adressat")
            .await
            .unwrap();
        w.engine
            .letter_returned(&mut tx, &reference, "ukjent adressat")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let summary = w.summary(&notice).await;
        assert_eq!(summary[1], (Letter, Failed, Some("returned_letter".into())));
        assert!(
            matches!(summary[3].1, Queued | Sent),
            "escalated at once: {summary:?}"
        );
        let mut tx = w.store.begin_read().await.unwrap();
        let address = contact_points::list(&mut tx, p)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.address.is_some())
            .unwrap();
        let followups = tasks::for_patient(&mut tx, p).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(address.status, contact_points::ContactStatus::Failed);
        assert_eq!(
            followups
                .iter()
                .filter(|t| t.kind == tasks::TaskKind::CoordinatorFollowUp)
                .count(),
            1,
            "the coordinator is told once"
        );
        // The next plan skips the address.
        let again = w.book(p, w.now() + TimeDelta::days(30)).await;
        assert_eq!(
            w.summary(&again).await[1],
            (Letter, Skipped, Some("contact_point_failed".into()))
        );
    })
    .await;
}

async fn a_batchs_letters_are_not_given_out_after_the_retention_period(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["postal", "outreach"]).await;
        w.book(p, w.now() + TimeDelta::days(60)).await;
        w.advance(TimeDelta::hours(5)).await;
        let batch = w.batches().await[0].clone();
        let reference = w.letters(batch.id).await[0].reference.clone();
        let mut tx = w.store.begin().await.unwrap();
        let pdf = w.engine.batch_pdf(&mut tx, batch.id).await.unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let (_, one) = w.engine.letter_pdf(&mut tx, &reference).await.unwrap();
        assert!(one.starts_with(b"%PDF-"));
        tx.commit().await.unwrap();
        w.clock.advance(TimeDelta::days(31));
        let mut tx = w.store.begin().await.unwrap();
        assert!(
            w.engine.batch_pdf(&mut tx, batch.id).await.is_err(),
            "30 days by default"
        );
        assert!(w.engine.letter_pdf(&mut tx, &reference).await.is_err());
        tx.commit().await.unwrap();
    })
    .await;
}

async fn a_big_day_becomes_several_batches(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let policy = kontaktvei_scheduler::Policy {
            print_batch_max_letters: 2,
            ..Default::default()
        };
        let mut tx = w.store.begin().await.unwrap();
        organisations::set_policy(&mut tx, w.clinic, &serde_json::to_value(&policy).unwrap())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for _ in 0..5 {
            let p = w.patient(&["postal", "outreach"]).await;
            w.book(p, w.now() + TimeDelta::days(30)).await;
        }
        w.advance(TimeDelta::hours(5)).await;
        let mut sizes: Vec<i32> = w.batches().await.iter().map(|b| b.letters).collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 2, 2], "five letters, at most two a batch");
        let mut all: Vec<String> = Vec::new();
        for b in w.batches().await {
            all.extend(w.letters(b.id).await.into_iter().map(|l| l.reference));
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 5, "each letter in exactly one batch");
    })
    .await;
}

/// A clinic with more coordinators than one INSERT carries: each is told, once, and the
/// notification names the patient for every one of them.
async fn a_team_larger_than_one_insert_is_told_person_by_person(backend: &str) {
    on(backend, tuesday_morning(), async |w: World| {
        let patient = w.patient(&[]).await;
        let mut tx = w.store.begin().await.unwrap();
        for i in 0..1203 {
            let new = NewStaff {
                name: format!("Koordinator {i}"),
                email: None,
                role: Role::Coordinator,
                team_lead: false,
                email_digest: None,
            };
            staff::create_staff(&mut tx, w.clinic, new, w.now())
                .await
                .unwrap();
        }
        let mut coordinators: Vec<Id> = staff::list_staff(&mut tx, w.clinic)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.role == Role::Coordinator)
            .map(|s| s.id)
            .collect();
        assert!(coordinators.len() >= 1203);
        let told = notifications::notify_coordinator(
            &mut tx,
            patient,
            w.clinic,
            NotificationKind::ContactPointFailed,
            notifications::About::default(),
            w.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(told, coordinators.len());
        let mut tx = w.store.begin_read().await.unwrap();
        let rows = notifications::for_organisation(&mut tx, w.clinic, false, 5000)
            .await
            .unwrap();
        let mut named: Vec<Id> = rows.iter().filter_map(|n| n.staff_id).collect();
        named.sort();
        coordinators.sort();
        assert_eq!(named, coordinators, "each coordinator once");
        assert!(rows.iter().all(
            |n| n.patient_id == Some(patient) && n.kind == NotificationKind::ContactPointFailed
        ));
        let ids: std::collections::BTreeSet<Id> = rows.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), rows.len(), "every row its own id");
    })
    .await;
}

/// "Was the patient told in time?" (the simulated clinic asks it at every appointment): an
/// acknowledgement of any notice about the appointment counts if it came before the time asked
/// about, not at it, and a notice about another appointment does not count.
async fn an_ack_counts_for_its_appointment_if_it_came_before(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let p = w.patient(&["sms"]).await;
        let starts = w.now() + TimeDelta::days(3);
        let notice = w.book(p, starts).await;
        let other = w.book(p, starts + TimeDelta::days(7)).await;
        let (appointment, other_appointment) = (
            notice.appointment_id.unwrap(),
            other.appointment_id.unwrap(),
        );
        let told = async |appointment, before| {
            let mut tx = w.store.begin_read().await.unwrap();
            let told =
                kontaktvei_store::acks::any_for_appointment_before(&mut tx, appointment, before)
                    .await
                    .unwrap();
            tx.commit().await.unwrap();
            told
        };
        assert!(!told(appointment, starts).await, "nothing acknowledged yet");
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .acknowledge(&mut tx, notice.id, AckMethod::Link, "patient", None, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(told(appointment, starts).await, "acknowledged before it");
        assert!(
            !told(appointment, w.now()).await,
            "not before the ack itself"
        );
        assert!(
            !told(other_appointment, starts + TimeDelta::days(7)).await,
            "another appointment"
        );
    })
    .await;
}

both!(
    an_ack_counts_for_its_appointment_if_it_came_before,
    a_big_day_becomes_several_batches,
    a_batchs_letters_are_not_given_out_after_the_retention_period,
    letters_before_the_cut_off_go_in_that_days_batch,
    a_letter_due_over_easter_is_printed_the_tuesday_after,
    two_instances_make_one_batch,
    a_posted_letter_waits_for_its_window_then_escalates,
    a_returned_letter_escalates_at_once,
    a_passing_provider_error_is_retried_with_backoff_inside_the_window,
    an_sms_that_would_arrive_after_the_appointment_is_not_sent,
    an_acknowledged_appointment_gets_a_reminder_two_days_before,
    an_unacknowledged_appointment_gets_no_reminder_on_top_of_its_escalation,
    a_cron_occurrence_fires_once_across_instances,
    the_auditor_reports_steps_that_should_have_run,
    an_sms_acknowledged_at_once_ends_the_notice,
    a_silent_sms_escalates_to_the_letter_and_a_late_reply_stops_it,
    a_booking_two_days_ahead_skips_the_letter_as_too_late,
    a_letter_booked_on_maundy_thursday_waits_for_the_easter_holidays,
    an_sms_due_in_quiet_hours_waits_until_eight,
    the_night_summer_time_begins_still_wakes_at_eight,
    a_relay_is_planned_only_while_the_service_is_open,
    a_no_show_creates_the_follow_up_and_the_coordinators_task,
    an_ack_after_escalation_cancels_the_later_steps,
    a_chain_without_people_ends_with_the_coordinator,
    an_unclaimed_outreach_task_goes_to_the_lead_and_the_coordinator,
    the_whole_chain_ends_with_a_named_person,
    told_in_person_acknowledges_and_cancels_the_rest,
    only_the_holder_works_an_outreach_task_and_overdue_work_is_chased,
    a_hand_over_is_offered_then_accepted,
    a_failed_delivery_escalates_at_once,
    a_next_of_kin_is_asked_only_to_have_the_patient_call,
    a_task_given_back_is_chased_again_and_a_refusal_needs_a_decision,
    a_team_without_a_lead_leaves_the_notice_with_the_coordinator,
    a_team_larger_than_one_insert_is_told_person_by_person,
);
