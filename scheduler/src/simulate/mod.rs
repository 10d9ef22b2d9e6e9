//! The reach simulation: the real engine, channels and store, in virtual time, against
//! simulated people and services — phones that are off or change hands, letters that wait at a
//! shelter or come back, a day centre the patient drops into, an outreach team with only so
//! many hours. The same population and the same events run through three strategies:
//!
//! - `sms_only`: one SMS, nothing more;
//! - `sms_then_letter`: an SMS, then a letter, on a fixed timetable blind to the appointment,
//!   and no people;
//! - `kontaktvei`: the organisation's real policy — latency-aware, ending with people.
//!
//! Each is judged by the product's own reach report ([`kontaktvei_store::reports`]). Everything
//! random is keyed by (seed, patient, what, n), so the same seed gives the same figures
//! whatever order the engine handles things in.

mod chart;
pub mod scenario;
mod world;

use futures_util::task::AtomicWaker;
use kontaktvei_store::reports::Reach;
pub use scenario::Scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub patients: usize,
    /// Days during which the clinic books appointments; the simulation runs on until the last
    /// booked appointment has passed and people have had time to act.
    pub days: u32,
    pub seed: u64,
    pub scenario: Scenario,
}

/// The contact strategies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    SmsOnly,
    SmsThenLetter,
    Kontaktvei,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [
        Strategy::SmsOnly,
        Strategy::SmsThenLetter,
        Strategy::Kontaktvei,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::SmsOnly => "sms_only",
            Strategy::SmsThenLetter => "sms_then_letter",
            Strategy::Kontaktvei => "kontaktvei",
        }
    }
}

