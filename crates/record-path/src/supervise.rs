//! Supervision of the manager's long-running tasks (the dispatcher, the lag checker, the
//! DLQ worker, DLQ retention): a task that panics is logged, counted
//! (`pipeline_task_panics_total{task}`) and run again after a backoff (1 s, 2 s … 30 s);
//! its restarts and last panic show in health, one component per task.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::dispatch::TASK_PANICS;

/// What health shows of one supervised background task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerHealth {
    /// `dispatcher`, `lag_checker`, `dlq_worker`, `dlq_retention`, `throughput` or
    /// `chunk_release`.
    pub name: String,
    /// Running: false once it has ended (at shutdown).
    pub running: bool,
    /// Restarts after a panic since start (any makes health unhealthy: a bug to see).
    pub restarts: u64,
    /// The last panic.
    pub last_error: Option<String>,
}

/// One supervised task's record, shared between its supervisor and health.
#[derive(Debug)]
pub struct Worker {
    name: &'static str,
    running: AtomicBool,
    restarts: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Worker {
    pub(crate) fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            running: AtomicBool::new(true),
            restarts: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    pub(crate) fn health(&self) -> WorkerHealth {
        WorkerHealth {
            name: self.name.to_owned(),
            running: self.running.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// The pause before restart number `restarts` (1-based): 1 s, 2 s, 4 s … 30 s at most.
pub(crate) fn backoff(restarts: u64) -> Duration {
    Duration::from_secs(1 << restarts.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

/// Runs `run()` as a task until it returns, and again (after a backoff of 1 s, 2 s …
/// 30 s) each time it panics: the panic is logged, counted and kept in `worker`, then
/// `after_panic()` runs (to clean up what the task held). Aborting the supervisor aborts the task with it.
pub async fn supervise<R, Fut, P, PFut>(worker: Arc<Worker>, mut run: R, mut after_panic: P)
where
    R: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    P: FnMut() -> PFut,
    PFut: Future<Output = ()>,
{
    /// Marks the worker ended however the supervisor ends (returned or aborted).
    struct Ended<'a>(&'a Worker);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            self.0.running.store(false, Ordering::Relaxed);
        }
    }
    let _ended = Ended(&worker);
    loop {
        let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(run()));
        match task.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                let restarts = worker.restarts.fetch_add(1, Ordering::Relaxed) + 1;
                *worker.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                metrics::counter!(TASK_PANICS, "task" => worker.name).increment(1);
                tracing::error!(
                    task = worker.name,
                    error = %e,
                    restarts,
                    "a background task panicked; restarting it after a backoff"
                );
                after_panic().await;
                tokio::time::sleep(backoff(restarts)).await;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_thirty() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u64::MAX), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_its_panic_kept() {
        let worker = Worker::new("test");
        let runs = Arc::new(AtomicU64::new(0));
        let cleanups = Arc::new(AtomicU64::new(0));
        let r = runs.clone();
        let c = cleanups.clone();
        supervise(
            worker.clone(),
            move || {
                let n = r.fetch_add(1, Ordering::Relaxed);
                async move { assert!(n >= 2, "boom {n}") }
            },
            move || {
                c.fetch_add(1, Ordering::Relaxed);
                async {}
            },
        )
        .await;
        assert_eq!(
            runs.load(Ordering::Relaxed),
            3,
            "two panics, then a clean end"
        );
        assert_eq!(cleanups.load(Ordering::Relaxed), 2);
        let h = worker.health();
        assert_eq!(h.restarts, 2);
        assert!(!h.running, "it ended");
        assert!(h.last_error.unwrap().contains("boom 1"));
    }
}
