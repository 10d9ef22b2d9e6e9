//! The JSON HTTP provider (`sms::http::JsonProvider`, with the Link Mobility preset) and the
//! routing of `SmsChannel` — failover by priority, the 60 s cool-down, weights and rate limits —
//! against **mock** aggregators: every "provider" here is a local `wiremock` server, because no
//! real aggregator can run in a test. The mocks answer the way the aggregators' public
//! documentation says they do; they prove what we send and how we read the answers, not that a
//! real aggregator agrees.
//!
//! The Link preset's body template and callback shapes are private to `sms::config` (building
//! them needs a `Store`), so `link_body` and `link_shapes` below copy them from
//! `channels/src/sms/config.rs`; keep the two in step.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kontaktvei_channels::sms::http::JsonProvider;
use kontaktvei_channels::sms::reports::{self, JsonShapes, ReportStatus};
use kontaktvei_channels::sms::{RouteConfig, Sent, SmsChannel, SmsMessage, SmsProvider};
use kontaktvei_channels::{Channel, Dispatch, Outcome};
use kontaktvei_store::{Clock, Id, ManualClock};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AUTH: &str = "Basic a29udGFrdHZlaTpzZWNyZXQ=";
const REFERENCE: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-0-1";
const TEXT: &str = "Hei! Du har time på Ås 10.30. Svar JA. ÆØÅ æøå";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 9, 0, 0).unwrap()
}

/// The request body of the `link` preset (copy of `config::link_preset`, gate `gate-1`).
fn link_body() -> Value {
    json!({
        "source": "{sender}",
        "destination": "{to}",
        "userData": "{text}",
        "platformId": "COMMON-API",
        "platformPartnerId": "partner-1",
        "refId": "{reference}",
        "useDeliveryReport": true,
        "deliveryReportGates": ["gate-1"],
        "relativeValidityTime": "{validity_ms}",
    })
}

