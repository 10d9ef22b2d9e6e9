//! The escalation engine seen from outside, as a newcomer meets it: book an appointment, see the
//! SMS in the outbox and the plan on the notice, acknowledge with the code — at a desk, through
//! the one-click link, or as a staff member's attestation — and see the notice end.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A patient with an SMS number and a day centre that can relay, and a booking in a week.
async fn booked(app: &App, key: &str, service: &str) -> (String, String) {
    let pid = app.patient(key, "Kari Nordmann").await;
    for body in [
        json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient"}),
        json!({"kind": "relay", "organisation_id": service, "provenance": "verified_in_person"}),
    ] {
        let (status, cp) = app
            .post(key, &format!("/patients/{pid}/contact-points"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cp}");
    }
    let (status, booked) = app
        .post(key, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(7 * 24 * 60), "place": "Storgata 36"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    (pid, booked["notice_ids"][0].as_str().unwrap().to_owned())
}

/// The outbox SMS for a notice, once the worker has sent it.
async fn sms_for(app: &App, key: &str, notice: &str) -> Value {
    eventually("the SMS in the outbox", || async {
        let (_, outbox) = app.get(key, "/outbox").await;
        outbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["notice_id"] == notice)
            .cloned()
    })
    .await
}

fn code_in(body: &str) -> String {
    body.split("Svar ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn link_in(body: &str) -> String {
    body.split_whitespace()
        .find(|w| w.contains("/k/"))
        .unwrap()
        .to_owned()
}

async fn a_newcomer_books_sees_the_sms_and_acknowledges_with_the_code(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let (service, _) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let (_, notice) = booked(&app, &key, &service).await;

    let sms = sms_for(&app, &key, &notice).await;
    assert_eq!(sms["to"], "+4791234567");
    let body = sms["body"].as_str().unwrap();
    assert!(
        !body.contains("Poliklinikk"),
        "the SMS never names the clinic: {body}"
    );

    let (_, view) = app.get(&key, &format!("/notices/{notice}")).await;
    let steps = view["steps"].as_array().unwrap();
    let plan: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["channel"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        plan,
        vec![
            ("sms", "sent"),
            ("letter", "skipped"),
            ("relay", "planned"),
            ("outreach", "skipped")
        ]
    );
    assert_eq!(steps[1]["reason"], "no_contact_point");
    assert!(steps[0]["window_ends_at"].is_string());
    assert!(steps[0]["idempotency_key"].is_string());
    assert!(
        steps[0].get("body").is_none(),
        "the message (with its code) is not in the API answer"
    );
    let history: Vec<&str> = steps[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, vec!["planned", "queued", "sent"]);

    // The patient reads the code out at the desk; it is typed in lower case with a space.
    let code = code_in(body);
    let typed = format!("{} {}", code[..3].to_lowercase(), &code[3..]);
    let (status, ack) = app
        .post(
            &key,
            "/acks",
            json!({"code": typed, "method": "code_at_desk"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["status"], "acknowledged");
    assert_eq!(ack["notice_id"], notice.as_str());

    let (_, view) = app.get(&key, &format!("/notices/{notice}")).await;
    assert_eq!(view["status"], "acknowledged");
    assert_eq!(view["ack"]["method"], "code_at_desk");
    let statuses: Vec<&str> = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec!["acknowledged", "skipped", "cancelled", "skipped"]
    );

    // The same code again: already acknowledged, nothing changes.
    let (status, again) = app.post(&key, "/acks", json!({"code": code})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "acknowledged");

    // The timeline shows the attempt and the acknowledgement.
    let pid = view["patient_id"].as_str().unwrap();
    let (_, timeline) = app.get(&key, &format!("/patients/{pid}/timeline")).await;
    let summaries: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries.contains(&"booking notice: sms step sent"),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&"booking notice: letter step skipped (no_contact_point)"),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&"booking notice acknowledged (code_at_desk)"),
        "{summaries:?}"
    );
    assert!(
        !timeline.to_string().contains(&code),
        "codes never appear in the timeline"
    );
}

