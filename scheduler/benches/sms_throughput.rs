//! SMS throughput (issue 5): notices per second from creation to "accepted by the provider",
//! against an in-process loopback JSON provider, on SQLite and (when
//! `KONTAKTVEI_TEST_DATABASE_URL` is set) PostgreSQL — next to the raw limit of the same HTTP
//! client against the same provider in the same run.
//!
//! `cargo bench -p kontaktvei-scheduler --bench sms_throughput`
//!
//! Knobs (environment): `KV_BENCH_NOTICES` notices per backend (2000), `KV_BENCH_RAW` raw
//! requests (20000), `KV_BENCH_WORKERS` concurrent engine loops and creating tasks (2),
//! `KV_BENCH_IN_FLIGHT` raw requests in flight (16).

#[path = "../tests/common/mod.rs"]
mod common;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use common::FreshDb;
use kontaktvei_channels::sms::http::{JsonProvider, render};
use kontaktvei_channels::sms::{RouteConfig, Sent, SmsChannel, SmsMessage, SmsProvider};
use kontaktvei_scheduler::calendar::PostalCalendar;
use kontaktvei_scheduler::{Engine, EngineConfig};
use kontaktvei_store::appointments::{self, NewAppointment};
use kontaktvei_store::contact_points::{self, NewContactPoint};
use kontaktvei_store::organisations::{self, NewOrganisation, OrganisationKind};
use kontaktvei_store::patients::{self, NewPatient};
use kontaktvei_store::steps::{self, ChannelKind, StepStatus};
use kontaktvei_store::{Clock, Id, ManualClock};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// The body the provider gets: the shape of a Norwegian aggregator's JSON API.
fn body_template() -> Value {
    json!({
        "source": "{sender}",
        "destination": "{to}",
        "userData": "{text}",
        "reference": "{reference}",
        "validityMinutes": "{validity_minutes}"
    })
}

