//! The one source of "now". Production uses [`SystemClock`]; tests and the simulator use
//! [`ManualClock`] to walk a notice through days of escalation in milliseconds.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::fmt::Debug;
use std::sync::Mutex;

pub trait Clock: Send + Sync + Debug {
    /// The current instant, truncated to whole microseconds (what PostgreSQL stores), so a value
    /// read back from either database equals the value written.
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate(Utc::now())
    }
}

/// A clock that reads the system time shifted and sped up: it shows `start` at the real instant
/// `anchor` and runs `speed` times as fast. For demonstrations, tests and crash drills that
/// need daytime or days to pass in minutes — never for a production install. Every process
/// given the same three values agrees on the time, so it survives restarts.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    pub start: DateTime<Utc>,
    pub anchor: DateTime<Utc>,
    pub speed: f64,
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let real = (Utc::now() - self.anchor)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        let virtual_micros = (real as f64 * self.speed) as i64;
        truncate(self.start + TimeDelta::microseconds(virtual_micros))
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(truncate(start)))
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = truncate(to);
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now = truncate(*now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops sub-microsecond precision.
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// An instant as Norwegian staff read it: Oslo wall-clock time with its offset,
/// e.g. `2026-12-03 12:00 (+01:00)`.
pub fn oslo_display(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Oslo)
        .format("%Y-%m-%d %H:%M (%:z)")
        .to_string()
}
