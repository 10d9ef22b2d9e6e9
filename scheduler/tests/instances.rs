//! Several instances, one database (DESIGN.md, "Guarantees": work is leased — `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, compare-and-set on SQLite). Two engines, each with its own pool and
//! instance name, work one backlog at the same time: every step is sent exactly once, and when
//! windows expire together, every notice escalates exactly once.
//!
//! PostgreSQL runs when `KONTAKTVEI_TEST_DATABASE_URL` is set (required under `CI=true`).

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use common::{FreshDb, both};
use kontaktvei_scheduler::calendar::PostalCalendar;
use kontaktvei_scheduler::{Engine, EngineConfig, Round};
use kontaktvei_store::appointments::{self, NewAppointment};
use kontaktvei_store::contact_points::{self, NewContactPoint};
use kontaktvei_store::organisations::{self, NewOrganisation, OrganisationKind};
use kontaktvei_store::patients::{self, NewPatient};
use kontaktvei_store::steps::{self, ChannelKind, Step, StepStatus};
use kontaktvei_store::{Clock, Id, ManualClock, Store, outbox, tasks};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const BACKLOG: usize = 200;

fn engine(store: Store, clock: Arc<ManualClock>, instance: &str) -> Arc<Engine> {
    Arc::new(Engine::new(
        store,
        clock,
        EngineConfig {
            public_base_url: "http://127.0.0.1:8080".into(),
            instance: instance.into(),
            postal: PostalCalendar::default(),
        },
    ))
}

/// Both engines work at the same time, on their own tasks, each for `rounds` rounds whether or
/// not it found work (so neither stops early while the other still holds rows). Returns what
/// each did.
async fn race(a: &Arc<Engine>, b: &Arc<Engine>, rounds: usize) -> (Round, Round) {
    let work = |engine: Arc<Engine>| {
        tokio::spawn(async move {
            let mut total = Round::default();
            for _ in 0..rounds {
                let round = engine.run_once().await.unwrap();
                total.dispatched += round.dispatched;
                total.expired += round.expired;
                tokio::task::yield_now().await;
            }
            total
        })
    };
    let (ra, rb) = tokio::join!(work(a.clone()), work(b.clone()));
    (ra.unwrap(), rb.unwrap())
}

/// Nothing is left for either engine.
async fn assert_idle(a: &Engine, b: &Engine) {
    assert_eq!(
        a.run_until_idle().await.unwrap(),
        Round::default(),
        "a idle"
    );
    assert_eq!(
        b.run_until_idle().await.unwrap(),
        Round::default(),
        "b idle"
    );
}

/// The backlog: `BACKLOG` patients with an SMS number (every other one also reachable through a
/// low-threshold service), each with an appointment some days ahead and its notice planned.
async fn backlog(store: &Store, planner: &Engine, now: DateTime<Utc>) -> Vec<Id> {
    let mut tx = store.begin().await.unwrap();
    let org = |name: &str, kind| NewOrganisation {
        name: name.into(),
        kind,
        time_zone: "Europe/Oslo".into(),
        staff_email: None,
    };
    let clinic = organisations::create(&mut tx, org("Poliklinikk", OrganisationKind::Clinic), now)
        .await
        .unwrap()
        .id;
    let service = organisations::create(
        &mut tx,
        org("Dagsenteret", OrganisationKind::LowThresholdService),
        now,
    )
    .await
    .unwrap()
    .id;
    let mut notices = Vec::with_capacity(BACKLOG);
    for i in 0..BACKLOG {
        let new = NewPatient {
            name: format!("Pasient {i}"),
            birth_year: Some(1970 + (i % 30) as i32),
            birth_date: None,
            language: None,
            contact_notes: String::new(),
            national_id: None,
            coordinator_id: None,
        };
        let p = patients::create(&mut tx, clinic, new, now).await.unwrap();
        let mut points = vec![
            serde_json::json!({"kind": "sms", "phone": format!("+479{:07}", 1_000_000 + i), "provenance": "stated_by_patient"}),
        ];
        if i % 2 == 1 {
            points.push(serde_json::json!({"kind": "relay", "organisation_id": service, "provenance": "verified_in_person"}));
        }
        for json in points {
            let new: NewContactPoint = serde_json::from_value(json).unwrap();
            contact_points::add(&mut tx, p.id, new, "test", now)
                .await
                .unwrap();
        }
        let new = NewAppointment {
            patient_id: p.id,
            starts_at: now + TimeDelta::days(3 + (i % 5) as i64),
            duration_minutes: 30,
            place: "Storgata 36".into(),
            kind: appointments::AppointmentKind::InPerson,
        };
        let (_, notice) = appointments::book(&mut tx, clinic, new, "test", now)
            .await
            .unwrap();
        planner.plan(&mut tx, &notice).await.unwrap();
        notices.push(notice.id);
    }
    tx.commit().await.unwrap();
    notices
}

