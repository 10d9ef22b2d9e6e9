//! A property of the escalation engine (DESIGN.md, "The escalation rule" and "Guarantees"):
//! whatever happens — bookings, time passing, delivery reports, failures, acknowledgements,
//! repeated acknowledgements — state only moves forward, and no notice ever ends without an
//! acknowledgement or a person who owns it. SQLite only; a fresh database file per case.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use kontaktvei_scheduler::calendar::PostalCalendar;
use kontaktvei_scheduler::{AckResult, Engine, EngineConfig};
use kontaktvei_store::acks::{self, AckMethod};
use kontaktvei_store::appointments::{self, NewAppointment};
use kontaktvei_store::contact_points::{self, NewContactPoint};
use kontaktvei_store::notices::{self, NoticeStatus};
use kontaktvei_store::organisations::{self, NewOrganisation, OrganisationKind};
use kontaktvei_store::patients::{self, NewPatient};
use kontaktvei_store::steps::{self, ChannelKind, Step, StepStatus};
use kontaktvei_store::{Clock, Id, ManualClock, Store, StoreOptions, outbox, tasks};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestError, TestRunner};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const KINDS: [&str; 4] = ["sms", "postal", "relay", "outreach"];

/// One thing that happens to the system.
#[derive(Debug, Clone)]
enum Op {
    /// Book an appointment `ahead_min` minutes ahead and plan its notice, for a new patient with
    /// the contact points in `kinds` (sms, postal, relay, outreach) or, with `reuse`, for a
    /// patient booked before (whose contact points may have failed since).
    Book {
        kinds: [bool; 4],
        reuse: Option<Index>,
        ahead_min: i64,
    },
    /// Move the clock on, then `run_until_idle`.
    Advance { minutes: i64 },
    /// A provider (or a relay's "not seen") reports that a step could not be delivered. Only
    /// channels that report failures: never the coordinator's own step (see
    /// `a_failure_reported_on_the_coordinators_step_leaves_no_owner`).
    Fail { step: Index, reason: &'static str },
    /// A provider reports that a step reached the phone.
    Delivered { step: Index },
    /// Someone acknowledges a notice.
    Ack { notice: Index, method: AckMethod },
    /// The last acknowledgement arrives again (a retried webhook, a second reply).
    RepeatAck { method: AckMethod },
}

fn op() -> impl Strategy<Value = Op> {
    let method = proptest::sample::select(AckMethod::ALL.to_vec());
    prop_oneof![
        3 => (any::<[bool; 4]>(), proptest::option::weighted(0.25, any::<Index>()), 60i64..=30 * 24 * 60)
            .prop_map(|(kinds, reuse, ahead_min)| Op::Book { kinds, reuse, ahead_min }),
        4 => prop_oneof![1i64..120, 60i64..48 * 60, 24 * 60i64..6 * 24 * 60]
            .prop_map(|minutes| Op::Advance { minutes }),
        2 => (any::<Index>(), proptest::sample::select(vec!["undeliverable", "returned", "not_seen"]))
            .prop_map(|(step, reason)| Op::Fail { step, reason }),
        1 => any::<Index>().prop_map(|step| Op::Delivered { step }),
        2 => (any::<Index>(), method.clone()).prop_map(|(notice, method)| Op::Ack { notice, method }),
        1 => method.prop_map(|method| Op::RepeatAck { method }),
    ]
}

/// A start somewhere in a fortnight (any hour, so quiet hours and print cut-offs vary), then the ops.
fn case() -> impl Strategy<Value = (i64, Vec<Op>)> {
    (0i64..14 * 24 * 60, proptest::collection::vec(op(), 1..32))
}

struct World {
    store: Store,
    /// The same file, for the one count the store has no query for.
    raw: sqlx::SqlitePool,
    clock: Arc<ManualClock>,
    engine: Engine,
    clinic: Id,
    service: Id,
    team: Id,
    patients: Vec<Id>,
    notices: Vec<Id>,
    last_ack: Option<Id>,
    /// What each step and notice looked like at the last check.
    seen_steps: HashMap<Id, StepStatus>,
    seen_notices: HashMap<Id, NoticeStatus>,
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

impl World {
    async fn new(store: Store, raw: sqlx::SqlitePool, start: DateTime<Utc>) -> World {
        let clock = Arc::new(ManualClock::new(start));
        let engine = Engine::new(
            store.clone(),
            clock.clone(),
            EngineConfig {
                public_base_url: "http://127.0.0.1:8080".into(),
                instance: "prop".into(),
                postal: PostalCalendar::default(),
            },
        );
        let mut tx = store.begin().await.unwrap();
        let mut org = async |name: &str, kind| {
            let new = NewOrganisation {
                name: name.into(),
                kind,
                time_zone: "Europe/Oslo".into(),
                staff_email: None,
            };
            organisations::create(&mut tx, new, start).await.unwrap().id
        };
        let clinic = org("Poliklinikk", OrganisationKind::Clinic).await;
        let service = org("Dagsenteret", OrganisationKind::LowThresholdService).await;
        let team = org("FACT", OrganisationKind::OutreachTeam).await;
        tx.commit().await.unwrap();
        World {
            store,
            raw,
            clock,
            engine,
            clinic,
            service,
            team,
            patients: Vec::new(),
            notices: Vec::new(),
            last_ack: None,
            seen_steps: HashMap::new(),
            seen_notices: HashMap::new(),
        }
    }

