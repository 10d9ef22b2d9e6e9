//! The booking walk-through of the README, step by step: organisations, a patient, four kinds of
//! contact points, booking, rescheduling, cancelling, attendance and no-show, notices and the
//! timeline; plus search and cursor paging over patients.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn booking_walkthrough(app: App) {
    let (clinic, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let (service, _) = app
        .add_org("Dagsenteret Vaterland", "low_threshold_service")
        .await;
    let (team, _) = app.add_org("FACT Oslo sentrum", "outreach_team").await;

    let (status, orgs) = app.get(&key, "/organisations").await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<(&str, &str)> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["kind"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("Dagsenteret Vaterland", "low_threshold_service")),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("FACT Oslo sentrum", "outreach_team")));
    assert!(
        orgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["id"].is_string())
    );

    let (status, patient) = app
        .post(
            &key,
            "/patients",
            json!({"name": "Kari Nordmann", "birth_year": 1979, "language": "nb",
                   "contact_notes": "Pleier å være på dagsenteret tirsdager"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{patient}");
    let pid = patient["id"].as_str().unwrap().to_owned();
    assert_eq!(patient["name"], "Kari Nordmann");
    assert_eq!(patient["created_by_organisation_id"], clinic.as_str());

    let bodies = [
        json!({"kind":"sms","phone":"+4791234567","provenance":"stated_by_patient"}),
        json!({"kind":"postal","lines":["Kari Nordmann","c/o Kirkens Bymisjon","Storgata 1"],"postal_code":"0155","place":"Oslo","country":"NO","provenance":"verified_in_person"}),
        json!({"kind":"relay","organisation_id": service,"provenance":"verified_in_person"}),
        json!({"kind":"outreach","organisation_id": team,"provenance":"verified_in_person"}),
    ];
    for body in bodies {
        let (status, cp) = app
            .post(
                &key,
                &format!("/patients/{pid}/contact-points"),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cp}");
        assert!(cp["id"].is_string());
        assert_eq!(cp["kind"], body["kind"]);
        assert_eq!(cp["status"], "active");
        if body["provenance"] == "verified_in_person" {
            assert!(
                cp["verified_at"].is_string(),
                "verified in person sets verified_at: {cp}"
            );
            assert!(cp["verified_by"].as_str().unwrap().starts_with("api_key:"));
        }
    }
    let (_, cps) = app
        .get(&key, &format!("/patients/{pid}/contact-points"))
        .await;
    let cps = cps["items"].as_array().unwrap();
    assert_eq!(cps.len(), 4);
    let postal = cps.iter().find(|c| c["kind"] == "postal").unwrap();
    assert_eq!(postal["lines"][1], "c/o Kirkens Bymisjon");
    assert_eq!(postal["postal_code"], "0155");

    // Book.
    let starts = "2027-03-03T10:30:00+01:00";
    let (status, booked) = app
        .post(&key, "/appointments", json!({"patient_id": pid, "starts_at": starts, "duration_minutes": 45, "place": "Storgata 36, 2. etasje"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    assert_eq!(booked["status"], "booked");
    let aid = booked["id"].as_str().unwrap().to_owned();
    let notice_ids = booked["notice_ids"].as_array().unwrap();
    assert_eq!(notice_ids.len(), 1);
    let booking_notice = notice_ids[0].as_str().unwrap().to_owned();
    assert_eq!(booked["starts_at"], "2027-03-03T09:30:00Z", "stored in UTC");

    let (status, notice) = app.get(&key, &format!("/notices/{booking_notice}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(notice["status"], "active", "planned at once: {notice}");
    assert_eq!(notice["kind"], "booking");
    assert_eq!(notice["deadline"], "2027-03-03T09:30:00Z");
    let channels: Vec<&str> = notice["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["channel"].as_str().unwrap())
        .collect();
    assert_eq!(
        channels,
        vec!["sms", "letter", "relay", "outreach"],
        "the default chain: {notice}"
    );
    assert!(
        ["queued", "sending", "sent"].contains(&notice["steps"][0]["status"].as_str().unwrap()),
        "{notice}"
    );
    assert_eq!(notice["steps"][1]["status"], "planned");

    // Read it back.
    let (status, got) = app.get(&key, &format!("/appointments/{aid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["place"], "Storgata 36, 2. etasje");
    assert_eq!(got["duration_minutes"], 45);

    // Reschedule: the booking notice is superseded by a reschedule notice.
    let (status, moved) = app
        .post(
            &key,
            &format!("/appointments/{aid}/reschedule"),
            json!({"starts_at": "2027-03-04T12:00:00+01:00", "reason": "behandler syk"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["status"], "rescheduled");
    assert_eq!(moved["starts_at"], "2027-03-04T11:00:00Z");
    assert_eq!(moved["notice_ids"].as_array().unwrap().len(), 2);
    assert_eq!(moved["history"].as_array().unwrap().len(), 2);
    let (_, old) = app.get(&key, &format!("/notices/{booking_notice}")).await;
    assert_eq!(old["status"], "superseded");

    // Cancel.
    let (status, cancelled) = app
        .post(
            &key,
            &format!("/appointments/{aid}/cancel"),
            json!({"reason": "pasienten ba om det"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let last = cancelled["notice_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let (_, n) = app.get(&key, &format!("/notices/{last}")).await;
    assert_eq!(n["kind"], "cancellation");
    assert_eq!(n["status"], "active");

    // A second appointment that starts in two seconds: the patient does not come.
    let soon = (app.now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
    let (status, second) = app
        .post(
            &key,
            "/appointments",
            json!({"patient_id": pid, "starts_at": soon, "place": "Storgata 36"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["duration_minutes"], 30, "default duration");
    let second_id = second["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, missed) = app
        .post(
            &key,
            &format!("/appointments/{second_id}/attendance"),
            json!({"status": "no_show"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{missed}");
    assert_eq!(missed["status"], "no_show");
    let follow_up = missed["notice_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let (_, n) = app.get(&key, &format!("/notices/{follow_up}")).await;
    assert_eq!(
        n["kind"], "no_show_follow_up",
        "a no-show owes the patient a follow-up"
    );
    assert_eq!(n["status"], "active");
    assert_eq!(n["deadline"], serde_json::Value::Null);
    // … and the clinic (the patient has no coordinator) gets a follow-up task.
    let (_, tasks) = app.get(&key, "/tasks").await;
    assert!(
        tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "coordinator_follow_up" && t["notice_id"] == follow_up.as_str()),
        "{tasks}"
    );
    // Attendance is final.
    let (status, _) = app
        .post(
            &key,
            &format!("/appointments/{second_id}/attendance"),
            json!({"status": "attended"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The patient's notices and appointments.
    let (_, notices) = app.get(&key, &format!("/patients/{pid}/notices")).await;
    assert_eq!(notices["items"].as_array().unwrap().len(), 5);
    let (_, appointments) = app
        .get(&key, &format!("/patients/{pid}/appointments"))
        .await;
    let statuses: Vec<&Value> = appointments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, vec!["no_show", "cancelled"], "soonest first");

    // The timeline tells the story in order.
    let (status, timeline) = app.get(&key, &format!("/patients/{pid}/timeline")).await;
    assert_eq!(status, StatusCode::OK);
    // Step events come and go with the worker's timing; the story of the appointment does not.
    let events: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| !e.starts_with("step."))
        .collect();
    let first_plan: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["event"].as_str().unwrap().starts_with("step.")
                && e["subject_id"] == booking_notice.as_str()
        })
        .take(5)
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        first_plan,
        vec![
            "booking notice: sms step planned",
            "booking notice: sms step queued",
            "booking notice: letter step planned",
            "booking notice: relay step planned",
            "booking notice: outreach step planned",
        ],
        "the plan reads in order"
    );
    // People's tasks come and go with the clock (the second appointment is seconds away);
    // the rest reads in a fixed order.
    assert!(events.contains(&"task.created"), "{events:?}");
    let events: Vec<&str> = events
        .into_iter()
        .filter(|e| !e.starts_with("task."))
        .collect();
    assert_eq!(
        events,
        vec![
            "contact_point.added",
            "contact_point.added",
            "contact_point.added",
            "contact_point.added",
            "appointment.booked",
            "notice.created",
            "appointment.rescheduled",
            "notice.created",
            "appointment.cancelled",
            "notice.created",
            "appointment.booked",
            "notice.created",
            "appointment.no_show",
            "notice.created",
        ]
    );
    let text = timeline.to_string();
    assert!(text.contains("behandler syk"), "reasons are shown");
    assert!(
        !text.contains("91234567"),
        "no phone numbers in the timeline"
    );
}

async fn patch_patient_and_coordinator(app: App) {
    let (_, key) = app.add_org("DPS Nord", "clinic").await;
    let pid = app.patient(&key, "Per Hansen").await;
    let (status, coordinator) = app
        .post(
            &key,
            "/staff",
            json!({"name": "Anne Koordinator", "role": "coordinator", "email": "anne@dps.no"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{coordinator}");
    let cid = coordinator["id"].as_str().unwrap();

    let (status, p) = app
        .patch(
            &key,
            &format!("/patients/{pid}"),
            json!({"coordinator_id": cid, "language": "se", "contact_notes": "Ring dagsenteret"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["coordinator_id"], cid);
    assert_eq!(p["language"], "se");
    assert_eq!(p["name"], "Per Hansen", "fields left out stay");
    let (_, p) = app
        .patch(
            &key,
            &format!("/patients/{pid}"),
            json!({"coordinator_id": null}),
        )
        .await;
    assert_eq!(p["coordinator_id"], Value::Null, "null clears");
    assert_eq!(p["language"], "se");
    let (status, body) = app
        .patch(
            &key,
            &format!("/patients/{pid}"),
            json!({"coordinator_id": "01a21512-58c8-7f1e-b763-18be1c458184"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), vec!["coordinator_id"]);
}

async fn search_and_cursor_paging(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let names = [
        "Åse Ørnes",
        "Ola Nordmann",
        "Kari Nordmann",
        "Per 100% Hansen",
        "ola_under",
    ];
    for name in names {
        app.patient(&key, name).await;
    }
    let (_, other) = app
        .post(
            &key,
            "/patients",
            json!({"name": "Kari Nordmann", "birth_year": 1990}),
        )
        .await;
    assert!(other["id"].is_string());

    let search = |q: &str| format!("/patients?q={}", q);
    let (_, found) = app.get(&key, &search("nordmann")).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 3);
    let (_, found) = app.get(&key, &search("%C3%B8RNES")).await; // "øRNES": case-insensitive beyond ASCII
    assert_eq!(found["items"][0]["name"], "Åse Ørnes");
    let (_, found) = app.get(&key, &search("100%25")).await; // a literal %
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, found) = app.get(&key, &search("a_u")).await; // a literal _
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, found) = app.get(&key, "/patients?q=kari&birth_year=1990").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["birth_year"], 1990);

    // Pages of two, following next_cursor until it is gone.
    let mut seen = Vec::new();
    let mut path = "/patients?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&key, &path).await;
        assert_eq!(status, StatusCode::OK);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/patients?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "oldest first, no repeats");
}

crate::scenarios!(
    booking_walkthrough,
    patch_patient_and_coordinator,
    search_and_cursor_paging
);