struct Snapshot {
    steps: HashMap<Id, Vec<Step>>,
    events: HashMap<Id, Vec<steps::StepEvent>>,
    outbox: Vec<outbox::OutboxMessage>,
    tasks: HashMap<Id, Vec<tasks::Task>>,
}

async fn snapshot(store: &Store, notices: &[Id]) -> Snapshot {
    let mut tx = store.begin_read().await.unwrap();
    let mut snap = Snapshot {
        steps: HashMap::new(),
        events: HashMap::new(),
        outbox: outbox::all(&mut tx).await.unwrap(),
        tasks: HashMap::new(),
    };
    for &id in notices {
        snap.steps
            .insert(id, steps::for_notice(&mut tx, id).await.unwrap());
        snap.events
            .insert(id, steps::events_for_notice(&mut tx, id).await.unwrap());
        snap.tasks
            .insert(id, tasks::for_notice(&mut tx, id).await.unwrap());
    }
    tx.commit().await.unwrap();
    snap
}

fn is_running(s: &Step) -> bool {
    matches!(
        s.status,
        StepStatus::Queued | StepStatus::Sending | StepStatus::Sent | StepStatus::Delivered
    )
}

/// No lease is left behind, and no step ever entered a state twice (a step leased by both
/// engines would show `sending`/`sent` twice; a double escalation `expired`/`queued` twice).
fn assert_clean(snap: &Snapshot) {
    for (notice, all) in &snap.steps {
        for s in all {
            assert!(
                s.lease_owner.is_none() && s.lease_until == 0,
                "notice {notice}: step {} ({}) still leased by {:?}",
                s.position,
                s.channel,
                s.lease_owner
            );
        }
        let mut seen = HashSet::new();
        for e in &snap.events[notice] {
            assert!(
                seen.insert((e.step_id, e.status)),
                "notice {notice}: step {} entered {} twice: {:?}",
                e.step_id,
                e.status,
                snap.events[notice]
            );
        }
    }
    let keys: HashSet<&str> = snap
        .outbox
        .iter()
        .map(|m| m.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), snap.outbox.len(), "idempotency keys are unique");
    let steps: HashSet<Id> = snap.outbox.iter().filter_map(|m| m.step_id).collect();
    assert_eq!(steps.len(), snap.outbox.len(), "one message per step");
}

