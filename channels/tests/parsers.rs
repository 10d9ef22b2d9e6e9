//! The parsers of untrusted provider input (Kannel and JSON delivery reports and replies), the
//! segment counter and the body-template renderer, fed arbitrary input with `proptest`: none may
//! panic, and what they return must be consistent with what they were given. Plus unit tests of
//! Kannel's status codes.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kontaktvei_channels::sms::SmsMessage;
use kontaktvei_channels::sms::http::render;
use kontaktvei_channels::sms::reports::{self, JsonShapes, ReportStatus};
use kontaktvei_channels::sms::segments::{self, Encoding};
use kontaktvei_store::Id;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// GSM 03.38: the basic table (without ESC) and the extension table (two septets each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

fn is_gsm(c: char) -> bool {
    GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c)
}

/// Characters mostly from the GSM alphabet, with Northern Sami letters, emoji (two UTF-16 units)
/// and anything else mixed in.
fn sms_char() -> impl Strategy<Value = char> {
    let basic: Vec<char> = GSM_BASIC.chars().collect();
    let extension: Vec<char> = GSM_EXTENSION.chars().collect();
    prop_oneof![
        6 => proptest::sample::select(basic),
        2 => proptest::sample::select(extension),
        1 => proptest::sample::select(vec!['á', 'č', 'đ', 'ŋ', 'š', 'ŧ', 'ž', 'ç', '😀', '\u{0}']),
        1 => any::<char>(),
    ]
}

fn sms_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(sms_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// Short strings that are sometimes a real code, sometimes junk, empty or huge.
fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "1",
            "2",
            "4",
            "8",
            "16",
            " 1 ",
            "3",
            "0",
            "-1",
            "%d",
            "%A",
            "",
            "32",
            "1.0",
            "99999999999999999999",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
        "[0-9]{1,12}",
        sms_text(2100),
    ]
}

fn params(real_keys: &'static [&'static str]) -> impl Strategy<Value = HashMap<String, String>> {
    let known = proptest::collection::hash_map(
        proptest::sample::select(real_keys.to_vec()).prop_map(str::to_owned),
        param_value(),
        0..=real_keys.len(),
    );
    let other = proptest::collection::hash_map(any::<String>(), any::<String>(), 0..4);
    (known, other).prop_map(|(mut known, other)| {
        for (k, v) in other {
            known.entry(k).or_insert(v);
        }
        known
    })
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        proptest::sample::select(vec![1001, 1002, 1006, 2104, 0, -1]).prop_map(Value::from),
        proptest::sample::select(vec!["1001", "2104", "", "+4791234567", "~1", "/"])
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        sms_text(2100).prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::hash_map(
                prop_oneof![
                    proptest::sample::select(vec![
                        "refId",
                        "resultCode",
                        "source",
                        "userData",
                        "destination",
                        "0",
                        "",
                        "~",
                        "a/b",
                    ])
                    .prop_map(str::to_owned),
                    any::<String>(),
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A callback body: arbitrary JSON, often an object carrying the Link keys with arbitrary values.
fn callback_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        (
            proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "refId",
                        "resultCode",
                        "source",
                        "userData",
                        "destination",
                    ]),
                    json_value(),
                ),
                0..6,
            ),
            json_value(),
        )
            .prop_map(|(pairs, extra)| {
                let mut map = Map::new();
                map.insert("extra".into(), extra);
                for (k, v) in pairs {
                    map.insert(k.to_owned(), v);
                }
                Value::Object(map)
            }),
    ]
}

