//! One strategy's run: a temporary SQLite database, the real engine with a simulated phone
//! network behind the real SMS channel, and the people around the patients — the print room,
//! the day centres, the outreach teams, the coordinators — acting through the same store and
//! engine calls the API uses. Virtual time moves in steps of at most 15 minutes; everything
//! due in a step happens at its end.

use super::scenario::Scenario;
use super::{SimConfig, SimError, Strategy, StrategyResult};
use crate::calendar::{PostalCalendar, is_working_day, oslo_date, oslo_instant};
use crate::cron::Cron;
use crate::engine::{AckResult, Engine, EngineConfig};
use crate::human::{Closing, Person};
use crate::policy::Policy;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use kontaktvei_channels::letter::LetterMessage;
use kontaktvei_channels::sms::reports::{DeliveryReport, InboundSms, ReportStatus};
use kontaktvei_channels::sms::{RouteConfig, Sent, SmsChannel, SmsMessage, SmsProvider};
use kontaktvei_channels::{BoxFuture, ChannelKind};
use kontaktvei_store::acks::{AckMethod, CODE_ALPHABET};
use kontaktvei_store::appointments::{self, AppointmentStatus, NewAppointment, Reschedule};
use kontaktvei_store::notices;
use kontaktvei_store::organisations::{self, NewOrganisation, OrganisationKind};
use kontaktvei_store::patients::{self, NewPatient};
use kontaktvei_store::staff::{self, NewStaff, Role};
use kontaktvei_store::tasks::{self, NewAttempt, TaskFilter, TaskKind, TaskOutcome, TaskStatus};
use kontaktvei_store::{Clock, Id, ManualClock, Store, Tx, contact_points, print, reports, steps};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Everything due within this much of each other happens together: the shortest step.
const QUANTUM: TimeDelta = TimeDelta::minutes(15);
/// After the last appointment, people get this long to act before the books are closed.
const DRAIN: TimeDelta = TimeDelta::days(3);
const POSTAL_CODES: [&str; 8] = [
    "0155", "0176", "0560", "0661", "7010", "5003", "9008", "8006",
];

// What a roll is for: each purpose draws from its own keyed stream.
const PHONE: u64 = 1;
const PHONE_OFF_START: u64 = 2;
const PHONE_OFF_DAYS: u64 = 3;
const ADDRESS: u64 = 4;
const CARE_OF: u64 = 5;
const RELAY: u64 = 6;
const OUTREACH: u64 = 7;
const COORDINATOR: u64 = 8;
const BOOKINGS: u64 = 9;
const BOOK_DAY: u64 = 10;
const BOOK_MINUTE: u64 = 11;
const LEAD: u64 = 12;
const APPT_MINUTE: u64 = 13;
const RESCHEDULE: u64 = 14;
const RESCHEDULE_WHEN: u64 = 15;
const RESCHEDULE_BY: u64 = 16;
const ATTEND: u64 = 17;
const REPLY: u64 = 18;
const REPLY_DELAY: u64 = 19;
const LETTER_DAY: u64 = 20;
const LETTER_READ: u64 = 21;
const LETTER_DELAY: u64 = 22;
const LETTER_BACK: u64 = 23;
const VISIT: u64 = 24;
const PASS_ON: u64 = 25;
const FIND: u64 = 26;
const REACH: u64 = 27;
const POSTAL: u64 = 28;

/// Keyed randomness in [0, 1): the same (seed, patient, what, n) always gives the same number,
/// whatever order the engine handles things in — a shared stream generator could not promise
/// that. SplitMix64's finaliser mixes the key; no crate offers exactly this.
fn roll(seed: u64, patient: usize, what: u64, n: u64) -> f64 {
    let mut x = seed
        ^ (patient as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ what.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ n.wrapping_mul(0x1656_67B1_9E37_79F9);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1_u64 << 53) as f64
}

/// An integer in `[low, high]`.
fn pick(r: f64, [low, high]: [u32; 2]) -> u32 {
    low + ((r * f64::from(high - low + 1)) as u32).min(high - low)
}

/// The first day of the simulation: a Monday in an ordinary January, so every run, whenever it
/// is made, meets the same calendar.
fn start() -> DateTime<Utc> {
    oslo_instant(
        NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default(),
        NaiveTime::MIN,
    )
}

fn at(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    oslo_instant(
        date,
        NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default(),
    )
}