/// The callback shapes of the `link` preset (copy of `config::link_preset`).
fn link_shapes() -> JsonShapes {
    JsonShapes {
        report_ref: "/refId".into(),
        report_status: "/resultCode".into(),
        status_map: [
            ("1001", "delivered"),
            ("1002", "failed:expired"),
            ("1006", "failed:not_delivered"),
            ("2104", "failed:unknown_subscriber"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        inbound_from: "/source".into(),
        inbound_text: "/userData".into(),
        inbound_to: Some("/destination".into()),
    }
}

fn link(name: &str, server: &MockServer, timeout: Duration) -> JsonProvider {
    JsonProvider::new(
        name.into(),
        format!("{}/sms/send", server.uri()),
        Some(AUTH.into()),
        link_body(),
        Some("/messageId".into()),
        timeout,
    )
}

fn message(now: DateTime<Utc>) -> SmsMessage {
    SmsMessage {
        to: "+4791234567".into(),
        text: TEXT.into(),
        sender: Some("Legekontor".into()),
        reference: REFERENCE.into(),
        valid_until: Some(now + TimeDelta::hours(2)),
        now,
        notice_id: Id::new(now),
        step_id: Some(Id::new(now)),
    }
}

async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/send"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

fn route(provider: JsonProvider, priority: u32, weight: u32, rate: Option<u32>) -> RouteConfig {
    RouteConfig {
        provider: Arc::new(provider),
        priority,
        weight,
        rate_per_second: rate,
    }
}

fn channel(routes: Vec<RouteConfig>) -> (SmsChannel, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    (SmsChannel::new(routes, dyn_clock, None), clock)
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn accepted_with_the_providers_id_and_the_rendered_body() {
    let server =
        answering(ResponseTemplate::new(200).set_body_json(json!({"messageId": "abc"}))).await;
    let provider = link("link", &server, TIMEOUT);
    let answer = provider.send(&message(start())).await;
    assert_eq!(
        answer,
        Sent::Accepted {
            provider_ref: "abc".into()
        }
    );

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(AUTH)
    );
    assert!(
        request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    );
    let body: Value = request.body_json().unwrap();
    assert_eq!(body["destination"], json!("+4791234567"));
    assert_eq!(body["userData"], json!(TEXT), "æøå must arrive intact");
    assert_eq!(body["refId"], json!(REFERENCE));
    assert_eq!(body["source"], json!("Legekontor"));
    assert_eq!(body["platformId"], json!("COMMON-API"));
    assert_eq!(body["platformPartnerId"], json!("partner-1"));
    assert_eq!(body["deliveryReportGates"], json!(["gate-1"]));
    assert!(body["relativeValidityTime"].is_number());
    assert_eq!(body["relativeValidityTime"], json!(2 * 60 * 60_000));
}

#[tokio::test]
async fn accepted_without_an_id_in_the_answer_keeps_our_reference() {
    let server = answering(ResponseTemplate::new(202).set_body_string("queued")).await;
    let answer = link("link", &server, TIMEOUT).send(&message(start())).await;
    assert_eq!(
        answer,
        Sent::Accepted {
            provider_ref: REFERENCE.into()
        }
    );
}

#[tokio::test]
async fn bad_request_is_rejected_for_good() {
    let server = answering(
        ResponseTemplate::new(400).set_body_json(json!({"description": "invalid destination"})),
    )
    .await;
    let answer = link("link", &server, TIMEOUT).send(&message(start())).await;
    assert!(matches!(answer, Sent::Rejected { .. }), "{answer:?}");
}

#[tokio::test]
async fn conflict_means_the_provider_already_has_this_reference() {
    let server =
        answering(ResponseTemplate::new(409).set_body_json(json!({"messageId": "abc"}))).await;
    let answer = link("link", &server, TIMEOUT).send(&message(start())).await;
    assert_eq!(
        answer,
        Sent::Accepted {
            provider_ref: "abc".into()
        }
    );
    let server = answering(ResponseTemplate::new(409)).await;
    let answer = link("link", &server, TIMEOUT).send(&message(start())).await;
    assert_eq!(
        answer,
        Sent::Accepted {
            provider_ref: REFERENCE.into()
        }
    );
}

#[tokio::test]
async fn credentials_and_server_errors_are_unavailable() {
    for status in [401, 403, 500, 502, 503] {
        let server = answering(ResponseTemplate::new(status)).await;
        let answer = link("link", &server, TIMEOUT).send(&message(start())).await;
        assert!(
            matches!(
                answer,
                Sent::Unavailable {
                    retry_after: None,
                    ..
                }
            ),
            "{status}: {answer:?}"
        );
    }
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let server = answering(ResponseTemplate::new(429).insert_header("Retry-After", "7")).await;
    let answer = link("link", &server, TIMEOUT).send(&message(start())).await;
    assert!(
        matches!(
            answer,
            Sent::Unavailable {
                retry_after: Some(d),
                ..
            } if d == Duration::from_secs(7)
        ),
        "{answer:?}"
    );
    // A Retry-After given as a date is not understood; the answer stays unavailable.
    let server = answering(
        ResponseTemplate::new(503).insert_header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
    )
    .await;
    let answer = link("link", &server, TIMEOUT).send(&message(start())).await;
    assert!(
        matches!(
            answer,
            Sent::Unavailable {
                retry_after: None,
                ..
            }
        ),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_slow_provider_times_out_quickly() {
    let server = answering(
        ResponseTemplate::new(200)
            .set_body_json(json!({"messageId": "late"}))
            .set_delay(Duration::from_secs(10)),
    )
    .await;
    let provider = link("link", &server, Duration::from_millis(300));
    let began = Instant::now();
    let answer = provider.send(&message(start())).await;
    let took = began.elapsed();
    assert!(matches!(answer, Sent::Unavailable { .. }), "{answer:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() {
    // A port nothing listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let provider = JsonProvider::new(
        "gone".into(),
        format!("{uri}/sms/send"),
        None,
        link_body(),
        None,
        Duration::from_secs(2),
    );
    let answer = provider.send(&message(start())).await;
    assert!(matches!(answer, Sent::Unavailable { .. }), "{answer:?}");
}

#[tokio::test]
async fn failover_cool_down_and_recovery() {
    let primary = answering(ResponseTemplate::new(503)).await;
    let secondary =
        answering(ResponseTemplate::new(200).set_body_json(json!({"messageId": "from-b"}))).await;
    let (channel, clock) = channel(vec![
        route(link("secondary", &secondary, TIMEOUT), 2, 1, None),
        route(link("primary", &primary, TIMEOUT), 1, 1, None),
    ]);
    assert_eq!(channel.provider_names(), ["primary", "secondary"]);

    // The primary fails; the same call goes on to the secondary.
    let (name, answer) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("secondary"));
    assert_eq!(
        answer,
        Sent::Accepted {
            provider_ref: "from-b".into()
        }
    );
    assert_eq!(hits(&primary).await, 1);
    assert_eq!(hits(&secondary).await, 1);

    // Within the cool-down the primary is not asked at all.
    clock.advance(TimeDelta::seconds(59));
    let (name, _) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("secondary"));
    assert_eq!(hits(&primary).await, 1, "the primary is cooling down");
    assert_eq!(hits(&secondary).await, 2);

    // The primary has recovered; after the cool-down it takes the message again.
    primary.reset().await;
    Mock::given(method("POST"))
        .and(path("/sms/send"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messageId": "from-a"})))
        .mount(&primary)
        .await;
    clock.advance(TimeDelta::seconds(2));
    let (name, answer) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("primary"));
    assert_eq!(
        answer,
        Sent::Accepted {
            provider_ref: "from-a".into()
        }
    );
    assert_eq!(hits(&primary).await, 1, "after reset: the one new request");
    assert_eq!(hits(&secondary).await, 2);
}

/// A provider that accepts messages but never reports them delivered is left out after 15
/// minutes (its reports may be lost, or its messages), and comes back when reports arrive.
#[tokio::test]
async fn a_provider_whose_messages_stay_undelivered_is_avoided_until_reports_catch_up() {
    let ok = |id: &str| ResponseTemplate::new(200).set_body_json(json!({"messageId": id}));
    let primary = answering(ok("a")).await;
    let secondary = answering(ok("b")).await;
    let (channel, clock) = channel(vec![
        route(link("primary", &primary, TIMEOUT), 1, 1, None),
        route(link("secondary", &secondary, TIMEOUT), 2, 1, None),
    ]);
    let mut first = message(clock.now());
    first.reference = "ref-first".into();
    let (name, _) = channel.send(&first).await;
    assert_eq!(name.as_deref(), Some("primary"));

    // Ten minutes on, no report yet: still the primary.
    clock.advance(TimeDelta::minutes(10));
    let (name, _) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("primary"));

    // Sixteen minutes after the first message, still nothing: the secondary takes over.
    clock.advance(TimeDelta::minutes(6));
    let (name, _) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("secondary"));

    // The reports arrive: the primary is back.
    channel.note_report("primary", "ref-first");
    channel.note_report("primary", &message(clock.now()).reference);
    let (name, _) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("primary"));
}

