//! The channels a notice travels through: SMS to a phone the patient gave, a printed letter to a
//! verified address, a message relayed by a low-threshold service, an outreach task, and — when
//! nothing else is left — the patient's coordinator.
//!
//! Each channel implements [`Channel`]: the escalation engine hands it one due step (already
//! leased, with no database transaction open) and hears back whether the step went out, failed
//! for good, or should be retried. Providers (the SMS outbox today; Kannel and HTTP aggregators,
//! print batches and the task lists later) live beside their channel. Nothing here calls back up
//! into the scheduler or the gateway.

pub mod email;
pub mod human;
pub mod letter;
pub mod sms;

use chrono::{DateTime, Utc};
use kontaktvei_store::Id;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use kontaktvei_store::steps::ChannelKind;

/// A boxed future, so channels can be chosen at run time (`dyn Channel`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything a channel needs to run one step.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub notice_id: Id,
    pub step_id: Id,
    pub patient_id: Id,
    /// The organisation that owes the patient the notice.
    pub organisation_id: Id,
    pub contact_point_id: Option<Id>,
    /// The phone (E.164) for SMS; unused by the others.
    pub phone: Option<String>,
    /// The organisation's SMS sender id, if it has one.
    pub sender: Option<String>,
    /// The organisation that does a relay or outreach task.
    pub task_organisation_id: Option<Id>,
    /// The coordinator, for a coordinator task.
    pub coordinator_id: Option<Id>,
    /// The rendered message; holds the ack code, so never log it.
    pub body: String,
    /// Travels to the provider as its reference, so a retry never reaches the patient twice.
    pub idempotency_key: String,
    /// After this the message is useless (the appointment has started).
    pub valid_until: Option<DateTime<Utc>>,
    /// When the task should be done by (human channels).
    pub due_by: DateTime<Utc>,
}

/// What became of a dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handed over: to the SMS provider (with its message reference) or to people (the task).
    Sent { provider_ref: Option<String> },
    /// It cannot reach the patient through this contact point; escalate now.
    Failed { reason: String },
    /// A passing problem (timeout, rate limit, provider down): try again, not before `after`.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
}

pub trait Channel: Send + Sync + Debug {
    fn kind(&self) -> ChannelKind;
    fn dispatch<'a>(&'a self, step: &'a Dispatch) -> BoxFuture<'a, Outcome>;
}
