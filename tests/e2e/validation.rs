//! Every class of input error the API knows, each answered as it should be: a 422
//! `application/problem+json` of type `/problems/validation` naming the field at fault (a body
//! that is not JSON is 400, a body that is not declared JSON is 415, a clash with stored state is
//! 409) — and after every refused request nothing was stored: the patient list, the contact
//! points and the appointments hold exactly what the accepted requests made.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Asserts a 422 validation problem whose `errors[].field` are exactly `fields` (in any order).
#[track_caller]
fn assert_invalid(answer: &(StatusCode, Value), fields: &[&str]) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["type"], "/problems/validation", "{body}");
    let mut got = error_fields(body);
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "{body}");
    for e in body["errors"].as_array().unwrap() {
        assert!(
            !e["message"].as_str().unwrap_or_default().is_empty(),
            "every field error says what is wrong: {body}"
        );
    }
}

/// The message of the error about `field`.
fn message_for(body: &Value, field: &str) -> String {
    body["errors"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["field"] == field))
        .and_then(|e| e["message"].as_str())
        .unwrap_or_else(|| panic!("no error on {field}: {body}"))
        .to_owned()
}

#[track_caller]
fn assert_problem(answer: &(StatusCode, Value), status: StatusCode, kind: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["type"], kind, "{}", answer.1);
}

/// A POST with a raw body and an optional content type.
async fn post_raw(
    app: &App,
    key: &str,
    path: &str,
    content_type: Option<&str>,
    body: &'static str,
) -> (StatusCode, Value) {
    let mut req = app.http.post(app.url(path)).bearer_auth(key).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    answer(req.send().await.unwrap()).await
}

/// The names of the patients the key's organisation sees.
async fn patient_names(app: &App, key: &str) -> Vec<String> {
    let (status, list) = app.get(key, "/patients").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The patient's contact points as (kind, status, phone or postal code or organisation).
async fn contact_points(app: &App, key: &str, pid: &str) -> Vec<(String, String, String)> {
    let (status, list) = app
        .get(key, &format!("/patients/{pid}/contact-points"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let what = c["phone"]
                .as_str()
                .or(c["postal_code"].as_str())
                .or(c["organisation_id"].as_str())
                .unwrap_or_default();
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
                what.to_owned(),
            )
        })
        .collect()
}

fn cp(kind: &str, status: &str, what: &str) -> (String, String, String) {
    (kind.to_owned(), status.to_owned(), what.to_owned())
}

