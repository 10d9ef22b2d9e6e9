//! The background worker: every interval, one round of the engine (dispatch due steps, escalate
//! ended windows) and the scheduled jobs that are due, until shutdown. A round that fails is logged and retried next interval —
//! the state is in the database, so nothing is lost in between.

use crate::cron::Cron;
use crate::engine::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(
    engine: Arc<Engine>,
    cron: Arc<Cron>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "escalation worker started"
    );
    loop {
        match engine.run_until_idle().await {
            Ok(round) if round.dispatched + round.expired > 0 => {
                tracing::debug!(
                    dispatched = round.dispatched,
                    expired = round.expired,
                    "escalation round"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "escalation round failed; retrying next interval")
            }
        }
        if let Err(e) = cron.run_due(engine.now()).await {
            tracing::error!(error = %e, "scheduled jobs failed; retrying next interval");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    tracing::info!("escalation worker stopped");
}
