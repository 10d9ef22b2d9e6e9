//! The SMS channel: one [`SmsProvider`] interface, several providers chosen in configuration
//! (the built-in outbox, Kannel, a JSON HTTP aggregator), failover between them by priority and
//! weight, a rate limit per provider, and the parsing of their delivery reports and replies.
//!
//! Routing: the providers of the best priority that are up share the traffic by weight. A
//! provider that times out or answers with a server error is taken out for a minute and the
//! message goes to the next one at once; it comes back by itself. So is one whose accepted
//! messages stay without a delivery report for 15 minutes (it takes them but they do not
//! arrive), until its reports catch up. A provider that refuses the
//! number (a 4xx about the message) makes the step fail, which escalates the notice.
//! Every message carries the step's idempotency key as the provider's reference.

pub mod config;
pub mod http;
pub mod kannel;
pub mod outbox;
pub mod reports;
pub mod segments;

use crate::{BoxFuture, Channel, ChannelKind, Dispatch, Outcome};
use chrono::{DateTime, TimeDelta, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kontaktvei_store::{Clock, Id};
use std::collections::HashMap;
use std::fmt::Debug;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use outbox::OutboxSms;

/// One message for a provider.
#[derive(Debug, Clone)]
pub struct SmsMessage {
    /// E.164, e.g. `+4791234567`.
    pub to: String,
    pub text: String,
    /// Sender id: numeric (can take replies) or alphanumeric (≤ 11 characters, cannot).
    pub sender: Option<String>,
    /// Our reference: the step's idempotency key. Delivery reports name it.
    pub reference: String,
    /// The network should drop the message if it cannot deliver it by then.
    pub valid_until: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The notice it belongs to (providers that keep messages locally use it).
    pub notice_id: Id,
    /// The step it carries; `None` for a confirmation reply.
    pub step_id: Option<Id>,
}

impl SmsMessage {
    /// Minutes until `valid_until`, at least 1; `None` without a limit.
    pub fn validity_minutes(&self) -> Option<i64> {
        self.valid_until
            .map(|v| (v - self.now).num_minutes().max(1))
    }
}

/// What a provider said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Taken for delivery; the provider's own id when it gives one.
    Accepted { provider_ref: String },
    /// The provider refuses this message for good (an invalid number, a barred recipient).
    Rejected { reason: String },
    /// The provider could not take it now (down, slow, overloaded, misconfigured).
    Unavailable {
        retry_after: Option<Duration>,
        reason: String,
    },
}

pub trait SmsProvider: Send + Sync + Debug {
    fn name(&self) -> &str;
    fn send<'a>(&'a self, message: &'a SmsMessage) -> BoxFuture<'a, Sent>;
    /// Whether it sends delivery reports; only then can it be caught leaving messages undelivered.
    fn sends_reports(&self) -> bool {
        false
    }
}

/// A provider whose accepted messages get no delivery report for this long is treated as down
/// (it takes messages but they do not arrive) until its reports catch up or twice this has passed.
pub const UNDELIVERED_AFTER: TimeDelta = TimeDelta::minutes(15);

/// How long a provider that failed stays out of the rotation.
const COOL_DOWN: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug)]
struct Route {
    provider: Arc<dyn SmsProvider>,
    priority: u32,
    weight: u32,
    limiter: Option<DefaultDirectRateLimiter>,
    down_until: Mutex<Option<DateTime<Utc>>>,
    /// Accepted messages still waiting for their delivery report, by reference.
    awaiting_report: Mutex<HashMap<String, DateTime<Utc>>>,
}

#[derive(Debug)]
pub struct SmsChannel {
    routes: Vec<Route>,
    clock: Arc<dyn Clock>,
    default_sender: Option<String>,
}

/// A provider with its place in the rotation.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub provider: Arc<dyn SmsProvider>,
    pub priority: u32,
    pub weight: u32,
    pub rate_per_second: Option<u32>,
}

impl SmsChannel {
    pub fn new(
        routes: Vec<RouteConfig>,
        clock: Arc<dyn Clock>,
        default_sender: Option<String>,
    ) -> Self {
        let mut routes: Vec<Route> = routes
            .into_iter()
            .map(|r| Route {
                provider: r.provider,
                priority: r.priority,
                weight: r.weight.max(1),
                limiter: r
                    .rate_per_second
                    .and_then(NonZeroU32::new)
                    .map(|n| RateLimiter::direct(Quota::per_second(n))),
                down_until: Mutex::new(None),
                awaiting_report: Mutex::new(HashMap::new()),
            })
            .collect();
        routes.sort_by_key(|r| r.priority);
        SmsChannel {
            routes,
            clock,
            default_sender,
        }
    }