    async fn all_steps(&self) -> Vec<Step> {
        let mut tx = self.store.begin_read().await.unwrap();
        let mut all = Vec::new();
        for id in &self.notices {
            all.extend(steps::for_notice(&mut tx, *id).await.unwrap());
        }
        tx.commit().await.unwrap();
        all
    }

    async fn apply(&mut self, op: &Op) -> Check {
        let now = self.clock.now();
        match op {
            Op::Book {
                kinds,
                reuse,
                ahead_min,
            } => {
                let mut tx = self.store.begin().await.unwrap();
                let patient_id = match reuse {
                    Some(i) if !self.patients.is_empty() => {
                        self.patients[i.index(self.patients.len())]
                    }
                    _ => {
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
                        for (kind, _) in KINDS.iter().zip(kinds).filter(|(_, on)| **on) {
                            let json = match *kind {
                                "sms" => {
                                    serde_json::json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient"})
                                }
                                "postal" => {
                                    serde_json::json!({"kind": "postal", "lines": ["Kari Nordmann", "Storgata 1"], "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"})
                                }
                                "relay" => {
                                    serde_json::json!({"kind": "relay", "organisation_id": self.service, "provenance": "verified_in_person"})
                                }
                                _ => {
                                    serde_json::json!({"kind": "outreach", "organisation_id": self.team, "provenance": "verified_in_person"})
                                }
                            };
                            let new: NewContactPoint = serde_json::from_value(json).unwrap();
                            contact_points::add(&mut tx, p.id, new, "prop", now)
                                .await
                                .unwrap();
                        }
                        self.patients.push(p.id);
                        p.id
                    }
                };
                let new = NewAppointment {
                    patient_id,
                    starts_at: now + TimeDelta::minutes(*ahead_min),
                    duration_minutes: 30,
                    place: "Storgata 36".into(),
                    kind: appointments::AppointmentKind::InPerson,
                };
                let (_, notice) = appointments::book(&mut tx, self.clinic, new, "prop", now)
                    .await
                    .unwrap();
                self.engine.plan(&mut tx, &notice).await.unwrap();
                tx.commit().await.unwrap();
                self.notices.push(notice.id);
            }
            Op::Advance { minutes } => {
                self.clock.advance(TimeDelta::minutes(*minutes));
                self.engine.run_until_idle().await.unwrap();
            }
            Op::Fail { step, reason } => {
                let all = self.all_steps().await;
                if !all.is_empty() {
                    let step = &all[step.index(all.len())];
                    let mut tx = self.store.begin().await.unwrap();
                    self.engine
                        .report_failure(&mut tx, step.id, reason)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }
            Op::Delivered { step } => {
                let all = self.all_steps().await;
                if !all.is_empty() {
                    let step = &all[step.index(all.len())];
                    let mut tx = self.store.begin().await.unwrap();
                    let moved = self
                        .engine
                        .report_delivered(&mut tx, step.id)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    ensure!(
                        moved == (step.status == StepStatus::Sent),
                        "report_delivered on a {} step returned {moved}",
                        step.status
                    );
                }
            }
            Op::Ack { notice, method } => {
                if !self.notices.is_empty() {
                    let id = self.notices[notice.index(self.notices.len())];
                    self.ack(id, *method).await?;
                }
            }
            Op::RepeatAck { method } => {
                if let Some(id) = self.last_ack {
                    self.ack(id, *method).await?;
                }
            }
        }
        Ok(())
    }

    async fn ack(&mut self, id: Id, method: AckMethod) -> Check {
        let mut tx = self.store.begin().await.unwrap();
        let before = notices::get(&mut tx, id).await.unwrap().status;
        let result = self
            .engine
            .acknowledge(&mut tx, id, method, "prop", None, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        match result {
            AckResult::Acknowledged { .. } => {
                ensure!(
                    before.is_open(),
                    "a {before} notice {id} was acknowledged again"
                );
                self.last_ack = Some(id);
            }
            AckResult::AlreadyClosed { status, .. } => {
                ensure!(
                    !before.is_open() && status == before,
                    "ack of a {before} notice {id} said already closed ({status})"
                );
            }
        }
        Ok(())
    }

    /// The invariants, for every notice, compared with the previous observation.
    async fn check(&mut self) -> Check {
        let mut tx = self.store.begin_read().await.unwrap();
        let mut steps_with_message = HashSet::new();
        let mut keys = HashSet::new();
        for m in outbox::all(&mut tx).await.unwrap() {
            // (e) one message per idempotency key, one message per step.
            ensure!(
                keys.insert(m.idempotency_key.clone()),
                "idempotency key {} used twice",
                m.idempotency_key
            );
            ensure!(
                m.step_id.is_none_or(|id| steps_with_message.insert(id)),
                "step {:?} has two outbox messages",
                m.step_id
            );
        }
        for &notice_id in &self.notices {
            let notice = notices::get(&mut tx, notice_id).await.unwrap();
            let all = steps::for_notice(&mut tx, notice_id).await.unwrap();
            let ack = acks::for_notice(&mut tx, notice_id).await.unwrap();
            let open_tasks = tasks::for_notice(&mut tx, notice_id)
                .await
                .unwrap()
                .into_iter()
                .filter(|t| {
                    matches!(
                        t.status,
                        tasks::TaskStatus::Open | tasks::TaskStatus::Claimed
                    )
                })
                .count();
            let plan = || {
                all.iter()
                    .map(|s| {
                        format!(
                            "{}:{}{}",
                            s.channel,
                            s.status,
                            s.reason
                                .as_deref()
                                .map(|r| format!("({r})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" → ")
            };
            // (a) steps only move forward; a final step never changes again — except the one
            // designed exception: a late reply to a step whose window ended is still an ack
            // through it (expired → acknowledged, both final).
            for s in &all {
                if let Some(&was) = self.seen_steps.get(&s.id) {
                    ensure!(
                        s.status.rank() >= was.rank(),
                        "step {} ({}) went back from {was} to {} [{}]",
                        s.position,
                        s.channel,
                        s.status,
                        plan()
                    );
                    ensure!(
                        !was.is_final()
                            || s.status == was
                            || (was == StepStatus::Expired
                                && s.status == StepStatus::Acknowledged
                                && notice.status == NoticeStatus::Acknowledged),
                        "final step {} ({}) changed from {was} to {} [{}]",
                        s.position,
                        s.channel,
                        s.status,
                        plan()
                    );
                }
                self.seen_steps.insert(s.id, s.status);
            }
            // (b) a closed notice stays closed, with the same status.
            if let Some(&was) = self.seen_notices.get(&notice_id) {
                ensure!(
                    was.is_open() || notice.status == was,
                    "notice {notice_id} went from {was} to {}",
                    notice.status
                );
            }
            self.seen_notices.insert(notice_id, notice.status);
            // (c) at most one step running; an open notice is never left with no one.
            let running = |s: &&Step| {
                matches!(
                    s.status,
                    StepStatus::Queued
                        | StepStatus::Sending
                        | StepStatus::Sent
                        | StepStatus::Delivered
                )
            };
            let n_running = all.iter().filter(running).count();
            ensure!(
                n_running <= 1,
                "notice {notice_id} has {n_running} running steps [{}]",
                plan()
            );
            let planned = all.iter().any(|s| s.status == StepStatus::Planned);
            if notice.status.is_open() && n_running == 0 && !planned {
                let last = all.iter().rev().find(|s| s.status != StepStatus::Skipped);
                ensure!(
                    last.is_some_and(|s| s.channel == ChannelKind::Coordinator),
                    "open notice {notice_id} has nothing running, nothing planned and no coordinator [{}]",
                    plan()
                );
                ensure!(
                    open_tasks > 0,
                    "open notice {notice_id} has nothing running and no open task: no one owns it [{}]",
                    plan()
                );
            }
            // (d) an acknowledged notice has one ack and nothing left to run.
            if notice.status == NoticeStatus::Acknowledged {
                ensure!(
                    ack.is_some(),
                    "acknowledged notice {notice_id} has no ack row"
                );
                // `acks::for_notice` reads at most one row, so count them directly.
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM acks WHERE notice_id = $1")
                        .bind(notice_id)
                        .fetch_one(&self.raw)
                        .await
                        .unwrap();
                ensure!(
                    count == 1,
                    "acknowledged notice {notice_id} has {count} ack rows"
                );
                ensure!(
                    all.iter().all(|s| s.status.is_final()),
                    "acknowledged notice {notice_id} still has unfinished steps [{}]",
                    plan()
                );
                ensure!(
                    open_tasks == 0,
                    "acknowledged notice {notice_id} still has {open_tasks} open tasks"
                );
            } else {
                ensure!(
                    ack.is_none(),
                    "{} notice {notice_id} has an ack row",
                    notice.status
                );
            }
        }
        tx.commit().await.unwrap();
        Ok(())
    }
}

/// A world on a fresh SQLite file; the directory to remove afterwards.
async fn open_world(start_offset: i64) -> (World, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("kontaktvei-prop-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let store = Store::connect(&StoreOptions {
        url: url.clone(),
        max_connections: 2,
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let start = Oslo
        .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
        + TimeDelta::minutes(start_offset);
    (World::new(store, raw, start).await, dir)
}

async fn close_world(world: World, dir: std::path::PathBuf) {
    world.raw.close().await;
    world.store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run_case(start_offset: i64, ops: &[Op]) -> Check {
    let (mut world, dir) = open_world(start_offset).await;
    let mut result = Ok(());
    for (i, op) in ops.iter().enumerate() {
        result = match world.apply(op).await {
            Ok(()) => world.check().await,
            Err(e) => Err(e),
        }
        .map_err(|e| format!("after op #{i} {op:?} at {}: {e}", world.clock.now()));
        if result.is_err() {
            break;
        }
    }
    close_world(world, dir).await;
    result
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn escalation_never_moves_back_and_never_ends_in_silence() {
    // 48 cases keep it quick in debug; PROPTEST_CASES=1000 searches harder.
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default().cases
    } else {
        48
    };
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |(start_offset, ops)| {
        block_on(run_case(start_offset, &ops)).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, (start_offset, ops))) => {
            let mut text =
                format!("start offset: {start_offset} min after Mon 2026-03-02 00:00 Oslo\nops:\n");
            for (i, op) in ops.iter().enumerate() {
                text.push_str(&format!("  #{i}: {op:?}\n"));
            }
            panic!("escalation property failed: {why}\nminimal counterexample:\n{text}");
        }
        Err(e) => panic!("{e}"),
    }
}

/// Found by the property when `Fail` could pick any step: a failure reported on the
/// coordinator's step used to fail it and leave the notice open with no step running and no one
/// owning it. Only a person closes the coordinator's step, so the report is ignored.
#[test]
fn a_failure_reported_on_the_coordinators_step_leaves_it_with_the_coordinator() {
    block_on(async {
        let (mut world, dir) = open_world(9 * 60).await;
        let book = Op::Book {
            kinds: [false; 4],
            reuse: None,
            ahead_min: 3 * 24 * 60,
        };
        world.apply(&book).await.unwrap();
        let coordinator = world.all_steps().await.pop().unwrap();
        assert_eq!(coordinator.channel, ChannelKind::Coordinator);
        let mut tx = world.store.begin().await.unwrap();
        world
            .engine
            .report_failure(&mut tx, coordinator.id, "undeliverable")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        world.engine.run_until_idle().await.unwrap();
        let result = world.check().await;
        close_world(world, dir).await;
        result.unwrap();
    });
}
