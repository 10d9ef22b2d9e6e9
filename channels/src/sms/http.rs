//! A JSON HTTP provider for the Norwegian aggregators (Link Mobility, Sveve, Intelecom and the
//! like): a configurable URL, an `Authorization` header, a body template, the JSON pointer of the
//! provider's message id in its answer, and for its callbacks the pointers of our reference and
//! its status code with a table from status codes to what they mean.
//!
//! The body template is JSON whose strings may name `{to}`, `{to_digits}`, `{text}`, `{sender}`,
//! `{reference}`, `{validity_minutes}` and `{validity_ms}`; a string that is exactly one
//! numeric placeholder becomes a JSON number.
//!
//! Answers: 2xx accepted; 409 (the provider already has this reference) accepted; 400, 410 and
//! 422 refuse the message for good; anything else (credentials, a wrong URL, 429, 5xx,
//! timeouts) is unavailable — retried and failed over, honouring `Retry-After`.

use super::{Sent, SmsMessage, SmsProvider};
use crate::BoxFuture;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct JsonProvider {
    pub name: String,
    pub url: String,
    pub auth_header: Option<String>,
    pub body: Value,
    /// JSON pointer to the provider's message id in a successful answer, e.g. `/messageId`.
    pub response_ref: Option<String>,
    pub http: reqwest::Client,
    /// Whether it calls back with delivery reports (a Link account without a report gate does not).
    pub reports: bool,
}

impl JsonProvider {
    pub fn new(
        name: String,
        url: String,
        auth_header: Option<String>,
        body: Value,
        response_ref: Option<String>,
        timeout: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        JsonProvider {
            name,
            url,
            auth_header,
            body,
            response_ref,
            http,
            reports: true,
        }
    }
}

/// Fills the template's placeholders from the message.
pub fn render(template: &Value, m: &SmsMessage) -> Value {
    let validity_minutes = m.validity_minutes();
    let text_of = |name: &str| -> Option<String> {
        Some(match name {
            "to" => m.to.clone(),
            "to_digits" => m.to.trim_start_matches('+').to_owned(),
            "text" => m.text.clone(),
            "sender" => m.sender.clone().unwrap_or_default(),
            "reference" => m.reference.clone(),
            "validity_minutes" => validity_minutes?.to_string(),
            "validity_ms" => (validity_minutes? * 60_000).to_string(),
            _ => return None,
        })
    };
    match template {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
                && matches!(name, "validity_minutes" | "validity_ms")
            {
                return text_of(name)
                    .and_then(|n| n.parse::<i64>().ok())
                    .map_or(Value::Null, Value::from);
            }
            // One pass over the template: what a placeholder puts in is never read again, so a
            // text that happens to contain "{reference}" goes out as written.
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let after = &rest[open + 1..];
                match after.find('}').map(|close| (&after[..close], close)) {
                    Some((name, close)) if text_of(name).is_some() || is_placeholder(name) => {
                        out.push_str(&text_of(name).unwrap_or_default());
                        rest = &after[close + 1..];
                    }
                    _ => {
                        out.push('{');
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, m)).collect()),
        // A numeric placeholder without a value (no validity) leaves its field out rather than
        // sending null, which some providers refuse.
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, m)))
                .filter(|(k, v)| !v.is_null() || map[k].is_null())
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_placeholder(name: &str) -> bool {
    matches!(
        name,
        "to" | "to_digits" | "text" | "sender" | "reference" | "validity_minutes" | "validity_ms"
    )
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl SmsProvider for JsonProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn sends_reports(&self) -> bool {
        self.reports
    }

    fn send<'a>(&'a self, m: &'a SmsMessage) -> BoxFuture<'a, Sent> {
        Box::pin(async move {
            let mut request = self.http.post(&self.url).json(&render(&self.body, m));
            if let Some(auth) = &self.auth_header {
                request = request.header(reqwest::header::AUTHORIZATION, auth);
            }
            let answer = match request.send().await {
                Ok(r) => r,
                Err(e) if e.is_timeout() => {
                    return Sent::Unavailable {
                        retry_after: None,
                        reason: format!("{}: timed out", self.name),
                    };
                }
                Err(e) => {
                    return Sent::Unavailable {
                        retry_after: None,
                        reason: format!("{}: {}", self.name, e.without_url()),
                    };
                }
            };
            let status = answer.status();
            let wait = retry_after(answer.headers());
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            let provider_ref = self
                .response_ref
                .as_deref()
                .and_then(|p| body.pointer(p))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_else(|| m.reference.clone());
            match status.as_u16() {
                200..=299 | 409 => Sent::Accepted { provider_ref },
                401 | 403 | 429 | 500..=599 => Sent::Unavailable {
                    retry_after: wait,
                    reason: format!("{} answered {status}", self.name),
                },
                _ => Sent::Rejected {
                    reason: format!("{} refused the message ({status})", self.name),
                },
            }
        })
    }
}
