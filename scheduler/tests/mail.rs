//! Staff e-mail walked through in virtual time, against the real store on SQLite and (when
//! `KONTAKTVEI_TEST_DATABASE_URL` is set; required under `CI=true`) PostgreSQL: who is mailed
//! when work arrives, the 07:00 digest for those who chose it, and that no mail ever carries
//! patient data. The mails are read back from `staff_emails`; the outbox transport "sends"
//! them (the real transports are tested in `channels/tests/email.rs`).

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use common::{FreshDb, both};
use kontaktvei_channels::email::Mailer;
use kontaktvei_scheduler::calendar::PostalCalendar;
use kontaktvei_scheduler::cron::Cron;
use kontaktvei_scheduler::human::{Closing, Offer, Person};
use kontaktvei_scheduler::{Engine, EngineConfig, mail};
use kontaktvei_store::emails::{self, EmailStatus, StaffEmail};
use kontaktvei_store::handovers::{HandoverStatus, SubjectKind};
use kontaktvei_store::notices::Notice;
use kontaktvei_store::notifications::{self, NotificationKind};
use kontaktvei_store::organisations::{self, NewOrganisation, OrganisationKind};
use kontaktvei_store::patients::{self, NewPatient};
use kontaktvei_store::staff::{self, EmailDigest, NewStaff, Role};
use kontaktvei_store::tasks::{self, TaskKind, TaskOutcome};
use kontaktvei_store::{Clock, Id, ManualClock, Store, StoreOptions, steps};
use kontaktvei_store::{contact_points, contact_points::NewContactPoint};
use std::sync::Arc;

const BASE_URL: &str = "http://127.0.0.1:8080";

/// The patient every scenario books for, and everything about her no mail may show.
const PATIENT_NAME: &str = "Kari Nordmann";
const BIRTH_YEAR: i32 = 1979;
const NATIONAL_ID: &str = "01010750160";
const PHONE: &str = "+4791234567";
const STREET: &str = "Trondheimsveien 17";
const POSTAL_CODE: &str = "0560";
const NOTES: &str = "Sover ofte i bakgården i Trondheimsveien 17";

struct World {
    url: String,
    store: Store,
    clock: Arc<ManualClock>,
    engine: Arc<Engine>,
    cron: Cron,
    mailer: Mailer,
    clinic: Id,
    team: Id,
}