/// One strategy's result: the reach report, plus what the simulated people did.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyResult {
    #[serde(flatten)]
    pub reach: Reach,
    pub appointments: i64,
    pub no_shows: i64,
    /// Share of appointment notices acknowledged within each number of hours after they were
    /// created (0, 6, 12 … 336): reach over time.
    pub reach_curve: Vec<(u32, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    pub scenario: String,
    pub patients: usize,
    pub days: u32,
    pub seed: u64,
    pub strategies: BTreeMap<&'static str, StrategyResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Store(#[from] kontaktvei_store::Error),
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    #[error("cannot start the simulation: {0}")]
    Io(#[from] std::io::Error),
    #[error("simulation: {0}")]
    Other(String),
}

/// Runs the three strategies at the same time, each on its own thread, runtime and scratch
/// SQLite database, and returns their results, with how long each took (wall clock; not part
/// of the report, which must be the same for the same seed).
///
/// Why threads pinned to cores: sqlx runs each SQLite connection on a worker thread of its own,
/// so every statement is a hand-off to that thread and back. When the runtime and the worker
/// sit on different cores each hand-off is a cross-core wake-up: measured on a 2-core machine,
/// 50 µs a statement against 11 µs when both share a core. So a strategy's runtime and its
/// database threads stay on one core (a thread starts with the affinity of the thread that
/// starts it), and the strategies are spread over the cores, heaviest first.
pub fn run(config: &SimConfig) -> Result<(SimReport, Vec<(Strategy, f64)>), SimError> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let heaviest_first = [
        Strategy::Kontaktvei,
        Strategy::SmsThenLetter,
        Strategy::SmsOnly,
    ];
    let done: Vec<(Strategy, Result<StrategyResult, SimError>, f64)> =
        std::thread::scope(|scope| {
            let threads: Vec<_> = heaviest_first
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    // With fewer cores than strategies, the lighter ones share the last core.
                    let core = cores.get(i.min(cores.len().saturating_sub(1))).copied();
                    scope.spawn(move || {
                        if let Some(core) = core {
                            // Only a hint: if the system refuses, the run is just slower.
                            core_affinity::set_for_current(core);
                        }
                        run_as_batch_work();
                        let started = Instant::now();
                        let result = tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                            .map_err(SimError::Io)
                            .and_then(|runtime| {
                                runtime.block_on(YieldWhileWaiting::new(Box::pin(world::run(
                                    config, s,
                                ))))
                            });
                        (s, result, started.elapsed().as_secs_f64())
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
    let mut strategies = BTreeMap::new();
    let mut timings = Vec::new();
    for (s, result, secs) in done {
        strategies.insert(s.name(), result?);
        timings.push((s, secs));
    }
    timings.sort_by_key(|(s, _)| *s);
    Ok((
        SimReport {
            scenario: config.scenario.name.clone(),
            patients: config.patients,
            days: config.days,
            seed: config.seed,
            strategies,
        },
        timings,
    ))
}

/// Marks the calling thread as batch work (Linux `SCHED_BATCH`, same niceness); the SQLite
/// worker thread it starts inherits that. Under the normal policy a thread that wakes another
/// on its core is often preempted by it at once: the worker, sending a row back, gave the core
/// to the runtime and took it back for the next row. Batch threads do not preempt on wake-up,
/// so a statement costs two context switches, not three or four (measured: about 30 % fewer
/// switches, 8 % less time). Only a hint, like the core pinning: if refused, it is just slower.
fn run_as_batch_work() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        use thread_priority::{ThreadPriority, ThreadPriorityOsValue};
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        let same_niceness = ThreadPriority::Os(ThreadPriorityOsValue::default());
        if let Err(e) = set_thread_priority_and_policy(thread_native_id(), same_niceness, batch) {
            tracing::debug!(error = ?e, "could not run the simulation as batch work");
        }
    }
}

impl SimReport {
    /// The readable table printed without `--json`.
    pub fn table(&self) -> String {
        let mut out = format!(
            "Reach simulation: scenario {}, {} patients, {} days of bookings, seed {}\n\n",
            self.scenario, self.patients, self.days, self.seed
        );
        out.push_str(&format!(
            "{:<18}{:>9}{:>10}{:>12}{:>10}{:>9}{:>11}{:>9}\n",
            "strategy", "notices", "acked", "in time", "to human", "silent", "median h", "no-show"
        ));
        for (name, r) in &self.strategies {
            let no_show = if r.appointments > 0 {
                r.no_shows as f64 / r.appointments as f64
            } else {
                0.0
            };
            out.push_str(&format!(
                "{:<18}{:>9}{:>10}{:>11.1}%{:>10}{:>9}{:>11}{:>8.1}%\n",
                name,
                r.reach.notices,
                r.reach.acknowledged,
                r.reach.acked_before_appointment * 100.0,
                r.reach.handed_over_to_human,
                r.reach.silent_ends,
                r.reach
                    .median_hours_to_ack
                    .map_or("-".to_owned(), |h| format!("{h:.1}")),
                no_show * 100.0,
            ));
        }
        out.push_str("\nacknowledgements by channel:\n");
        for (name, r) in &self.strategies {
            let by: Vec<String> = r
                .reach
                .reached_by_channel
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            out.push_str(&format!("  {name:<16}{}\n", by.join(", ")));
        }
        out.push_str(
            "\n\"in time\": share of finished appointment notices acknowledged before the appointment.\n\
             \"to human\": ended unacknowledged but held by a named person; \"silent\": neither.\n",
        );
        out
    }

    /// Reach over time per strategy, as an SVG line chart.
    pub fn chart_svg(&self) -> Result<String, SimError> {
        chart::svg(self).map_err(SimError::Other)
    }
}

/// Runs a strategy's future so that, while it waits, its thread first gives the core away
/// (`sched_yield`) a few times before it goes to sleep.
///
/// Why: almost everything a strategy waits for is its SQLite connection's worker thread, on
/// the same core (see [`run`]), and that thread is ready to run the moment the statement is
/// sent. Sleeping costs a futex wait here and a futex wake there for every statement, and the
/// runtime's park and unpark around them; yielding hands the core straight to the worker, and
/// the worker's answer finds this thread awake. Measured: 3,000 patients in 26.7–27.4 s instead
/// of 34 s, 10,000 in 89–91 s instead of 121–137 s, with the same output.
///
/// The inner future is polled only when it has been woken, as under the plain runtime. While
/// it waits, this future wakes itself after each yield, so the runtime's timers still run (the
/// scratch database's lock timeout is one); after [`YIELDS_BEFORE_SLEEP`] yields with no wake
/// it lets the runtime sleep until one comes.
struct YieldWhileWaiting<F> {
    inner: F,
    woken: Arc<Woken>,
    yields: u32,
}

/// A statement takes one yield: the worker runs it and blocks again, and the core comes back.
/// Waiting this long means the wait is for something else.
const YIELDS_BEFORE_SLEEP: u32 = 64;

/// Whether the inner future has been woken since it was last polled, and the runtime's waker
/// to pass the wake on to (so a sleeping runtime wakes up).
#[derive(Default)]
struct Woken {
    flag: AtomicBool,
    runtime: AtomicWaker,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.runtime.wake();
    }
}

impl<F> YieldWhileWaiting<F> {
    fn new(inner: F) -> Self {
        let woken = Arc::new(Woken::default());
        // The first poll must reach the inner future.
        woken.flag.store(true, Ordering::Release);
        YieldWhileWaiting {
            inner,
            woken,
            yields: 0,
        }
    }
}

impl<F: Future + Unpin> Future for YieldWhileWaiting<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.woken.runtime.register(cx.waker());
        if self.woken.flag.swap(false, Ordering::Acquire) {
            let waker = Waker::from(self.woken.clone());
            if let Poll::Ready(output) =
                Pin::new(&mut self.inner).poll(&mut Context::from_waker(&waker))
            {
                return Poll::Ready(output);
            }
            self.yields = 0;
        }
        if self.yields < YIELDS_BEFORE_SLEEP {
            self.yields += 1;
            std::thread::yield_now();
            cx.waker().wake_by_ref();
        }
        // Else: asleep until the inner future is woken (`Woken` wakes the runtime).
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::YieldWhileWaiting;
    use std::time::Duration;

    /// A future that waits for a timer still finishes: the runtime's timers run between the
    /// polls of a future that keeps waking itself.
    #[test]
    fn a_yielding_future_still_sees_its_timers() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let slept = runtime.block_on(YieldWhileWaiting::new(Box::pin(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                "slept"
            })));
            done.send(slept).ok();
        });
        assert_eq!(
            finished.recv_timeout(Duration::from_secs(10)),
            Ok("slept"),
            "the timer fired"
        );
    }
}
