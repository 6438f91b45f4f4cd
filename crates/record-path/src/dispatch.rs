//! The dispatcher: two lanes pop the queue (CRITICAL alone, everything else with tokens
//! taken before records), register each batch until its reports are in, and hand it to
//! delivery tasks; the supervisor (`supervise.rs`) restarts a panicked dispatcher, and
//! what it held is dead-lettered.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use producer::{FailureReason, OutgoingRecord};
use queue::{Lanes, PopBatch, Priority};

use crate::sink::{now_ms, settle, QueuedRecord};
use crate::supervise::supervise;
use crate::RecordPath;

/// A delivery task ended. One that panicked is logged and counted, and the records of
/// its batch (still registered: it never reported) are dead-lettered as `task_panic`.
async fn batch_ended(
    shared: &RecordPath,
    owners: &mut HashMap<tokio::task::Id, Vec<u64>>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let (id, panic) = match done {
        Ok((id, ())) => (id, None),
        Err(e) => (e.id(), e.is_panic().then_some(e)),
    };
    let parts = owners.remove(&id).unwrap_or_default();
    let Some(e) = panic else { return };
    shared.dispatcher_panics.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(TASK_PANICS, "task" => "delivery").increment(1);
    tracing::error!(error = %e, "a delivery task panicked; its records go to the DLQ");
    for n in parts {
        let part = shared
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n);
        if let Some(part) = part {
            shared
                .dead_letter_items(
                    &part,
                    FailureReason::TaskPanic,
                    "the delivery task panicked while holding it",
                )
                .await;
        }
    }
}

/// Runs the dispatcher under [`supervise`] (again after 1 s, 2 s … 30 s if it
/// panicked). The records it held (every registered batch: its delivery tasks die with
/// it) are dead-lettered as `task_panic`, so their fetches settle and nothing waits for
/// them. Panics are logged and counted (`pipeline_task_panics_total{task}`).
pub async fn supervise_dispatch(shared: Arc<RecordPath>, max_in_flight: usize) {
    let worker = shared.worker("dispatcher");
    let run = {
        let shared = shared.clone();
        move || dispatch(shared.clone(), max_in_flight)
    };
    let after_panic = move || {
        let shared = shared.clone();
        async move {
            shared.dispatcher_panics.fetch_add(1, Ordering::Relaxed);
            for batch in shared.take_registered() {
                shared
                    .dead_letter_items(
                        &batch,
                        FailureReason::TaskPanic,
                        "the dispatcher panicked while holding it",
                    )
                    .await;
            }
        }
    };
    supervise(worker, run, after_panic).await;
}

/// Panicked tasks of the record path, by task.
pub const TASK_PANICS: &str = "pipeline_task_panics_total";

/// Most payload bytes in one batch.
const MAX_BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// Runs both lanes until the queue is closed and drained: CRITICAL records have a lane of
/// their own (own pop, own token bucket, own delivery slots), so they never wait behind
/// other records or their tokens.
async fn dispatch(shared: Arc<RecordPath>, max_in_flight: usize) {
    tokio::join!(
        lane(shared.clone(), Lane::Normal, max_in_flight),
        lane(shared.clone(), Lane::Critical, max_in_flight)
    );
    shared.queue.publish_metrics();
}

/// Registers `batch` from the moment it leaves the queue until its delivery reports: a
/// shutdown that cannot wait for it (throttled, waiting for a delivery slot, or with
/// the producer) dead-letters what is still here.
fn register(shared: &RecordPath, batch_no: u64, batch: Arc<Vec<QueuedRecord>>) {
    shared
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(batch_no, batch);
}

/// Which records a lane takes, and whose tokens pace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Every priority but CRITICAL, paced by the global throttle (and its lag delays).
    Normal,
    /// CRITICAL only, paced by its own bucket (`throttling.critical_share` of the rate)
    /// and delivered by the `linger.ms=0` producer.
    Critical,
}

