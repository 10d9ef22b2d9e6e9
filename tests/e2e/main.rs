//! End-to-end tests of the whole `kontaktvei` binary: each test starts the real server on a
//! random port with a fresh database and talks to it over HTTP, as a clinic's system would.
//!
//! Every scenario runs twice: on SQLite (always) and on PostgreSQL when
//! `KONTAKTVEI_TEST_DATABASE_URL` names a server (a fresh database per test). Without that
//! variable the PostgreSQL runs skip with a printed reason — except under `CI=true`, where they
//! fail, so CI can never pass without having tested PostgreSQL.

mod chromium;
mod kannel_support;
mod letters;
mod support;

mod access;
mod booking;
mod browser;
mod crash;
mod escalation;
mod idempotency;
mod operations;
mod reach;
mod sms;
mod tasks;
mod templates;
mod validation;
mod web;
mod web_admin;
mod web_clinic;
mod web_coordinator;
