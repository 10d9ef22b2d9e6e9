//! The escalation engine of kontaktvei: builds each notice's contact plan from the patient's
//! live contact points and the organisation's policy (latency-aware: no step that cannot reach
//! the patient before the appointment), runs the steps as durable, leased rows in the database,
//! escalates when no acknowledgement comes in time, and ends every chain with a named person.
//!
//! The arrows point one way: the gateway depends on this crate, this crate on `channels`,
//! `templates` and the store, never the reverse.

pub mod calendar;
pub mod cron;
pub mod engine;
pub mod human;
pub mod letters;
pub mod mail;
pub mod plan;
pub mod policy;
pub mod replies;
pub mod simulate;
pub mod worker;

pub use engine::{AckResult, Engine, EngineConfig, Round};
pub use kontaktvei_channels::ChannelKind;
pub use policy::Policy;