/// A Tuesday morning, outside quiet hours: the backlog's first steps are due at once.
fn tuesday_morning() -> DateTime<Utc> {
    Oslo.with_ymd_and_hms(2026, 3, 10, 9, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Two engines, one database, one backlog; with `later`, time then moves on 25 hours so every
/// SMS window ends at once and both engines race to escalate.
async fn two_engines(backend: &str, later: bool) {
    let Some(db) = FreshDb::new(backend).await else {
        return;
    };
    let started = std::time::Instant::now();
    // Each engine with a pool of its own, as two instances would have.
    let (store_a, store_b) = (db.store(4).await, db.store(4).await);
    let now = tuesday_morning();
    let clock = Arc::new(ManualClock::new(now));
    let a = engine(store_a.clone(), clock.clone(), "instance-a");
    let b = engine(store_b.clone(), clock.clone(), "instance-b");
    let notices = backlog(&store_a, &a, clock.now()).await;

    let (ra, rb) = race(&a, &b, 6).await;
    assert_eq!(
        ra.dispatched + rb.dispatched,
        BACKLOG,
        "each first step leased once (a: {ra:?}, b: {rb:?})"
    );
    assert_idle(&a, &b).await;
    let snap = snapshot(&store_b, &notices).await;
    assert_clean(&snap);
    assert_eq!(snap.outbox.len(), BACKLOG, "one SMS per notice");
    let by_notice: HashMap<Id, &outbox::OutboxMessage> =
        snap.outbox.iter().map(|m| (m.notice_id, m)).collect();
    for id in &notices {
        let first = &snap.steps[id][0];
        assert_eq!(
            (first.channel, first.status),
            (ChannelKind::Sms, StepStatus::Sent)
        );
        assert_eq!(
            by_notice[id].step_id,
            Some(first.id),
            "the message is the first step's"
        );
        assert_eq!(
            first.idempotency_key.as_deref(),
            Some(by_notice[id].idempotency_key.as_str())
        );
    }
    eprintln!(
        "{backend}: {BACKLOG} notices, first steps by a: {}, by b: {} ({:?})",
        ra.dispatched,
        rb.dispatched,
        started.elapsed()
    );

    if later {
        clock.advance(TimeDelta::hours(25));
        let (ra, rb) = race(&a, &b, 10).await;
        assert_eq!(
            ra.expired + rb.expired,
            BACKLOG,
            "every SMS window expired once (a: {ra:?}, b: {rb:?})"
        );
        assert_eq!(
            ra.dispatched + rb.dispatched,
            BACKLOG,
            "every next step (relay or coordinator) dispatched once (a: {ra:?}, b: {rb:?})"
        );
        assert_idle(&a, &b).await;
        let snap = snapshot(&store_a, &notices).await;
        assert_clean(&snap);
        assert_eq!(snap.outbox.len(), BACKLOG, "no SMS sent again");
        for id in &notices {
            let all = &snap.steps[id];
            let running: Vec<&Step> = all.iter().filter(|s| is_running(s)).collect();
            assert_eq!(
                running.len(),
                1,
                "notice {id}: exactly one running step: {all:?}"
            );
            let step = running[0];
            assert!(
                step.channel.is_human() && step.status == StepStatus::Sent,
                "notice {id}: a person has it now: {all:?}"
            );
            assert_eq!(all[0].status, StepStatus::Expired);
            let open: Vec<&tasks::Task> = snap.tasks[id].iter().collect();
            assert_eq!(open.len(), 1, "notice {id}: one task: {open:?}");
            assert_eq!(open[0].step_id, Some(step.id));
        }
        eprintln!(
            "{backend}: escalated after 25 h: a {ra:?}, b {rb:?} ({:?})",
            started.elapsed()
        );
    }

    store_a.close().await;
    store_b.close().await;
    db.remove().await;
}

async fn every_step_is_sent_exactly_once(backend: &str) {
    two_engines(backend, false).await;
}

async fn expiring_windows_escalate_exactly_once(backend: &str) {
    two_engines(backend, true).await;
}

/// A lease takes at most its limit, the longest-due first, and the next lease the ones after;
/// the search for ended windows keeps its limit and order too. (Both write the limit into
/// their statement instead of binding it; this is what must not change.)
async fn leases_and_ended_windows_keep_their_limit_and_order(backend: &str) {
    let Some(db) = FreshDb::new(backend).await else {
        return;
    };
    let store = db.store(2).await;
    let now = tuesday_morning();
    let planner = engine(store.clone(), Arc::new(ManualClock::new(now)), "planner");
    let notices = backlog(&store, &planner, now).await;
    let mut queued: Vec<Step> = snapshot(&store, &notices)
        .await
        .steps
        .into_values()
        .flatten()
        .filter(|s| s.status == StepStatus::Queued)
        .collect();
    assert_eq!(queued.len(), BACKLOG, "one queued step per notice");

    let later = now + TimeDelta::days(30);
    let mut tx = store.begin().await.unwrap();
    queued.sort_by_key(|s| (s.window_ends_at, s.id));
    let ended = steps::windows_ended(&mut tx, later, 5).await.unwrap();
    let ids = |steps: &[Step]| steps.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&ended),
        ids(&queued[..5]),
        "the 5 earliest-ending windows"
    );

    queued.sort_by_key(|s| (s.due_at, s.id));
    let lease_until = (now + TimeDelta::seconds(60)).timestamp_millis();
    let kinds = [ChannelKind::Sms, ChannelKind::Relay];
    let first = steps::lease_due(&mut tx, "a", &kinds, now, lease_until, 7)
        .await
        .unwrap();
    let mut first_ids = ids(&first);
    first_ids.sort();
    let mut expected = ids(&queued[..7]);
    expected.sort();
    assert_eq!(first_ids, expected, "the 7 longest-due steps");
    assert!(
        first
            .iter()
            .all(|s| s.status == StepStatus::Sending && s.lease_owner.as_deref() == Some("a"))
    );
    let second = steps::lease_due(&mut tx, "b", &kinds, now, lease_until, 7)
        .await
        .unwrap();
    let mut second_ids = ids(&second);
    second_ids.sort();
    let mut expected = ids(&queued[7..14]);
    expected.sort();
    assert_eq!(second_ids, expected, "the next 7, none taken twice");
    tx.commit().await.unwrap();

    store.close().await;
    db.remove().await;
}

