//! The SMS channel against real Kannel (bearerbox + smsbox with fakesmsc as the operator): the
//! booking SMS goes out through Kannel, its delivery reports come back to our callback, the
//! patient answers with the code from the phone, the notice ends and Kannel carries our thanks
//! back. Failure reports, forged callbacks, replies without a code and STOP are covered too.
//! Without Kannel installed the test skips with a reason, except under CI=true.

use crate::kannel_support::{GLOBAL_SENDER, Kannel};
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "kannel-test-secret-0123456789";

async fn notice(app: &App, key: &str, id: &str) -> Value {
    app.get(key, &format!("/notices/{id}")).await.1
}

async fn patient_with_phone(app: &App, key: &str, team: &str, phone: &str) -> String {
    let pid = app.patient(key, "Kari Nordmann").await;
    for body in [
        json!({"kind": "sms", "phone": phone, "provenance": "stated_by_patient"}),
        json!({"kind": "outreach", "organisation_id": team, "provenance": "verified_in_person"}),
    ] {
        let (status, cp) = app
            .post(key, &format!("/patients/{pid}/contact-points"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cp}");
    }
    pid
}

async fn book(app: &App, key: &str, pid: &str) -> String {
    let starts_at = (app.now() + chrono::TimeDelta::days(10)).to_rfc3339();
    let (status, booked) = app
        .post(
            key,
            "/appointments",
            json!({"patient_id": pid, "starts_at": starts_at, "place": "Storgata 36, 2. etasje"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    booked["notice_ids"][0].as_str().unwrap().to_owned()
}

async fn through_real_kannel(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let get_url = format!("{base}/hooks/sms/kannel/{SECRET}/inbound?from=%p&to=%P&text=%a");
    let Some(kannel) = Kannel::start(&get_url).await else {
        return;
    };
    let toml = format!(
        "public_base_url = \"{base}\"\n\n[[sms_provider]]\nname = \"kannel\"\nkind = \"kannel\"\nurl = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\nsecret = \"{SECRET}\"\nsender = \"{GLOBAL_SENDER}\"\n",
        kannel.sendsms_url, kannel.username, kannel.password
    );
    let app = App::start_configured(db, &format!("127.0.0.1:{port}"), &toml).await;
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let (team, _) = app.add_org("FACT", "outreach_team").await;

    // The booking SMS reaches the phone through Kannel, Norwegian letters intact.
    let pid = patient_with_phone(&app, &key, &team, "+47 912 34 567").await;
    let n = book(&app, &key, &pid).await;
    let got = kannel.wait_for_received(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].to.trim_start_matches('+'), "4791234567");
    assert!(got[0].text.contains("Du har fått time"), "{}", got[0].text);
    let code = got[0]
        .text
        .split("Svar ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    // Kannel's delivery reports (8: accepted by the SMSC, then 1: delivered) reach the step.
    let view = eventually("the delivery report", || async {
        let v = notice(&app, &key, &n).await;
        (v["steps"][0]["status"] == "delivered").then_some(v)
    })
    .await;
    let sms = &view["steps"][0];
    assert!(
        sms["provider_ref"].as_str().unwrap().starts_with("kannel:"),
        "which provider sent it: {sms}"
    );
    let history = sms["history"].to_string();
    assert!(history.contains("kannel status 8"), "{history}");
    assert!(history.contains("kannel status 1"), "{history}");
    assert_eq!(sms["sms"]["encoding"], "gsm7");

    // The patient answers from the phone with the code, in lower case with words around it.
    kannel
        .send_from_phone(
            "+4791234567",
            GLOBAL_SENDER,
            &format!("ok {} takk", code.to_lowercase()),
        )
        .await;
    let view = eventually("the acknowledgement", || async {
        let v = notice(&app, &key, &n).await;
        (v["status"] == "acknowledged").then_some(v)
    })
    .await;
    assert_eq!(view["ack"]["method"], "sms_reply");
    assert_eq!(view["steps"][0]["status"], "acknowledged");
    assert_eq!(view["replies"][0]["kind"], "ack");
    assert_eq!(view["replies"][0]["from_phone"], "+4791234567");
    // … and Kannel carries our thanks back to the phone.
    let got = kannel.wait_for_received(2, Duration::from_secs(15)).await;
    assert!(got[1].text.starts_with("Takk!"), "{}", got[1].text);

    // A reply without a code is kept for staff and acknowledges nothing.
    let second = book(&app, &key, &pid).await;
    kannel.wait_for_received(3, Duration::from_secs(15)).await;
    kannel
        .send_from_phone("+4791234567", GLOBAL_SENDER, "Kan jeg få en annen tid?")
        .await;
    let view = eventually("the reply on the notice", || async {
        let v = notice(&app, &key, &second).await;
        (v["replies"].as_array().is_some_and(|r| !r.is_empty())).then_some(v)
    })
    .await;
    assert_eq!(view["replies"][0]["kind"], "reply");
    assert_eq!(view["replies"][0]["body"], "Kan jeg få en annen tid?");
    assert_eq!(view["status"], "active");

    // An undeliverable report, sent the way Kannel sends it, fails the step and escalates at once.
    let other = patient_with_phone(&app, &key, &team, "+4741234567").await;
    let third = book(&app, &key, &other).await;
    let view = eventually("the third SMS", || async {
        let v = notice(&app, &key, &third).await;
        v["steps"][0]["idempotency_key"].is_string().then_some(v)
    })
    .await;
    let reference = view["steps"][0]["idempotency_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let dlr = format!(
        "{base}/hooks/sms/kannel/{SECRET}/dlr?ref={reference}&status=2&answer=NACK%2FUnknown%20subscriber"
    );
    // A forged report (wrong secret) changes nothing.
    let forged = app
        .http
        .get(dlr.replace(SECRET, "not-the-secret-at-all-000"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let r = app.http.get(&dlr).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again = app.http.get(&dlr).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a repeated report is harmless"
    );
    let view = notice(&app, &key, &third).await;
    assert_eq!(view["steps"][0]["status"], "failed", "{view}");
    assert_eq!(view["steps"][0]["reason"], "unknown_subscriber");
    let running: Vec<&str> = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(
        running
            .iter()
            .any(|s| ["queued", "sending", "sent"].contains(s)),
        "the next step runs: {running:?}"
    );
    let (_, cps) = app
        .get(&key, &format!("/patients/{other}/contact-points"))
        .await;
    let phone = cps["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "sms")
        .unwrap();
    assert_eq!(phone["status"], "failed");
    assert_eq!(phone["failure_reason"], "unknown_subscriber");

    // STOP pauses SMS to the number until someone has talked with the patient.
    kannel
        .send_from_phone("+4791234567", GLOBAL_SENDER, "STOPP")
        .await;
    eventually("the number paused", || async {
        let (_, cps) = app
            .get(&key, &format!("/patients/{pid}/contact-points"))
            .await;
        cps["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "paused")
            .then_some(())
    })
    .await;
    let fourth = book(&app, &key, &pid).await;
    let view = notice(&app, &key, &fourth).await;
    assert_eq!(view["steps"][0]["reason"], "contact_point_paused");
}

mod through_real_kannel {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::through_real_kannel(crate::support::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::through_real_kannel(crate::support::Backend::Postgres).await;
    }
}
