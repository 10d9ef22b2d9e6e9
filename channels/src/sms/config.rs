//! SMS providers as configured (`[[sms_provider]]` tables in the TOML file), checked and turned
//! into the channel and the table our webhook endpoints use to read each provider's callbacks.
//!
//! ```toml
//! [[sms_provider]]
//! name = "kannel"            # also the path segment of its callbacks: /hooks/sms/kannel/…
//! kind = "kannel"            # outbox | kannel | json | link
//! url = "http://127.0.0.1:13013/cgi-bin/sendsms"
//! username = "kontaktvei"
//! password = "…"
//! secret = "long-random-string"   # in the callback URLs we give the provider
//! priority = 1               # lower first; equal priorities share by weight
//! weight = 1
//! rate_per_second = 20
//! timeout_ms = 5000
//! ```

use super::http::JsonProvider;
use super::kannel::Kannel;
use super::reports::JsonShapes;
use super::{OutboxSms, RouteConfig, SmsChannel, SmsProvider};
use kontaktvei_store::{Clock, Store};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The whole `Authorization` header value, e.g. `Basic …` or `Bearer …` (json, link).
    pub auth_header: Option<String>,
    /// The shared secret in our callback URLs.
    pub secret: Option<String>,
    /// Default sender id when the organisation has none.
    pub sender: Option<String>,
    pub priority: Option<u32>,
    pub weight: Option<u32>,
    pub rate_per_second: Option<u32>,
    pub timeout_ms: Option<u64>,
    /// json: the request body template (see `http`).
    pub body: Option<Value>,
    /// json: JSON pointer to the provider's message id in its answer.
    pub response_ref: Option<String>,
    /// json: JSON pointers into delivery reports and replies, and the status table.
    pub report_ref: Option<String>,
    pub report_status: Option<String>,
    pub status_map: Option<BTreeMap<String, String>>,
    pub inbound_from: Option<String>,
    pub inbound_text: Option<String>,
    pub inbound_to: Option<String>,
    /// link: Link Mobility's platform ids and delivery-report gate.
    pub platform_id: Option<String>,
    pub platform_partner_id: Option<String>,
    pub gate_id: Option<String>,
}

/// How to read one provider's callbacks.
#[derive(Debug, Clone)]
pub enum Callbacks {
    Kannel,
    Json(JsonShapes),
    /// The outbox sends no callbacks.
    None,
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub secret: String,
    pub callbacks: Callbacks,
}

/// The SMS channel and the callback table, ready to use.
#[derive(Debug)]
pub struct SmsSetup {
    pub channel: SmsChannel,
    pub hooks: HashMap<String, Hook>,
}