fn link_shapes() -> JsonShapes {
    JsonShapes {
        report_ref: "/refId".into(),
        report_status: "/resultCode".into(),
        status_map: [
            ("1001", "delivered"),
            ("1002", "failed:expired"),
            ("1006", "failed:not_delivered"),
            ("2104", "failed:unknown_subscriber"),
            ("0", "accepted"),
            ("-1", "buffered"),
            ("", "failed"),
            ("9", "nonsense"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        inbound_from: "/source".into(),
        inbound_text: "/userData".into(),
        inbound_to: Some("/destination".into()),
    }
}

fn pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "/refId",
            "/resultCode",
            "",
            "/",
            "/0",
            "/~1",
            "/~",
            "x"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

/// Arbitrary shapes: arbitrary pointers and an arbitrary status table.
fn shapes() -> impl Strategy<Value = JsonShapes> {
    (
        pointer(),
        pointer(),
        proptest::collection::btree_map(
            any::<String>(),
            prop_oneof![
                proptest::sample::select(vec![
                    "delivered",
                    "failed",
                    "failed:",
                    "accepted",
                    "buffered"
                ])
                .prop_map(str::to_owned),
                any::<String>(),
            ],
            0..4,
        ),
        pointer(),
        pointer(),
        proptest::option::of(pointer()),
    )
        .prop_map(
            |(report_ref, report_status, status_map, inbound_from, inbound_text, inbound_to)| {
                JsonShapes {
                    report_ref,
                    report_status,
                    status_map,
                    inbound_from,
                    inbound_text,
                    inbound_to,
                }
            },
        )
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 9, 0, 0).unwrap()
}

fn sms_message() -> impl Strategy<Value = SmsMessage> {
    (
        sms_text(20),
        sms_text(300),
        proptest::option::of(sms_text(15)),
        sms_text(60),
        // Validity from far in the past to centuries ahead, in seconds.
        proptest::option::of(-10_000_000_000i64..10_000_000_000i64),
    )
        .prop_map(|(to, text, sender, reference, validity)| {
            let now = start();
            SmsMessage {
                to,
                text,
                sender,
                reference,
                valid_until: validity.map(|s| now + TimeDelta::seconds(s)),
                now,
                notice_id: Id::new(now),
                step_id: None,
            }
        })
}

/// Templates: arbitrary JSON whose strings often hold placeholders.
fn template() -> impl Strategy<Value = Value> {
    let placeholder = proptest::sample::select(vec![
        "{to}",
        "{to_digits}",
        "{text}",
        "{sender}",
        "{reference}",
        "{validity_minutes}",
        "{validity_ms}",
        "{unknown}",
        "{",
        "}",
        "{{text}}",
    ]);
    let string = proptest::collection::vec(
        prop_oneof![placeholder.prop_map(str::to_owned), sms_text(8)],
        0..5,
    )
    .prop_map(|parts| Value::String(parts.concat()));
    let leaf = prop_oneof![json_leaf(), string];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::hash_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn numeric_placeholder(s: &str) -> bool {
    s == "{validity_minutes}" || s == "{validity_ms}"
}

/// `rendered` has the shape of `template`: the same keys and lengths, and everything that is
/// not a string unchanged. A string becomes a string, or a number/null when it is exactly
/// `{validity_minutes}` or `{validity_ms}`.
fn same_shape(template: &Value, rendered: &Value) -> Result<(), TestCaseError> {
    match (template, rendered) {
        (Value::String(s), Value::String(r)) => {
            prop_assert!(!numeric_placeholder(s), "{:?} stayed a string", s);
            if !s.contains('{') {
                prop_assert_eq!(s, r);
            }
        }
        (Value::String(s), r) => {
            prop_assert!(
                s == "{validity_minutes}" || s == "{validity_ms}",
                "{s:?} -> {r}"
            );
            prop_assert!(r.is_null() || r.is_i64(), "{r}");
        }
        (Value::Array(t), Value::Array(r)) => {
            prop_assert_eq!(t.len(), r.len());
            for (t, r) in t.iter().zip(r) {
                same_shape(t, r)?;
            }
        }
        (Value::Object(t), Value::Object(r)) => {
            for (k, t) in t {
                match r.get(k) {
                    Some(r) => same_shape(t, r)?,
                    // Only a numeric placeholder without a value leaves its field out.
                    None => prop_assert!(
                        t == "{validity_minutes}" || t == "{validity_ms}",
                        "key {k:?} lost"
                    ),
                }
            }
            prop_assert!(r.keys().all(|k| t.contains_key(k)), "no keys added");
        }
        (t, r) => prop_assert_eq!(t, r),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn kannel_dlr_never_panics(p in params(&["ref", "status", "answer"])) {
        let result = reports::kannel_dlr(&p);
        let reference = p.get("ref").filter(|r| !r.is_empty());
        let code = p.get("status").and_then(|s| s.trim().parse::<u32>().ok());
        let known = matches!(code, Some(1 | 2 | 4 | 8 | 16));
        prop_assert_eq!(result.is_ok(), reference.is_some() && known, "{:?}", result);
        if let Ok(report) = result {
            prop_assert_eq!(Some(&report.reference), reference);
            let answer = p.get("answer").map(|a| a.chars().take(200).collect::<String>()).unwrap_or_default();
            prop_assert_eq!(report.detail, format!("kannel status {}: {answer}", code.unwrap()));
            match (code.unwrap(), &report.status) {
                (1, ReportStatus::Delivered)
                | (2 | 16, ReportStatus::Failed(_))
                | (4, ReportStatus::Buffered)
                | (8, ReportStatus::Accepted) => {}
                (c, s) => prop_assert!(false, "status {c} became {s:?}"),
            }
        }
    }

    #[test]
    fn kannel_inbound_never_panics(p in params(&["from", "to", "text"])) {
        let result = reports::kannel_inbound(&p);
        let from = p.get("from").filter(|f| !f.is_empty());
        let text = p.get("text").cloned().unwrap_or_default();
        prop_assert_eq!(
            result.is_ok(),
            from.is_some() && text.chars().count() <= 2000,
            "{:?}",
            result
        );
        if let Ok(m) = result {
            prop_assert_eq!(Some(&m.from), from);
            prop_assert_eq!(m.text, text);
            prop_assert_eq!(m.to.as_ref(), p.get("to").filter(|t| !t.is_empty()));
        }
    }

    #[test]
    fn json_dlr_never_panics_with_the_link_shapes(body in callback_body()) {
        let shapes = link_shapes();
        if let Ok(report) = reports::json_dlr(&shapes, &body) {
            let reference = body.pointer("/refId").and_then(as_text);
            prop_assert_eq!(Some(&report.reference), reference.as_ref());
            prop_assert!(!report.reference.is_empty());
            let code = body.pointer("/resultCode").and_then(as_text).unwrap();
            let meaning = &shapes.status_map[&code];
            prop_assert!(meaning != "nonsense");
            let expected = match meaning.as_str() {
                "delivered" => ReportStatus::Delivered,
                "accepted" => ReportStatus::Accepted,
                "buffered" => ReportStatus::Buffered,
                "failed" => ReportStatus::Failed(format!("provider_status_{code}")),
                m => ReportStatus::Failed(m.strip_prefix("failed:").unwrap().to_owned()),
            };
            prop_assert_eq!(report.status, expected);
        }
    }

    #[test]
    fn json_inbound_never_panics_with_the_link_shapes(body in callback_body()) {
        let result = reports::json_inbound(&link_shapes(), &body);
        let from = body.pointer("/source").and_then(as_text).filter(|f| !f.is_empty());
        let text = body.pointer("/userData").and_then(as_text).unwrap_or_default();
        prop_assert_eq!(result.is_ok(), from.is_some() && text.chars().count() <= 2000);
        if let Ok(m) = result {
            prop_assert_eq!(Some(m.from), from);
            prop_assert_eq!(m.text, text);
            prop_assert_eq!(m.to, body.pointer("/destination").and_then(as_text));
        }
    }

    #[test]
    fn json_parsers_never_panic_with_any_shapes(shapes in shapes(), body in callback_body()) {
        if let Ok(report) = reports::json_dlr(&shapes, &body) {
            prop_assert!(!report.reference.is_empty());
        }
        if let Ok(m) = reports::json_inbound(&shapes, &body) {
            prop_assert!(!m.from.is_empty());
            prop_assert!(m.text.chars().count() <= 2000);
        }
    }

    #[test]
    fn segments_are_consistent(text in sms_text(500), extra in sms_char()) {
        let s = segments::count(&text);
        prop_assert!(s.segments >= 1);
        let gsm = text.chars().all(is_gsm);
        prop_assert_eq!(s.encoding == Encoding::Gsm7, gsm, "{:?}", text);
        let (units, single, part) = if gsm {
            let septets = text.chars().map(|c| if GSM_EXTENSION.contains(c) { 2 } else { 1 }).sum();
            (septets, 160, 153)
        } else {
            (text.encode_utf16().count(), 70, 67)
        };
        prop_assert_eq!(s.units, units);
        let expected = if units <= single { 1 } else { units.div_ceil(part) };
        prop_assert_eq!(s.segments, expected);

        let mut longer = text.clone();
        longer.push(extra);
        let t = segments::count(&longer);
        prop_assert!(t.segments >= s.segments, "appending {:?} went from {} to {}", extra, s.segments, t.segments);
        prop_assert!(t.units > s.units || t.encoding != s.encoding);
    }

    #[test]
    fn segments_never_panic_on_any_string(text in any::<String>()) {
        let s = segments::count(&text);
        prop_assert!(s.segments >= 1);
        prop_assert_eq!(s.encoding == Encoding::Gsm7, text.chars().all(is_gsm));
    }

    #[test]
    fn render_never_panics_and_keeps_the_shape(template in template(), m in sms_message()) {
        let rendered = render(&template, &m);
        same_shape(&template, &rendered)?;
        // Serialising what we send must work too.
        prop_assert!(serde_json::to_vec(&rendered).is_ok());
    }

    #[test]
    fn render_fills_numbers(m in sms_message()) {
        let rendered = render(
            &json!({"min": "{validity_minutes}", "ms": "{validity_ms}", "to": "{to_digits}"}),
            &m,
        );
        match m.validity_minutes() {
            Some(minutes) => {
                prop_assert!(minutes >= 1);
                prop_assert_eq!(&rendered["min"], &json!(minutes));
                prop_assert_eq!(&rendered["ms"], &json!(minutes * 60_000));
            }
            None => {
                prop_assert!(rendered.get("min").is_none(), "left out without a validity");
                prop_assert!(rendered.get("ms").is_none());
            }
        }
        prop_assert_eq!(&rendered["to"], &json!(m.to.trim_start_matches('+')));
    }
}

// ---------------------------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------------------------

fn kv(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_gsm_tables_here_are_complete() {
    assert_eq!(GSM_BASIC.chars().count(), 127, "128 codes less ESC");
    assert_eq!(GSM_EXTENSION.chars().count(), 10);
}

#[test]
fn kannel_statuses() {
    let dlr = |status: &str, answer: &str| {
        reports::kannel_dlr(&kv(&[
            ("ref", "n-0-1"),
            ("status", status),
            ("answer", answer),
        ]))
    };
    assert_eq!(dlr("1", "ACK/").unwrap().status, ReportStatus::Delivered);
    assert_eq!(
        dlr("2", "NACK/0x0000000b/Unknown subscriber")
            .unwrap()
            .status,
        ReportStatus::Failed("unknown_subscriber".into())
    );
    assert_eq!(
        dlr("2", "NACK/Absent subscriber").unwrap().status,
        ReportStatus::Failed("expired".into())
    );
    assert_eq!(
        dlr("2", "NACK/").unwrap().status,
        ReportStatus::Failed("undeliverable".into())
    );
    assert_eq!(dlr("4", "").unwrap().status, ReportStatus::Buffered);
    assert_eq!(dlr("8", "ACK/").unwrap().status, ReportStatus::Accepted);
    assert_eq!(
        dlr("16", "NACK/0x00000045/Submit failed").unwrap().status,
        ReportStatus::Failed("rejected_by_smsc".into())
    );
    assert_eq!(
        dlr("16", "Validity period expired").unwrap().status,
        ReportStatus::Failed("expired".into())
    );
    assert_eq!(dlr(" 1 ", "").unwrap().status, ReportStatus::Delivered);
    let report = dlr("1", "ACK/").unwrap();
    assert_eq!(report.reference, "n-0-1");
    assert_eq!(report.detail, "kannel status 1: ACK/");
    // A long SMSC answer is cut to 200 characters in the history.
    let long = "æ".repeat(500);
    assert_eq!(
        dlr("1", &long).unwrap().detail,
        format!("kannel status 1: {}", "æ".repeat(200))
    );
}

#[test]
fn kannel_unknown_or_unsubstituted_statuses_are_refused() {
    for status in ["%d", "3", "0", "32", "-1", "", "1.0", "delivered"] {
        assert!(
            reports::kannel_dlr(&kv(&[("ref", "n-0-1"), ("status", status)])).is_err(),
            "{status:?}"
        );
    }
    assert!(reports::kannel_dlr(&kv(&[("status", "1")])).is_err());
    assert!(reports::kannel_dlr(&kv(&[("ref", ""), ("status", "1")])).is_err());
    // An unsubstituted %A is only text.
    assert_eq!(
        reports::kannel_dlr(&kv(&[("ref", "x"), ("status", "1"), ("answer", "%A")]))
            .unwrap()
            .detail,
        "kannel status 1: %A"
    );
}

#[test]
fn kannel_inbound_replies() {
    let m = reports::kannel_inbound(&kv(&[
        ("from", "+4791234567"),
        ("to", "2270"),
        ("text", "JA æøå"),
    ]))
    .unwrap();
    assert_eq!(m.from, "+4791234567");
    assert_eq!(m.to.as_deref(), Some("2270"));
    assert_eq!(m.text, "JA æøå");
    let m = reports::kannel_inbound(&kv(&[("from", "+4791234567"), ("to", "")])).unwrap();
    assert_eq!(m.to, None);
    assert_eq!(m.text, "");
    assert!(reports::kannel_inbound(&kv(&[("text", "JA")])).is_err());
    assert!(reports::kannel_inbound(&kv(&[("from", "x"), ("text", &"a".repeat(2001))])).is_err());
}

#[test]
fn render_keeps_the_text_literal_when_it_looks_like_no_placeholder() {
    let m = SmsMessage {
        to: "+4791234567".into(),
        text: "Svar JA {x} }{".into(),
        sender: None,
        reference: "ref-1".into(),
        valid_until: None,
        now: start(),
        notice_id: Id::new(start()),
        step_id: None,
    };
    let body = render(
        &json!({"t": "{text}", "s": "{sender}", "n": 5, "v": "{validity_ms}", "mix": "{to}/{to_digits}"}),
        &m,
    );
    assert_eq!(
        body,
        json!({"t": "Svar JA {x} }{", "s": "", "n": 5, "mix": "+4791234567/4791234567"}),
        "a validity placeholder without a value leaves its field out"
    );
}

/// Product bug (channels/src/sms/http.rs:79-91): placeholders are replaced one after another
/// in the already-substituted string, so a message text (or sender) that itself contains
/// `{reference}`, `{sender}` or `{validity_…}` is rewritten before it leaves. The text should go
/// out verbatim.
#[test]
fn render_does_not_substitute_inside_the_text() {
    let m = SmsMessage {
        to: "+4791234567".into(),
        text: "Skriv {reference} eller {sender}".into(),
        sender: Some("Legekontor".into()),
        reference: "ref-1".into(),
        valid_until: None,
        now: start(),
        notice_id: Id::new(start()),
        step_id: None,
    };
    let body = render(&json!({"userData": "{text}"}), &m);
    assert_eq!(body["userData"], json!("Skriv {reference} eller {sender}"));
}
