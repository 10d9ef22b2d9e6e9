//! The application context: the one value handed to every handler and background task.
//! No globals — everything a request needs is reached from here.

use crate::metrics::Metrics;
use kontaktvei_channels::sms::config::Hook;
use kontaktvei_scheduler::Engine;
use kontaktvei_scheduler::cron::Cron;
use kontaktvei_store::{Clock, Store};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct AppContext {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub engine: Arc<Engine>,
    pub cron: Arc<Cron>,
    /// How to read each SMS provider's callbacks, by provider name.
    pub hooks: Arc<HashMap<String, Hook>>,
    /// Callbacks per provider per second.
    pub hook_limiter: Arc<governor::DefaultKeyedRateLimiter<String>>,
}
