//! Background workers: the lag checker (`record_path::check_lag`, feeds the throttle),
//! the DLQ worker and DLQ retention (the producer crate's `run_dlq_worker`,
//! `run_dlq_retention`), the throughput meter and the release of spare record chunks
//! (`api_client::release_spare_chunks`), each supervised
//! (`record_path::supervise`: restarted after a panic, shown in health).

use std::sync::Arc;
use std::time::Duration;

use throttling::LagProbe;

use record_path::{supervise, RecordPath};

/// Starts the workers, each under its own supervisor: the lag checker (only with a
/// probe), the DLQ worker, DLQ retention, the throughput meter and the chunk release.
/// A panic in one restarts that one alone.
pub(crate) fn spawn(
    shared: &Arc<RecordPath>,
    probe: Option<Arc<dyn LagProbe>>,
    every: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    fn supervised<R, Fut>(
        shared: &Arc<RecordPath>,
        name: &'static str,
        run: R,
    ) -> tokio::task::JoinHandle<()>
    where
        R: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let worker = shared.worker(name);
        tokio::spawn(supervise(worker, run, || async {}))
    }
    let mut out = Vec::new();
    if let Some(probe) = probe {
        let s = shared.clone();
        out.push(supervised(shared, "lag_checker", move || {
            record_path::check_lag(s.clone(), probe.clone(), every)
        }));
    }
    // DLQ upkeep is the producer crate's; the upkeep in force is read at each pass.
    let upkeep = |s: &Arc<RecordPath>| {
        let cfg = s.config();
        producer::DlqUpkeep::from_config(&cfg.dlq, cfg.enable_dlq)
    };
    let s = shared.clone();
    out.push(supervised(shared, "dlq_worker", move || {
        let s = s.clone();
        async move {
            let delivery = s.delivery.clone();
            producer::run_dlq_worker(delivery, || upkeep(&s), || s.shutting_down()).await
        }
    }));
    let s = shared.clone();
    out.push(supervised(shared, "dlq_retention", move || {
        let s = s.clone();
        async move {
            let delivery = s.delivery.clone();
            producer::run_dlq_retention(delivery, || upkeep(&s), || s.shutting_down()).await
        }
    }));
    let s = shared.clone();
    out.push(supervised(shared, "throughput", move || {
        let s = s.clone();
        async move {
            let records_in = || s.queue.stats().enqueued;
            s.meter.run(records_in, || s.shutting_down()).await;
        }
    }));
    let s = shared.clone();
    out.push(supervised(shared, "chunk_release", move || {
        let s = s.clone();
        async move {
            // Full-size record chunks are reused while records flow; once the records
            // in one have all settled and no writer took it, it goes back here.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !s.shutting_down() {
                tick.tick().await;
                api_client::release_spare_chunks();
            }
        }
    }));
    out
}
