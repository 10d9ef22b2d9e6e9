//! Texts in the patient's language: a nynorsk or English speaker gets their SMS in it, a
//! language without templates falls back to bokmål, and the notice records which language and
//! template version its texts came from.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

/// Books an appointment for a new patient with this language; (notice, the SMS sent).
async fn sms_for(app: &App, key: &str, language: &str, phone: &str) -> (serde_json::Value, String) {
    let (status, p) = app
        .post(
            key,
            "/patients",
            json!({"name": "Kari Nordmann", "birth_year": 1979, "language": language}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let pid = p["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            key,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "sms", "phone": phone, "provenance": "stated_by_patient"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, booked) = app
        .post(key, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(7 * 24 * 60), "place": "Storgata 36"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let notice_id = booked["notice_ids"][0].as_str().unwrap().to_owned();
    let text = eventually("the SMS", || async {
        let (_, outbox) = app.get(key, "/outbox").await;
        outbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["notice_id"] == notice_id.as_str())
            .map(|m| m["body"].as_str().unwrap().to_owned())
    })
    .await;
    let (_, notice) = app.get(key, &format!("/notices/{notice_id}")).await;
    (notice, text)
}

async fn texts_follow_the_patients_language(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let (notice, nn) = sms_for(&app, &key, "nn", "+4791000001").await;
    assert!(
        nn.contains("denne meldinga") && nn.contains("veit"),
        "nynorsk: {nn}"
    );
    assert_eq!(notice["template_lang"], "nn");
    assert_eq!(notice["templates_used"]["sms"], "default");
    let (notice, en) = sms_for(&app, &key, "en", "+4791000002").await;
    assert!(en.starts_with("You have an appointment"), "English: {en}");
    assert_eq!(notice["template_lang"], "en");
    // No Finnish templates: bokmål, and the notice says so.
    let (notice, fi) = sms_for(&app, &key, "fi", "+4791000003").await;
    assert!(fi.starts_with("Du har fått time"), "bokmål: {fi}");
    assert_eq!(notice["template_lang"], "nb");
}

crate::scenarios!(texts_follow_the_patients_language);

async fn an_organisation_writes_its_own_texts(app: App) {
    let (org, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let clinic_key = app.add_key(&org, "clinic").await;
    let (status, list) = app.get(&key, "/templates").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let count = list["items"].as_array().unwrap().len();
    assert!(count >= 100, "25 templates x 4 languages: {count}");
    // Checked before saving: an unknown variable by name and line, a revealing word, too long.
    let bad = "Hei {{ patient_name }}!\nSvar {{ code }}.";
    let r = app
        .http
        .put(app.url("/templates/booking.sms/nb"))
        .bearer_auth(&key)
        .json(&json!({"source": bad}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let msg = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("line 1") && msg.contains("patient_name"),
        "{msg}"
    );
    let (status, body) = app
        .post(&key, "/templates/preview", json!({"key": "booking.sms", "lang": "nb", "source": "Time hos psykiatri {{ when }}. Svar {{ code }} eller {{ link }}"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("psykiatri"), "{body}");
    // The clinic's own name is revealing too, once its policy says so.
    let (_, mut policy) = app.get(&key, &format!("/organisations/{org}/policy")).await;
    policy["revealing_words"] = json!(["Poliklinikk Rus Nord"]);
    let r = app
        .http
        .put(app.url(&format!("/organisations/{org}/policy")))
        .bearer_auth(&key)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = app
        .post(&key, "/templates/preview", json!({"key": "reminder.sms", "lang": "nb", "source": "Hilsen Poliklinikk Rus Nord: time {{ when }}. Svar {{ code }} eller {{ link }}"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A good text: saved as version 1, previewed, used for the next notice and recorded on it.
    let good = "Hei! Du har time {{ when }}{% if place %}, {{ place }}{% endif %}. Svar {{ code }} på denne meldingen, eller åpne {{ link }}";
    let r = app
        .http
        .put(app.url("/templates/booking.sms/nb"))
        .bearer_auth(&key)
        .json(&json!({"source": good}))
        .send()
        .await
        .unwrap();
    let (status, saved) = answer(r).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["version"], "1");
    assert_eq!(saved["sms_encoding"], "GSM-7");
    assert!(
        saved["text"]
            .as_str()
            .unwrap()
            .starts_with("Hei! Du har time"),
        "{saved}"
    );
    let (notice, text) = sms_for(&app, &key, "nb", "+4791000004").await;
    assert!(text.starts_with("Hei! Du har time"), "{text}");
    assert_eq!(notice["templates_used"]["sms"], "1");
    // Only admins change texts; anyone who sends notices may read them.
    let r = app
        .http
        .put(app.url("/templates/booking.sms/nb"))
        .bearer_auth(&clinic_key)
        .json(&json!({"source": good}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, detail) = app.get(&clinic_key, "/templates/booking.sms/nb").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["version"], "1");
    assert!(
        detail["default_source"]
            .as_str()
            .unwrap()
            .contains("{{ code }}")
    );
    // Back to the default, kept in the history.
    let r = app
        .http
        .delete(app.url("/templates/booking.sms/nb"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, detail) = app.get(&key, "/templates/booking.sms/nb").await;
    assert_eq!(detail["version"], "default");
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    let (status, body) = app.get(&key, "/templates/booking.fax/nb").await;
    assert_eq!(
        (status, error_fields(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["key".to_owned()])
    );
}

crate::scenarios!(an_organisation_writes_its_own_texts);