    /// The names of the providers, best priority first.
    pub fn provider_names(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|r| r.provider.name().to_owned())
            .collect()
    }

    fn is_down(&self, route: &Route, now: DateTime<Utc>) -> bool {
        let cooling = route
            .down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t > now);
        cooling || self.leaves_undelivered(route, now)
    }

    /// Messages it accepted got no delivery report within [`UNDELIVERED_AFTER`]. Entries older
    /// than twice that are forgotten, so the provider is tried again and can show it recovered.
    fn leaves_undelivered(&self, route: &Route, now: DateTime<Utc>) -> bool {
        if !route.provider.sends_reports() {
            return false;
        }
        let mut waiting = route
            .awaiting_report
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        waiting.retain(|_, sent| now - *sent < UNDELIVERED_AFTER * 2);
        waiting
            .values()
            .any(|sent| now - *sent >= UNDELIVERED_AFTER)
    }

    /// A delivery report (any outcome) came for a message the provider accepted.
    pub fn note_report(&self, provider: &str, reference: &str) {
        for route in self.routes.iter().filter(|r| r.provider.name() == provider) {
            route
                .awaiting_report
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(reference);
        }
    }

    fn take_down(&self, route: &Route, now: DateTime<Utc>) {
        *route.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(now + COOL_DOWN);
    }

    /// The order to try the providers in: by priority; within one priority, a random order
    /// weighted by `weight`; providers that are down last (still tried if all are down).
    fn order(&self, now: DateTime<Utc>) -> Vec<&Route> {
        let mut up: Vec<&Route> = Vec::new();
        let mut down: Vec<&Route> = Vec::new();
        for r in &self.routes {
            if self.is_down(r, now) {
                down.push(r)
            } else {
                up.push(r)
            }
        }
        let mut ordered = Vec::with_capacity(self.routes.len());
        let mut i = 0;
        while i < up.len() {
            let priority = up[i].priority;
            let mut group: Vec<&Route> = up[i..]
                .iter()
                .copied()
                .take_while(|r| r.priority == priority)
                .collect();
            i += group.len();
            while !group.is_empty() {
                let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
                let mut pick = rand::random::<u64>() % total.max(1);
                let idx = group.iter().position(|r| {
                    if pick < u64::from(r.weight) {
                        true
                    } else {
                        pick -= u64::from(r.weight);
                        false
                    }
                });
                ordered.push(group.remove(idx.unwrap_or(0)));
            }
        }
        ordered.extend(down);
        ordered
    }

    /// Sends through the first provider that takes it. Returns the provider's name with its answer.
    pub async fn send(&self, message: &SmsMessage) -> (Option<String>, Sent) {
        let now = self.clock.now();
        let mut last = Sent::Unavailable {
            retry_after: None,
            reason: "no SMS provider is configured".into(),
        };
        let mut soonest_retry: Option<Duration> = None;
        for route in self.order(now) {
            if let Some(limiter) = &route.limiter
                && let Err(not_until) = limiter.check()
            {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                soonest_retry = Some(soonest_retry.map_or(wait, |s| s.min(wait)));
                last = Sent::Unavailable {
                    retry_after: Some(wait),
                    reason: format!("{}: rate limit", route.provider.name()),
                };
                continue;
            }
            let answer = route.provider.send(message).await;
            match &answer {
                Sent::Accepted { .. } | Sent::Rejected { .. } => {
                    if matches!(answer, Sent::Accepted { .. }) && route.provider.sends_reports() {
                        route
                            .awaiting_report
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(message.reference.clone(), now);
                    }
                    return (Some(route.provider.name().to_owned()), answer);
                }
                Sent::Unavailable {
                    retry_after,
                    reason,
                } => {
                    tracing::warn!(provider = route.provider.name(), reason = %reason, "SMS provider unavailable; trying the next");
                    self.take_down(route, now);
                    if let Some(r) = retry_after {
                        soonest_retry = Some(soonest_retry.map_or(*r, |s| s.min(*r)));
                    }
                    last = answer.clone();
                }
            }
        }
        if let Sent::Unavailable { retry_after, .. } = &mut last {
            *retry_after = soonest_retry;
        }
        (None, last)
    }
}

impl Channel for SmsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn dispatch<'a>(&'a self, step: &'a Dispatch) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(phone) = step.phone.clone() else {
                return Outcome::Failed {
                    reason: "no_phone".into(),
                };
            };
            let message = SmsMessage {
                to: phone,
                text: step.body.clone(),
                sender: step.sender.clone().or_else(|| self.default_sender.clone()),
                reference: step.idempotency_key.clone(),
                valid_until: step.valid_until,
                now: self.clock.now(),
                notice_id: step.notice_id,
                step_id: Some(step.step_id),
            };
            match self.send(&message).await {
                (Some(name), Sent::Accepted { provider_ref }) => Outcome::Sent {
                    provider_ref: Some(format!("{name}:{provider_ref}")),
                },
                (_, Sent::Rejected { reason }) => Outcome::Failed { reason },
                (
                    _,
                    Sent::Unavailable {
                        retry_after,
                        reason,
                    },
                ) => Outcome::Retry {
                    after: retry_after,
                    reason,
                },
                (None, Sent::Accepted { provider_ref }) => Outcome::Sent {
                    provider_ref: Some(provider_ref),
                },
            }
        })
    }
}
