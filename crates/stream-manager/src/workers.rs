//! Background workers: the lag checker (feeds the throttle) and the DLQ worker (flushes
//! the memory buffer, retries due dead letters, refreshes the DLQ gauge).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use throttling::LagProbe;

use crate::manager::Shared;
use crate::pipeline;

pub(crate) async fn lag_checker(shared: Arc<Shared>, probe: Arc<dyn LagProbe>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.shutting_down() {
            return;
        }
        match shared.throttle.global().check(probe.as_ref()).await {
            Ok(d) => {
                if !d.delay.is_zero() {
                    shared
                        .pending_delay_ms
                        .fetch_max(d.delay.as_millis() as u64, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "lag probe failed; throttle unchanged"
            ),
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
