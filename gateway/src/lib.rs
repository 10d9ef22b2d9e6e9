//! The kontaktvei gateway: HTTP API (axum), authentication, configuration, the command line,
//! and the wiring that hands one [`context::AppContext`] to everything.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod context;
pub mod extract;
pub mod hooks;
pub mod idempotency;
pub mod link;
pub mod metrics;
pub mod problem;
pub mod server;
pub mod telemetry;
pub mod web;