/// One lane's loop. Tokens before records: it waits for one record, takes tokens for
/// what is waiting (up to a batch), and only then takes that many — so no popped record
/// waits on the bucket, and whatever arrived meanwhile with a higher priority goes
/// first. Every popped record is registered at once.
async fn lane(shared: Arc<RecordPath>, which: Lane, max_in_flight: usize) {
    let lanes = match which {
        Lane::Normal => Lanes::all_but(Priority::Critical),
        Lane::Critical => Lanes::only(Priority::Critical),
    };
    let mut delivering = Delivering::new(max_in_flight);
    loop {
        let batch_size = (shared.config().kafka.batch_size as usize).max(1);
        let head = shared
            .queue
            .pop_batch_from(
                PopBatch {
                    max_items: 1,
                    max_bytes: MAX_BATCH_BYTES,
                    linger: Duration::ZERO,
                },
                lanes,
            )
            .await;
        if head.is_empty() {
            break;
        }
        let head_no = shared.next_batch.fetch_add(1, Ordering::Relaxed);
        let head = Arc::new(head);
        register(&shared, head_no, head.clone());
        let mut parts = vec![(head_no, head)];
        let wanted = (shared.queue.len_in(lanes) + 1).min(batch_size);
        let mut granted = wanted;
        if !shared.shutting_down() {
            granted = match which {
                Lane::Normal => {
                    let delay = shared.pending_delay_ms.swap(0, Ordering::Relaxed);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    shared.throttle.global().acquire(wanted).await
                }
                Lane::Critical => shared.critical_throttle.acquire(wanted).await,
            }
            .clamp(1, wanted);
        }
        let rest = shared
            .queue
            .try_pop_batch_from(granted - 1, MAX_BATCH_BYTES, lanes);
        if !rest.is_empty() {
            let rest_no = shared.next_batch.fetch_add(1, Ordering::Relaxed);
            let rest = Arc::new(rest);
            register(&shared, rest_no, rest.clone());
            parts.push((rest_no, rest));
        }
        shared.queue.publish_metrics();
        delivering.spawn(&shared, parts).await;
    }
    delivering.finish(&shared).await;
}

/// One lane's delivery tasks: at most `max_in_flight` batches with the producer at once.
struct Delivering {
    semaphore: Arc<tokio::sync::Semaphore>,
    /// Which batch each delivery task carries, to dead-letter it if the task panics.
    owners: HashMap<tokio::task::Id, Vec<u64>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Delivering {
    fn new(max_in_flight: usize) -> Self {
        Self {
            semaphore: Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))),
            owners: HashMap::new(),
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// Hands a registered batch to a delivery task (waiting for a slot); the task
    /// settles its records' counters and cursors when the reports are in.
    async fn spawn(&mut self, shared: &Arc<RecordPath>, parts: Vec<(u64, Arc<Vec<QueuedRecord>>)>) {
        // Copies: the registered parts keep the records until their reports, so a task
        // that dies with them can still dead-letter them.
        let records: Vec<OutgoingRecord> = parts
            .iter()
            .flat_map(|(_, part)| part.iter().map(|i| i.record.clone()))
            .collect();
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        let numbers: Vec<u64> = parts.iter().map(|(n, _)| *n).collect();
        let task_shared = shared.clone();
        let task = self.tasks.spawn(async move {
            let shared = task_shared;
            let report = shared.delivery.deliver(records).await;
            {
                let mut reg = shared.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                for (n, _) in &parts {
                    reg.remove(n);
                }
            }
            let failed: HashMap<String, FailureReason> = report.failures.into_iter().collect();
            let now = now_ms();
            let items = || parts.iter().flat_map(|(_, part)| part.iter());
            let mut delivered = 0;
            for item in items() {
                if !failed.is_empty() && failed.contains_key(&*item.record.id) {
                    item.ctx
                        .counters
                        .dead_lettered
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    delivered += 1;
                    item.ctx.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    item.ctx
                        .counters
                        .last_delivery_ms
                        .store(now, Ordering::Relaxed);
                }
            }
            let totals = &shared.meter.totals;
            totals.delivered(delivered);
            totals.dead_lettered(items().count() - delivered);
            settle(items().map(|i| (&i.ctx, i.seq))).await;
            drop(permit);
        });
        self.owners.insert(task.id(), numbers);
        while let Some(done) = self.tasks.try_join_next_with_id() {
            batch_ended(shared, &mut self.owners, done).await;
        }
    }

    /// Waits for every delivery task.
    async fn finish(mut self, shared: &RecordPath) {
        while let Some(done) = self.tasks.join_next_with_id().await {
            batch_ended(shared, &mut self.owners, done).await;
        }
    }
}
