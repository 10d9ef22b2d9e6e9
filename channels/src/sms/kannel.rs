//! Kannel, the open-source SMS gateway many operators and aggregators run. We send with its
//! `sendsms` HTTP interface and ask for every delivery report (`dlr-mask=31`: 1 delivered,
//! 2 failed, 4 buffered, 8 accepted by the SMSC, 16 rejected by the SMSC) at our `dlr-url`, where
//! Kannel puts the status in `%d` and the SMSC's answer in `%A`. Replies reach us through an
//! `sms-service` whose `get-url` calls our inbound endpoint with `%p` (sender), `%P` (receiver)
//! and `%a` (text); whatever that endpoint answers, Kannel sends back to the phone.
//!
//! Text goes as UTF-8 (`charset=UTF-8`); Kannel encodes GSM-7 (`coding=0`) or UCS-2 (`coding=2`,
//! chosen when the text has characters outside GSM-7, e.g. Northern Sami letters).

use super::segments::{self, Encoding};
use super::{Sent, SmsMessage, SmsProvider};
use crate::BoxFuture;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Kannel {
    pub name: String,
    /// `http://host:13013/cgi-bin/sendsms`
    pub sendsms_url: String,
    pub username: String,
    pub password: String,
    /// Our delivery-report endpoint for this provider, e.g.
    /// `https://kontakt.example.no/hooks/sms/kannel/SECRET/dlr`.
    pub dlr_base: String,
    pub http: reqwest::Client,
}

impl Kannel {
    pub fn new(
        name: String,
        sendsms_url: String,
        username: String,
        password: String,
        dlr_base: String,
        timeout: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Kannel {
            name,
            sendsms_url,
            username,
            password,
            dlr_base,
            http,
        }
    }

    /// The `dlr-url` for one message: Kannel fills in `%d` and `%A`. Our references are
    /// UUIDs with a position and an attempt number, so they need no escaping.
    fn dlr_url(&self, reference: &str) -> String {
        let join = if self.dlr_base.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{join}ref={reference}&status=%d&answer=%A", self.dlr_base)
    }
}

impl SmsProvider for Kannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn sends_reports(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, m: &'a SmsMessage) -> BoxFuture<'a, Sent> {
        Box::pin(async move {
            let coding = match segments::count(&m.text).encoding {
                Encoding::Gsm7 => "0",
                Encoding::Ucs2 => "2",
            };
            let mut query: Vec<(&str, String)> = vec![
                ("username", self.username.clone()),
                ("password", self.password.clone()),
                ("to", m.to.clone()),
                ("text", m.text.clone()),
                ("charset", "UTF-8".into()),
                ("coding", coding.into()),
                ("dlr-mask", "31".into()),
                ("dlr-url", self.dlr_url(&m.reference)),
            ];
            if let Some(from) = &m.sender {
                query.push(("from", from.clone()));
            }
            if let Some(minutes) = m.validity_minutes() {
                query.push(("validity", minutes.to_string()));
            }
            let answer = self.http.get(&self.sendsms_url).query(&query).send().await;
            match answer {
                Err(e) => Sent::Unavailable {
                    retry_after: None,
                    reason: format!("kannel unreachable: {}", e.without_url()),
                },
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    let first = body.lines().next().unwrap_or_default().trim().to_owned();
                    if status.is_success() {
                        // "0: Accepted for delivery" or "3: Queued for later delivery".
                        Sent::Accepted {
                            provider_ref: m.reference.clone(),
                        }
                    } else if status.as_u16() == 400 && !first.to_lowercase().contains("auth") {
                        Sent::Rejected {
                            reason: format!("kannel refused the message: {first}"),
                        }
                    } else {
                        Sent::Unavailable {
                            retry_after: None,
                            reason: format!("kannel answered {status}: {first}"),
                        }
                    }
                }
            }
        })
    }
}
