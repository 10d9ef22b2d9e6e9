//! Reading what providers send back: delivery reports and replies from phones, for Kannel and
//! for JSON providers. Parsers take untrusted input: they return an error for anything they do
//! not understand and never panic.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportStatus {
    /// It reached the phone.
    Delivered,
    /// It will not reach the phone (unknown subscriber, expired, rejected); why.
    Failed(String),
    /// The operator took it (Kannel 8); nothing changes.
    Accepted,
    /// The operator holds it for a phone that is off (Kannel 4); nothing changes.
    Buffered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Our reference: the step's idempotency key.
    pub reference: String,
    pub status: ReportStatus,
    /// The provider's own words, for the notice's history.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    pub from: String,
    pub to: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ParseError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ParseError(format!("missing parameter {name}")))
}

/// Kannel's `dlr-url` call: `ref` (ours), `status` (`%d`), `answer` (`%A`, the SMSC's reply).
pub fn kannel_dlr(params: &HashMap<String, String>) -> Result<DeliveryReport, ParseError> {
    let reference = param(params, "ref")?.to_owned();
    let code: u32 = param(params, "status")?
        .trim()
        .parse()
        .map_err(|_| ParseError("status is not a number".into()))?;
    let answer = params.get("answer").cloned().unwrap_or_default();
    let answer: String = answer.chars().take(200).collect();
    let status = match code {
        1 => ReportStatus::Delivered,
        2 => ReportStatus::Failed(failure_reason(&answer, "undeliverable")),
        4 => ReportStatus::Buffered,
        8 => ReportStatus::Accepted,
        16 => ReportStatus::Failed(failure_reason(&answer, "rejected_by_smsc")),
        other => return Err(ParseError(format!("unknown Kannel status {other}"))),
    };
    Ok(DeliveryReport {
        reference,
        status,
        detail: format!("kannel status {code}: {answer}"),
    })
}

/// A short reason from an SMSC's answer: "unknown_subscriber" or "expired" when it says so.
fn failure_reason(answer: &str, fallback: &str) -> String {
    let lower = answer.to_lowercase();
    if lower.contains("unknown") {
        "unknown_subscriber".into()
    } else if lower.contains("expired") || lower.contains("validity") || lower.contains("absent") {
        "expired".into()
    } else {
        fallback.into()
    }
}

/// Kannel's `get-url` call for a reply: `from` (`%p`), `to` (`%P`), `text` (`%a`).
pub fn kannel_inbound(params: &HashMap<String, String>) -> Result<InboundSms, ParseError> {
    let from = param(params, "from")?.to_owned();
    let text = params.get("text").cloned().unwrap_or_default();
    if text.chars().count() > 2000 {
        return Err(ParseError("text is too long for an SMS".into()));
    }
    Ok(InboundSms {
        from,
        to: params.get("to").cloned().filter(|t| !t.is_empty()),
        text,
    })
}

/// Where a JSON provider puts things in its callbacks, as JSON pointers, and what its status
/// codes mean (`delivered`, `failed` or `failed:<reason>`, `accepted`, `buffered`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonShapes {
    pub report_ref: String,
    pub report_status: String,
    pub status_map: BTreeMap<String, String>,
    pub inbound_from: String,
    pub inbound_text: String,
    pub inbound_to: Option<String>,
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn json_dlr(shapes: &JsonShapes, body: &Value) -> Result<DeliveryReport, ParseError> {
    let reference = body
        .pointer(&shapes.report_ref)
        .and_then(as_text)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ParseError(format!("no reference at {}", shapes.report_ref)))?;
    let code = body
        .pointer(&shapes.report_status)
        .and_then(as_text)
        .ok_or_else(|| ParseError(format!("no status at {}", shapes.report_status)))?;
    let meaning = shapes
        .status_map
        .get(&code)
        .ok_or_else(|| ParseError(format!("status {code} is not in the status table")))?;
    let status = match meaning.split_once(':') {
        Some(("failed", why)) => ReportStatus::Failed(why.to_owned()),
        _ => match meaning.as_str() {
            "delivered" => ReportStatus::Delivered,
            "failed" => ReportStatus::Failed(format!("provider_status_{code}")),
            "accepted" => ReportStatus::Accepted,
            "buffered" => ReportStatus::Buffered,
            other => {
                return Err(ParseError(format!(
                    "status table meaning {other:?} is not known"
                )));
            }
        },
    };
    Ok(DeliveryReport {
        reference,
        status,
        detail: format!("status {code} ({meaning})"),
    })
}

