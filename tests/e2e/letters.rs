//! The print room through the API: "print now" makes a batch, the batch downloads as one PDF
//! with a manifest, it is marked printed and posted (which starts each letter's window), and a
//! returned letter, recorded by the reference printed on it, escalates the notice at once.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

async fn letters_from_the_print_room(app: App) {
    let (org, admin) = app.add_org("Poliklinikk", "clinic").await;
    let (team, _) = app.add_org("FACT", "outreach_team").await;
    let print_key = app.add_key(&org, "print").await;
    let clinic_key = app.add_key(&org, "clinic").await;
    let pid = app.patient(&admin, "Kari Nordmann").await;
    for body in [
        json!({"kind": "postal", "lines": ["Kari Nordmann", "c/o Kirkens Bymisjon", "Storgata 1"], "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"}),
        json!({"kind": "outreach", "organisation_id": team, "provenance": "verified_in_person"}),
    ] {
        let (status, cp) = app
            .post(&admin, &format!("/patients/{pid}/contact-points"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{cp}");
    }
    let (_, booked) = app
        .post(&admin, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(30 * 24 * 60), "place": "Storgata 36"}))
        .await;
    let notice = booked["notice_ids"][0].as_str().unwrap().to_owned();

    // Clinic staff do not run the print room.
    let (status, _) = app.get(&clinic_key, "/print-batches").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, list) = app.get(&print_key, "/print-batches").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([]));
    let (status, made) = app.post(&print_key, "/print-batches", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let batch = made["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(made["items"][0]["letters"], 1);
    let (status, again) = app.post(&print_key, "/print-batches", json!({})).await;
    assert_eq!(status, StatusCode::OK, "nothing left to print: no batch");
    assert_eq!(again["items"], json!([]));

    let (_, manifest) = app
        .get(&print_key, &format!("/print-batches/{batch}"))
        .await;
    let letter = &manifest["letters"][0];
    assert_eq!(letter["notice_id"], notice.as_str());
    assert_eq!(letter["postal_code"], "0155");
    let reference = letter["reference"].as_str().unwrap().to_owned();
    assert!(reference.starts_with("BR-"));

    let csv = app
        .http
        .get(app.url(&format!("/print-batches/{batch}/manifest.csv")))
        .bearer_auth(&print_key)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let disposition = csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        !disposition.contains("Kari"),
        "no names in file names: {disposition}"
    );
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("position,letter_id,reference,notice_id,postal_code,pages,status\n"));
    assert!(csv.contains(&reference));
    assert!(!csv.contains("Kari"), "no names in the manifest");

    let pdf = app
        .http
        .get(app.url(&format!("/print-batches/{batch}/letters.pdf")))
        .bearer_auth(&print_key)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let file = app.db.dir().join("batch.pdf");
    std::fs::write(&file, &bytes).unwrap();
    if let Ok(out) = std::process::Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("c/o Kirkens Bymisjon"), "{text}");
        assert!(text.contains(&reference), "{text}");
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("pdftotext is missing in CI");
    }
    let (_, log) = app.get(&admin, &format!("/patients/{pid}/audit")).await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "letter.download"),
        "downloads are audited"
    );

    let (status, _) = app
        .post(
            &print_key,
            &format!("/print-batches/{batch}/printed"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            &print_key,
            &format!("/print-batches/{batch}/printed"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let tomorrow = (app.now() + chrono::TimeDelta::days(1))
        .date_naive()
        .to_string();
    let (status, problem) = app
        .post(
            &print_key,
            &format!("/print-batches/{batch}/posted"),
            json!({"posted_on": tomorrow}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, posted) = app
        .post(
            &print_key,
            &format!("/print-batches/{batch}/posted"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    assert_eq!(posted["status"], "posted");
    let (_, view) = app.get(&admin, &format!("/notices/{notice}")).await;
    assert_eq!(view["steps"][1]["channel"], "letter");
    assert_eq!(view["steps"][1]["status"], "sent", "{view}");
    assert!(view["steps"][1]["window_ends_at"].is_string());

    // Another organisation's print room cannot touch it.
    let (other, _) = app.add_org("Annen klinikk", "clinic").await;
    let other_print = app.add_key(&other, "print").await;
    let (status, _) = app
        .get(&other_print, &format!("/print-batches/{batch}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post(
            &other_print,
            "/letters/returned",
            json!({"reference": reference, "reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A reprint of the one letter.
    let one = app
        .http
        .get(app.url(&format!("/letters/{reference}/pdf")))
        .bearer_auth(&print_key)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    assert!(one.bytes().await.unwrap().starts_with(b"%PDF-"));
    let (status, _) = app.get(&print_key, "/letters/BR-0000000000/pdf").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // It comes back: typed in lower case at the desk.
    let (status, problem) = app
        .post(
            &print_key,
            "/letters/returned",
            json!({"reference": reference, "reason": " "}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&problem), vec!["reason"]);
    let (status, back) = app
        .post(
            &print_key,
            "/letters/returned",
            json!({"reference": reference.to_lowercase(), "reason": "ukjent adressat"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["status"], "returned");
    let (_, view) = app.get(&admin, &format!("/notices/{notice}")).await;
    assert_eq!(view["steps"][1]["status"], "failed");
    assert_eq!(view["steps"][1]["reason"], "returned_letter");
    assert!(
        ["queued", "sending", "sent"].contains(&view["steps"][3]["status"].as_str().unwrap()),
        "escalated at once: {view}"
    );
    let (_, cps) = app
        .get(&admin, &format!("/patients/{pid}/contact-points"))
        .await;
    let address = cps["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "postal")
        .unwrap();
    assert_eq!(address["status"], "failed");
    let (_, tasks) = app.get(&admin, "/tasks").await;
    assert!(
        tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "coordinator_follow_up" && t["notice_id"] == notice.as_str())
    );
}

async fn the_print_room_on_the_command_line(app: App) {
    let (org, admin) = app.add_org("Poliklinikk", "clinic").await;
    let pid = app.patient(&admin, "Kari Nordmann").await;
    let address = json!({"kind": "postal", "lines": ["Kari Nordmann", "Storgata 1"], "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"});
    app.post(&admin, &format!("/patients/{pid}/contact-points"), address)
        .await;
    let (_, booked) = app
        .post(&admin, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(30 * 24 * 60), "place": "Storgata 36"}))
        .await;
    let notice = booked["notice_ids"][0].as_str().unwrap().to_owned();

    let out = app.cli(&["print", "now", "--org", &org]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let batch: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    let batch = batch["id"].as_str().unwrap().to_owned();
    let out = app.cli(&["print", "batches", "--org", &org]).await;
    assert_eq!(out.stdout.lines().count(), 1);
    let pdf = app.db.dir().join("batch.pdf");
    let out = app
        .cli(&[
            "print",
            "pdf",
            "--batch",
            &batch,
            "-o",
            pdf.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let out = app.cli(&["print", "posted", "--batch", &batch]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = app.cli(&["print", "posted", "--batch", &batch]).await;
    assert_eq!(out.code, 1, "posted once");
    let (_, manifest) = app.get(&admin, &format!("/print-batches/{batch}")).await;
    let reference = manifest["letters"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = app
        .cli(&[
            "print",
            "returned",
            "--reference",
            "BR-0000000000",
            "--reason",
            "flyttet",
        ])
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--reference"), "{}", out.stderr);
    let out = app
        .cli(&[
            "print",
            "returned",
            "--reference",
            &reference,
            "--reason",
            "flyttet",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, view) = app.get(&admin, &format!("/notices/{notice}")).await;
    assert_eq!(view["steps"][1]["status"], "failed");
}

crate::scenarios!(
    letters_from_the_print_room,
    the_print_room_on_the_command_line
);
