//! Background workers: the lag checker (feeds the throttle), the DLQ worker (flushes
//! the memory buffer, retries due dead letters, refreshes the DLQ gauge) and DLQ
//! retention, each supervised (`supervise.rs`: restarted after a panic, shown in health).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use throttling::LagProbe;

use crate::manager::Shared;
use crate::pipeline;
use crate::supervise::supervise;

/// Starts the workers, each under its own supervisor: the lag checker (only with a
/// probe), the DLQ worker and DLQ retention. A panic in one restarts that one alone.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    probe: Option<Arc<dyn LagProbe>>,
    every: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    fn supervised<R, Fut>(
        shared: &Arc<Shared>,
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
    let s = shared.clone();
    out.push(supervised(shared, "dlq_worker", move || {
        dlq_worker(s.clone())
    }));
    let s = shared.clone();
    out.push(supervised(shared, "dlq_retention", move || {
        dlq_retention(s.clone())
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

pub(crate) async fn lag_checker(shared: Arc<Shared>, probe: Arc<dyn LagProbe>, every: Duration) {
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

/// The retention rule of `dlq` (rows done with, by age and count), if any applies.
pub(crate) fn retention(dlq: &stream_config::DlqConfig, now_ms: i64) -> Option<producer::Purge> {
    let older_than_ms =
        (dlq.retention_days > 0).then(|| now_ms - i64::from(dlq.retention_days) * 86_400_000);
    let keep_newest = (dlq.max_settled_rows > 0).then_some(dlq.max_settled_rows);
    (older_than_ms.is_some() || keep_newest.is_some()).then(|| producer::Purge {
        statuses: producer::Purge::SETTLED.to_vec(),
        older_than_ms,
        keep_newest,
    })
}

/// How often retention runs (and once at start).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Deletes DLQ rows done with, by the `dlq` retention rule, at start and every hour.
pub(crate) async fn dlq_retention(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.shutting_down() {
            return;
        }
        let Some(rule) = retention(&shared.config().dlq, pipeline::now_ms()) else {
            continue;
        };
        match shared.delivery.store().purge(&rule).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "DLQ retention removed rows done with"),
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "DLQ retention failed")
            }
        }
    }
}

pub(crate) async fn dlq_worker(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.shutting_down() {
            return;
        }
        if shared.delivery.buffered() > 0 && shared.delivery.flush_buffer().await.is_err() {
            continue;
        }
        let cfg = shared.config();
        if !cfg.enable_dlq {
            continue;
        }
        let base = Duration::from_secs(cfg.dlq.retry_base_delay_seconds);
        let store = shared.delivery.store().clone();
        let producer = shared.delivery.producer().clone();
        if let Err(e) = producer::retry_due(
            store.as_ref(),
            producer.as_ref(),
            pipeline::now_ms(),
            base,
            cfg.dlq.max_retries,
        )
        .await
        {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "DLQ retry pass failed"
            );
        }
        let _ = shared.delivery.dlq_stats().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_removes_only_rows_done_with_by_age_and_count() {
        let mut dlq = stream_config::DlqConfig::default();
        let now = 100 * 86_400_000;
        let rule = retention(&dlq, now).expect("on by default");
        assert_eq!(rule.older_than_ms, Some(70 * 86_400_000), "30 days");
        assert_eq!(rule.keep_newest, Some(100_000));
        assert!(rule.statuses.iter().all(|s| !s.is_pending()));
        dlq.retention_days = 0;
        dlq.max_settled_rows = 0;
        assert_eq!(retention(&dlq, now), None, "both off: rows are kept");
    }
}