pub fn json_inbound(shapes: &JsonShapes, body: &Value) -> Result<InboundSms, ParseError> {
    let from = body
        .pointer(&shapes.inbound_from)
        .and_then(as_text)
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ParseError(format!("no sender at {}", shapes.inbound_from)))?;
    let text = body
        .pointer(&shapes.inbound_text)
        .and_then(as_text)
        .unwrap_or_default();
    if text.chars().count() > 2000 {
        return Err(ParseError("text is too long for an SMS".into()));
    }
    let to = shapes
        .inbound_to
        .as_deref()
        .and_then(|p| body.pointer(p))
        .and_then(as_text);
    Ok(InboundSms { from, to, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kannel_status_bits_map_to_step_states() {
        let r = kannel_dlr(&params(&[
            ("ref", "n-0-0"),
            ("status", "1"),
            ("answer", "ACK/"),
        ]))
        .unwrap();
        assert_eq!(r.status, ReportStatus::Delivered);
        let r = kannel_dlr(&params(&[
            ("ref", "n-0-0"),
            ("status", "2"),
            ("answer", "NACK/Unknown subscriber"),
        ]))
        .unwrap();
        assert_eq!(r.status, ReportStatus::Failed("unknown_subscriber".into()));
        let r = kannel_dlr(&params(&[
            ("ref", "n-0-0"),
            ("status", "2"),
            ("answer", "validity period expired"),
        ]))
        .unwrap();
        assert_eq!(r.status, ReportStatus::Failed("expired".into()));
        assert_eq!(
            kannel_dlr(&params(&[("ref", "x"), ("status", "4")]))
                .unwrap()
                .status,
            ReportStatus::Buffered
        );
        assert_eq!(
            kannel_dlr(&params(&[("ref", "x"), ("status", "8")]))
                .unwrap()
                .status,
            ReportStatus::Accepted
        );
        assert!(matches!(
            kannel_dlr(&params(&[("ref", "x"), ("status", "16")]))
                .unwrap()
                .status,
            ReportStatus::Failed(_)
        ));
        assert!(kannel_dlr(&params(&[("ref", "x"), ("status", "3")])).is_err());
        assert!(kannel_dlr(&params(&[("status", "1")])).is_err());
        assert!(
            kannel_dlr(&params(&[("ref", "x"), ("status", "%d")])).is_err(),
            "an unsubstituted escape"
        );
    }

    fn link() -> JsonShapes {
        JsonShapes {
            report_ref: "/refId".into(),
            report_status: "/resultCode".into(),
            status_map: [
                ("1001", "delivered"),
                ("1002", "failed:expired"),
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

    #[test]
    fn json_reports_use_the_status_table() {
        let r = json_dlr(
            &link(),
            &serde_json::json!({"refId": "n-0-0", "resultCode": 1001}),
        )
        .unwrap();
        assert_eq!(r.status, ReportStatus::Delivered);
        let r = json_dlr(
            &link(),
            &serde_json::json!({"refId": "n-0-0", "resultCode": "2104"}),
        )
        .unwrap();
        assert_eq!(r.status, ReportStatus::Failed("unknown_subscriber".into()));
        assert!(
            json_dlr(
                &link(),
                &serde_json::json!({"refId": "n", "resultCode": 9999})
            )
            .is_err()
        );
        assert!(json_dlr(&link(), &serde_json::json!([1, 2])).is_err());
        let m = json_inbound(&link(), &serde_json::json!({"source": "+4791234567", "userData": "ok k7m x3q", "destination": "2270"})).unwrap();
        assert_eq!(m.text, "ok k7m x3q");
        assert_eq!(m.to.as_deref(), Some("2270"));
    }
}
