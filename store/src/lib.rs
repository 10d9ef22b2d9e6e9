//! The persistence layer and domain model of kontaktvei.
//!
//! Every table has one module here that owns its schema rows and its queries; handlers never
//! write SQL. The same SQL text runs on SQLite (the embedded default) and PostgreSQL (for several
//! instances): [`Store`] wraps one pool of either kind and [`Tx`] one transaction, and each query
//! function is written once and compiled for both through the `on_tx!` macro.

#![forbid(unsafe_code)]

mod db;
mod error;
mod text_enum;

pub mod accounts;
pub mod acks;
pub mod appointments;
pub mod audit;
pub mod clock;
pub mod contact_points;
pub mod cron;
pub mod due;
pub mod emails;
pub mod handovers;
pub mod id;
pub mod idempotency;
pub mod inbound;
pub mod national_id;
pub mod notices;
pub mod notifications;
pub mod organisations;
pub mod outbox;
pub mod patients;
pub mod phone;
pub mod print;
pub mod reports;
pub mod staff;
pub mod steps;
pub mod tasks;
pub mod template_overrides;
pub mod timeline;

pub use clock::{Clock, ManualClock, ShiftedClock, SystemClock};
pub use db::{Backend, Store, StoreOptions, Tx};
pub use error::{Error, FieldError, Result};
pub use id::Id;