async fn the_link_asks_for_a_click_before_it_acknowledges(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let (service, _) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let (_, notice) = booked(&app, &key, &service).await;
    let sms = sms_for(&app, &key, &notice).await;
    let link = link_in(sms["body"].as_str().unwrap());
    assert!(link.starts_with(&format!("{}/k/", app.base)), "{link}");

    // Opening the link (as a link scanner would) does not acknowledge anything.
    let page = app.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\">"), "{html}");
    assert!(
        !html.contains("Storgata"),
        "the page says nothing about the appointment"
    );
    let (_, view) = app.get(&key, &format!("/notices/{notice}")).await;
    assert_eq!(view["status"], "active");

    // Pressing the button does.
    let done = app.http.post(&link).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Takk!"));
    let (_, view) = app.get(&key, &format!("/notices/{notice}")).await;
    assert_eq!(view["status"], "acknowledged");
    assert_eq!(view["ack"]["method"], "link");
    let again = app
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("allerede"), "{again}");

    let unknown = app
        .http
        .get(format!("{}/k/{}", app.base, "0".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn guessing_codes_is_rate_limited_and_audited(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let (service, _) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let (pid, notice) = booked(&app, &key, &service).await;
    let code = code_in(sms_for(&app, &key, &notice).await["body"].as_str().unwrap());
    let wrong = if code == "222222" { "333333" } else { "222222" };

    let (status, problem) = app.post(&key, "/acks", json!({"code": "O0I1L"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a malformed code is an input error"
    );
    assert_eq!(error_fields(&problem), vec!["code"]);
    for _ in 0..10 {
        let (status, _) = app.post(&key, "/acks", json!({"code": wrong})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, problem) = app.post(&key, "/acks", json!({"code": code})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    let (_, view) = app.get(&key, &format!("/notices/{notice}")).await;
    assert_eq!(
        view["status"], "active",
        "the limit holds even for the right code"
    );

    // Another desk (another key) is not blocked by this one's mistakes.
    let (org, _) = (
        app.cli(&[
            "admin",
            "key",
            "create",
            "--org",
            view["organisation_id"].as_str().unwrap(),
            "--role",
            "clinic",
        ])
        .await
        .json(),
        (),
    );
    let other = org["api_key"].as_str().unwrap();
    let (status, ack) = app
        .post(
            other,
            "/acks",
            json!({"code": code, "method": "code_by_phone"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ack}");

    let (_, log) = app.get(&key, &format!("/patients/{pid}/audit")).await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "ack.code" && e["outcome"] == "allowed")
    );
    assert!(!log.to_string().contains(&code));
}

/// A staff member with a personal key: (staff id, key).
async fn person(app: &App, admin: &str, name: &str, role: &str) -> (String, String) {
    let (status, s) = app
        .post(admin, "/staff", json!({"name": name, "role": role}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    let (status, k) = app
        .post(admin, &format!("/staff/{id}/keys"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    (id, k["api_key"].as_str().unwrap().to_owned())
}

/// A day centre worker says, with her own key, that she told the patient: the ack names her.
async fn a_day_centre_attests_that_it_told_the_patient(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let (service, service_admin) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let (dagny_id, dagny) = person(&app, &service_admin, "Dagny Hansen", "relay").await;
    let (_, notice) = booked(&app, &key, &service).await;

    let (status, problem) = app
        .post(
            &dagny,
            "/acks",
            json!({"notice_id": notice, "method": "relay_attested"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&problem), vec!["note"]);
    let (status, ack) = app
        .post(&dagny, "/acks", json!({"notice_id": notice, "method": "relay_attested", "note": "Sa det til henne i kafeen"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let (_, view) = app.get(&key, &format!("/notices/{notice}")).await;
    assert_eq!(view["status"], "acknowledged");
    assert_eq!(view["ack"]["method"], "relay_attested");
    assert_eq!(view["ack"]["note"], "Sa det til henne i kafeen");
    assert_eq!(view["ack"]["actor"], format!("staff:{dagny_id}").as_str());

    // A service the patient is not shared with cannot attest.
    let (_, other_admin) = app
        .add_org("Et annet senter", "low_threshold_service")
        .await;
    let (_, other_key) = person(&app, &other_admin, "Olav Annensted", "relay").await;
    let (status, _) = app
        .post(
            &other_key,
            "/acks",
            json!({"notice_id": notice, "method": "relay_attested", "note": "?"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// An attestation is a named person's word, from the kind of service that does it: a shared key,
/// or a person from another kind of organisation, is refused (403 naming `method`, saying what
/// to do instead, audited) and nothing is stored.
async fn an_attestation_needs_a_person_from_the_right_service(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (service, service_admin) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let shared_relay = app.add_key(&service, "relay").await;
    let (siri_id, siri) = person(&app, &clinic, "Siri Sekretær", "clinic").await;
    let (dagny_id, dagny) = person(&app, &service_admin, "Dagny Hansen", "relay").await;
    let (pid, notice) = booked(&app, &clinic, &service).await;
    let (_, before) = app.get(&clinic, &format!("/notices/{notice}")).await;
    assert_ne!(before["status"], "acknowledged", "{before}");

    let refusals = [
        // Shared keys act for nobody: a personal key (and for a clinic, the patient's code).
        (&shared_relay, Some("relay_attested"), vec!["personal key"]),
        (&service_admin, Some("relay_attested"), vec!["personal key"]),
        (&shared_relay, None, vec!["personal key"]),
        (
            &clinic,
            Some("staff_attested"),
            vec!["personal key", "code_at_desk"],
        ),
        // A clinic does not relay or reach out; a day centre does not reach out.
        (
            &siri,
            Some("relay_attested"),
            vec!["low-threshold service", "code_at_desk"],
        ),
        (
            &siri,
            Some("outreach_met"),
            vec!["outreach team", "code_at_desk"],
        ),
        (
            &dagny,
            Some("outreach_met"),
            vec!["outreach team", "staff_attested"],
        ),
    ];
    for (key, method, says) in &refusals {
        let mut body = json!({"notice_id": notice, "note": "Sa det til henne i kafeen"});
        if let Some(m) = method {
            body["method"] = json!(m);
        }
        let (status, problem) = app.post(key, "/acks", body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method:?}: {problem}");
        assert_eq!(problem["type"], "/problems/forbidden", "{problem}");
        assert_eq!(error_fields(&problem), vec!["method"], "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        for said in says {
            assert!(detail.contains(said), "{method:?} says {said:?}: {problem}");
        }
    }

    // Nothing was stored: the notice is still open, without an ack.
    let (_, after) = app.get(&clinic, &format!("/notices/{notice}")).await;
    assert_eq!(after["status"], before["status"], "{after}");
    assert!(after["ack"].is_null(), "{after}");
    // Each refusal is in the patient's access log.
    let (_, log) = app.get(&clinic, &format!("/patients/{pid}/audit")).await;
    let refused: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "ack.attest" && e["outcome"] == "denied")
        .collect();
    assert_eq!(refused.len(), refusals.len(), "{log:#}");
    for id in [&siri_id, &dagny_id] {
        assert!(
            refused
                .iter()
                .any(|e| e["actor"] == format!("staff:{id}").as_str()),
            "{log:#}"
        );
    }

    // A person from the clinic may attest that they told the patient themselves.
    let (status, ack) = app
        .post(
            &siri,
            "/acks",
            json!({"notice_id": notice, "method": "staff_attested", "note": "Ringte henne"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let (_, view) = app.get(&clinic, &format!("/notices/{notice}")).await;
    assert_eq!(view["status"], "acknowledged");
    assert_eq!(view["ack"]["method"], "staff_attested");
    assert_eq!(view["ack"]["actor"], format!("staff:{siri_id}").as_str());
}

async fn a_policy_edit_never_changes_a_notice_in_flight(app: App) {
    let (clinic, key) = app.add_org("Poliklinikk", "clinic").await;
    let (service, _) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let (_, before) = booked(&app, &key, &service).await;
    sms_for(&app, &key, &before).await;

    let path = format!("/organisations/{clinic}/policy");
    let (status, mut policy) = app.get(&key, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        policy["sms_ack_hours"], 24,
        "the documented default: {policy}"
    );
    assert_eq!(
        policy["chain"],
        json!(["sms", "letter", "relay", "outreach"])
    );

    let r = app
        .http
        .put(app.url(&path))
        .bearer_auth(&key)
        .json(&json!({"chain": [], "sms_ack_hours": 0}))
        .send()
        .await
        .unwrap();
    let (status, problem) = answer(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    policy["sms_ack_hours"] = json!(2);
    let r = app
        .http
        .put(app.url(&path))
        .bearer_auth(&key)
        .json(&policy)
        .send()
        .await
        .unwrap();
    let (status, problem) = answer(r).await;
    assert_eq!(status, StatusCode::OK, "{problem}");
    let r = app.http.put(app.url(&path)).bearer_auth(&key).json(&json!({"chain": [], "sms_ack_hours": 0, "letter_ack_working_days": 2, "relay_ack_hours": 0, "outreach_claim_hours": 24, "quiet_from": "21:00", "quiet_until": "08:00", "print_cutoff": "14:00"})).send().await.unwrap();
    let (status, problem) = answer(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, vec!["chain", "relay_ack_hours", "sms_ack_hours"]);

    let (_, after) = booked(&app, &key, &service).await;
    sms_for(&app, &key, &after).await;
    let window = |v: &Value| {
        let s = &v["steps"][0];
        let sent = chrono::DateTime::parse_from_rfc3339(s["sent_at"].as_str().unwrap()).unwrap();
        let end =
            chrono::DateTime::parse_from_rfc3339(s["window_ends_at"].as_str().unwrap()).unwrap();
        (end - sent).num_hours()
    };
    let (_, old) = app.get(&key, &format!("/notices/{before}")).await;
    let (_, new) = app.get(&key, &format!("/notices/{after}")).await;
    assert_eq!(
        window(&old),
        24,
        "planned before the edit: keeps its snapshot"
    );
    assert_eq!(window(&new), 2, "planned after the edit");
}

async fn a_notices_letter_renders_from_the_cli(app: App) {
    let (org, key) = app.add_org("Poliklinikk", "clinic").await;
    // Who to call goes in every letter.
    let (_, mut policy) = app.get(&key, &format!("/organisations/{org}/policy")).await;
    policy["letter_contact_text"] = json!("Ring oss på 22 00 00 00, hverdager 08.00–15.30.");
    let r = app
        .http
        .put(app.url(&format!("/organisations/{org}/policy")))
        .bearer_auth(&key)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pid = app.patient(&key, "Kari Nordmann").await;
    let address = json!({"kind": "postal", "lines": ["Kari Nordmann", "c/o Kirkens Bymisjon", "Storgata 1"], "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"});
    let (status, cp) = app
        .post(&key, &format!("/patients/{pid}/contact-points"), address)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cp}");
    let (_, booked) = app
        .post(&key, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(30 * 24 * 60), "place": "Storgata 36"}))
        .await;
    let notice = booked["notice_ids"][0].as_str().unwrap().to_owned();
    let (_, view) = app.get(&key, &format!("/notices/{notice}")).await;
    assert_eq!(view["steps"][1]["channel"], "letter");
    assert_eq!(
        view["steps"][1]["status"], "queued",
        "waiting for the print run: {view}"
    );

    let pdf = app.db.dir().join("letter.pdf");
    let out = app
        .cli(&[
            "letter",
            "render",
            "--notice",
            &notice,
            "-o",
            pdf.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(
        !String::from_utf8_lossy(&bytes).contains("Poliklinikk"),
        "a neutral sender"
    );
    match std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
    {
        Ok(text) => {
            let text = String::from_utf8_lossy(&text.stdout);
            let at = |s: &str| {
                text.find(s)
                    .unwrap_or_else(|| panic!("{s:?} not in the letter:\n{text}"))
            };
            assert!(at("Kari Nordmann") < at("c/o Kirkens Bymisjon"));
            assert!(at("c/o Kirkens Bymisjon") < at("0155 OSLO"));
            assert!(at("0155 OSLO") < at("Du har fått time"));
            assert!(at("Du har fått time") < at("Ring oss på 22 00 00 00"));
            assert!(at("Ring oss på 22 00 00 00") < at("Koden din"));
            assert!(!text.contains("Poliklinikk"));
        }
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("pdftotext is missing in CI")
        }
        Err(_) => eprintln!("skipping the letter's text check: pdftotext is not installed"),
    }
    let (_, log) = app.get(&key, &format!("/patients/{pid}/audit")).await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "letter.render" && e["actor"] == "operator")
    );

    let out = app
        .cli(&[
            "letter",
            "render",
            "--notice",
            "01a21512-58c8-7f1e-b763-18be1c458184",
            "-o",
            pdf.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--notice"), "{}", out.stderr);
}

crate::scenarios!(
    a_notices_letter_renders_from_the_cli,
    a_policy_edit_never_changes_a_notice_in_flight,
    a_newcomer_books_sees_the_sms_and_acknowledges_with_the_code,
    the_link_asks_for_a_click_before_it_acknowledges,
    guessing_codes_is_rate_limited_and_audited,
    a_day_centre_attests_that_it_told_the_patient,
    an_attestation_needs_a_person_from_the_right_service
);
