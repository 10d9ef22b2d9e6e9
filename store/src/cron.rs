//! Once-only cron occurrences: an instance that wants to run a job for an occurrence first
//! inserts `(job, occurrence)`; the primary key lets exactly one instance win.

use crate::db::{Tx, on_tx};
use crate::error::Result;
use chrono::{DateTime, Utc};

/// True if this instance won the occurrence and should run the job.
pub async fn claim(
    tx: &mut Tx,
    job: &str,
    occurrence: DateTime<Utc>,
    instance: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let inserted = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO cron_runs (job, occurrence, instance, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job, occurrence) DO NOTHING",
        )
        .bind(job)
        .bind(occurrence)
        .bind(instance)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}
