//! Whether the engine has anything to do now, and when it next will, each in one statement:
//! steps to lease, acknowledgement windows that ended, tasks and hand-overs to chase.
//!
//! The engine asks this before a round and skips the parts with nothing to do. An idle round
//! (the last one of every burst of work, and most of the server's rounds) is then one read
//! instead of three transactions and six queries. Each condition here is the `WHERE` clause of
//! the query it stands for ([`steps::lease_due`], [`steps::windows_ended`],
//! [`tasks::unclaimed_past_claim_time`], [`tasks::overdue`], [`handovers::unanswered`]), with the
//! same parameters, so "nothing" here means those queries find nothing. A "yes" can still find
//! nothing on PostgreSQL: a row another transaction has locked counts here, and the lease skips
//! it (`SKIP LOCKED`); the engine then just tries.
//!
//! [`steps::lease_due`]: crate::steps::lease_due
//! [`steps::windows_ended`]: crate::steps::windows_ended
//! [`tasks::unclaimed_past_claim_time`]: crate::tasks::unclaimed_past_claim_time
//! [`tasks::overdue`]: crate::tasks::overdue
//! [`handovers::unanswered`]: crate::handovers::unanswered

use crate::db::{Tx, TxInner, on_tx};
use crate::error::Result;
use crate::steps::ChannelKind;
use chrono::{DateTime, TimeDelta, Utc};

/// What a round would find now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DueWork {
    /// A step of one of the engine's channels is due, or its lease ran out.
    pub steps: bool,
    /// A queued, sent or delivered step's acknowledgement window has ended.
    pub windows: bool,
    /// A task or hand-over is to be chased (any of the four kinds of chase).
    pub chase: bool,
}

/// The moments the chase compares with, as the engine computes them from now.
#[derive(Debug, Clone, Copy)]
pub struct ChaseTimes {
    pub now: DateTime<Utc>,
    /// Claimed tasks due before this are brought to the team lead.
    pub lead_due_before: DateTime<Utc>,
    /// Offers made or last reminded before this are brought up again.
    pub handover_before: DateTime<Utc>,
}

/// The statement, written once: only how the channel list is matched differs between the
/// backends (`$1` is an array on PostgreSQL, a JSON array on SQLite), as in `lease_due`.
macro_rules! due_work_sql {
    ($channel_in:literal) => {
        concat!(
            "SELECT EXISTS (SELECT 1 FROM steps WHERE ",
            $channel_in,
            " AND status IN ('queued', 'sending') AND due_at <= $3 AND lease_until < $2),
                    EXISTS (SELECT 1 FROM steps WHERE status IN ('sent', 'delivered', 'queued')
                       AND window_ends_at <= $3),
                    (EXISTS (SELECT 1 FROM tasks WHERE status = 'open' AND claim_by < $3
                       AND unclaimed_escalated_at IS NULL)
                     OR EXISTS (SELECT 1 FROM tasks WHERE status = 'claimed'
                       AND kind IN ('relay', 'outreach') AND due_at < $3 AND owner_reminded_at IS NULL)
                     OR EXISTS (SELECT 1 FROM tasks WHERE status = 'claimed'
                       AND kind IN ('relay', 'outreach') AND due_at < $4
                       AND owner_reminded_at IS NOT NULL AND lead_reminded_at IS NULL)
                     OR EXISTS (SELECT 1 FROM handovers WHERE status = 'offered'
                       AND COALESCE(reminded_at, offered_at) < $5))"
        )
    };
}

/// What a round of an engine with `channels` would find at `times.now`.
pub async fn due_work(tx: &mut Tx, channels: &[ChannelKind], times: ChaseTimes) -> Result<DueWork> {
    let names: Vec<String> = channels.iter().map(|c| c.as_str().to_owned()).collect();
    let now_ms = times.now.timestamp_millis();
    let (steps, windows, chase): (bool, bool, bool) = match &mut tx.inner {
        TxInner::Postgres(t) => {
            sqlx::query_as(due_work_sql!("channel = ANY($1)"))
                .bind(&names)
                .bind(now_ms)
                .bind(times.now)
                .bind(times.lead_due_before)
                .bind(times.handover_before)
                .fetch_one(&mut **t)
                .await?
        }
        TxInner::Sqlite(t) => {
            sqlx::query_as(due_work_sql!(
                "channel IN (SELECT value FROM json_each($1))"
            ))
            .bind(serde_json::Value::from(names).to_string())
            .bind(now_ms)
            .bind(times.now)
            .bind(times.lead_due_before)
            .bind(times.handover_before)
            .fetch_one(&mut **t)
            .await?
        }
    };
    Ok(DueWork {
        steps,
        windows,
        chase,
    })
}

/// The earliest instant the engine has something to do, so a driver of virtual time can jump
/// there: a queued step falling due (letters wait for the print run instead), a window ending,
/// an open task's claim time, a claimed task's due time (its holder is reminded), or that plus
/// `lead_after` (the lead is). `None`: nothing is waiting.
pub async fn next_wake(tx: &mut Tx, lead_after: TimeDelta) -> Result<Option<DateTime<Utc>>> {
    type Instant = Option<DateTime<Utc>>;
    let (due, window, claim, owner, lead): (Instant, Instant, Instant, Instant, Instant) = on_tx!(
        tx,
        |c| {
            sqlx::query_as(
                "SELECT (SELECT MIN(due_at) FROM steps WHERE status = 'queued' AND channel <> 'letter'),
                        (SELECT MIN(window_ends_at) FROM steps
                           WHERE status IN ('queued', 'sent', 'delivered') AND window_ends_at IS NOT NULL),
                        (SELECT MIN(claim_by) FROM tasks WHERE status = 'open'
                           AND unclaimed_escalated_at IS NULL AND claim_by IS NOT NULL),
                        (SELECT MIN(due_at) FROM tasks WHERE status = 'claimed'
                           AND kind IN ('relay', 'outreach') AND owner_reminded_at IS NULL),
                        (SELECT MIN(due_at) FROM tasks WHERE status = 'claimed'
                           AND kind IN ('relay', 'outreach') AND owner_reminded_at IS NOT NULL
                           AND lead_reminded_at IS NULL)",
            )
            .fetch_one(c)
            .await?
        }
    );
    Ok([due, window, claim, owner, lead.map(|d| d + lead_after)]
        .into_iter()
        .flatten()
        .min())
}
