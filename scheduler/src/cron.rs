//! Scheduled jobs, in Oslo time (the `cron` crate's schedules evaluated in Europe/Oslo):
//!
//! - `reminder` (daily 09:00): appointments the day after tomorrow whose notice the patient has
//!   acknowledged get a reminder notice, planned like any other.
//! - `auditor` (every 5 minutes): counts steps that should have run long ago or whose lease ran
//!   out, and warns; the count is exported as a metric.
//! - `print` (every 15 minutes on working days): letters whose print cut-off has passed (14:00
//!   by default, per organisation's policy) are frozen into that organisation's print batch; a
//!   day with nothing due makes no batch.
//! - `digest` (daily 07:00): staff who want one e-mail a day get what they were told since.
//!
//! Each occurrence fires once across all instances: the instance that inserts `(job,
//! occurrence)` into `cron_runs` first runs it. An occurrence missed while every instance was
//! down runs when one comes back (the latest within a day), not once per missed occurrence.

use crate::calendar::{OSLO, is_working_day, oslo_date, oslo_instant};
use crate::engine::{Engine, Result};
use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use cron::Schedule;
use kontaktvei_store::notices::{self, NewNotice, NoticeKind};
use kontaktvei_store::{appointments, steps};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Steps due this long ago and still not running count as stuck.
const OVERDUE: TimeDelta = TimeDelta::minutes(15);

#[derive(Debug)]
struct Job {
    name: &'static str,
    schedule: Schedule,
    /// The latest occurrence this instance has already claimed or seen claimed by another
    /// (ms since the epoch): asking the database again about it cannot change the answer.
    settled_ms: AtomicI64,
}

#[derive(Debug)]
pub struct Cron {
    engine: Arc<Engine>,
    instance: String,
    jobs: Vec<Job>,
    stuck_steps: AtomicI64,
    failed_emails: AtomicI64,
}

impl Cron {
    pub fn new(engine: Arc<Engine>, instance: impl Into<String>) -> Self {
        // sec min hour day-of-month month day-of-week
        let job = |name, expr: &str| Job {
            name,
            schedule: Schedule::from_str(expr).unwrap_or_else(|e| panic!("cron {name}: {e}")),
            settled_ms: AtomicI64::new(i64::MIN),
        };
        Cron {
            engine,
            instance: instance.into(),
            jobs: vec![
                job("reminder", "0 0 9 * * *"),
                job("auditor", "0 */5 * * * *"),
                job("print", "0 */15 * * * *"),
                job("digest", "0 0 7 * * *"),
            ],
            stuck_steps: AtomicI64::new(0),
            failed_emails: AtomicI64::new(0),
        }
    }

    /// Keeps only the named jobs (the reach simulation leaves out the ones that only watch).
    pub fn only(mut self, names: &[&str]) -> Self {
        self.jobs.retain(|j| names.contains(&j.name));
        self
    }

    /// Staff e-mails given up on, as the auditor last counted.
    pub fn failed_emails(&self) -> i64 {
        self.failed_emails.load(Ordering::Relaxed)
    }

    /// Steps the auditor last found stuck.
    pub fn stuck_steps(&self) -> i64 {
        self.stuck_steps.load(Ordering::Relaxed)
    }

    /// Runs every job whose latest occurrence (within a day) has not run yet. Returns the names
    /// of the jobs this instance ran.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<Vec<&'static str>> {
        let mut ran = Vec::new();
        for job in &self.jobs {
            // Occurrences up to the one already settled cannot be due: starting there spares
            // walking a day of five-minute occurrences on every call.
            let day_ago = now - TimeDelta::days(1);
            let settled = DateTime::from_timestamp_millis(job.settled_ms.load(Ordering::Relaxed));
            let since = settled
                .filter(|s| *s > day_ago)
                .unwrap_or(day_ago)
                .with_timezone(&OSLO);
            let Some(occurrence) = job
                .schedule
                .after(&since)
                .take_while(|t| t.with_timezone(&Utc) <= now)
                .last()
            else {
                continue;
            };
            let occurrence = occurrence.with_timezone(&Utc);
            if job.settled_ms.load(Ordering::Relaxed) >= occurrence.timestamp_millis() {
                continue;
            }
            let mut tx = self.engine.store().begin().await?;
            let won =
                kontaktvei_store::cron::claim(&mut tx, job.name, occurrence, &self.instance, now)
                    .await?;
            tx.commit().await?;
            job.settled_ms
                .store(occurrence.timestamp_millis(), Ordering::Relaxed);
            if !won {
                continue;
            }
            match job.name {
                "reminder" => self.reminders(now).await?,
                "print" => {
                    if is_working_day(oslo_date(now)) {
                        self.engine
                            .make_print_batches(None, "print cut-off")
                            .await?;
                    }
                }
                "digest" => {
                    let queued = crate::mail::compose(
                        &self.engine,
                        now,
                        kontaktvei_store::staff::EmailDigest::Daily,
                    )
                    .await?;
                    tracing::info!(queued, "daily staff e-mail digest");
                }
                _ => self.audit(now).await?,
            }
            ran.push(job.name);
        }
        Ok(ran)
    }

    async fn reminders(&self, now: DateTime<Utc>) -> Result<()> {
        let day = oslo_date(now) + TimeDelta::days(2);
        let from = oslo_instant(day, NaiveTime::MIN);
        let to = oslo_instant(day + TimeDelta::days(1), NaiveTime::MIN);
        let mut tx = self.engine.store().begin().await?;
        let due = appointments::needing_reminder(&mut tx, from, to).await?;
        for a in &due {
            let notice = notices::create(
                &mut tx,
                NewNotice {
                    organisation_id: a.organisation_id,
                    patient_id: a.patient_id,
                    appointment_id: Some(a.id),
                    kind: NoticeKind::Reminder,
                    deadline: Some(a.starts_at),
                },
                now,
            )
            .await?;
            self.engine.plan(&mut tx, &notice).await?;
        }
        tx.commit().await?;
        tracing::info!(reminders = due.len(), "reminder pass");
        Ok(())
    }

    async fn audit(&self, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.engine.store().begin_read().await?;
        let stuck = steps::stuck(&mut tx, now, now - OVERDUE).await?;
        let failed = kontaktvei_store::emails::failed_count(&mut tx).await?;
        self.failed_emails.store(failed, Ordering::Relaxed);
        tx.commit().await?;
        self.stuck_steps.store(stuck, Ordering::Relaxed);
        if stuck > 0 {
            tracing::warn!(
                stuck,
                "auditor: steps are overdue or their lease ran out; is a worker running?"
            );
        }
        Ok(())
    }
}