/// A configuration mistake: which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// Link Mobility's "Common" REST API (public documentation, "SMS REST API – MT and Delivery
/// Reports"): POST JSON with source, destination, userData, platformId, platformPartnerId,
/// refId, useDeliveryReport and deliveryReportGates; basic authentication; the answer carries
/// `messageId`; delivery reports carry `refId` and `resultCode` (1001 delivered, 1002 expired,
/// 1006 not delivered, 2104 unknown subscriber); MO messages carry `source`, `destination`,
/// `userData`.
fn link_preset(c: &ProviderConfig) -> (Value, JsonShapes) {
    let body = serde_json::json!({
        "source": "{sender}",
        "destination": "{to}",
        "userData": "{text}",
        "platformId": c.platform_id.clone().unwrap_or_else(|| "COMMON-API".into()),
        "platformPartnerId": c.platform_partner_id.clone().unwrap_or_default(),
        "refId": "{reference}",
        "useDeliveryReport": c.gate_id.is_some(),
        "deliveryReportGates": c.gate_id.clone().into_iter().collect::<Vec<_>>(),
        "relativeValidityTime": "{validity_ms}",
    });
    let status_map = [
        ("1001", "delivered"),
        ("1002", "failed:expired"),
        ("1006", "failed:not_delivered"),
        ("2104", "failed:unknown_subscriber"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let shapes = JsonShapes {
        report_ref: "/refId".into(),
        report_status: "/resultCode".into(),
        status_map,
        inbound_from: "/source".into(),
        inbound_text: "/userData".into(),
        inbound_to: Some("/destination".into()),
    };
    (body, shapes)
}

/// Checks the providers without building anything (configuration loading uses it).
pub fn check(configs: &[ProviderConfig]) -> Result<(), ConfigError> {
    build_with(configs, "http://localhost", None, None).map(|_| ())
}

/// Checks every provider and builds the channel. With no providers configured, the outbox.
/// `public_base_url` is where providers reach our callbacks.
pub fn build(
    configs: &[ProviderConfig],
    public_base_url: &str,
    store: &Store,
    clock: Arc<dyn Clock>,
) -> Result<SmsSetup, ConfigError> {
    let (routes, hooks, default_sender) =
        build_with(configs, public_base_url, Some(store), Some(&clock))?;
    Ok(SmsSetup {
        channel: SmsChannel::new(routes, clock, default_sender),
        hooks,
    })
}

type Built = (Vec<RouteConfig>, HashMap<String, Hook>, Option<String>);

fn build_with(
    configs: &[ProviderConfig],
    public_base_url: &str,
    store: Option<&Store>,
    _clock: Option<&Arc<dyn Clock>>,
) -> Result<Built, ConfigError> {
    let mut routes = Vec::new();
    let mut hooks = HashMap::new();
    let outbox = ProviderConfig {
        name: "outbox".into(),
        kind: "outbox".into(),
        ..Default::default()
    };
    let configs: Vec<&ProviderConfig> = if configs.is_empty() {
        vec![&outbox]
    } else {
        configs.iter().collect()
    };
    let mut default_sender = None;
    for (i, c) in configs.iter().enumerate() {
        let key = |field: &str| format!("sms_provider[{i}].{field}");
        let err = |field: &str, message: &str| ConfigError {
            key: key(field),
            message: message.to_owned(),
        };
        if c.name.is_empty()
            || !c
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(
                "name",
                "use letters, digits, - and _ (it becomes part of the callback URL)",
            ));
        }
        if hooks.contains_key(&c.name) {
            return Err(err("name", "two providers have this name"));
        }
        let require = |field: &str, value: &Option<String>| -> Result<String, ConfigError> {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(field, &format!("a {} provider needs {field}", c.kind)))
        };
        let secret = match c.kind.as_str() {
            "outbox" => String::new(),
            _ => {
                let s = require("secret", &c.secret)?;
                if s.len() < 16 {
                    return Err(err(
                        "secret",
                        "use at least 16 random characters; it guards the callback URLs",
                    ));
                }
                s
            }
        };
        let timeout = Duration::from_millis(c.timeout_ms.unwrap_or(5000).clamp(100, 120_000));
        let callback_base = format!(
            "{}/hooks/sms/{}/{}",
            public_base_url.trim_end_matches('/'),
            c.name,
            secret
        );
        let url = |v: &Option<String>| -> Result<String, ConfigError> {
            let u = require("url", v)?;
            reqwest::Url::parse(&u).map_err(|_| {
                err(
                    "url",
                    "not a URL; write e.g. http://127.0.0.1:13013/cgi-bin/sendsms",
                )
            })?;
            Ok(u)
        };
        let (provider, callbacks): (Arc<dyn SmsProvider>, Callbacks) = match c.kind.as_str() {
            "outbox" => match store {
                Some(store) => {
                    tracing::warn!(
                        "SMS provider is the outbox: messages are stored in the database and nothing leaves this machine"
                    );
                    (Arc::new(OutboxSms::new(store.clone())), Callbacks::None)
                }
                None => continue,
            },
            "kannel" => (
                Arc::new(Kannel::new(
                    c.name.clone(),
                    url(&c.url)?,
                    require("username", &c.username)?,
                    require("password", &c.password)?,
                    format!("{callback_base}/dlr"),
                    timeout,
                )),
                Callbacks::Kannel,
            ),
            "json" | "link" => {
                let (body, shapes) = if c.kind == "link" {
                    link_preset(c)
                } else {
                    let body = c
                        .body
                        .clone()
                        .ok_or_else(|| err("body", "a json provider needs a body template"))?;
                    let shapes = JsonShapes {
                        report_ref: require("report_ref", &c.report_ref)?,
                        report_status: require("report_status", &c.report_status)?,
                        status_map: c.status_map.clone().ok_or_else(|| {
                            err("status_map", "a json provider needs its status table")
                        })?,
                        inbound_from: c.inbound_from.clone().unwrap_or_else(|| "/from".into()),
                        inbound_text: c.inbound_text.clone().unwrap_or_else(|| "/text".into()),
                        inbound_to: c.inbound_to.clone(),
                    };
                    (body, shapes)
                };
                for (code, meaning) in &shapes.status_map {
                    let ok = matches!(
                        meaning.as_str(),
                        "delivered" | "failed" | "accepted" | "buffered"
                    ) || meaning.starts_with("failed:");
                    if !ok {
                        return Err(err(
                            "status_map",
                            &format!(
                                "{code} = {meaning:?}: use delivered, failed, failed:<reason>, accepted or buffered"
                            ),
                        ));
                    }
                }
                let response_ref = c
                    .response_ref
                    .clone()
                    .or_else(|| (c.kind == "link").then(|| "/messageId".to_owned()));
                let mut provider = JsonProvider::new(
                    c.name.clone(),
                    url(&c.url)?,
                    c.auth_header.clone(),
                    body,
                    response_ref,
                    timeout,
                );
                // Link reports only through a configured gate.
                provider.reports = c.kind != "link" || c.gate_id.is_some();
                (Arc::new(provider), Callbacks::Json(shapes))
            }
            _ => return Err(err("kind", "use outbox, kannel, json or link")),
        };
        if default_sender.is_none() {
            default_sender = c.sender.clone();
        }
        hooks.insert(c.name.clone(), Hook { secret, callbacks });
        routes.push(RouteConfig {
            provider,
            priority: c.priority.unwrap_or(1),
            weight: c.weight.unwrap_or(1).clamp(1, 1000),
            rate_per_second: c.rate_per_second,
        });
    }
    Ok((routes, hooks, default_sender))
}
