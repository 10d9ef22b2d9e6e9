//! The crash test: the real binary is killed with SIGKILL at random moments while notices flow
//! and escalate, and restarted each time. Its clock runs four hours a second, so five days of
//! escalation (SMS → relay → outreach → coordinator) pass during the test. At the end every
//! notice must be where its plan says — acknowledged, or with the coordinator after every step
//! ran once — and every message and task must exist exactly once.
//!
//! The SMS provider here is the built-in outbox, whose store refuses a second message with the
//! same idempotency key; an HTTP provider on loopback comes with the SMS channel work.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SPEED: f64 = 4.0 * 3600.0;
const NOTICES: usize = 24;
const KILLS: usize = 20;

/// A tiny deterministic generator (xorshift), so a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn get_retrying(app: &App, key: &str, path: &str) -> Value {
    for _ in 0..100 {
        if let Ok(r) = app.http.get(app.url(path)).bearer_auth(key).send().await
            && r.status() == StatusCode::OK
        {
            return r.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GET {path} kept failing");
}

async fn killed_at_random_moments_it_loses_nothing_and_sends_nothing_twice(mut app: App) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let (service, _) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let (team, _) = app.add_org("FACT", "outreach_team").await;

    let mut notices = Vec::new();
    for i in 0..NOTICES {
        let pid = app.patient(&key, &format!("Pasient {i}")).await;
        for body in [
            json!({"kind": "sms", "phone": format!("+47912{:05}", i), "provenance": "stated_by_patient"}),
            json!({"kind": "relay", "organisation_id": service, "provenance": "verified_in_person"}),
            json!({"kind": "outreach", "organisation_id": team, "provenance": "verified_in_person"}),
        ] {
            let (status, cp) = app
                .post(&key, &format!("/patients/{pid}/contact-points"), body)
                .await;
            assert_eq!(status, StatusCode::CREATED, "{cp}");
        }
        let starts_at = (app.now() + chrono::TimeDelta::days(30)).to_rfc3339();
        let (status, booked) = app
            .post(
                &key,
                "/appointments",
                json!({"patient_id": pid, "starts_at": starts_at, "place": "Storgata 36"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{booked}");
        notices.push(booked["notice_ids"][0].as_str().unwrap().to_owned());
    }

    // Kill it again and again while the steps run; acknowledge some notices in between.
    let mut acked = Vec::new();
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(900))).await;
        if round % 3 == 0 {
            let outbox = get_retrying(&app, &key, "/outbox").await;
            let candidates: Vec<&Value> = outbox["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| !acked.contains(&m["notice_id"]))
                .collect();
            if !candidates.is_empty() {
                let m = candidates[rng.below(candidates.len() as u64) as usize];
                let code = m["body"]
                    .as_str()
                    .unwrap()
                    .split("Svar ")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
                if let Ok(r) = app
                    .http
                    .post(app.url("/acks"))
                    .bearer_auth(&key)
                    .json(&json!({"code": code}))
                    .send()
                    .await
                    && r.status() == StatusCode::OK
                {
                    acked.push(m["notice_id"].clone());
                }
            }
        }
        app.restart().await; // SIGKILL, then start again on the same database
    }

    // Let it run undisturbed until every notice is settled: acknowledged, or with people.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut views: HashMap<String, Value> = HashMap::new();
    loop {
        views.clear();
        for id in &notices {
            views.insert(
                id.clone(),
                get_retrying(&app, &key, &format!("/notices/{id}")).await,
            );
        }
        // People hold the last steps until they close them: an outreach task (the team's) or
        // the coordinator's follow-up, handed out exactly once.
        let settled = views.values().all(|v| {
            v["status"] == "acknowledged"
                || v["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .rev()
                    .find(|s| s["status"] != "skipped")
                    .is_some_and(|s| {
                        (s["channel"] == "coordinator" || s["channel"] == "outreach")
                            && s["status"] == "sent"
                    })
        });
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after 90 s (seed {seed}): {:#?}",
            views.values().find(|v| v["status"] != "acknowledged")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for (id, v) in &views {
        let steps: Vec<(&str, &str)> = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["channel"].as_str().unwrap(),
                    s["status"].as_str().unwrap(),
                )
            })
            .collect();
        if v["status"] == "acknowledged" {
            assert!(
                acked.contains(&json!(id)),
                "acknowledged without an ack (seed {seed}): {v}"
            );
            assert_eq!(
                steps.iter().filter(|s| s.1 == "acknowledged").count(),
                1,
                "{steps:?}"
            );
            assert!(
                steps.iter().all(
                    |s| ["acknowledged", "expired", "skipped", "cancelled", "failed"]
                        .contains(&s.1)
                ),
                "{steps:?}"
            );
        } else {
            assert_eq!(
                steps,
                // The outreach team holds it until a person closes it: no window ends it.
                vec![
                    ("sms", "expired"),
                    ("letter", "skipped"),
                    ("relay", "expired"),
                    ("outreach", "sent")
                ],
                "notice {id} (seed {seed})"
            );
        }
        // Each step moved forward through its states once: no state twice.
        for s in v["steps"].as_array().unwrap() {
            let history: Vec<&str> = s["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["status"].as_str().unwrap())
                .collect();
            let mut unique = history.clone();
            unique.dedup();
            assert_eq!(
                unique.len(),
                history.len(),
                "a repeated state (seed {seed}): {history:?}"
            );
        }
        // One task per human step that ran.
        let tasks = v["tasks"].as_array().unwrap();
        let mut per_step: HashMap<&str, usize> = HashMap::new();
        for t in tasks {
            *per_step
                .entry(t["step_id"].as_str().unwrap_or("none"))
                .or_default() += 1;
        }
        assert!(per_step.values().all(|n| *n == 1), "{tasks:?}");
    }

    // Every SMS exactly once: one outbox message per notice, one per idempotency key.
    let outbox = get_retrying(&app, &key, "/outbox").await;
    let items = outbox["items"].as_array().unwrap();
    assert_eq!(items.len(), NOTICES, "one SMS per notice (seed {seed})");
    let mut keys: Vec<&str> = items
        .iter()
        .map(|m| m["idempotency_key"].as_str().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), NOTICES);
    assert!(!acked.is_empty(), "the test acknowledged some notices");
}

mod killed_at_random_moments_it_loses_nothing_and_sends_nothing_twice {
    use crate::support::{Backend, run_at_speed};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run_at_speed(
            Backend::Sqlite,
            super::SPEED,
            super::killed_at_random_moments_it_loses_nothing_and_sends_nothing_twice,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run_at_speed(
            Backend::Postgres,
            super::SPEED,
            super::killed_at_random_moments_it_loses_nothing_and_sends_nothing_twice,
        )
        .await;
    }
}