/// Oslo wall-clock time.
fn oslo(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Oslo.with_ymd_and_hms(y, m, d, h, min, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// A Tuesday morning in a normal week.
fn tuesday_morning() -> DateTime<Utc> {
    oslo(2026, 3, 10, 9, 0)
}

fn engine(store: &Store, clock: Arc<ManualClock>, instance: &str) -> Arc<Engine> {
    Arc::new(Engine::new(
        store.clone(),
        clock,
        EngineConfig {
            public_base_url: BASE_URL.into(),
            instance: instance.into(),
            postal: PostalCalendar::default(),
        },
    ))
}

impl World {
    async fn new(url: String, store: Store, start: DateTime<Utc>) -> World {
        let clock = Arc::new(ManualClock::new(start));
        let engine = engine(&store, clock.clone(), "a");
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
        let team =
            organisations::create(&mut tx, org("FACT", OrganisationKind::OutreachTeam), start)
                .await
                .unwrap()
                .id;
        tx.commit().await.unwrap();
        let cron = Cron::new(engine.clone(), "a");
        // The server has been running: the latest 07:00 digest (with nothing to tell) is done,
        // so the scenario's first digest is the next 07:00, not a catch-up now.
        cron.run_due(start).await.unwrap();
        World {
            url,
            store,
            clock,
            engine,
            cron,
            mailer: Mailer::outbox(),
            clinic,
            team,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn staff(&self, organisation: Id, role: Role, name: &str, digest: EmailDigest) -> Id {
        let mut tx = self.store.begin().await.unwrap();
        let email = format!("{}@example.no", name.to_lowercase().replace(' ', "."));
        let new = NewStaff {
            name: name.into(),
            email: Some(email),
            role,
            team_lead: false,
            email_digest: Some(digest),
        };
        let s = staff::create_staff(&mut tx, organisation, new, self.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        s.id
    }

    async fn get_staff(&self, id: Id) -> staff::Staff {
        let mut tx = self.store.begin_read().await.unwrap();
        let s = staff::get_staff(&mut tx, id).await.unwrap();
        tx.commit().await.unwrap();
        s
    }

    async fn person(&self, staff_id: Id) -> Person {
        let s = self.get_staff(staff_id).await;
        Person {
            staff_id,
            organisation_id: s.organisation_id,
            role: s.role,
            label: format!("staff:{staff_id}"),
        }
    }

    /// The patient (always the same person, see the constants) with these contact points.
    async fn patient(&self, kinds: &[&str], national_id: bool) -> Id {
        let now = self.now();
        let mut tx = self.store.begin().await.unwrap();
        let new = NewPatient {
            name: PATIENT_NAME.into(),
            birth_year: Some(BIRTH_YEAR),
            birth_date: None,
            language: None,
            contact_notes: NOTES.into(),
            national_id: national_id.then(|| NATIONAL_ID.into()),
            coordinator_id: None,
        };
        let p = patients::create(&mut tx, self.clinic, new, now)
            .await
            .unwrap();
        for kind in kinds {
            let json = match *kind {
                "sms" => {
                    serde_json::json!({"kind": "sms", "phone": PHONE, "provenance": "stated_by_patient"})
                }
                "postal" => {
                    serde_json::json!({"kind": "postal", "lines": [PATIENT_NAME, STREET], "postal_code": POSTAL_CODE, "place": "Oslo", "provenance": "verified_in_person"})
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

    async fn set_coordinator(&self, patient: Id, staff_id: Id) {
        let mut tx = self.store.begin().await.unwrap();
        patients::set_coordinator(&mut tx, patient, staff_id, self.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
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

    /// One round of a running server: the worker (engine, then the scheduled jobs that are
    /// due), then the mail loop (compose the immediate mails, send what is due).
    async fn round(&self) {
        self.engine.run_until_idle().await.unwrap();
        self.cron.run_due(self.now()).await.unwrap();
        self.engine.run_until_idle().await.unwrap();
        mail::compose(&self.engine, self.now(), EmailDigest::Immediate)
            .await
            .unwrap();
        mail::send_due(&self.store, &self.mailer, self.now())
            .await
            .unwrap();
    }

    /// Moves virtual time to `until`, a round every 10 minutes on the way.
    async fn advance_to(&self, until: DateTime<Utc>) {
        assert!(until >= self.now(), "time only moves forward");
        while self.now() < until {
            let step = (until - self.now()).min(TimeDelta::minutes(10));
            self.clock.advance(step);
            self.round().await;
        }
    }

    /// The notice's newest task of this kind, if any.
    async fn task(&self, notice: &Notice, kind: TaskKind) -> Option<tasks::Task> {
        let mut tx = self.store.begin_read().await.unwrap();
        let all = tasks::for_notice(&mut tx, notice.id).await.unwrap();
        tx.commit().await.unwrap();
        all.into_iter().rev().find(|t| t.kind == kind)
    }

    async fn claim(&self, task: Id, by: Id) {
        let mut tx = self.store.begin().await.unwrap();
        tasks::claim(&mut tx, task, by, &format!("staff:{by}"), self.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn offer(&self, task: Id, from: Id, to: Id, note: &str) -> Id {
        let by = self.person(from).await;
        let mut tx = self.store.begin().await.unwrap();
        let h = self
            .engine
            .offer_handover(
                &mut tx,
                &by,
                Offer {
                    subject_kind: SubjectKind::Task,
                    subject_id: task,
                    to_staff_id: Some(to),
                    to_organisation_id: None,
                    note: Some(note.into()),
                },
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        h.id
    }

    /// The code the patient got, read from the message of the notice's first planned step.
    async fn code(&self, notice: &Notice) -> String {
        let mut tx = self.store.begin_read().await.unwrap();
        let steps = steps::for_notice(&mut tx, notice.id).await.unwrap();
        tx.commit().await.unwrap();
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

    /// What this person has been told, oldest first.
    async fn told(&self, staff_id: Id) -> Vec<NotificationKind> {
        let s = self.get_staff(staff_id).await;
        let mut tx = self.store.begin_read().await.unwrap();
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

    /// Every stored mail, oldest first.
    async fn all_mails(&self) -> Vec<StaffEmail> {
        let mut tx = self.store.begin_read().await.unwrap();
        let mut all = Vec::new();
        for org in [self.clinic, self.team] {
            all.extend(emails::list(&mut tx, org, None, 1000).await.unwrap());
        }
        tx.commit().await.unwrap();
        all.sort_by_key(|m| (m.created_at, m.id));
        all
    }

    /// The mails to this person, oldest first.
    async fn mails_to(&self, staff_id: Id) -> Vec<StaffEmail> {
        self.all_mails()
            .await
            .into_iter()
            .filter(|m| m.staff_id == staff_id)
            .collect()
    }
}

async fn on(backend: &str, start: DateTime<Utc>, scenario: impl AsyncFnOnce(World)) {
    let Some(db) = FreshDb::new(backend).await else {
        return;
    };
    let store = db.store(4).await;
    let world = World::new(db.url.clone(), store.clone(), start).await;
    scenario(world).await;
    store.close().await;
    db.remove().await;
}

fn subjects(mails: &[StaffEmail]) -> Vec<&str> {
    mails.iter().map(|m| m.subject.as_str()).collect()
}

async fn a_daily_reader_hears_at_seven_and_an_immediate_colleague_at_once(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let dagny = w
            .staff(w.team, Role::Outreach, "Dagny Dag", EmailDigest::Daily)
            .await;
        let ivar = w
            .staff(
                w.team,
                Role::Outreach,
                "Ivar Straks",
                EmailDigest::Immediate,
            )
            .await;
        let otto = w
            .staff(w.team, Role::Outreach, "Otto Av", EmailDigest::Off)
            .await;
        // Two outreach tasks arrive for the team.
        let mut notices = Vec::new();
        for _ in 0..2 {
            let p = w.patient(&["outreach"], false).await;
            notices.push(w.book(p, w.now() + TimeDelta::days(10)).await);
        }
        w.round().await;
        assert_eq!(
            w.told(dagny).await,
            vec![NotificationKind::NewTask, NotificationKind::NewTask],
            "she is told on the staff pages at once"
        );
        assert!(w.mails_to(dagny).await.is_empty(), "but not mailed yet");
        assert!(w.mails_to(otto).await.is_empty(), "never mailed");
        let ivars = w.mails_to(ivar).await;
        assert_eq!(subjects(&ivars), ["2 nye saker i kontaktvei"]);
        assert_eq!(ivars[0].to_address, "ivar.straks@example.no");
        assert_eq!(ivars[0].status, EmailStatus::Outbox);
        assert_eq!(ivars[0].created_at, tuesday_morning());
        assert!(ivars[0].body.contains("- 2 nye oppgaver til teamet"));
        assert!(ivars[0].body.contains(&format!("{BASE_URL}/staff")));

        // Ivar takes both and offers the first one to Dagny.
        let first = w.task(&notices[0], TaskKind::Outreach).await.unwrap();
        let second = w.task(&notices[1], TaskKind::Outreach).await.unwrap();
        w.claim(first.id, ivar).await;
        w.claim(second.id, ivar).await;
        let handover = w.offer(first.id, ivar, dagny, "Kan du ta denne?").await;
        w.round().await;
        assert!(
            w.told(dagny)
                .await
                .contains(&NotificationKind::HandoverOffered)
        );
        assert!(w.mails_to(dagny).await.is_empty());

        // Nothing through the night, nor at 06:50.
        w.advance_to(oslo(2026, 3, 11, 6, 50)).await;
        assert!(w.mails_to(dagny).await.is_empty());
        let ivar_before = w.mails_to(ivar).await.len();

        // 07:00: one digest of everything since, and only for her.
        w.advance_to(oslo(2026, 3, 11, 7, 0)).await;
        let dagnys = w.mails_to(dagny).await;
        assert_eq!(
            subjects(&dagnys),
            ["3 nye saker i kontaktvei"],
            "{dagnys:#?}"
        );
        let digest = &dagnys[0];
        assert_eq!(digest.to_address, "dagny.dag@example.no");
        assert_eq!(digest.organisation_id, w.team);
        assert_eq!(digest.created_at, oslo(2026, 3, 11, 7, 0));
        assert_eq!(digest.status, EmailStatus::Outbox, "sent in the same round");
        assert_eq!(digest.transport.as_deref(), Some("outbox"));
        for line in [
            "Hei Dagny Dag!",
            "- 2 nye oppgaver til teamet",
            "- 1 overlevering til deg",
            &format!("Logg inn for å se dem: {BASE_URL}/staff\n"),
            "ingen pasientopplysninger",
        ] {
            assert!(digest.body.contains(line), "{line:?} in {}", digest.body);
        }
        assert_eq!(
            w.mails_to(ivar).await.len(),
            ivar_before,
            "the digest is not for people on immediate mails"
        );
        assert!(w.mails_to(otto).await.is_empty());

        // She reads it and takes the hand-over at 08:00 (unanswered, she would be reminded).
        w.advance_to(oslo(2026, 3, 11, 8, 0)).await;
        let by = w.person(dagny).await;
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .decide_handover(&mut tx, handover, &by, HandoverStatus::Accepted, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // The day after, with nothing new for her: no mail.
        w.advance_to(oslo(2026, 3, 12, 7, 30)).await;
        assert_eq!(
            w.mails_to(dagny).await.len(),
            1,
            "nothing new, nothing sent"
        );

        // New work on Thursday: Friday's digest counts only that.
        let p = w.patient(&["outreach"], false).await;
        w.book(p, w.now() + TimeDelta::days(10)).await;
        w.round().await;
        assert_eq!(w.mails_to(dagny).await.len(), 1);
        w.advance_to(oslo(2026, 3, 13, 7, 0)).await;
        let dagnys = w.mails_to(dagny).await;
        assert_eq!(
            subjects(&dagnys),
            ["3 nye saker i kontaktvei", "1 ny sak i kontaktvei"]
        );
        assert_eq!(dagnys[1].created_at, oslo(2026, 3, 13, 7, 0));
        assert!(dagnys[1].body.contains("- 1 ny oppgave til teamet\n"));
        assert!(
            !dagnys[1].body.contains("overlevering"),
            "{}",
            dagnys[1].body
        );
        assert!(w.mails_to(otto).await.is_empty());
    })
    .await;
}

async fn the_digest_keeps_to_seven_oslo_time_across_summer_time(backend: &str) {
    // 29 March 2026: clocks jump 02:00 → 03:00, so 07:00 is 05:00 UTC. 25 October 2026: back
    // from 03:00 to 02:00, so 07:00 is 06:00 UTC.
    for (saturday, sunday_seven_utc) in [
        (
            oslo(2026, 3, 28, 12, 0),
            Utc.with_ymd_and_hms(2026, 3, 29, 5, 0, 0).unwrap(),
        ),
        (
            oslo(2026, 10, 24, 12, 0),
            Utc.with_ymd_and_hms(2026, 10, 25, 6, 0, 0).unwrap(),
        ),
    ] {
        on(backend, saturday, async |w| {
            let dagny = w
                .staff(w.team, Role::Outreach, "Dagny Dag", EmailDigest::Daily)
                .await;
            let p = w.patient(&["outreach"], false).await;
            w.book(p, w.now() + TimeDelta::days(10)).await;
            w.round().await;
            w.advance_to(sunday_seven_utc - TimeDelta::minutes(10))
                .await;
            assert!(w.mails_to(dagny).await.is_empty(), "nothing before 07:00");
            w.advance_to(sunday_seven_utc).await;
            let dagnys = w.mails_to(dagny).await;
            assert_eq!(subjects(&dagnys), ["1 ny sak i kontaktvei"]);
            assert_eq!(dagnys[0].created_at, sunday_seven_utc);
        })
        .await;
    }
}

async fn no_mail_carries_patient_data(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let dagny = w
            .staff(w.team, Role::Outreach, "Dagny Dag", EmailDigest::Daily)
            .await;
        let ivar = w
            .staff(
                w.team,
                Role::Outreach,
                "Ivar Straks",
                EmailDigest::Immediate,
            )
            .await;
        let kaja = w
            .staff(
                w.clinic,
                Role::Coordinator,
                "Kaja Koord",
                EmailDigest::Daily,
            )
            .await;
        let p = w.patient(&["sms", "postal", "outreach"], true).await;
        w.set_coordinator(p, kaja).await;
        // Two days ahead: the SMS, no time for a letter, then the outreach team.
        let notice = w.book(p, oslo(2026, 3, 12, 10, 0)).await;
        let code = w.code(&notice).await;
        w.round().await;
        let mut task = None;
        for _ in 0..36 {
            task = w.task(&notice, TaskKind::Outreach).await;
            if task.is_some() {
                break;
            }
            let next = w.now() + TimeDelta::hours(1);
            w.advance_to(next).await;
        }
        let task = task.expect("the outreach team got a task");
        // Staff write patient data into their notes; it must stay out of the mails.
        let note = format!("{PATIENT_NAME} ({BIRTH_YEAR}), {STREET}, tlf {PHONE}, kode {code}");
        w.claim(task.id, ivar).await;
        let offer = w.offer(task.id, ivar, dagny, &note).await;
        w.round().await;
        let by = w.person(dagny).await;
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .decide_handover(&mut tx, offer, &by, HandoverStatus::Declined, Some(&note))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        w.round().await;
        let by = w.person(ivar).await;
        let mut tx = w.store.begin().await.unwrap();
        w.engine
            .close_task(
                &mut tx,
                task.id,
                &by,
                Closing {
                    outcome: TaskOutcome::Declined,
                    note: Some(note.clone()),
                    new_contact_point: None,
                },
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        w.round().await;
        // Past the next digest, and a day more.
        let until = w.now() + TimeDelta::days(2);
        w.advance_to(until).await;

        let mails = w.all_mails().await;
        for who in [dagny, ivar, kaja] {
            assert!(
                mails.iter().any(|m| m.staff_id == who),
                "everyone was mailed: {mails:#?}"
            );
        }
        let forbidden = [
            "Kari".to_owned(),
            "Nordmann".to_owned(),
            BIRTH_YEAR.to_string(),
            NATIONAL_ID.to_owned(),
            PHONE.to_owned(),
            PHONE.trim_start_matches("+47").to_owned(),
            "912 34 567".to_owned(),
            STREET.to_owned(),
            "Trondheimsveien".to_owned(),
            POSTAL_CODE.to_owned(),
            "bakgården".to_owned(),
            code.to_lowercase(),
            p.to_string(),
            notice.id.to_string(),
            task.id.to_string(),
        ];
        for m in &mails {
            let text = format!("{}\n{}", m.subject, m.body).to_lowercase();
            for bad in &forbidden {
                assert!(
                    !text.contains(&bad.to_lowercase()),
                    "{bad:?} in the mail to {}: {}\n{}",
                    m.to_address,
                    m.subject,
                    m.body
                );
            }
        }
    })
    .await;
}

async fn two_instances_at_seven_compose_one_digest(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let dagny = w
            .staff(w.team, Role::Outreach, "Dagny Dag", EmailDigest::Daily)
            .await;
        let p = w.patient(&["outreach"], false).await;
        w.book(p, w.now() + TimeDelta::days(10)).await;
        w.round().await;

        // A second server process: its own pool, engine and cron, on the same database.
        let other_store = Store::connect(&StoreOptions {
            url: w.url.clone(),
            max_connections: 4,
        })
        .await
        .unwrap();
        let other_engine = engine(&other_store, w.clock.clone(), "b");
        let other = Cron::new(other_engine.clone(), "b");
        other.run_due(w.now()).await.unwrap();

        // Both wake at 07:00 at the same moment.
        let seven = oslo(2026, 3, 11, 7, 0);
        w.clock.set(seven);
        let (a, b) = tokio::join!(w.cron.run_due(seven), other.run_due(seven));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            a.contains(&"digest") as u8 + b.contains(&"digest") as u8,
            1,
            "{a:?} {b:?}"
        );
        let dagnys = w.mails_to(dagny).await;
        assert_eq!(subjects(&dagnys), ["1 ny sak i kontaktvei"]);
        assert_eq!(dagnys[0].status, EmailStatus::Pending, "not sent yet");
        // Later rounds of either change nothing.
        let later = seven + TimeDelta::minutes(5);
        w.clock.set(later);
        let (a, b) = tokio::join!(w.cron.run_due(later), other.run_due(later));
        assert!(!a.unwrap().contains(&"digest"));
        assert!(!b.unwrap().contains(&"digest"));
        assert_eq!(w.mails_to(dagny).await.len(), 1);

        // Sending from both instances at once sends it once.
        let other_mailer = Mailer::outbox();
        let (a, b) = tokio::join!(
            mail::send_due(&w.store, &w.mailer, later),
            mail::send_due(&other_store, &other_mailer, later)
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1);
        let dagnys = w.mails_to(dagny).await;
        assert_eq!(dagnys.len(), 1);
        assert_eq!(dagnys[0].status, EmailStatus::Outbox);
        assert_eq!(dagnys[0].attempts, 1);

        // Even two composes at once, past the cron's claim, make one mail of new work.
        let p = w.patient(&["outreach"], false).await;
        w.book(p, w.now() + TimeDelta::days(10)).await;
        w.engine.run_until_idle().await.unwrap();
        let (a, b) = tokio::join!(
            mail::compose(&w.engine, later, EmailDigest::Daily),
            mail::compose(&other_engine, later, EmailDigest::Daily)
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1);
        assert_eq!(w.mails_to(dagny).await.len(), 2);
        other_store.close().await;
    })
    .await;
}

async fn the_organisations_own_staff_email_text_is_used(backend: &str) {
    on(backend, tuesday_morning(), async |w| {
        let dagny = w
            .staff(w.team, Role::Outreach, "Dagny Dag", EmailDigest::Daily)
            .await;
        // The team's admin rewrote "E-post til ansatte" (template `staff_email`, bokmål) on the
        // admin pages, as `templates/defaults/nb/staff_email.jinja` allows.
        let mut tx = w.store.begin().await.unwrap();
        kontaktvei_store::template_overrides::save(
            &mut tx,
            w.team,
            "staff_email",
            "nb",
            Some(
                "{% block subject %}FACT-teamet: {{ count }} nye saker{% endblock %}\n\
                 {% block body %}Hei {{ staff_name }}! Se {{ link }}{% endblock %}\n",
            ),
            "test",
            w.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let p = w.patient(&["outreach"], false).await;
        w.book(p, w.now() + TimeDelta::days(10)).await;
        w.round().await;
        w.advance_to(oslo(2026, 3, 11, 7, 0)).await;
        let dagnys = w.mails_to(dagny).await;
        assert_eq!(
            subjects(&dagnys),
            ["FACT-teamet: 1 nye saker"],
            "{dagnys:#?}"
        );
        assert!(dagnys[0].body.starts_with("Hei Dagny Dag! Se "));
    })
    .await;
}

mod the_organisations_own_staff_email_text_is_used {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::the_organisations_own_staff_email_text_is_used("sqlite").await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::the_organisations_own_staff_email_text_is_used("postgres").await
    }
}

both!(
    a_daily_reader_hears_at_seven_and_an_immediate_colleague_at_once,
    the_digest_keeps_to_seven_oslo_time_across_summer_time,
    no_mail_carries_patient_data,
    two_instances_at_seven_compose_one_digest,
);
