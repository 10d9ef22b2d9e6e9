//! The reach report over HTTP on real data, and the reach simulation through the CLI: its JSON
//! shape, its table and chart, and a clear error for a bad scenario.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

async fn reach_report(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (centre, _) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let relay = app.add_key(&centre, "relay").await;
    let pid = app.patient(&clinic, "Kari Nordmann").await;
    let (status, body) = app
        .post(
            &clinic,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let unreachable = app.patient(&clinic, "Ola Uten Kontakt").await;
    let (status, booked) = app
        .post(&clinic, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(7 * 24 * 60), "place": "Storgata 36"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let notice_id = booked["notice_ids"][0].as_str().unwrap().to_owned();
    // She answers the SMS with her code (read from the outbox).
    let code = eventually("the SMS", || async {
        let (_, outbox) = app.get(&clinic, "/outbox").await;
        outbox["items"].as_array().and_then(|m| m.first()).map(|m| {
            m["body"]
                .as_str()
                .unwrap()
                .split("Svar ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        })
    })
    .await;
    let (status, ack) = app.post(&clinic, "/acks", json!({"code": code})).await;
    assert_eq!(status, StatusCode::OK, "{ack}");

    let (status, report) = app.get(&clinic, "/reports/reach").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["notices"], 1, "{report}");
    assert_eq!(report["acknowledged"], 1);
    assert_eq!(report["in_flight"], 0, "acknowledged, so finished");
    assert_eq!(report["reached_by_channel"]["sms"], 1);
    assert_eq!(report["silent_ends"], 0);
    assert_eq!(report["patients_without_working_contact_point"], 1);
    assert_eq!(
        report["patients_without_working_contact_point_list"][0]["id"],
        unreachable.as_str()
    );
    assert_eq!(report["acked_before_appointment"], 1.0);
    let _ = notice_id;
    // Names are a read of patient data: audited.
    let (_, log) = app
        .get(&clinic, &format!("/patients/{unreachable}/audit"))
        .await;
    assert!(log.to_string().contains("report.reach"), "{log}");
    // A day centre does not read the clinic's report; a bad period names the field.
    let (status, _) = app.get(&relay, "/reports/reach").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .get(
            &clinic,
            "/reports/reach?from=2026-05-01T00:00:00Z&to=2026-04-01T00:00:00Z",
        )
        .await;
    assert_eq!(
        (status, error_fields(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["from".to_owned()])
    );
}

async fn simulate_cli(app: App) {
    let out = app
        .cli(&[
            "simulate",
            "--patients",
            "30",
            "--days",
            "7",
            "--seed",
            "5",
            "--json",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    for name in ["sms_only", "sms_then_letter", "kontaktvei"] {
        let s = &v["strategies"][name];
        for field in [
            "notices",
            "acked_before_appointment",
            "handed_over_to_human",
            "silent_ends",
            "median_hours_to_ack",
            "reached_by_channel",
        ] {
            assert!(s.get(field).is_some(), "{name}.{field}: {s}");
        }
    }
    assert_eq!(v["strategies"]["kontaktvei"]["silent_ends"], 0, "{v}");
    assert!(
        out.stderr.contains("simulated 30 patients"),
        "the time is reported: {}",
        out.stderr
    );
    // Without --json: a table, and the chart next to it.
    let out = app
        .cli(&[
            "simulate",
            "--patients",
            "20",
            "--days",
            "5",
            "--chart",
            "reach.svg",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("kontaktvei") && out.stdout.contains("in time"),
        "{}",
        out.stdout
    );
    let svg = std::fs::read_to_string(app.db.dir().join("reach.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("sms_then_letter"));
    // A scenario that is not there, or not valid: one line, a non-zero exit.
    let out = app.cli(&["simulate", "--scenario", "nowhere.toml"]).await;
    assert_ne!(out.code, 0);
    let last = out.stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("kontaktvei: --scenario: cannot read nowhere.toml"),
        "{}",
        out.stderr
    );
    std::fs::write(app.db.dir().join("bad.toml"), "name = \"x\"\n").unwrap();
    let out = app.cli(&["simulate", "--scenario", "bad.toml"]).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--scenario"), "{}", out.stderr);
}

crate::scenarios!(reach_report);

mod simulate_cli {
    /// The simulation makes its own temporary SQLite databases: one run is enough.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        crate::support::run(crate::support::Backend::Sqlite, super::simulate_cli).await;
    }
}