fn next_working_day(mut d: NaiveDate) -> NaiveDate {
    while !is_working_day(d) {
        d = d.succ_opt().unwrap_or(d);
    }
    d
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phone {
    None,
    Working,
    Off {
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    Dead,
    OtherHands,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Address {
    None,
    Wrong,
    Home,
    CareOf,
}

#[derive(Debug)]
struct Patient {
    id: Id,
    number: Option<String>,
    phone: Phone,
    address: Address,
    postal_code: &'static str,
    /// Counters that key each patient's rolls, so order elsewhere does not matter.
    sms_seen: u64,
    letters_seen: u64,
    attempts: u64,
    appointments: u64,
}

impl Patient {
    fn phone_works(&self, now: DateTime<Utc>) -> bool {
        match self.phone {
            Phone::Working => true,
            Phone::Off { from, until } => now < from || now >= until,
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Event {
    Book {
        patient: usize,
    },
    Reschedule {
        patient: usize,
        appointment: Id,
    },
    Attendance {
        patient: usize,
        appointment: Id,
        starts_at: DateTime<Utc>,
    },
    Report {
        reference: String,
        status: ReportStatus,
    },
    /// The patient texts back the code of `notice`.
    Reply {
        patient: usize,
        notice: Id,
        text: String,
    },
    /// The patient read a letter and answers with its code.
    LetterRead {
        patient: usize,
        notice: Id,
        step: Id,
        code: String,
    },
    LetterBack {
        reference: String,
    },
    Outreach {
        day: NaiveDate,
    },
    Relay {
        day: NaiveDate,
    },
    Coordinators {
        day: NaiveDate,
    },
    Post {
        day: NaiveDate,
    },
    /// Nothing but time passing: the print cut-off, so the day's letters are batched.
    Tick,
}

impl Event {
    fn is_a_days_work(&self) -> bool {
        matches!(
            self,
            Event::Tick
                | Event::Post { .. }
                | Event::Relay { .. }
                | Event::Outreach { .. }
                | Event::Coordinators { .. }
        )
    }
}

/// The phone network: takes every SMS the engine sends, for the simulation to decide its fate.
#[derive(Debug, Default)]
struct Network {
    sent: Mutex<Vec<SmsMessage>>,
}

impl SmsProvider for Network {
    fn name(&self) -> &str {
        "sim"
    }

    fn send<'a>(&'a self, message: &'a SmsMessage) -> BoxFuture<'a, Sent> {
        Box::pin(async move {
            self.sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(message.clone());
            Sent::Accepted {
                provider_ref: message.reference.clone(),
            }
        })
    }
}

struct World<'a> {
    config: &'a SimConfig,
    scenario: &'a Scenario,
    strategy: Strategy,
    store: Store,
    clock: Arc<ManualClock>,
    engine: Arc<Engine>,
    cron: Cron,
    network: Arc<Network>,
    clinic: Id,
    services: Vec<(Id, Person)>,
    teams: Vec<(Id, Vec<Person>)>,
    coordinators: Vec<Person>,
    patients: Vec<Patient>,
    by_id: HashMap<Id, usize>,
    by_number: HashMap<String, usize>,
    events: BTreeMap<(DateTime<Utc>, u64), Event>,
    seq: u64,
    last_appointment: DateTime<Utc>,
    appointments: i64,
    no_shows: i64,
    /// Attempts made on each outreach task.
    attempts: HashMap<Id, u32>,
    /// Each notice's place in its patient's order, read once.
    notice_keys: HashMap<Id, NoticeKey>,
    /// Which of its patient's bookings each appointment is (its ids are random).
    booking_number: HashMap<Id, u64>,
}

/// Where a notice stands among a patient's others, without its id (random): when it was
/// made, its kind, the appointment's time, and which of the patient's bookings it is for (two
/// reminders can be made in one instant for two appointments at the same time).
type NoticeKey = (
    DateTime<Utc>,
    &'static str,
    Option<DateTime<Utc>>,
    Option<u64>,
);

fn code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == 6 && w.bytes().all(|b| CODE_ALPHABET.contains(&b)))
        .map(str::to_owned)
}

fn policy_for(strategy: Strategy) -> Policy {
    match strategy {
        Strategy::Kontaktvei => Policy::default(),
        Strategy::SmsOnly => Policy {
            chain: vec![ChannelKind::Sms],
            latency_aware: false,
            person_last: false,
            ..Policy::default()
        },
        Strategy::SmsThenLetter => Policy {
            chain: vec![ChannelKind::Sms, ChannelKind::Letter],
            latency_aware: false,
            person_last: false,
            ..Policy::default()
        },
    }
}

pub async fn run(config: &SimConfig, strategy: Strategy) -> Result<StrategyResult, SimError> {
    let store = Store::scratch().await?;
    let mut world = World::new(config, strategy, store.clone()).await?;
    let result = world.run().await;
    store.close().await;
    result
}

impl<'a> World<'a> {
    async fn new(
        config: &'a SimConfig,
        strategy: Strategy,
        store: Store,
    ) -> Result<World<'a>, SimError> {
        let clock = Arc::new(ManualClock::new(start()));
        let network = Arc::new(Network::default());
        let sms = SmsChannel::new(
            vec![RouteConfig {
                provider: network.clone(),
                priority: 1,
                weight: 1,
                rate_per_second: None,
            }],
            clock.clone(),
            None,
        );
        let engine = Arc::new(
            Engine::new(
                store.clone(),
                clock.clone(),
                EngineConfig {
                    public_base_url: "https://kontaktvei.example".into(),
                    instance: format!("sim-{}", strategy.name()),
                    postal: PostalCalendar::default(),
                },
            )
            .with_sms(Arc::new(sms)),
        );
        // The jobs that change what happens to patients; the auditor and the mail digest only
        // watch and tell.
        let cron = Cron::new(engine.clone(), format!("sim-{}", strategy.name()))
            .only(&["reminder", "print"]);
        let mut world = World {
            config,
            scenario: &config.scenario,
            strategy,
            store,
            clock,
            engine,
            cron,
            network,
            clinic: Id::new(start()),
            services: Vec::new(),
            teams: Vec::new(),
            coordinators: Vec::new(),
            patients: Vec::new(),
            by_id: HashMap::new(),
            by_number: HashMap::new(),
            events: BTreeMap::new(),
            seq: 0,
            last_appointment: start(),
            appointments: 0,
            no_shows: 0,
            attempts: HashMap::new(),
            notice_keys: HashMap::new(),
            booking_number: HashMap::new(),
        };
        world.populate().await?;
        Ok(world)
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn r(&self, patient: usize, what: u64, n: u64) -> f64 {
        roll(self.config.seed, patient, what, n)
    }

    fn schedule(&mut self, at: DateTime<Utc>, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    async fn organisation(
        &self,
        tx: &mut kontaktvei_store::Tx,
        name: String,
        kind: OrganisationKind,
    ) -> Result<Id, SimError> {
        Ok(organisations::create(
            tx,
            NewOrganisation {
                name,
                kind,
                time_zone: "Europe/Oslo".into(),
                staff_email: None,
            },
            self.now(),
        )
        .await?
        .id)
    }

    async fn person(
        &self,
        tx: &mut kontaktvei_store::Tx,
        organisation_id: Id,
        role: Role,
        name: String,
        team_lead: bool,
    ) -> Result<Person, SimError> {
        let s = staff::create_staff(
            tx,
            organisation_id,
            NewStaff {
                name,
                email: None,
                role,
                team_lead,
                email_digest: None,
            },
            self.now(),
        )
        .await?;
        Ok(Person {
            staff_id: s.id,
            organisation_id,
            role,
            label: format!("staff:{}", s.id),
        })
    }

    /// The clinic, the services, the teams, their staff, and the patients with their contact
    /// points, drawn from the scenario.
    async fn populate(&mut self) -> Result<(), SimError> {
        let sc = self.scenario;
        let n = self.config.patients;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        self.clinic = self
            .organisation(&mut tx, "Poliklinikken".into(), OrganisationKind::Clinic)
            .await?;
        organisations::set_policy(
            &mut tx,
            self.clinic,
            &serde_json::to_value(policy_for(self.strategy)).map_err(crate::engine::Error::from)?,
        )
        .await?;
        let services = ((n as f64 * sc.relay.linked / 500.0).ceil() as usize).max(1);
        for i in 0..services {
            let id = self
                .organisation(
                    &mut tx,
                    format!("Dagsenter {}", i + 1),
                    OrganisationKind::LowThresholdService,
                )
                .await?;
            let p = self
                .person(
                    &mut tx,
                    id,
                    Role::Relay,
                    format!("Miljøarbeider {}", i + 1),
                    true,
                )
                .await?;
            self.services.push((id, p));
        }
        let teams = ((n as f64 * sc.outreach.linked / 300.0).ceil() as usize).max(1);
        for i in 0..teams {
            let id = self
                .organisation(
                    &mut tx,
                    format!("FACT-team {}", i + 1),
                    OrganisationKind::OutreachTeam,
                )
                .await?;
            let mut members = Vec::new();
            for m in 0..3 {
                members.push(
                    self.person(
                        &mut tx,
                        id,
                        Role::Outreach,
                        format!("Sykepleier {}-{}", i + 1, m + 1),
                        m == 0,
                    )
                    .await?,
                );
            }
            self.teams.push((id, members));
        }
        let coordinators =
            ((n as f64 * sc.clinic.coordinator_share / 100.0).ceil() as usize).max(1);
        for i in 0..coordinators {
            let p = self
                .person(
                    &mut tx,
                    self.clinic,
                    Role::Coordinator,
                    format!("Koordinator {}", i + 1),
                    i == 0,
                )
                .await?;
            self.coordinators.push(p);
        }
        let seed = self.config.seed;
        let r = |p: usize, what: u64| roll(seed, p, what, 0);
        let days = i64::from(self.config.days);
        for p in 0..n {
            if p % 500 == 499 {
                tx.commit().await?;
                tx = self.store.begin().await?;
            }
            let u = r(p, PHONE);
            let ph = &sc.phone;
            let phone = if u < ph.none {
                Phone::None
            } else if u < ph.none + ph.switched_off {
                let from = start()
                    + TimeDelta::minutes((r(p, PHONE_OFF_START) * (days * 24 * 60) as f64) as i64);
                let len = pick(r(p, PHONE_OFF_DAYS), ph.switched_off_days);
                Phone::Off {
                    from,
                    until: from + TimeDelta::days(i64::from(len)),
                }
            } else if u < ph.none + ph.switched_off + ph.changed_undeliverable {
                Phone::Dead
            } else if u < ph.none
                + ph.switched_off
                + ph.changed_undeliverable
                + ph.changed_other_hands
            {
                Phone::OtherHands
            } else {
                Phone::Working
            };
            let address = if r(p, ADDRESS) < sc.post.no_address {
                Address::None
            } else if r(p, CARE_OF) < sc.post.wrong_or_expired {
                Address::Wrong
            } else if r(p, CARE_OF + 100) < sc.post.care_of {
                Address::CareOf
            } else {
                Address::Home
            };
            let coordinator = (r(p, COORDINATOR) < sc.clinic.coordinator_share)
                .then(|| self.coordinators[p % self.coordinators.len()].staff_id);
            let patient = patients::create(
                &mut tx,
                self.clinic,
                NewPatient {
                    name: format!("Pasient {p:05}"),
                    birth_year: Some(1960 + (p % 40) as i32),
                    birth_date: None,
                    language: None,
                    contact_notes: String::new(),
                    national_id: None,
                    coordinator_id: coordinator,
                },
                now,
            )
            .await?;
            let number = (phone != Phone::None).then(|| format!("+47{}", 40_000_000 + p));
            let postal_code = POSTAL_CODES
                [(r(p, POSTAL) * POSTAL_CODES.len() as f64) as usize % POSTAL_CODES.len()];
            let mut points = Vec::new();
            if let Some(number) = &number {
                points.push(serde_json::json!({"kind": "sms", "phone": number, "provenance": "stated_by_patient"}));
            }
            match address {
                Address::None => {}
                Address::CareOf => points.push(serde_json::json!({"kind": "postal", "lines": [format!("Pasient {p:05}"), "c/o Dagsenteret", "Storgata 1"], "postal_code": postal_code, "place": "Oslo", "provenance": "stated_by_patient"})),
                _ => points.push(serde_json::json!({"kind": "postal", "lines": [format!("Pasient {p:05}"), "Gata 1"], "postal_code": postal_code, "place": "Oslo", "provenance": "population_register"})),
            }
            if r(p, RELAY) < sc.relay.linked {
                let (service, _) = &self.services[p % self.services.len()];
                points.push(serde_json::json!({"kind": "relay", "organisation_id": service, "provenance": "verified_in_person", "note": "kommer innom et par ganger i uka"}));
            }
            if r(p, OUTREACH) < sc.outreach.linked {
                let (team, _) = &self.teams[p % self.teams.len()];
                points.push(serde_json::json!({"kind": "outreach", "organisation_id": team, "provenance": "verified_in_person"}));
            }
            for point in points {
                let new = serde_json::from_value(point).map_err(crate::engine::Error::from)?;
                contact_points::add(&mut tx, patient.id, new, "sim", now).await?;
            }
            if let Some(number) = &number {
                self.by_number.insert(number.clone(), p);
            }
            self.by_id.insert(patient.id, p);
            self.patients.push(Patient {
                id: patient.id,
                number,
                phone,
                address,
                postal_code,
                sms_seen: 0,
                letters_seen: 0,
                attempts: 0,
                appointments: 0,
            });
            // The clinic's bookings for this patient over the period.
            let expected = sc.clinic.appointments_per_30_days * days as f64 / 30.0;
            let count = expected.floor() as u64 + u64::from(r(p, BOOKINGS) < expected.fract());
            for k in 0..count {
                let day = (roll(seed, p, BOOK_DAY, k) * days as f64) as i64;
                let date = next_working_day(oslo_date(start() + TimeDelta::days(day)));
                let minute = (roll(seed, p, BOOK_MINUTE, k) * 7.0 * 60.0) as i64;
                let when = at(date, 8, 0) + TimeDelta::minutes(minute);
                self.schedule(when, Event::Book { patient: p });
            }
        }
        tx.commit().await?;
        // The people's working days.
        let last = oslo_date(start() + TimeDelta::days(days + 60));
        let mut day = oslo_date(start());
        while day <= last {
            self.schedule(at(day, 9, 0), Event::Outreach { day });
            self.schedule(at(day, 10, 0), Event::Relay { day });
            self.schedule(at(day, 11, 0), Event::Coordinators { day });
            self.schedule(at(day, 14, 0), Event::Tick);
            self.schedule(at(day, 16, 0), Event::Post { day });
            day = day.succ_opt().unwrap_or(day);
        }
        Ok(())
    }

    async fn run(&mut self) -> Result<StrategyResult, SimError> {
        let bookings_end = start() + TimeDelta::days(i64::from(self.config.days));
        loop {
            let end = self.last_appointment.max(bookings_end) + DRAIN;
            let now = self.now();
            if now >= end {
                break;
            }
            let next_event = self.events.keys().next().map(|(t, _)| *t);
            let wake = self.engine.next_wake().await?;
            let target = [next_event, wake, Some(end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end)
                .max(now + QUANTUM)
                .min(end.max(now + QUANTUM));
            self.clock.set(target);
            // The people's events of this step share one transaction: each would be its own
            // request to the gateway, but here they happen at one instant of virtual time, and
            // a BEGIN and COMMIT for each were two more round trips to the database's thread. A
            // service's day of work opens transactions of its own, so the shared one is
            // committed before it.
            let mut round: Option<Tx> = None;
            while let Some(entry) = self.events.first_entry() {
                if entry.key().0 > target {
                    break;
                }
                let event = entry.remove();
                if event.is_a_days_work() {
                    if let Some(tx) = round.take() {
                        tx.commit().await?;
                    }
                    self.work(event).await?;
                } else {
                    let tx = match &mut round {
                        Some(tx) => tx,
                        None => round.insert(self.store.begin().await?),
                    };
                    self.handle(event, tx).await?;
                }
            }
            if let Some(tx) = round {
                tx.commit().await?;
            }
            self.cron.run_due(self.now()).await?;
            self.engine.run_until_idle().await?;
            self.phones().await?;
        }
        self.result().await
    }

    /// Decides the fate of every SMS the engine sent in this step.
    async fn phones(&mut self) -> Result<(), SimError> {
        let sent: Vec<SmsMessage> =
            std::mem::take(&mut *self.network.sent.lock().unwrap_or_else(|e| e.into_inner()));
        // The order in which a patient's messages meet their phone decides which roll each
        // gets, so it must not depend on ids (random) or on the order the engine sent them:
        // the patient, then the notice's creation and kind, then the message's deadline.
        let ids: Vec<Id> = sent.iter().map(|m| m.notice_id).collect();
        self.learn_notice_keys(&ids).await?;
        let mut keyed: Vec<_> = sent
            .into_iter()
            .map(|m| {
                let key = (
                    self.by_number.get(&m.to).copied(),
                    self.notice_keys[&m.notice_id],
                    m.valid_until,
                );
                (key, m)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let sent = keyed.into_iter().map(|(_, m)| m);
        let now = self.now();
        let sc = self.scenario;
        for m in sent {
            if m.step_id.is_none() {
                continue; // our thanks for an acknowledgement
            }
            let Some(&p) = self.by_number.get(&m.to) else {
                continue; // a next of kin's phone
            };
            let n = self.patients[p].sms_seen;
            self.patients[p].sms_seen += 1;
            let reply_delay = |r: f64| {
                let hours = (-(1.0 - r).ln() * sc.phone.reply_delay_hours).min(72.0);
                TimeDelta::minutes((hours * 60.0) as i64 + 2)
            };
            let reference = m.reference.clone();
            let delivered_at = match self.patients[p].phone {
                Phone::Working | Phone::OtherHands => Some(now + TimeDelta::minutes(1)),
                Phone::Off { from, until } if now >= from && now < until => {
                    self.schedule(
                        now + TimeDelta::minutes(1),
                        Event::Report {
                            reference: reference.clone(),
                            status: ReportStatus::Buffered,
                        },
                    );
                    if m.valid_until.is_none_or(|v| until < v) {
                        Some(until)
                    } else {
                        self.schedule(
                            m.valid_until.unwrap_or(until),
                            Event::Report {
                                reference: reference.clone(),
                                status: ReportStatus::Failed("expired".into()),
                            },
                        );
                        None
                    }
                }
                Phone::Off { .. } => Some(now + TimeDelta::minutes(1)),
                Phone::Dead | Phone::None => {
                    self.schedule(
                        now + TimeDelta::minutes(2),
                        Event::Report {
                            reference: reference.clone(),
                            status: ReportStatus::Failed("unknown_subscriber".into()),
                        },
                    );
                    None
                }
            };
            let Some(delivered) = delivered_at else {
                continue;
            };
            self.schedule(
                delivered,
                Event::Report {
                    reference,
                    status: ReportStatus::Delivered,
                },
            );
            let answers =
                self.patients[p].phone != Phone::OtherHands && self.r(p, REPLY, n) < sc.phone.reply;
            if answers && let Some(code) = code_in(&m.text) {
                let when = delivered + reply_delay(self.r(p, REPLY_DELAY, n));
                self.schedule(
                    when,
                    Event::Reply {
                        patient: p,
                        notice: m.notice_id,
                        text: code,
                    },
                );
            }
        }
        Ok(())
    }

    /// One person's event, inside the round's transaction (see [`World::run`]).
    async fn handle(&mut self, event: Event, tx: &mut Tx) -> Result<(), SimError> {
        let now = self.now();
        let sc = self.scenario;
        match event {
            Event::Book { patient: p } => {
                let k = self.patients[p].appointments;
                self.patients[p].appointments += 1;
                let lead = pick(self.r(p, LEAD, k), sc.clinic.lead_days);
                let date = next_working_day(oslo_date(now) + TimeDelta::days(i64::from(lead)));
                let minute = (self.r(p, APPT_MINUTE, k) * 24.0) as i64 * 15;
                let starts_at = at(date, 9, 0) + TimeDelta::minutes(minute);
                let (appointment, notice) = appointments::book(
                    tx,
                    self.clinic,
                    NewAppointment {
                        patient_id: self.patients[p].id,
                        starts_at,
                        duration_minutes: 30,
                        place: "Storgata 36".into(),
                        kind: appointments::AppointmentKind::InPerson,
                    },
                    "sim",
                    now,
                )
                .await?;
                self.engine.plan(tx, &notice).await?;
                self.booking_number.insert(appointment.id, k);
                self.remember_notice(&notice);
                self.appointments += 1;
                self.last_appointment = self.last_appointment.max(starts_at);
                self.schedule(
                    starts_at + TimeDelta::minutes(30),
                    Event::Attendance {
                        patient: p,
                        appointment: appointment.id,
                        starts_at,
                    },
                );
                let days_ahead = (starts_at - now).num_days();
                if days_ahead >= 2 && self.r(p, RESCHEDULE, k) < sc.clinic.reschedule_share {
                    let after = (self.r(p, RESCHEDULE_WHEN, k) * (days_ahead - 1) as f64) as i64;
                    self.schedule(
                        now + TimeDelta::days(after) + TimeDelta::hours(1),
                        Event::Reschedule {
                            patient: p,
                            appointment: appointment.id,
                        },
                    );
                }
            }
            Event::Reschedule {
                patient: p,
                appointment,
            } => {
                let a = appointments::get(tx, appointment).await?;
                if !matches!(
                    a.status,
                    AppointmentStatus::Booked | AppointmentStatus::Rescheduled
                ) || a.starts_at <= now
                {
                    return Ok(());
                }
                let k = self.patients[p].appointments;
                let by = pick(self.r(p, RESCHEDULE_BY, k), [1, 14]);
                let date =
                    next_working_day(oslo_date(a.starts_at) + TimeDelta::days(i64::from(by)));
                let starts_at = at(date, 9, 0) + (a.starts_at - at(oslo_date(a.starts_at), 9, 0));
                let (moved, notice) = appointments::reschedule(
                    tx,
                    a,
                    Reschedule {
                        starts_at,
                        duration_minutes: None,
                        place: None,
                        reason: Some("behandler borte".into()),
                    },
                    "sim",
                    now,
                )
                .await?;
                self.engine.plan(tx, &notice).await?;
                self.remember_notice(&notice);
                self.last_appointment = self.last_appointment.max(moved.starts_at);
                self.schedule(
                    moved.starts_at + TimeDelta::minutes(30),
                    Event::Attendance {
                        patient: p,
                        appointment,
                        starts_at: moved.starts_at,
                    },
                );
            }
            Event::Attendance {
                patient: p,
                appointment,
                starts_at,
            } => {
                let a = appointments::get(tx, appointment).await?;
                if a.starts_at != starts_at
                    || !matches!(
                        a.status,
                        AppointmentStatus::Booked | AppointmentStatus::Rescheduled
                    )
                {
                    return Ok(());
                }
                let informed =
                    kontaktvei_store::acks::any_for_appointment_before(tx, appointment, starts_at)
                        .await?;
                let chance = if informed {
                    sc.clinic.attend_if_informed
                } else {
                    sc.clinic.attend_if_not_informed
                };
                let k = self.patients[p].appointments + u64::from(informed) * 1000;
                let status = if self.r(p, ATTEND, k) < chance {
                    AppointmentStatus::Attended
                } else {
                    AppointmentStatus::NoShow
                };
                let (_, follow_up) =
                    appointments::record_attendance(tx, a, status, "sim", now).await?;
                if let Some(notice) = &follow_up {
                    self.no_shows += 1;
                    self.engine.plan(tx, notice).await?;
                    self.remember_notice(notice);
                    if self.strategy == Strategy::Kontaktvei {
                        self.engine.no_show(tx, notice).await?;
                    }
                }
            }
            Event::Report { reference, status } => {
                self.engine
                    .delivery_report(
                        tx,
                        "sim",
                        &DeliveryReport {
                            reference,
                            status,
                            detail: "simulated network".into(),
                        },
                    )
                    .await?;
            }
            Event::Reply {
                patient: p,
                notice,
                text,
            } => {
                let Some(from) = self.patients[p].number.clone() else {
                    return Ok(());
                };
                // A late answer to a notice already settled changes nothing for it, and is not
                // sent: codes are unique among open notices only, so at this scale a stale
                // code would now and then match another patient's open notice by chance (the
                // codes are random, not seeded), and the same seed must give the same figures.
                if !notices::get(tx, notice).await?.status.is_open() {
                    return Ok(());
                }
                self.engine
                    .inbound_sms(
                        tx,
                        "sim",
                        &InboundSms {
                            from,
                            to: None,
                            text,
                        },
                    )
                    .await?;
            }
            Event::LetterRead {
                patient: p,
                notice,
                step,
                code,
            } => {
                // With a working phone they text the code back; otherwise they open the link.
                if self.patients[p].phone_works(now)
                    && let Some(from) = self.patients[p].number.clone()
                {
                    // As with a reply: a settled notice's code is not sent (see above).
                    if !notices::get(tx, notice).await?.status.is_open() {
                        return Ok(());
                    }
                    self.engine
                        .inbound_sms(
                            tx,
                            "sim",
                            &InboundSms {
                                from,
                                to: None,
                                text: code,
                            },
                        )
                        .await?;
                } else {
                    let status = notices::get(tx, notice).await?.status;
                    if status.is_open() {
                        let _: AckResult = self
                            .engine
                            .acknowledge(tx, notice, AckMethod::Link, "patient", Some(step), None)
                            .await?;
                    }
                }
            }
            Event::LetterBack { reference } => {
                self.engine
                    .letter_returned(tx, &reference, "adressaten er ukjent")
                    .await?;
            }
            Event::Tick
            | Event::Post { .. }
            | Event::Relay { .. }
            | Event::Outreach { .. }
            | Event::Coordinators { .. } => {
                return Err(SimError::Other(
                    "a day's work runs in transactions of its own".into(),
                ));
            }
        }
        Ok(())
    }

    /// A service's day of work, in transactions of its own.
    async fn work(&mut self, event: Event) -> Result<(), SimError> {
        match event {
            Event::Post { day } if is_working_day(day) => self.post(day).await,
            Event::Relay { day } if is_working_day(day) => self.relay(day).await,
            Event::Outreach { day } if is_working_day(day) => self.outreach().await,
            Event::Coordinators { day } if is_working_day(day) => self.coordinate().await,
            _ => Ok(()),
        }
    }

    /// Whether the patient comes in to a service that day (open on working days).
    fn visits(&self, p: usize, day: NaiveDate) -> bool {
        let n = day.to_epoch_days() as u64;
        is_working_day(day) && self.r(p, VISIT, n) < self.scenario.relay.visits_per_week / 5.0
    }

    /// The print room posts today's batches; each letter's fate is drawn for its patient.
    async fn post(&mut self, day: NaiveDate) -> Result<(), SimError> {
        let mut tx = self.store.begin().await?;
        let batches = print::batches(&mut tx, self.clinic, 100).await?;
        let mut letters = Vec::new();
        for b in batches
            .iter()
            .filter(|b| b.status != print::BatchStatus::Posted)
        {
            self.engine.mark_batch_posted(&mut tx, b.id, day).await?;
            letters.extend(print::letters_in(&mut tx, b.id).await?);
        }
        let mut work = Vec::new();
        for l in letters {
            let notice = notices::get(&mut tx, l.notice_id).await?;
            let Some(&p) = self.by_id.get(&notice.patient_id) else {
                continue;
            };
            let step = steps::get(&mut tx, l.step_id).await?;
            let message: Option<LetterMessage> = step
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok());
            let order = (p, self.notice_key(&notice), step.position);
            work.push((order, l, message.map(|m| m.code)));
        }
        tx.commit().await?;
        // Not by id (random): see `phones`.
        work.sort_by(|a, b| a.0.cmp(&b.0));
        let sc = self.scenario;
        for ((p, ..), letter, code) in work {
            let n = self.patients[p].letters_seen;
            self.patients[p].letters_seen += 1;
            match self.patients[p].address {
                Address::Wrong | Address::None => {
                    let days = pick(self.r(p, LETTER_BACK, n), sc.post.return_after_days);
                    let back = next_working_day(day + TimeDelta::days(i64::from(days)));
                    self.schedule(
                        at(back, 12, 0),
                        Event::LetterBack {
                            reference: letter.reference,
                        },
                    );
                }
                Address::Home | Address::CareOf => {
                    let (early, late) = self
                        .engine
                        .postal()
                        .delivery_window(self.patients[p].postal_code, day);
                    let u = self.r(p, LETTER_DAY, n);
                    let mut arrives = if u < 0.6 {
                        early
                    } else if u < 0.9 {
                        early + (late - early) / 2
                    } else {
                        late
                    };
                    if self.patients[p].address == Address::CareOf {
                        // It waits at the shelter until they come by.
                        let mut d = arrives;
                        for _ in 0..60 {
                            if self.visits(p, d) {
                                break;
                            }
                            d = d.succ_opt().unwrap_or(d);
                        }
                        arrives = d;
                    }
                    if let Some(code) = code
                        && self.r(p, LETTER_READ, n) < sc.post.read
                    {
                        let delay = (self.r(p, LETTER_DELAY, n) * 36.0 * 60.0) as i64;
                        self.schedule(
                            at(arrives, 15, 0) + TimeDelta::minutes(delay),
                            Event::LetterRead {
                                patient: p,
                                notice: letter.notice_id,
                                step: letter.step_id,
                                code,
                            },
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Day centres pass messages on to the patients who come in today.
    async fn relay(&mut self, day: NaiveDate) -> Result<(), SimError> {
        for (service, worker) in self.services.clone() {
            let mut tx = self.store.begin().await?;
            let open = tasks::list(&mut tx, &open_tasks(service, TaskKind::Relay)).await?;
            tx.commit().await?;
            let mut open = self.notice_order(open).await?;
            open.sort_by_key(|(p, key, t)| (*p, *key, t.created_at));
            for (p, _, t) in open {
                let n = day.to_epoch_days() as u64;
                if self.visits(p, day) && self.r(p, PASS_ON, n) < self.scenario.relay.staff_pass_on
                {
                    self.close(t.id, &worker, TaskOutcome::ToldInPerson).await?;
                }
            }
        }
        Ok(())
    }

    /// Outreach teams work their tasks, as many as the day allows: claim, look, close.
    async fn outreach(&mut self) -> Result<(), SimError> {
        let sc = self.scenario;
        let per_team = (sc.outreach.attempts_per_day_per_1000_patients
            * self.config.patients as f64
            / 1000.0
            / self.teams.len() as f64)
            .ceil() as usize;
        for (team, members) in self.teams.clone() {
            let mut tx = self.store.begin().await?;
            let found = tasks::list(&mut tx, &open_tasks(team, TaskKind::Outreach)).await?;
            tx.commit().await?;
            let mut work = self.notice_order(found).await?;
            // The most urgent first: soonest due, then the patient (never a random id).
            work.sort_by_key(|(p, key, t)| (t.due_at, *p, *key));
            for (p, _, t) in work.into_iter().take(per_team) {
                let holder = match t.assignee_id {
                    Some(s) => members
                        .iter()
                        .find(|m| m.staff_id == s)
                        .cloned()
                        .unwrap_or_else(|| members[0].clone()),
                    None => {
                        let m = members[p % members.len()].clone();
                        if !self.claim(t.id, &m).await? {
                            continue;
                        }
                        m
                    }
                };
                let n = self.patients[p].attempts;
                self.patients[p].attempts += 1;
                let tried = self.attempts.entry(t.id).or_default();
                *tried += 1;
                let tried = *tried;
                if self.r(p, FIND, n) < sc.outreach.find {
                    self.close(t.id, &holder, TaskOutcome::MetAndInformed)
                        .await?;
                } else if tried >= sc.outreach.max_attempts {
                    self.close(t.id, &holder, TaskOutcome::NotFound).await?;
                } else {
                    let mut tx = self.store.begin().await?;
                    let attempt = NewAttempt {
                        place: "the usual places".into(),
                        at: None,
                        result: "not there".into(),
                        note: None,
                    };
                    match tasks::record_attempt(
                        &mut tx,
                        t.id,
                        holder.staff_id,
                        &holder.label,
                        &attempt,
                        self.now(),
                    )
                    .await
                    {
                        Ok(_) => tx.commit().await?,
                        Err(kontaktvei_store::Error::Conflict(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }

    /// Coordinators take the follow-ups that reach them: they reach the patient or take the
    /// notice over by name.
    async fn coordinate(&mut self) -> Result<(), SimError> {
        let mut tx = self.store.begin().await?;
        let found = tasks::list(
            &mut tx,
            &open_tasks(self.clinic, TaskKind::CoordinatorFollowUp),
        )
        .await?;
        tx.commit().await?;
        let mut work = self.notice_order(found).await?;
        work.sort_by_key(|(p, key, t)| (*p, *key, t.created_at));
        let now = self.now();
        for (p, _, t) in work {
            let holder = match t.assignee_id {
                Some(s) => self
                    .coordinators
                    .iter()
                    .find(|c| c.staff_id == s)
                    .cloned()
                    .unwrap_or_else(|| self.coordinators[0].clone()),
                None => {
                    let c = self.coordinators[p % self.coordinators.len()].clone();
                    if !self.claim(t.id, &c).await? {
                        continue;
                    }
                    c
                }
            };
            if now - t.created_at < TimeDelta::hours(20) {
                continue; // they hold it; they act tomorrow
            }
            let n = self.patients[p].attempts;
            self.patients[p].attempts += 1;
            let outcome = if self.r(p, REACH, n) < self.scenario.coordinator.reach {
                TaskOutcome::Reached
            } else {
                TaskOutcome::TakenOver
            };
            self.close(t.id, &holder, outcome).await?;
        }
        Ok(())
    }

    fn notice_key(&self, n: &notices::Notice) -> NoticeKey {
        let booking = n
            .appointment_id
            .and_then(|a| self.booking_number.get(&a).copied());
        (n.created_at, n.kind.as_str(), n.deadline, booking)
    }

    /// Notes the ordering key of a notice the simulated clinic just made, so that `phones`
    /// need not read it back (it reads only those made elsewhere, such as reminders).
    fn remember_notice(&mut self, n: &notices::Notice) {
        let key = self.notice_key(n);
        self.notice_keys.insert(n.id, key);
    }

    /// Reads the ordering key of the notices not seen before (a key never changes).
    async fn learn_notice_keys(&mut self, ids: &[Id]) -> Result<(), SimError> {
        let missing: Vec<Id> = ids
            .iter()
            .copied()
            .filter(|id| !self.notice_keys.contains_key(id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin_read().await?;
        for id in missing {
            let key = self.notice_key(&notices::get(&mut tx, id).await?);
            self.notice_keys.insert(id, key);
        }
        tx.commit().await?;
        Ok(())
    }

    /// A patient's tasks in an order that does not depend on ids (random) or on the order the
    /// engine created them in one round: by their notice's creation and kind (see `phones`).
    async fn notice_order(
        &mut self,
        tasks: Vec<tasks::Task>,
    ) -> Result<Vec<(usize, NoticeKey, tasks::Task)>, SimError> {
        let ids: Vec<Id> = tasks.iter().filter_map(|t| t.notice_id).collect();
        self.learn_notice_keys(&ids).await?;
        Ok(tasks
            .into_iter()
            .filter_map(|t| {
                let p = *self.by_id.get(&t.patient_id)?;
                let key = match t.notice_id {
                    Some(n) => self.notice_keys[&n],
                    None => (t.created_at, "", None, None),
                };
                Some((p, key, t))
            })
            .collect())
    }

    /// Claims a task; false if it closed meanwhile (another task of its notice was answered).
    async fn claim(&self, task: Id, by: &Person) -> Result<bool, SimError> {
        let mut tx = self.store.begin().await?;
        match tasks::claim(&mut tx, task, by.staff_id, &by.label, self.now()).await {
            Ok(_) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(kontaktvei_store::Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn close(&self, task: Id, by: &Person, outcome: TaskOutcome) -> Result<(), SimError> {
        let mut tx = self.store.begin().await?;
        let closing = Closing {
            outcome,
            note: None,
            new_contact_point: None,
        };
        match self.engine.close_task(&mut tx, task, by, closing).await {
            Ok(_) => tx.commit().await?,
            // Closed meanwhile (the patient answered first): nothing to do.
            Err(crate::engine::Error::Store(kontaktvei_store::Error::Conflict(_))) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn result(&self) -> Result<StrategyResult, SimError> {
        let now = self.now();
        let mut tx = self.store.begin_read().await?;
        let reach = reports::reach(&mut tx, Some(self.clinic), start(), now, now).await?;
        let curve =
            reports::ack_curve(&mut tx, Some(self.clinic), start(), now, now, 6, 336).await?;
        tx.commit().await?;
        Ok(StrategyResult {
            reach,
            appointments: self.appointments,
            no_shows: self.no_shows,
            reach_curve: curve,
        })
    }
}

/// A team's tasks of one kind that are still open or held.
fn open_tasks(organisation_id: Id, kind: TaskKind) -> TaskFilter {
    TaskFilter {
        organisation_id,
        assignee_id: None,
        kind: Some(kind),
        patient_id: None,
        statuses: vec![TaskStatus::Open, TaskStatus::Claimed],
        unclaimed_only: false,
        due_before: None,
        limit: 100_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_are_keyed_and_spread() {
        assert_eq!(roll(1, 2, 3, 4), roll(1, 2, 3, 4));
        assert_ne!(roll(1, 2, 3, 4), roll(1, 2, 3, 5));
        let mean = (0..10_000).map(|i| roll(7, i, 1, 0)).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_eq!(pick(0.0, [1, 30]), 1);
        assert_eq!(pick(0.9999, [1, 30]), 30);
    }

    #[test]
    fn the_code_is_found_in_any_message() {
        assert_eq!(
            code_in("Du har fått time. Svar K7MX3Q på denne meldingen").as_deref(),
            Some("K7MX3Q")
        );
        assert_eq!(code_in("Hei! Ring oss."), None);
    }
}