/// A weekday at 10:00 in Oslo: no quiet hours hold an SMS back.
fn weekday_morning() -> DateTime<Utc> {
    Oslo.with_ymd_and_hms(2026, 3, 10, 10, 0, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------- the loopback provider

#[derive(Clone, Default)]
struct Provider {
    requests: Arc<AtomicU64>,
}

async fn sms(State(p): State<Provider>, _body: Bytes) -> Json<Value> {
    let n = p.requests.fetch_add(1, Ordering::Relaxed) + 1;
    Json(json!({ "messageId": n.to_string() }))
}

async fn start_provider() -> (String, Provider) {
    let provider = Provider::default();
    let app = Router::new()
        .route("/sms", post(sms))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/sms"), provider)
}

// ---------------------------------------------------------------- raw limits

/// Runs `total` calls of `f` with `in_flight` at a time; returns calls per second.
async fn hammer<F, Fut>(total: usize, in_flight: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (f, next) = (f.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                f(i).await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn sample_message(i: usize) -> SmsMessage {
    let now = weekday_morning();
    SmsMessage {
        to: "+4791234567".into(),
        text: "Du har time tirsdag 20. mars kl. 10:00, Storgata 36. Svar OK ABC234 eller trykk http://127.0.0.1:8080/k/0123456789abcdef for å bekrefte.".into(),
        sender: Some("Poliklinikk".into()),
        reference: format!("bench-{i}"),
        valid_until: Some(now + TimeDelta::days(10)),
        now,
        notice_id: Id::new(now),
        step_id: Some(Id::new(now)),
    }
}

/// The raw limit: the client `JsonProvider::new` builds (a timeout, nothing else), the same
/// JSON body, straight at the provider.
async fn raw_client(url: &str, total: usize, in_flight: usize) -> f64 {
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    let body = Arc::new(render(&body_template(), &sample_message(0)));
    let url: Arc<str> = url.into();
    hammer(total, in_flight, move |_| {
        let (client, body, url) = (client.clone(), body.clone(), url.clone());
        async move {
            let r = client.post(&*url).json(&*body).send().await.unwrap();
            assert!(r.status().is_success());
            let v: Value = r.json().await.unwrap();
            assert!(v.pointer("/messageId").is_some());
        }
    })
    .await
}

/// The SMS channel alone (render, route, send, parse the answer) without any database.
async fn channel_only(channel: Arc<SmsChannel>, total: usize, in_flight: usize) -> f64 {
    hammer(total, in_flight, move |i| {
        let channel = channel.clone();
        async move {
            let (_, sent) = channel.send(&sample_message(i)).await;
            assert!(matches!(sent, Sent::Accepted { .. }), "{sent:?}");
        }
    })
    .await
}

fn sms_channel(url: &str, clock: Arc<dyn Clock>) -> Arc<SmsChannel> {
    let provider: Arc<dyn SmsProvider> = Arc::new(JsonProvider::new(
        "bench".into(),
        url.into(),
        None,
        body_template(),
        Some("/messageId".into()),
        TIMEOUT,
    ));
    Arc::new(SmsChannel::new(
        vec![RouteConfig {
            provider,
            priority: 1,
            weight: 1,
            rate_per_second: None,
        }],
        clock,
        None,
    ))
}

// ---------------------------------------------------------------- one backend

struct Figures {
    end_to_end: f64,
    creation: f64,
    sending: f64,
}

async fn run_backend(
    backend: &str,
    url: &str,
    provider: &Provider,
    notices: usize,
    workers: usize,
) -> Option<Figures> {
    let Some(db) = FreshDb::new(backend).await else {
        println!("{backend:<10}: skipped (KONTAKTVEI_TEST_DATABASE_URL is not set)");
        return None;
    };
    let store = db.store((2 * workers as u32).max(4)).await;
    let start = weekday_morning();
    let clock = Arc::new(ManualClock::new(start));
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            clock.clone(),
            EngineConfig {
                public_base_url: "http://127.0.0.1:8080".into(),
                instance: "bench".into(),
                postal: PostalCalendar::default(),
            },
        )
        .with_sms(sms_channel(url, clock.clone())),
    );

    // Not timed: one clinic and the patients, each with a mobile number.
    let mut tx = store.begin().await.unwrap();
    let clinic = organisations::create(
        &mut tx,
        NewOrganisation {
            name: "Poliklinikk".into(),
            kind: OrganisationKind::Clinic,
            time_zone: "Europe/Oslo".into(),
            staff_email: None,
        },
        start,
    )
    .await
    .unwrap()
    .id;
    let mut patient_ids = Vec::with_capacity(notices);
    for i in 0..notices {
        let p = patients::create(
            &mut tx,
            clinic,
            NewPatient {
                name: format!("Pasient {i}"),
                birth_year: Some(1979),
                birth_date: None,
                language: None,
                contact_notes: String::new(),
                national_id: None,
                coordinator_id: None,
            },
            start,
        )
        .await
        .unwrap();
        let cp: NewContactPoint = serde_json::from_value(json!({
            "kind": "sms",
            "phone": format!("+479{:07}", i),
            "provenance": "stated_by_patient"
        }))
        .unwrap();
        contact_points::add(&mut tx, p.id, cp, "bench", start)
            .await
            .unwrap();
        patient_ids.push(p.id);
    }
    tx.commit().await.unwrap();
    let before = provider.requests.load(Ordering::Relaxed);

    // Timed, creation: each appointment booked and its notice planned in its own transaction,
    // `workers` at a time (as concurrent API requests would).
    let started = Instant::now();
    let patient_ids = Arc::new(patient_ids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (store, engine, clock, patient_ids, next) = (
            store.clone(),
            engine.clone(),
            clock.clone(),
            patient_ids.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&patient_id) = patient_ids.get(i) else {
                    break;
                };
                let now = clock.now();
                let mut tx = store.begin().await.unwrap();
                let new = NewAppointment {
                    patient_id,
                    starts_at: now + TimeDelta::days(10),
                    duration_minutes: 30,
                    place: "Storgata 36".into(),
                    kind: appointments::AppointmentKind::InPerson,
                };
                let (_, notice) = appointments::book(&mut tx, clinic, new, "bench", now)
                    .await
                    .unwrap();
                engine.plan(&mut tx, &notice).await.unwrap();
                tx.commit().await.unwrap();
                ids.push(notice.id);
            }
            ids
        });
    }
    let mut notice_ids = Vec::with_capacity(notices);
    while let Some(r) = tasks.join_next().await {
        notice_ids.extend(r.unwrap());
    }
    let created = started.elapsed();

    // Timed, sending: `workers` engine loops until nothing is due.
    let sending_started = Instant::now();
    let mut rounds = 0;
    while provider.requests.load(Ordering::Relaxed) - before < notices as u64 {
        rounds += 1;
        assert!(
            rounds <= 3,
            "the engine went idle before every notice was sent"
        );
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let engine = engine.clone();
            tasks.spawn(async move {
                let mut dispatched = 0;
                loop {
                    let round = engine.run_until_idle().await.unwrap();
                    if round.dispatched == 0 {
                        break dispatched;
                    }
                    dispatched += round.dispatched;
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    }
    let sent = sending_started.elapsed();
    let total = started.elapsed();

    // Not timed: the provider got exactly one message per notice, and every first step is sent.
    let received = provider.requests.load(Ordering::Relaxed) - before;
    assert_eq!(received, notices as u64, "messages the provider received");
    let mut refs = HashSet::new();
    let mut tx = store.begin_read().await.unwrap();
    for id in &notice_ids {
        let all = steps::for_notice(&mut tx, *id).await.unwrap();
        let first = all.iter().min_by_key(|s| s.position).unwrap();
        assert_eq!(first.channel, ChannelKind::Sms, "{first:?}");
        assert_eq!(first.status, StepStatus::Sent, "{first:?}");
        let r = first.provider_ref.clone().unwrap();
        assert!(r.starts_with("bench:"), "{r}");
        refs.insert(r);
    }
    tx.commit().await.unwrap();
    assert_eq!(refs.len(), notices, "one provider message id per notice");
    drop(engine);
    store.close().await;
    db.remove().await;

    let rate = |d: Duration| notices as f64 / d.as_secs_f64();
    let figures = Figures {
        end_to_end: rate(total),
        creation: rate(created),
        sending: rate(sent),
    };
    println!(
        "{backend:<10}: {notices} notices in {:.2} s = {:.0} notices/s end-to-end (creation {:.2} s = {:.0}/s, {:.2} ms each; sending {:.2} s = {:.0}/s, {:.2} ms each per worker); verified: {received} messages received, {notices} first steps sent",
        total.as_secs_f64(),
        figures.end_to_end,
        created.as_secs_f64(),
        figures.creation,
        created.as_secs_f64() * 1000.0 * workers as f64 / notices as f64,
        sent.as_secs_f64(),
        figures.sending,
        sent.as_secs_f64() * 1000.0 * workers as f64 / notices as f64,
    );
    Some(figures)
}

#[tokio::main]
async fn main() {
    let notices = env_usize("KV_BENCH_NOTICES", 2000);
    let raw_total = env_usize("KV_BENCH_RAW", 20000);
    let workers = env_usize("KV_BENCH_WORKERS", 2);
    let in_flight = env_usize("KV_BENCH_IN_FLIGHT", 16);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "sms_throughput: {notices} notices per backend, {workers} engine loops, {raw_total} raw requests, {cores} cores"
    );

    let (url, provider) = start_provider().await;
    // Warm the provider and the client's connection pool.
    raw_client(&url, 200, in_flight).await;

    let raw = raw_client(&url, raw_total, in_flight).await;
    println!(
        "raw       : {raw:.0} req/s ({in_flight} in flight; reqwest client with a timeout, the same JSON body)"
    );
    let raw_serial = raw_client(&url, raw_total / 2, workers).await;
    println!("raw       : {raw_serial:.0} req/s ({workers} in flight, as many as engine loops)");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(weekday_morning()));
    let channel = channel_only(sms_channel(&url, clock), raw_total / 2, workers).await;
    println!(
        "channel   : {channel:.0} messages/s (SmsChannel::send with JsonProvider, {workers} in flight, no database)"
    );

    let sqlite = run_backend("SQLite", &url, &provider, notices, workers).await;
    let postgres = run_backend("PostgreSQL", &url, &provider, notices, workers).await;

    let part = |name: &str, letter: &str, f: &Option<Figures>| match f {
        Some(f) => format!(
            "{name} {:.0} notices/s ({letter}/X = {:.1} %)",
            f.end_to_end,
            100.0 * f.end_to_end / raw
        ),
        None => format!("{name} skipped"),
    };
    println!(
        "summary   : raw provider limit {raw:.0} req/s; kontaktvei {}; {}",
        part("SQLite", "Y", &sqlite),
        part("PostgreSQL", "W", &postgres),
    );
}
