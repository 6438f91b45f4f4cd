//! The lag checker: the throttle's feedback from consumer lag.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use throttling::LagProbe;

use crate::RecordPath;

/// Reads consumer lag through `probe` every `every` until shutdown and feeds it to the
/// throttles: the global one (and, with `throttling.lag_per_source`, each source's own
/// with the lag of its topics); a delay the throttle decides is waited out by the
/// NORMAL lane before its next batch. A failed reading leaves the throttle as it was.
pub async fn check_lag(shared: Arc<RecordPath>, probe: Arc<dyn LagProbe>, every: Duration) {
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
