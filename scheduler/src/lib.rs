//! The escalation engine of kontaktvei: builds each notice's contact plan from the patient's
//! live contact points and the organisation's policy (latency-aware: no step that cannot reach
//! the patient before the appointment), runs the steps as durable, leased rows in the database,
//! escalates when no acknowledgement comes in time, and ends every chain with a named person.
//!
//! It arrives with the escalation engine issue. The arrows already point one way: the gateway
//! depends on this crate, this crate on `channels` and the store, never the reverse.

pub use kontaktvei_channels::ChannelKind;