#[tokio::test]
async fn a_refusal_does_not_fail_over() {
    let primary = answering(ResponseTemplate::new(400)).await;
    let secondary = answering(ResponseTemplate::new(200)).await;
    let (channel, clock) = channel(vec![
        route(link("primary", &primary, TIMEOUT), 1, 1, None),
        route(link("secondary", &secondary, TIMEOUT), 2, 1, None),
    ]);
    let (name, answer) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("primary"));
    assert!(matches!(answer, Sent::Rejected { .. }), "{answer:?}");
    assert_eq!(hits(&secondary).await, 0);
}

#[tokio::test]
async fn all_down_still_tries_everyone_and_reports_the_soonest_retry() {
    let a = answering(ResponseTemplate::new(429).insert_header("Retry-After", "30")).await;
    let b = answering(ResponseTemplate::new(503).insert_header("Retry-After", "7")).await;
    let (channel, clock) = channel(vec![
        route(link("a", &a, TIMEOUT), 1, 1, None),
        route(link("b", &b, TIMEOUT), 2, 1, None),
    ]);
    let (name, answer) = channel.send(&message(clock.now())).await;
    assert_eq!(name, None);
    assert!(
        matches!(answer, Sent::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{answer:?}"
    );
    // Both are cooling down, yet both are still tried rather than giving up.
    clock.advance(TimeDelta::seconds(10));
    let (name, _) = channel.send(&message(clock.now())).await;
    assert_eq!(name, None);
    assert_eq!(hits(&a).await, 2);
    assert_eq!(hits(&b).await, 2);
}

#[tokio::test]
async fn equal_priorities_share_by_weight() {
    let heavy = answering(ResponseTemplate::new(200)).await;
    let light = answering(ResponseTemplate::new(200)).await;
    let (channel, clock) = channel(vec![
        route(link("heavy", &heavy, TIMEOUT), 1, 3, None),
        route(link("light", &light, TIMEOUT), 1, 1, None),
    ]);
    let sends = 200;
    let mut to_heavy = 0;
    for _ in 0..sends {
        let (name, answer) = channel.send(&message(clock.now())).await;
        assert!(matches!(answer, Sent::Accepted { .. }));
        if name.as_deref() == Some("heavy") {
            to_heavy += 1;
        }
    }
    assert_eq!(hits(&heavy).await, to_heavy);
    assert_eq!(hits(&light).await, sends - to_heavy);
    // Expected 150 of 200 (sd ≈ 6); the bounds are loose on purpose.
    assert!((115..=185).contains(&to_heavy), "heavy got {to_heavy}");
}

#[tokio::test]
async fn rate_limit_without_another_provider() {
    let server = answering(ResponseTemplate::new(200)).await;
    let (channel, clock) = channel(vec![route(link("slow", &server, TIMEOUT), 1, 1, Some(1))]);
    let (name, answer) = channel.send(&message(clock.now())).await;
    assert_eq!(name.as_deref(), Some("slow"));
    assert!(matches!(answer, Sent::Accepted { .. }));
    let (name, answer) = channel.send(&message(clock.now())).await;
    assert_eq!(name, None);
    match answer {
        Sent::Unavailable {
            retry_after: Some(wait),
            ..
        } => assert!(wait <= Duration::from_secs(1), "{wait:?}"),
        other => panic!("expected a rate-limited answer, got {other:?}"),
    }
    assert_eq!(hits(&server).await, 1, "the second send never left");
}

#[tokio::test]
async fn rate_limit_spills_over_to_the_next_provider() {
    let limited = answering(ResponseTemplate::new(200)).await;
    let spare = answering(ResponseTemplate::new(200)).await;
    let (channel, clock) = channel(vec![
        route(link("limited", &limited, TIMEOUT), 1, 1, Some(1)),
        route(link("spare", &spare, TIMEOUT), 2, 1, None),
    ]);
    let (first, _) = channel.send(&message(clock.now())).await;
    let (second, answer) = channel.send(&message(clock.now())).await;
    assert_eq!(first.as_deref(), Some("limited"));
    assert_eq!(second.as_deref(), Some("spare"));
    assert!(matches!(answer, Sent::Accepted { .. }));
    assert_eq!(hits(&limited).await, 1);
    assert_eq!(hits(&spare).await, 1);
    // Being rate-limited is not a failure: no cool-down, so after a second it is first again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (third, _) = channel.send(&message(clock.now())).await;
    assert_eq!(third.as_deref(), Some("limited"));
}

#[tokio::test]
async fn dispatch_names_the_provider_in_the_reference() {
    let server =
        answering(ResponseTemplate::new(200).set_body_json(json!({"messageId": "abc"}))).await;
    let (channel, clock) = channel(vec![route(link("link", &server, TIMEOUT), 1, 1, None)]);
    let now = clock.now();
    let mut step = Dispatch {
        notice_id: Id::new(now),
        step_id: Id::new(now),
        patient_id: Id::new(now),
        organisation_id: Id::new(now),
        contact_point_id: None,
        phone: Some("+4791234567".into()),
        sender: None,
        task_organisation_id: None,
        coordinator_id: None,
        body: TEXT.into(),
        idempotency_key: REFERENCE.into(),
        valid_until: None,
        due_by: now,
    };
    assert_eq!(
        channel.dispatch(&step).await,
        Outcome::Sent {
            provider_ref: Some("link:abc".into())
        }
    );
    step.phone = None;
    assert!(matches!(
        channel.dispatch(&step).await,
        Outcome::Failed { .. }
    ));
}

#[test]
fn link_delivery_reports_parse() {
    let shapes = link_shapes();
    let cases = [
        (json!(1001), ReportStatus::Delivered),
        (json!("1001"), ReportStatus::Delivered),
        (json!(1002), ReportStatus::Failed("expired".into())),
        (json!(1006), ReportStatus::Failed("not_delivered".into())),
        (
            json!(2104),
            ReportStatus::Failed("unknown_subscriber".into()),
        ),
    ];
    for (code, status) in cases {
        let report = reports::json_dlr(
            &shapes,
            &json!({"refId": REFERENCE, "resultCode": code, "messageId": "abc", "operator": "no.telenor"}),
        )
        .unwrap();
        assert_eq!(report.reference, REFERENCE);
        assert_eq!(report.status, status, "{code}");
    }
    for code in [
        json!(9999),
        json!("1001.0"),
        json!(1001.0),
        json!(null),
        json!(""),
    ] {
        assert!(
            reports::json_dlr(&shapes, &json!({"refId": REFERENCE, "resultCode": code})).is_err(),
            "{code} is not in the table"
        );
    }
    assert!(reports::json_dlr(&shapes, &json!({"resultCode": 1001})).is_err());
    assert!(reports::json_dlr(&shapes, &json!({"refId": "", "resultCode": 1001})).is_err());

    let reply = reports::json_inbound(
        &shapes,
        &json!({"source": "+4791234567", "destination": "2270", "userData": "JA æøå"}),
    )
    .unwrap();
    assert_eq!(reply.from, "+4791234567");
    assert_eq!(reply.to.as_deref(), Some("2270"));
    assert_eq!(reply.text, "JA æøå");
}

/// Always accepts; for routing tests that need no HTTP.
#[derive(Debug)]
struct Always(&'static str);

impl SmsProvider for Always {
    fn name(&self) -> &str {
        self.0
    }

    fn send<'a>(&'a self, m: &'a SmsMessage) -> kontaktvei_channels::BoxFuture<'a, Sent> {
        Box::pin(async move {
            Sent::Accepted {
                provider_ref: m.reference.clone(),
            }
        })
    }
}

/// Product bug (channels/src/sms/mod.rs:175-176): the weights of one priority are summed in a
/// `u32` unchecked. Weights near `u32::MAX` (accepted from configuration unchecked) overflow:
/// a panic in debug builds, and in release a wrapped total that can be 0, so `% total` panics.
#[tokio::test]
async fn huge_weights_do_not_panic() {
    let routes = ["a", "b"]
        .into_iter()
        .map(|name| RouteConfig {
            provider: Arc::new(Always(name)),
            priority: 1,
            weight: u32::MAX,
            rate_per_second: None,
        })
        .collect();
    let (channel, clock) = channel(routes);
    let (name, _) = channel.send(&message(clock.now())).await;
    assert!(name.is_some());
}
