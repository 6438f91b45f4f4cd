//! Background workers: the lag checker (feeds the throttle), the DLQ worker and DLQ
//! retention (the producer crate's `run_dlq_worker`, `run_dlq_retention`) and the
//! throughput meter, each supervised (`supervise.rs`: restarted after a panic, shown in
//! health).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use throttling::LagProbe;

use record_path::{supervise, RecordPath};

/// Starts the workers, each under its own supervisor: the lag checker (only with a
/// probe), the DLQ worker and DLQ retention. A panic in one restarts that one alone.
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
            lag_checker(s.clone(), probe.clone(), every)
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
    out
}

pub(crate) async fn lag_checker(
    shared: Arc<RecordPath>,
    probe: Arc<dyn LagProbe>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Groups and failures are logged when they change, not at every check.
    let mut last_groups = Vec::new();
    loop {
        tick.tick().await;
        if shared.shutting_down() {
            return;
        }
        let throttle = shared.throttle.global();
        let failed_before = throttle.probe_error();
        let lag_per_source = shared.config().throttling.lag_per_source;
        // With `lag_per_source`, each source's throttle takes the lag of its own topics
        // and the global one the rest; otherwise the global one takes it all.
        let checked = throttle.check_with(probe.as_ref(), |lag| {
            if lag_per_source {
                shared.per_source.record_lag(&shared.throttle, lag)
            } else {
                lag.total
            }
        });
        match checked.await {
            Ok(d) => {
                if !d.delay.is_zero() {
                    shared
                        .pending_delay_ms
                        .fetch_max(d.delay.as_millis() as u64, Ordering::Relaxed);
                }
                if failed_before.is_some() {
                    tracing::info!("lag probe reads again");
                }
                let groups: Vec<String> = throttle.watched_groups().into_keys().collect();
                if groups != last_groups {
                    tracing::info!(groups = ?groups, "consumer groups watched for lag");
                    last_groups = groups;
                }
            }
            Err(e) => {
                if failed_before != throttle.probe_error() {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "lag probe failed; throttle unchanged"
                    );
                }
            }
        }
    }
}