/// An instance that leased steps and stopped before sending them holds them only until its
/// lease runs out: until then no other engine finds them due, afterwards another sends them.
async fn a_lease_that_ran_out_is_due_again(backend: &str) {
    let Some(db) = FreshDb::new(backend).await else {
        return;
    };
    let store = db.store(2).await;
    let now = tuesday_morning();
    let clock = Arc::new(ManualClock::new(now));
    let survivor = engine(store.clone(), clock.clone(), "survivor");
    let notices = backlog(&store, &survivor, now).await;
    assert!(
        survivor.due_work().await.unwrap().steps,
        "the backlog is due"
    );

    // The instance that stopped: it leased everything for a minute and sent nothing.
    let mut tx = store.begin().await.unwrap();
    let lease_until = (now + TimeDelta::minutes(1)).timestamp_millis();
    let kinds = survivor.channel_kinds();
    let taken = steps::lease_due(&mut tx, "stopped", &kinds, now, lease_until, 1000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(taken.len(), BACKLOG);
    assert!(
        !survivor.due_work().await.unwrap().steps,
        "leased elsewhere"
    );
    assert_eq!(survivor.run_once().await.unwrap().dispatched, 0);

    clock.advance(TimeDelta::minutes(2));
    assert!(
        survivor.due_work().await.unwrap().steps,
        "the lease ran out"
    );
    let round = survivor.run_until_idle().await.unwrap();
    assert_eq!(round.dispatched, BACKLOG, "the survivor sends them all");
    let sent = snapshot(&store, &notices)
        .await
        .steps
        .into_values()
        .flatten()
        .filter(|s| s.status == StepStatus::Sent)
        .count();
    assert_eq!(sent, BACKLOG);
    assert!(
        !survivor.due_work().await.unwrap().steps,
        "nothing left to send"
    );

    store.close().await;
    db.remove().await;
}

both!(
    every_step_is_sent_exactly_once,
    expiring_windows_escalate_exactly_once,
    leases_and_ended_windows_keep_their_limit_and_order,
    a_lease_that_ran_out_is_due_again,
);
