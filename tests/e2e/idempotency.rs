//! `Idempotency-Key` on POST: a retried request gets the first answer and stores nothing new;
//! a key reused for a different request is refused.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

async fn post_with_key(
    app: &App,
    key: &str,
    path: &str,
    idem: &str,
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value, bool) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(key)
        .header("Idempotency-Key", idem)
        .json(body)
        .send()
        .await
        .unwrap();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let (status, body) = answer(r).await;
    (status, body, replayed)
}

async fn same_key_same_body_same_answer(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let body = json!({"name": "Kari Nordmann", "birth_year": 1979});
    let (s1, first, replayed) = post_with_key(&app, &key, "/patients", "k-1", &body).await;
    assert_eq!(s1, StatusCode::CREATED);
    assert!(!replayed);
    let (s2, second, replayed) = post_with_key(&app, &key, "/patients", "k-1", &body).await;
    assert_eq!(s2, StatusCode::CREATED);
    assert!(replayed);
    assert_eq!(first, second, "the same answer, byte for byte");
    let (_, list) = app.get(&key, "/patients").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "stored once");

    // Another body under the same key is refused and stores nothing.
    let (s3, problem, _) = post_with_key(
        &app,
        &key,
        "/patients",
        "k-1",
        &json!({"name": "Ola", "birth_year": 1980}),
    )
    .await;
    assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    let (_, list) = app.get(&key, "/patients").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // A new key is a new request.
    let (s4, third, _) = post_with_key(&app, &key, "/patients", "k-2", &body).await;
    assert_eq!(s4, StatusCode::CREATED);
    assert_ne!(third["id"], first["id"]);

    // A booking retried after a lost answer books once and owes one notice.
    let pid = first["id"].as_str().unwrap();
    let booking =
        json!({"patient_id": pid, "starts_at": in_minutes(60 * 24), "place": "Storgata 36"});
    let (_, b1, _) = post_with_key(&app, &key, "/appointments", "book-1", &booking).await;
    let (_, b2, replayed) = post_with_key(&app, &key, "/appointments", "book-1", &booking).await;
    assert!(replayed);
    assert_eq!(b1["id"], b2["id"]);
    let (_, appointments) = app
        .get(&key, &format!("/patients/{pid}/appointments"))
        .await;
    assert_eq!(appointments["items"].as_array().unwrap().len(), 1);
    let (_, notices) = app.get(&key, &format!("/patients/{pid}/notices")).await;
    assert_eq!(notices["items"].as_array().unwrap().len(), 1);
}

async fn refused_requests_are_replayed_too(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let bad = json!({"name": "", "birth_year": 1979});
    let (s1, p1, _) = post_with_key(&app, &key, "/patients", "bad-1", &bad).await;
    let (s2, p2, replayed) = post_with_key(&app, &key, "/patients", "bad-1", &bad).await;
    assert_eq!(s1, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s2, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(replayed);
    assert_eq!(p1, p2);
}

async fn keys_belong_to_one_organisation(app: App) {
    let (_, a) = app.add_org("Klinikk A", "clinic").await;
    let (_, b) = app.add_org("Klinikk B", "clinic").await;
    let body = json!({"name": "Kari", "birth_year": 1979});
    let (_, pa, _) = post_with_key(&app, &a, "/patients", "shared-key", &body).await;
    let (status, pb, replayed) = post_with_key(&app, &b, "/patients", "shared-key", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!replayed, "another organisation's key space");
    assert_ne!(pa["id"], pb["id"]);
}

async fn concurrent_retries_store_once(app: App) {
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let body = json!({"name": "Samtidig", "birth_year": 1979});
    let mut handles = Vec::new();
    let app = std::sync::Arc::new(app);
    for _ in 0..8 {
        let (app, key, body) = (app.clone(), key.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            post_with_key(&app, &key, "/patients", "race", &body).await
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        let (status, body, _) = h.await.unwrap();
        match status {
            StatusCode::CREATED => ids.push(body["id"].clone()),
            StatusCode::CONFLICT => {
                assert_eq!(body["type"], "/problems/idempotency-key-in-progress")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every success is the same patient: {ids:?}");
    let (_, list) = app.get(&key, "/patients").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

crate::scenarios!(
    same_key_same_body_same_answer,
    refused_requests_are_replayed_too,
    keys_belong_to_one_organisation,
    concurrent_retries_store_once
);