async fn patient_fields_are_checked(app: App) {
    let (_, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let ok = |extra: Value| {
        let mut body = json!({"name": "Ola Nordmann", "birth_year": 1979, "language": "nb"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };

    let refused: Vec<(Value, &[&str])> = vec![
        (ok(json!({"name": ""})), &["name"]),
        (ok(json!({"name": "   "})), &["name"]),
        (ok(json!({"birth_year": null})), &["birth_year"]),
        (ok(json!({"birth_year": 1800})), &["birth_year"]),
        (ok(json!({"birth_year": 2999})), &["birth_year"]),
        (ok(json!({"language": "NB"})), &["language"]),
        (ok(json!({"language": "norsk"})), &["language"]),
        (ok(json!({"national_id": "01010750161"})), &["national_id"]),
        (ok(json!({"national_id": "12345678901"})), &["national_id"]),
        (ok(json!({"national_id": "0101075016"})), &["national_id"]),
        (ok(json!({"colour": "blue"})), &["colour"]),
        (ok(json!({"birth_year": "1979"})), &["birth_year"]),
        (ok(json!({"name": 42})), &["name"]),
        (
            ok(json!({"birth_year": null, "birth_date": "2999-01-01"})),
            &["birth_year", "birth_date"],
        ),
        (
            ok(json!({"birth_date": "1980-05-17"})),
            &["birth_date"], // does not match birth_year 1979
        ),
        (ok(json!({"birth_date": "17.05.1979"})), &["birth_date"]),
        (
            ok(json!({"coordinator_id": "0190a1b2-0000-7000-8000-000000000000"})),
            &["coordinator_id"],
        ),
        (
            ok(json!({"name": "", "language": "NB", "national_id": "01010750161"})),
            &["name", "language", "national_id"],
        ),
    ];
    for (body, fields) in &refused {
        let answer = app.post(&key, "/patients", body.clone()).await;
        assert_invalid(&answer, fields);
    }

    // A birth date in the future, given with its year, is named as such.
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(2)).date_naive();
    let answer = app
        .post(
            &key,
            "/patients",
            ok(json!({"birth_date": tomorrow.to_string(), "birth_year": null})),
        )
        .await;
    assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.1);
    assert!(
        error_fields(&answer.1).contains(&"birth_date".to_owned()),
        "{}",
        answer.1
    );
    assert!(
        message_for(&answer.1, "birth_date").contains("future"),
        "{}",
        answer.1
    );

    // The missing field is named and the message says what to send.
    let (_, body) = app
        .post(&key, "/patients", json!({"birth_year": 1979}))
        .await;
    assert_eq!(error_fields(&body), ["name"], "{body}");

    // A body that is not JSON is a bad request; a body not declared as JSON is refused.
    let answer = post_raw(
        &app,
        &key,
        "/patients",
        Some("application/json"),
        "{\"name\": \"Ola",
    )
    .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "/problems/bad-request");
    let answer = post_raw(&app, &key, "/patients", Some("application/json"), "").await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "/problems/bad-request");
    let answer = post_raw(
        &app,
        &key,
        "/patients",
        Some("text/plain"),
        r#"{"name":"Ola Nordmann","birth_year":1979}"#,
    )
    .await;
    assert_problem(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "/problems/unsupported-media-type",
    );
    let answer = post_raw(
        &app,
        &key,
        "/patients",
        None,
        r#"{"name":"Ola Nordmann","birth_year":1979}"#,
    )
    .await;
    assert_problem(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "/problems/unsupported-media-type",
    );

    assert!(
        patient_names(&app, &key).await.is_empty(),
        "no refused request stored a patient"
    );

    // Valid numbers: a fødselsnummer and a D-number; a birth date alone gives the year.
    let (status, p) = app
        .post(
            &key,
            "/patients",
            json!({"name": "Per Hansen", "birth_year": 2007, "national_id": "01010750160"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["national_id"], "01010750160");
    assert_eq!(p["language"], "nb", "the language defaults to bokmål");
    let (status, p) = app
        .post(
            &key,
            "/patients",
            json!({"name": "Jonas Berg", "birth_date": "1985-03-14", "national_id": " 41010710012 ", "language": "se"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["birth_year"], 1985);
    assert_eq!(
        p["national_id"], "41010710012",
        "the national id is trimmed"
    );

    // The same national id twice in one organisation is a conflict, and stores nothing.
    let answer = app
        .post(
            &key,
            "/patients",
            json!({"name": "Per H.", "birth_year": 2007, "national_id": "01010750160"}),
        )
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");

    // Another organisation may register the same person.
    let (_, other) = app.add_org("DPS Vest", "clinic").await;
    let (status, body) = app
        .post(
            &other,
            "/patients",
            json!({"name": "Per Hansen", "birth_year": 2007, "national_id": "01010750160"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A PATCH is checked by the same rules and changes nothing when refused.
    let pid = p["id"].as_str().unwrap();
    let answer = app
        .patch(
            &key,
            &format!("/patients/{pid}"),
            json!({"name": "", "national_id": "12345678901"}),
        )
        .await;
    assert_invalid(&answer, &["name", "national_id"]);
    let answer = app
        .patch(&key, &format!("/patients/{pid}"), json!({"colour": "red"}))
        .await;
    assert_invalid(&answer, &["colour"]);
    let (status, again) = app.get(&key, &format!("/patients/{pid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["name"], "Jonas Berg");
    assert_eq!(again["national_id"], "41010710012");

    let mut names = patient_names(&app, &key).await;
    names.sort();
    assert_eq!(names, ["Jonas Berg", "Per Hansen"]);
}

async fn phone_numbers_are_checked(app: App) {
    let (_, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let pid = app.patient(&key, "Kari Nordmann").await;
    let path = format!("/patients/{pid}/contact-points");
    let sms =
        |phone: &str| json!({"kind": "sms", "phone": phone, "provenance": "stated_by_patient"});

    for bad in ["hello", "1234", "", "   "] {
        let answer = app.post(&key, &path, sms(bad)).await;
        assert_invalid(&answer, &["phone"]);
    }
    let answer = app
        .post(
            &key,
            &path,
            json!({"kind": "sms", "provenance": "stated_by_patient"}),
        )
        .await;
    assert_invalid(&answer, &["phone"]);

    let answer = app.post(&key, &path, sms("22 12 34 56")).await;
    assert_invalid(&answer, &["phone"]);
    assert!(
        message_for(&answer.1, "phone").contains("mobile"),
        "a landline is refused because SMS needs a mobile: {}",
        answer.1
    );
    let answer = app.post(&key, &path, sms("+4759123456789")).await;
    assert_invalid(&answer, &["phone"]);

    // Accepted: a Norwegian mobile in local spelling (stored in E.164) and a Swedish mobile.
    let (status, first) = app.post(&key, &path, sms("912 34 567")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["phone"], "+4791234567");
    assert_eq!(first["status"], "active");
    let (status, swedish) = app.post(&key, &path, sms("+46701234567")).await;
    assert_eq!(status, StatusCode::CREATED, "{swedish}");
    assert_eq!(swedish["phone"], "+46701234567");

    // The same number again, in any spelling, is a conflict while the first is in use.
    for spelling in ["+4791234567", "0047 912 34 567"] {
        let answer = app.post(&key, &path, sms(spelling)).await;
        assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");
    }

    // A next of kin may be a landline, but only with consent.
    let kin = json!({"kind": "next_of_kin", "phone": "22 12 34 56", "contact_name": "Anne Nordmann",
                     "relation": "sister", "provenance": "stated_by_patient"});
    let answer = app.post(&key, &path, kin.clone()).await;
    assert_invalid(&answer, &["consent_given_by", "consent_recorded"]);
    let mut with_consent = kin.clone();
    with_consent["consent_recorded"] = json!(false);
    with_consent["consent_given_by"] = json!("the patient, to nurse Kari");
    assert_invalid(
        &app.post(&key, &path, with_consent.clone()).await,
        &["consent_recorded"],
    );
    let mut no_name = kin.clone();
    no_name.as_object_mut().unwrap().remove("contact_name");
    no_name["consent_recorded"] = json!(true);
    no_name["consent_given_by"] = json!("the patient");
    assert_invalid(&app.post(&key, &path, no_name).await, &["contact_name"]);
    with_consent["consent_recorded"] = json!(true);
    let (status, kin_cp) = app.post(&key, &path, with_consent).await;
    assert_eq!(status, StatusCode::CREATED, "{kin_cp}");
    assert_eq!(kin_cp["phone"], "+4722123456");
    assert_eq!(kin_cp["consent_recorded"], true);
    assert_eq!(kin_cp["consent_given_by"], "the patient, to nurse Kari");
    assert_eq!(kin_cp["consent_scope"], "ask the patient to call us");
    // Consent withdrawn: retired at once; an SMS contact point has no consent to withdraw.
    let kin_id = kin_cp["id"].as_str().unwrap();
    let (status, withdrawn) = app
        .post(
            &key,
            &format!("{path}/{kin_id}/withdraw-consent"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(withdrawn["status"], "retired");
    let sms_id = first["id"].as_str().unwrap();
    let answer = app
        .post(
            &key,
            &format!("{path}/{sms_id}/withdraw-consent"),
            json!({}),
        )
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");

    // Retiring needs a reason; then the number may be added again; retiring twice is a conflict.
    let cp_id = first["id"].as_str().unwrap();
    let retire = format!("{path}/{cp_id}/retire");
    assert_invalid(
        &app.post(&key, &retire, json!({"reason": ""})).await,
        &["reason"],
    );
    assert_invalid(
        &app.post(&key, &retire, json!({"reason": "  "})).await,
        &["reason"],
    );
    assert_invalid(&app.post(&key, &retire, json!({})).await, &["reason"]);
    let (status, retired) = app
        .post(
            &key,
            &retire,
            json!({"reason": "the patient changed number"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{retired}");
    assert_eq!(retired["status"], "retired");
    assert_eq!(retired["retired_reason"], "the patient changed number");
    let answer = app.post(&key, &retire, json!({"reason": "again"})).await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");
    let unknown = format!("{path}/0190a1b2-0000-7000-8000-000000000000/retire");
    let answer = app.post(&key, &unknown, json!({"reason": "gone"})).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "/problems/not-found");
    let (status, readded) = app.post(&key, &path, sms("91234567")).await;
    assert_eq!(status, StatusCode::CREATED, "{readded}");
    assert_eq!(readded["phone"], "+4791234567");
    assert_ne!(readded["id"], first["id"]);

    assert_eq!(
        contact_points(&app, &key, &pid).await,
        [
            cp("sms", "retired", "+4791234567"),
            cp("sms", "active", "+46701234567"),
            cp("next_of_kin", "retired", "+4722123456"),
            cp("sms", "active", "+4791234567"),
        ]
    );
}

async fn contact_point_kinds_are_checked(app: App) {
    let (clinic, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let (service, _) = app
        .add_org("Dagsenteret Vaterland", "low_threshold_service")
        .await;
    let (team, _) = app.add_org("FACT Oslo sentrum", "outreach_team").await;
    let pid = app.patient(&key, "Kari Nordmann").await;
    let path = format!("/patients/{pid}/contact-points");
    let postal = |extra: Value| {
        let mut body = json!({"kind": "postal", "lines": ["Kari Nordmann", "c/o Kirkens Bymisjon", "Storgata 1"],
                              "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let long_line = "x".repeat(61);
    let past = in_minutes(-60);

    let refused: Vec<(Value, &[&str])> = vec![
        (postal(json!({"postal_code": "155"})), &["postal_code"]),
        (postal(json!({"postal_code": "01555"})), &["postal_code"]),
        (postal(json!({"postal_code": "O155"})), &["postal_code"]),
        (postal(json!({"postal_code": null})), &["postal_code"]),
        (postal(json!({"lines": []})), &["lines"]),
        (postal(json!({"lines": null})), &["lines"]),
        (
            postal(json!({"lines": ["a", "b", "c", "d", "e", "f"]})),
            &["lines"],
        ),
        (
            postal(json!({"lines": [long_line, "Storgata 1"]})),
            &["lines[0]"],
        ),
        (
            postal(json!({"lines": ["Kari Nordmann", ""]})),
            &["lines[1]"],
        ),
        (postal(json!({"place": null})), &["place"]),
        (postal(json!({"place": " "})), &["place"]),
        (postal(json!({"country": "Norge"})), &["country"]),
        (postal(json!({"phone": "+4791234567"})), &["phone"]),
        (
            postal(json!({"organisation_id": service})),
            &["organisation_id"],
        ),
        (postal(json!({"expires_at": past})), &["expires_at"]),
        (postal(json!({"provenance": "hearsay"})), &["provenance"]),
        (postal(json!({"provenance": null})), &["provenance"]),
        (postal(json!({"kind": "carrier_pigeon"})), &["kind"]),
        (postal(json!({"colour": "red"})), &["colour"]),
        (postal(json!({"expires_at": "next week"})), &["expires_at"]),
        (
            postal(json!({"postal_code": "155", "lines": [], "place": null})),
            &["postal_code", "lines", "place"],
        ),
        (
            json!({"kind": "relay", "organisation_id": clinic, "provenance": "verified_in_person"}),
            &["organisation_id"],
        ),
        (
            json!({"kind": "relay", "organisation_id": team, "provenance": "verified_in_person"}),
            &["organisation_id"],
        ),
        (
            json!({"kind": "relay", "organisation_id": "0190a1b2-0000-7000-8000-000000000000", "provenance": "verified_in_person"}),
            &["organisation_id"],
        ),
        (
            json!({"kind": "relay", "organisation_id": "not-an-id", "provenance": "verified_in_person"}),
            &["organisation_id"],
        ),
        (
            json!({"kind": "relay", "provenance": "verified_in_person"}),
            &["organisation_id"],
        ),
        (
            // A relay contact point may carry a line to call through; it must be a number.
            json!({"kind": "relay", "organisation_id": service, "phone": "12", "provenance": "verified_in_person"}),
            &["phone"],
        ),
        (
            json!({"kind": "outreach", "organisation_id": service, "provenance": "verified_in_person"}),
            &["organisation_id"],
        ),
        (
            json!({"kind": "sms", "phone": "+4791234567", "contact_name": "Anne", "provenance": "stated_by_patient"}),
            &["contact_name"],
        ),
        (
            json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient", "verified_at": in_minutes(24 * 60)}),
            &["verified_at"],
        ),
    ];
    for (body, fields) in &refused {
        let answer = app.post(&key, &path, body.clone()).await;
        assert_invalid(&answer, fields);
    }
    let answer = app
        .post(
            &key,
            &path,
            json!({"kind": "relay", "organisation_id": clinic, "provenance": "verified_in_person"}),
        )
        .await;
    assert!(
        message_for(&answer.1, "organisation_id").contains("low_threshold_service"),
        "the message says which kind of organisation fits: {}",
        answer.1
    );
    let answer = post_raw(&app, &key, &path, Some("application/json"), "[1,2").await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "/problems/bad-request");

    assert!(
        contact_points(&app, &key, &pid).await.is_empty(),
        "no refused request stored a contact point"
    );
    let (status, shares) = app.get(&key, &format!("/patients/{pid}/shares")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        shares["items"].as_array().unwrap().len(),
        1,
        "a refused relay contact point shared the patient with nobody: {shares}"
    );

    // The accepted forms.
    let (status, letter) = app
        .post(
            &key,
            &path,
            postal(json!({"expires_at": in_minutes(60 * 24 * 90)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{letter}");
    assert_eq!(letter["place"], "OSLO");
    assert_eq!(letter["country"], "NO");
    assert!(letter["verified_at"].is_string(), "{letter}");
    let (status, relay) = app
        .post(
            &key,
            &path,
            json!({"kind": "relay", "organisation_id": service, "provenance": "verified_in_person"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{relay}");
    // The same address or relay again is a conflict.
    let answer = app.post(&key, &path, postal(json!({}))).await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");
    let answer = app
        .post(
            &key,
            &path,
            json!({"kind": "relay", "organisation_id": service, "provenance": "stated_by_patient"}),
        )
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");

    assert_eq!(
        contact_points(&app, &key, &pid).await,
        [
            cp("postal", "active", "0155"),
            cp("relay", "active", &service)
        ]
    );
}

async fn appointment_fields_are_checked(app: App) {
    let (_, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let pid = app.patient(&key, "Kari Nordmann").await;
    let tomorrow = in_minutes(24 * 60);
    let book = |extra: Value| {
        let mut body = json!({"patient_id": pid, "starts_at": tomorrow, "duration_minutes": 30,
                              "place": "Storgata 1, 2. etasje"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };

    let refused: Vec<(Value, &[&str])> = vec![
        (book(json!({"starts_at": in_minutes(-60)})), &["starts_at"]),
        (
            book(json!({"starts_at": in_minutes(60 * 24 * 365 * 3)})),
            &["starts_at"],
        ),
        (
            book(json!({"starts_at": "tomorrow at ten"})),
            &["starts_at"],
        ),
        (
            book(json!({"starts_at": "2026-12-03T10:30:00"})),
            &["starts_at"],
        ),
        (book(json!({"starts_at": null})), &["starts_at"]),
        (book(json!({"duration_minutes": 0})), &["duration_minutes"]),
        (
            book(json!({"duration_minutes": 1000})),
            &["duration_minutes"],
        ),
        (
            book(json!({"duration_minutes": -30})),
            &["duration_minutes"],
        ),
        (book(json!({"place": ""})), &["place"]),
        (book(json!({"place": "   "})), &["place"]),
        (book(json!({"kind": "telepathy"})), &["kind"]),
        (book(json!({"patient_id": null})), &["patient_id"]),
        (book(json!({"colour": "red"})), &["colour"]),
        (
            book(json!({"starts_at": in_minutes(-60), "duration_minutes": 0, "place": ""})),
            &["starts_at", "duration_minutes", "place"],
        ),
    ];
    for (body, fields) in &refused {
        let answer = app.post(&key, "/appointments", body.clone()).await;
        assert_invalid(&answer, fields);
    }
    let (_, body) = app
        .post(
            &key,
            "/appointments",
            book(json!({"starts_at": "tomorrow at ten"})),
        )
        .await;
    assert!(
        message_for(&body, "starts_at").contains("RFC 3339"),
        "the message shows the expected form: {body}"
    );
    let (_, body) = app
        .post(
            &key,
            "/appointments",
            book(json!({"starts_at": "2026-12-03T10:30:00"})),
        )
        .await;
    assert!(
        message_for(&body, "starts_at").contains("RFC 3339"),
        "{body}"
    );

    let answer = app
        .post(
            &key,
            "/appointments",
            book(json!({"patient_id": "0190a1b2-0000-7000-8000-000000000000"})),
        )
        .await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "/problems/not-found");

    let list = format!("/patients/{pid}/appointments");
    let (status, body) = app.get(&key, &list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"], json!([]), "no refused booking was stored");
    let (_, body) = app.get(&key, &format!("/patients/{pid}/notices")).await;
    assert_eq!(body["items"], json!([]), "no refused booking owes a notice");

    // Two valid bookings; the second has the default duration and kind.
    let (status, a) = app.post(&key, "/appointments", book(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let aid = a["id"].as_str().unwrap().to_owned();
    let (status, b) = app
        .post(
            &key,
            "/appointments",
            book(json!({"starts_at": in_minutes(48 * 60), "duration_minutes": null})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(b["duration_minutes"], 30);
    assert_eq!(b["kind"], "in_person");
    let bid = b["id"].as_str().unwrap().to_owned();

    // Rescheduling is checked like booking and changes nothing when refused.
    let reschedule = format!("/appointments/{aid}/reschedule");
    let answer = app
        .post(&key, &reschedule, json!({"starts_at": in_minutes(-30)}))
        .await;
    assert_invalid(&answer, &["starts_at"]);
    let answer = app
        .post(
            &key,
            &reschedule,
            json!({"starts_at": in_minutes(72 * 60), "duration_minutes": 0, "place": ""}),
        )
        .await;
    assert_invalid(&answer, &["duration_minutes", "place"]);
    let answer = app.post(&key, &reschedule, json!({})).await;
    assert_invalid(&answer, &["starts_at"]);
    let (status, same) = app.get(&key, &format!("/appointments/{aid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["status"], "booked");
    assert_eq!(same["starts_at"], a["starts_at"]);
    assert_eq!(same["history"].as_array().unwrap().len(), 1, "{same}");
    assert_eq!(same["notice_ids"], a["notice_ids"], "{same}");

    // Attendance: only attended / no_show, and not before the time has come.
    let attendance = format!("/appointments/{aid}/attendance");
    let answer = app
        .post(&key, &attendance, json!({"status": "maybe"}))
        .await;
    assert_invalid(&answer, &["status"]);
    let answer = app
        .post(&key, &attendance, json!({"status": "booked"}))
        .await;
    assert_invalid(&answer, &["status"]);
    let answer = app.post(&key, &attendance, json!({})).await;
    assert_invalid(&answer, &["status"]);
    let answer = app
        .post(&key, &attendance, json!({"status": "no_show"}))
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");
    let answer = app
        .post(&key, &attendance, json!({"status": "attended"}))
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");

    // Cancelling twice is a conflict, and a cancelled appointment cannot be moved.
    let cancel = format!("/appointments/{bid}/cancel");
    let answer = app.post(&key, &cancel, json!({"colour": "red"})).await;
    assert_invalid(&answer, &["colour"]);
    let (status, cancelled) = app
        .post(&key, &cancel, json!({"reason": "the patient asked"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let answer = app.post(&key, &cancel, json!({})).await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");
    let answer = app
        .post(
            &key,
            &format!("/appointments/{bid}/reschedule"),
            json!({"starts_at": in_minutes(96 * 60)}),
        )
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "/problems/conflict");
    let answer = app
        .post(
            &key,
            "/appointments/0190a1b2-0000-7000-8000-000000000000/cancel",
            json!({}),
        )
        .await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "/problems/not-found");

    let (_, body) = app.get(&key, &list).await;
    let got: Vec<(&str, &str)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [(aid.as_str(), "booked"), (bid.as_str(), "cancelled")]);
    let (_, body) = app.get(&key, &format!("/patients/{pid}/notices")).await;
    let mut kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["booking", "booking", "cancellation"],
        "only the accepted changes owe notices: {body}"
    );
}

async fn query_parameters_are_checked(app: App) {
    let (_, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    app.patient(&key, "Kari Nordmann").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("cursor=garbage", "cursor"),
        ("birth_year=nineteen", "birth_year"),
        ("colour=red", "colour"),
    ] {
        let answer = app.get(&key, &format!("/patients?{query}")).await;
        assert_invalid(&answer, &[field]);
    }
    for query in ["limit=1", "limit=200", "q=kari", "birth_year=1979"] {
        let (status, body) = app.get(&key, &format!("/patients?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(
            body["items"].as_array().unwrap().len(),
            1,
            "{query}: {body}"
        );
    }
    // An id that is not a UUID names nothing.
    let answer = app.get(&key, "/patients/not-a-uuid").await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "/problems/not-found");
}

crate::scenarios!(
    patient_fields_are_checked,
    phone_numbers_are_checked,
    contact_point_kinds_are_checked,
    appointment_fields_are_checked,
    query_parameters_are_checked,
);
