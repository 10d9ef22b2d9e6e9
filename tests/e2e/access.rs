//! Who may do what: authentication (401 with `WWW-Authenticate: Bearer`, the open operational
//! endpoints), organisation isolation (another organisation's patient, appointment or notice is
//! "not found", and refused changes change nothing), the roles of API keys (403), sharing a
//! patient with a low-threshold service through a relay contact point (which shows the service
//! its relay requests, never the patient's record), and the audit log of reads and refusals
//! (which never holds the patient's data). That the audit table refuses UPDATE and DELETE is
//! enforced by database triggers and cannot be reached over HTTP.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const UNKNOWN_ID: &str = "0190a1b2-0000-7000-8000-000000000000";

#[track_caller]
fn assert_problem(answer: &(StatusCode, Value), status: StatusCode, kind: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["type"], kind, "{}", answer.1);
}

#[track_caller]
fn assert_not_found(answer: &(StatusCode, Value)) {
    assert_problem(answer, StatusCode::NOT_FOUND, "/problems/not-found");
}

#[track_caller]
fn assert_forbidden(answer: &(StatusCode, Value)) {
    assert_problem(answer, StatusCode::FORBIDDEN, "/problems/forbidden");
}

/// `admin add-org` through the CLI: (organisation id, admin key, admin key id).
async fn org_with_key_id(app: &App, name: &str, kind: &str) -> (String, String, String) {
    let out = app
        .cli(&["admin", "add-org", "--name", name, "--kind", kind])
        .await;
    assert_eq!(out.code, 0, "add-org failed: {}", out.stderr);
    let v = out.json();
    (
        v["organisation_id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
        v["key_id"].as_str().unwrap().to_owned(),
    )
}

/// `admin key create` through the CLI: (key, key id).
async fn key_with_id(app: &App, org: &str, role: &str) -> (String, String) {
    let out = app
        .cli(&["admin", "key", "create", "--org", org, "--role", role])
        .await;
    assert_eq!(out.code, 0, "key create failed: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["role"], role, "{v}");
    (
        v["api_key"].as_str().unwrap().to_owned(),
        v["key_id"].as_str().unwrap().to_owned(),
    )
}

/// The ids of the patients the key's organisation sees.
async fn patient_ids(app: &App, key: &str) -> Vec<String> {
    let (status, list) = app.get(key, "/patients").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A patient of `key`'s clinic with an SMS contact point and a booked appointment:
/// (patient id, contact point id, appointment id, notice id).
async fn patient_with_booking(app: &App, key: &str) -> (String, String, String, String) {
    let pid = app.patient(key, "Kari Nordmann").await;
    let (status, cp) = app
        .post(
            key,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cp}");
    let (status, a) = app
        .post(
            key,
            "/appointments",
            json!({"patient_id": pid, "starts_at": in_minutes(24 * 60), "place": "Storgata 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let notice = a["notice_ids"][0]
        .as_str()
        .unwrap_or_else(|| panic!("the booking owes a notice: {a}"))
        .to_owned();
    (
        pid,
        cp["id"].as_str().unwrap().to_owned(),
        a["id"].as_str().unwrap().to_owned(),
        notice,
    )
}

async fn requests_need_a_valid_key(app: App) {
    let (_, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let pid = app.patient(&key, "Kari Nordmann").await;

    let zeros = format!("Bearer kv_{}", "0".repeat(64));
    let garbage = "Bearer !!not-a-key!!".to_owned();
    let lookalike = format!("Bearer {}x", key);
    for auth in [
        None,
        Some(zeros.as_str()),
        Some(garbage.as_str()),
        Some("Bearer "),
        Some("Bearer"),
        Some(lookalike.as_str()),
        Some("Basic dXNlcjpwYXNz"),
        Some(key.as_str()), // the key without the "Bearer " scheme
    ] {
        for path in [
            "/patients".to_owned(),
            format!("/patients/{pid}"),
            format!("/patients/{UNKNOWN_ID}"),
            "/organisations".to_owned(),
        ] {
            let mut req = app.http.get(app.url(&path));
            if let Some(auth) = auth {
                req = req.header("authorization", auth);
            }
            let r = req.send().await.unwrap();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let answer = answer(r).await;
            assert_problem(&answer, StatusCode::UNAUTHORIZED, "/problems/unauthorized");
            assert_eq!(
                challenge.as_deref(),
                Some("Bearer"),
                "{auth:?} {path}: a 401 names the scheme"
            );
            let text = answer.1.to_string();
            assert!(!text.contains("Kari"), "{text}");
        }
    }

    // A write without a key stores nothing.
    let r = app
        .http
        .post(app.url("/patients"))
        .json(&json!({"name": "Ola Nordmann", "birth_year": 1980}))
        .send()
        .await
        .unwrap();
    assert_problem(
        &answer(r).await,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthorized",
    );
    let r = app
        .http
        .patch(app.url(&format!("/patients/{pid}")))
        .header("authorization", zeros.as_str())
        .json(&json!({"name": "Changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(patient_ids(&app, &key).await, std::slice::from_ref(&pid));
    let (_, p) = app.get(&key, &format!("/patients/{pid}")).await;
    assert_eq!(p["name"], "Kari Nordmann");

    // The operational endpoints and the API description need no key.
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].is_string(), "{doc}");
    assert!(doc["paths"]["/patients/{id}"].is_object(), "{doc}");

    // The lower-case scheme works too, and the right key answers.
    let r = app
        .http
        .get(app.url("/patients"))
        .header("authorization", format!("bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn organisations_are_isolated(app: App) {
    let (a_org, a_key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let (b_org, b_admin) = app.add_org("DPS Vest", "clinic").await;
    let b_clinic = app.add_key(&b_org, "clinic").await;
    let (pid, cp_id, aid, nid) = patient_with_booking(&app, &a_key).await;
    let b_own = app.patient(&b_clinic, "Per Hansen").await;

    for b in [&b_admin, &b_clinic] {
        for path in [
            format!("/patients/{pid}"),
            format!("/patients/{pid}/contact-points"),
            format!("/patients/{pid}/timeline"),
            format!("/patients/{pid}/notices"),
            format!("/patients/{pid}/appointments"),
            format!("/patients/{pid}/shares"),
            format!("/appointments/{aid}"),
            format!("/notices/{nid}"),
        ] {
            let answer = app.get(b, &path).await;
            assert_not_found(&answer);
            assert!(
                !answer.1.to_string().contains("Kari"),
                "{path}: {}",
                answer.1
            );
        }
        assert_not_found(
            &app.patch(b, &format!("/patients/{pid}"), json!({"name": "Changed"}))
                .await,
        );
        assert_not_found(
            &app.post(
                b,
                &format!("/patients/{pid}/contact-points"),
                json!({"kind": "sms", "phone": "+4798765432", "provenance": "stated_by_patient"}),
            )
            .await,
        );
        assert_not_found(
            &app.post(
                b,
                &format!("/patients/{pid}/contact-points/{cp_id}/retire"),
                json!({"reason": "moved"}),
            )
            .await,
        );
        assert_not_found(
            &app.post(
                b,
                &format!("/patients/{pid}/shares"),
                json!({"organisation_id": b_org}),
            )
            .await,
        );
        assert_not_found(
            &app.post(
                b,
                "/appointments",
                json!({"patient_id": pid, "starts_at": in_minutes(48 * 60), "place": "Kontoret"}),
            )
            .await,
        );
        assert_not_found(
            &app.post(
                b,
                &format!("/appointments/{aid}/reschedule"),
                json!({"starts_at": in_minutes(72 * 60)}),
            )
            .await,
        );
        assert_not_found(
            &app.post(b, &format!("/appointments/{aid}/cancel"), json!({}))
                .await,
        );
        assert_not_found(
            &app.post(
                b,
                &format!("/appointments/{aid}/attendance"),
                json!({"status": "attended"}),
            )
            .await,
        );
        assert_eq!(patient_ids(&app, b).await, std::slice::from_ref(&b_own));
        let (status, search) = app.get(b, "/patients?q=kari").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(search["items"], json!([]), "{search}");
    }
    // The unknown and the invisible answer alike.
    assert_not_found(&app.get(&b_admin, &format!("/patients/{UNKNOWN_ID}")).await);
    assert_not_found(
        &app.get(&b_admin, &format!("/appointments/{UNKNOWN_ID}"))
            .await,
    );
    assert_not_found(&app.get(&b_admin, &format!("/notices/{UNKNOWN_ID}")).await);
    // A's own key cannot reach B's patient either.
    assert_not_found(&app.get(&a_key, &format!("/patients/{b_own}")).await);
    assert_eq!(patient_ids(&app, &a_key).await, std::slice::from_ref(&pid));

    // Organisations: anyone may read them, only an admin may change their own.
    let (status, org) = app.get(&b_clinic, &format!("/organisations/{a_org}")).await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_forbidden(
        &app.patch(
            &b_admin,
            &format!("/organisations/{a_org}"),
            json!({"name": "Taken over"}),
        )
        .await,
    );
    assert_forbidden(
        &app.patch(
            &a_key,
            &format!("/organisations/{b_org}"),
            json!({"name": "Taken over"}),
        )
        .await,
    );
    assert_forbidden(
        &app.patch(
            &b_clinic,
            &format!("/organisations/{b_org}"),
            json!({"name": "Renamed by a clinic key"}),
        )
        .await,
    );
    let (status, renamed) = app
        .patch(
            &b_admin,
            &format!("/organisations/{b_org}"),
            json!({"name": "DPS Vest, poliklinikk"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    let (_, org) = app.get(&a_key, &format!("/organisations/{a_org}")).await;
    assert_eq!(org["name"], "Poliklinikk Rus Nord");

    // Nothing B tried changed A's records.
    let (_, p) = app.get(&a_key, &format!("/patients/{pid}")).await;
    assert_eq!(p["name"], "Kari Nordmann");
    let (_, cps) = app
        .get(&a_key, &format!("/patients/{pid}/contact-points"))
        .await;
    let cps = cps["items"].as_array().unwrap();
    assert_eq!(cps.len(), 1, "{cps:?}");
    assert_eq!(cps[0]["status"], "active");
    let (_, a) = app.get(&a_key, &format!("/appointments/{aid}")).await;
    assert_eq!(a["status"], "booked", "{a}");
    assert_eq!(a["history"].as_array().unwrap().len(), 1, "{a}");
    let (_, appts) = app
        .get(&a_key, &format!("/patients/{pid}/appointments"))
        .await;
    assert_eq!(appts["items"].as_array().unwrap().len(), 1, "{appts}");
    let (_, shares) = app.get(&a_key, &format!("/patients/{pid}/shares")).await;
    let orgs: Vec<&str> = shares["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["organisation_id"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, [a_org.as_str()]);
}

async fn roles_limit_what_a_key_may_do(app: App) {
    let (a_org, admin) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let clinic = app.add_key(&a_org, "clinic").await;
    let print = app.add_key(&a_org, "print").await;
    let relay = app.add_key(&a_org, "relay").await;
    let outreach = app.add_key(&a_org, "outreach").await;
    let coordinator = app.add_key(&a_org, "coordinator").await;
    let (pid, _, aid, nid) = patient_with_booking(&app, &clinic).await;
    let book =
        || json!({"patient_id": pid, "starts_at": in_minutes(48 * 60), "place": "Storgata 1"});

    // The print room never sees a patient record.
    for path in [
        format!("/patients/{pid}"),
        "/patients".to_owned(),
        format!("/patients/{pid}/contact-points"),
        format!("/patients/{pid}/timeline"),
        format!("/appointments/{aid}"),
        format!("/notices/{nid}"),
        format!("/patients/{pid}/audit"),
    ] {
        let answer = app.get(&print, &path).await;
        assert_forbidden(&answer);
        assert!(
            !answer.1.to_string().contains("Kari"),
            "{path}: {}",
            answer.1
        );
    }
    let answer = app
        .post(
            &print,
            "/patients",
            json!({"name": "Ola Nordmann", "birth_year": 1980}),
        )
        .await;
    assert_forbidden(&answer);
    assert!(
        answer.1["detail"].as_str().unwrap().contains("print"),
        "the refusal names the role: {}",
        answer.1
    );
    assert_forbidden(&app.post(&print, "/appointments", book()).await);

    // Relay and outreach staff identify the patient and their contact points, nothing more.
    for key in [&relay, &outreach] {
        let (status, p) = app.get(key, &format!("/patients/{pid}")).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert_eq!(p["name"], "Kari Nordmann");
        let (status, cps) = app
            .get(key, &format!("/patients/{pid}/contact-points"))
            .await;
        assert_eq!(status, StatusCode::OK, "{cps}");
        assert_eq!(cps["items"].as_array().unwrap().len(), 1);
        for path in [
            format!("/appointments/{aid}"),
            format!("/notices/{nid}"),
            format!("/patients/{pid}/timeline"),
            format!("/patients/{pid}/appointments"),
            format!("/patients/{pid}/notices"),
            format!("/patients/{pid}/audit"),
        ] {
            assert_forbidden(&app.get(key, &path).await);
        }
        assert_forbidden(&app.post(key, "/appointments", book()).await);
        assert_forbidden(
            &app.post(key, &format!("/appointments/{aid}/cancel"), json!({}))
                .await,
        );
        assert_forbidden(
            &app.patch(key, &format!("/patients/{pid}"), json!({"name": "Changed"}))
                .await,
        );
        assert_forbidden(
            &app.post(
                key,
                "/patients",
                json!({"name": "Ola Nordmann", "birth_year": 1980}),
            )
            .await,
        );
    }
    // …but they may add a contact point they verified in person.
    let (status, cp) = app
        .post(
            &relay,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "postal", "lines": ["Kari Nordmann", "c/o Kirkens Bymisjon"], "postal_code": "0155",
                   "place": "Oslo", "provenance": "verified_in_person"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cp}");

    // The coordinator follows the pathway but does not book.
    for path in [
        format!("/patients/{pid}/timeline"),
        format!("/patients/{pid}/notices"),
        format!("/notices/{nid}"),
        format!("/appointments/{aid}"),
        format!("/patients/{pid}/appointments"),
    ] {
        let (status, body) = app.get(&coordinator, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, notice) = app.get(&coordinator, &format!("/notices/{nid}")).await;
    assert_eq!(notice["id"], nid.as_str());
    assert_eq!(notice["patient_id"], pid.as_str());
    assert_forbidden(&app.post(&coordinator, "/appointments", book()).await);
    assert_forbidden(
        &app.post(
            &coordinator,
            &format!("/appointments/{aid}/cancel"),
            json!({}),
        )
        .await,
    );
    assert_forbidden(
        &app.get(&coordinator, &format!("/patients/{pid}/audit"))
            .await,
    );

    // Only admins change the organisation and read the access log.
    for key in [&clinic, &coordinator, &relay, &print] {
        assert_forbidden(
            &app.patch(
                key,
                &format!("/organisations/{a_org}"),
                json!({"name": "X"}),
            )
            .await,
        );
    }
    assert_forbidden(&app.get(&clinic, &format!("/patients/{pid}/audit")).await);
    let (status, log) = app.get(&admin, &format!("/patients/{pid}/audit")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert!(!log["items"].as_array().unwrap().is_empty());

    // None of the refused requests stored anything.
    assert_eq!(patient_ids(&app, &admin).await, std::slice::from_ref(&pid));
    let (_, appts) = app
        .get(&admin, &format!("/patients/{pid}/appointments"))
        .await;
    let appts = appts["items"].as_array().unwrap();
    assert_eq!(appts.len(), 1, "{appts:?}");
    assert_eq!(appts[0]["status"], "booked");
    let (_, p) = app.get(&admin, &format!("/patients/{pid}")).await;
    assert_eq!(p["name"], "Kari Nordmann");

    // A clinic key books; an admin key too.
    let (status, booked) = app.post(&clinic, "/appointments", book()).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let (status, booked) = app
        .post(
            &admin,
            "/appointments",
            json!({"patient_id": pid, "starts_at": in_minutes(96 * 60), "place": "Storgata 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let (_, appts) = app
        .get(&coordinator, &format!("/patients/{pid}/appointments"))
        .await;
    assert_eq!(appts["items"].as_array().unwrap().len(), 3);
}

/// A relay contact point shares the patient with a low-threshold service, but the service sees
/// the patient only through its relay requests (`GET /tasks`): every patient endpoint refuses
/// it (403, audited), whatever its role.
async fn a_relay_contact_point_shares_the_patient(app: App) {
    let (a_org, a_key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let (l_org, l_admin, l_admin_id) =
        org_with_key_id(&app, "Dagsenteret Vaterland", "low_threshold_service").await;
    let (_, m_admin) = app.add_org("Natthjemmet", "low_threshold_service").await;
    let (l_relay, l_relay_id) = key_with_id(&app, &l_org, "relay").await;
    let (pid, cp_id, aid, nid) = patient_with_booking(&app, &a_key).await;

    // Before and after the share alike: the refusal does not depend on the patient.
    for key in [&l_relay, &l_admin] {
        assert_forbidden(&app.get(key, &format!("/patients/{pid}")).await);
        assert_forbidden(
            &app.get(key, &format!("/patients/{pid}/contact-points"))
                .await,
        );
    }

    let (status, relay) = app
        .post(
            &a_key,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "relay", "organisation_id": l_org, "provenance": "verified_in_person"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{relay}");

    // Shared, yet no patient endpoint answers the service: not the record, not the contact
    // points (national id, notes, addresses, phones, next of kin), not the search.
    for key in [&l_relay, &l_admin] {
        for path in [
            format!("/patients/{pid}"),
            format!("/patients/{pid}/contact-points"),
            format!("/patients/{pid}/shares"),
            format!("/patients/{pid}/timeline"),
            format!("/patients/{pid}/appointments"),
            format!("/patients/{pid}/notices"),
            format!("/patients/{pid}/audit"),
            "/patients".to_owned(),
            "/patients?q=kari".to_owned(),
            format!("/appointments/{aid}"),
            format!("/notices/{nid}"),
        ] {
            let answer = app.get(key, &path).await;
            assert_forbidden(&answer);
            let detail = answer.1["detail"].as_str().unwrap();
            assert!(
                detail.contains("low-threshold service")
                    && detail.contains("relay requests (GET /api/v1/tasks)"),
                "{path}: the refusal says where to look: {}",
                answer.1
            );
            let text = answer.1.to_string();
            for secret in ["Kari", "91234567"] {
                assert!(!text.contains(secret), "{path}: {text}");
            }
        }
        for answer in [
            app.patch(key, &format!("/patients/{pid}"), json!({"name": "Changed"}))
                .await,
            app.post(
                key,
                &format!("/patients/{pid}/contact-points"),
                json!({"kind": "sms", "phone": "+4798765432", "provenance": "stated_by_patient"}),
            )
            .await,
            app.post(
                key,
                &format!("/patients/{pid}/contact-points/{cp_id}/retire"),
                json!({"reason": "moved"}),
            )
            .await,
            app.post(
                key,
                "/patients",
                json!({"name": "Ola Nordmann", "birth_year": 1980}),
            )
            .await,
        ] {
            assert_forbidden(&answer);
        }
    }
    // L may never change A's booking.
    assert_forbidden(
        &app.post(&l_admin, &format!("/appointments/{aid}/cancel"), json!({}))
            .await,
    );
    let (_, a) = app.get(&a_key, &format!("/appointments/{aid}")).await;
    assert_eq!(a["status"], "booked");
    let (_, cps) = app
        .get(&a_key, &format!("/patients/{pid}/contact-points"))
        .await;
    let cps = cps["items"].as_array().unwrap();
    assert_eq!(cps.len(), 2, "the service stored nothing: {cps:?}");
    assert!(cps.iter().all(|c| c["status"] == "active"), "{cps:?}");

    // Both organisations are listed as shares (to the clinic); the other service sees nothing.
    let (status, shares) = app.get(&a_key, &format!("/patients/{pid}/shares")).await;
    assert_eq!(status, StatusCode::OK, "{shares}");
    let mut orgs: Vec<&str> = shares["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["organisation_id"].as_str().unwrap())
        .collect();
    orgs.sort();
    let mut want = [a_org.as_str(), l_org.as_str()];
    want.sort();
    assert_eq!(orgs, want, "{shares}");
    assert_forbidden(&app.get(&m_admin, &format!("/patients/{pid}")).await);
    assert_forbidden(&app.get(&m_admin, "/patients").await);

    // The share and every refusal of the service are in the access log.
    let (_, log) = app.get(&a_key, &format!("/patients/{pid}/audit")).await;
    let events = log["items"].as_array().unwrap();
    let share = events
        .iter()
        .find(|e| e["action"] == "patient.share")
        .unwrap_or_else(|| panic!("sharing is audited: {log}"));
    assert_eq!(share["subject"], l_org.as_str());
    for (action, key_id) in [
        ("patient.read", &l_relay_id),
        ("contact_point.list", &l_relay_id),
        ("share.list", &l_relay_id),
        ("patient.read", &l_admin_id),
        ("contact_point.list", &l_admin_id),
        ("audit.read", &l_admin_id),
    ] {
        let refused = events
            .iter()
            .find(|e| {
                e["action"] == action
                    && e["actor"] == format!("api_key:{key_id}").as_str()
                    && e["outcome"] == "denied"
                    && e["patient_id"] == pid.as_str()
            })
            .unwrap_or_else(|| panic!("no refused {action} by api_key:{key_id}: {log:#}"));
        assert_eq!(refused["organisation_id"], l_org.as_str(), "{refused}");
    }
    assert!(
        !events
            .iter()
            .any(|e| e["organisation_id"] == l_org.as_str() && e["outcome"] == "allowed"),
        "the service read nothing: {log:#}"
    );

    // What the service does see: its relay request, with who, what to say and by when.
    let ola = app.patient(&a_key, "Ola Nordmann").await;
    let (status, body) = app
        .post(
            &a_key,
            &format!("/patients/{ola}/contact-points"),
            json!({"kind": "relay", "organisation_id": l_org, "provenance": "verified_in_person",
                   "note": "kommer innom på tirsdager"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, booked) = app
        .post(
            &a_key,
            "/appointments",
            json!({"patient_id": ola, "starts_at": in_minutes(7 * 24 * 60), "place": "Storgata 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let request = eventually("the relay request", || async {
        let (status, list) = app.get(&l_relay, "/tasks").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["items"].as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(request["kind"], "relay", "{request}");
    assert_eq!(request["patient"]["id"], ola.as_str());
    assert_eq!(request["patient"]["name"], "Ola Nordmann");
    assert_eq!(request["patient"]["birth_year"], 1979);
    assert_eq!(
        request["patient"]["description"],
        "kommer innom på tirsdager"
    );
    assert!(
        request["message"].as_str().is_some_and(|m| m.len() > 20),
        "{request}"
    );
    assert!(request["due_at"].is_string(), "{request}");
    for hidden in ["appointment", "notice_id", "whereabouts"] {
        assert!(request.get(hidden).is_none(), "{hidden}: {request}");
    }
    let id = request["id"].as_str().unwrap();
    let (status, one) = app.get(&l_relay, &format!("/tasks/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["patient"]["name"], "Ola Nordmann");
    // …and still not the record behind it.
    assert_forbidden(&app.get(&l_relay, &format!("/patients/{ola}")).await);
    let (_, log) = app.get(&a_key, &format!("/patients/{ola}/audit")).await;
    assert!(
        log["items"].as_array().unwrap().iter().any(|e| {
            e["action"] == "task.read"
                && e["actor"] == format!("api_key:{l_relay_id}").as_str()
                && e["outcome"] == "allowed"
        }),
        "reading the relay request is audited: {log:#}"
    );
}

async fn reads_and_refusals_are_audited(app: App) {
    let (a_org, admin, admin_id) = org_with_key_id(&app, "Poliklinikk Rus Nord", "clinic").await;
    let (b_org, b_admin, b_admin_id) = org_with_key_id(&app, "DPS Vest", "clinic").await;
    let (clinic, clinic_id) = key_with_id(&app, &a_org, "clinic").await;
    let (print, print_id) = key_with_id(&app, &a_org, "print").await;
    let (relay, relay_id) = key_with_id(&app, &a_org, "relay").await;
    for id in [&admin_id, &b_admin_id, &clinic_id, &print_id, &relay_id] {
        assert!(id.parse::<uuid::Uuid>().is_ok(), "{id}");
    }

    let (status, p) = app
        .post(
            &clinic,
            "/patients",
            json!({"name": "Kari Nordmann", "birth_year": 2007, "national_id": "01010750160",
                   "contact_notes": "Pleier å være på dagsenteret tirsdager"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let pid = p["id"].as_str().unwrap().to_owned();
    let (status, cp) = app
        .post(
            &clinic,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cp}");
    let cp_id = cp["id"].as_str().unwrap().to_owned();

    // A read with a request id, a read from B, a refused read by the print room.
    let r = app
        .http
        .get(app.url(&format!("/patients/{pid}")))
        .bearer_auth(&clinic)
        .header("x-request-id", "req-e2e-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await.0, StatusCode::OK);
    assert_not_found(&app.get(&b_admin, &format!("/patients/{pid}")).await);
    assert_forbidden(&app.get(&print, &format!("/patients/{pid}")).await);
    assert_forbidden(&app.get(&clinic, &format!("/patients/{pid}/audit")).await);
    assert_not_found(&app.get(&b_admin, &format!("/patients/{pid}/audit")).await);
    let (status, _) = app.get(&relay, &format!("/patients/{pid}")).await;
    assert_eq!(status, StatusCode::OK);

    let (status, log) = app.get(&admin, &format!("/patients/{pid}/audit")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let events = log["items"].as_array().unwrap().clone();
    let find = |action: &str, actor: &str, outcome: &str| {
        events
            .iter()
            .find(|e| {
                e["action"] == action
                    && e["actor"] == format!("api_key:{actor}").as_str()
                    && e["outcome"] == outcome
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {outcome} {action} by api_key:{actor} in {log:#}"))
    };
    let created = find("patient.create", &clinic_id, "allowed");
    assert_eq!(created["organisation_id"], a_org.as_str());
    assert_eq!(created["patient_id"], pid.as_str());
    let added = find("contact_point.add", &clinic_id, "allowed");
    assert_eq!(added["subject"], cp_id.as_str());
    let read = find("patient.read", &clinic_id, "allowed");
    assert_eq!(read["organisation_id"], a_org.as_str());
    assert_eq!(read["patient_id"], pid.as_str());
    assert_eq!(read["request_id"], "req-e2e-4711");
    let foreign = find("patient.read", &b_admin_id, "denied");
    assert_eq!(foreign["organisation_id"], b_org.as_str());
    let refused = find("patient.read", &print_id, "denied");
    assert_eq!(refused["organisation_id"], a_org.as_str());
    find("audit.read", &clinic_id, "denied");
    find("audit.read", &b_admin_id, "denied");
    find("patient.read", &relay_id, "allowed");
    for e in &events {
        assert_eq!(e["patient_id"], pid.as_str(), "{e}");
        assert!(e["at"].is_string() && e["id"].is_string(), "{e}");
        assert!(
            ["allowed", "denied"].contains(&e["outcome"].as_str().unwrap()),
            "{e}"
        );
    }
    assert!(
        events
            .iter()
            .all(|e| e["action"] != "audit.read" || e["outcome"] == "denied"),
        "the answer shows earlier accesses, not this read: {log:#}"
    );
    let ats: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        ats.iter().map(|t| t.parse().unwrap()).collect();
    assert!(
        parsed.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {ats:?}"
    );

    // The log says who and what, never the patient's data.
    let text = log.to_string();
    for secret in ["Kari", "Nordmann", "91234567", "01010750160", "dagsenteret"] {
        assert!(
            !text.contains(secret),
            "the audit log holds {secret:?}: {text}"
        );
    }

    // Reading the log is itself logged.
    let (_, again) = app.get(&admin, &format!("/patients/{pid}/audit")).await;
    let items = again["items"].as_array().unwrap();
    assert_eq!(items.len(), events.len() + 1, "{again:#}");
    assert_eq!(items[0]["action"], "audit.read");
    assert_eq!(items[0]["actor"], format!("api_key:{admin_id}").as_str());
    assert_eq!(items[0]["outcome"], "allowed");
    assert_eq!(&items[1..], &events[..], "the log only grows");
}

crate::scenarios!(
    requests_need_a_valid_key,
    organisations_are_isolated,
    roles_limit_what_a_key_may_do,
    a_relay_contact_point_shares_the_patient,
    reads_and_refusals_are_audited,
);
