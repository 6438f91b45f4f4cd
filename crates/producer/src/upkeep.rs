//! DLQ upkeep, beside the DLQ: the worker pass (the memory buffer flushed into the store,
//! due rows retried, the DLQ gauge refreshed) every second, and retention (rows done
//! with, by age and count) at start and every hour, each as a loop a supervisor runs.

use std::sync::Arc;
use std::time::Duration;

use stream_config::DlqConfig;

use crate::{retry_due, Delivery, Purge};

/// How often the DLQ worker passes.
pub const DLQ_PASS_EVERY: Duration = Duration::from_secs(1);

/// How often retention runs (and once at start).
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// How the DLQ is kept: retries and retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqUpkeep {
    /// Due rows are retried (the DLQ is enabled).
    pub retry: bool,
    /// A row's first retry after this, each later one after twice the previous.
    pub retry_base_delay: Duration,
    /// Retries before a row becomes a permanent failure.
    pub max_retries: u32,
    /// Rows done with are deleted after this many days (0: kept).
    pub retention_days: u32,
    /// At most this many rows done with are kept, the newest (0: no limit).
    pub max_settled_rows: u64,
}

impl DlqUpkeep {
    /// From the `dlq` section and `enable_dlq`.
    pub fn from_config(dlq: &DlqConfig, enable_dlq: bool) -> Self {
        Self {
            retry: enable_dlq,
            retry_base_delay: Duration::from_secs(dlq.retry_base_delay_seconds),
            max_retries: dlq.max_retries,
            retention_days: dlq.retention_days,
            max_settled_rows: dlq.max_settled_rows,
        }
    }

    /// The retention rule at `now_ms` (rows done with, by age and count), if any applies.
    pub fn retention(&self, now_ms: i64) -> Option<Purge> {
        let older_than_ms =
            (self.retention_days > 0).then(|| now_ms - i64::from(self.retention_days) * 86_400_000);
        let keep_newest = (self.max_settled_rows > 0).then_some(self.max_settled_rows);
        (older_than_ms.is_some() || keep_newest.is_some()).then(|| Purge {
            statuses: Purge::SETTLED.to_vec(),
            older_than_ms,
            keep_newest,
        })
    }
}

impl Delivery {
    /// One pass of the DLQ worker: flushes the memory buffer into the store (a failure
    /// ends the pass), retries the rows due at `now_ms` (with `upkeep.retry`), refreshes
    /// the DLQ gauge.
    pub async fn upkeep_pass(&self, upkeep: &DlqUpkeep, now_ms: i64) {
        if self.buffered() > 0 && self.flush_buffer().await.is_err() {
            return;
        }
        if !upkeep.retry {
            return;
        }
        let (store, producer) = (self.store().clone(), self.producer().clone());
        let retried = retry_due(
            store.as_ref(),
            producer.as_ref(),
            now_ms,
            upkeep.retry_base_delay,
            upkeep.max_retries,
        );
        if let Err(e) = retried.await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "DLQ retry pass failed"
            );
        }
        let _ = self.dlq_stats().await;
    }

    /// One retention pass at `now_ms`: deletes the rows `upkeep`'s rule selects.
    pub async fn retention_pass(&self, upkeep: &DlqUpkeep, now_ms: i64) {
        let Some(rule) = upkeep.retention(now_ms) else {
            return;
        };
        match self.store().purge(&rule).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "DLQ retention removed rows done with"),
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "DLQ retention failed")
            }
        }
    }
}

/// Runs [`Delivery::upkeep_pass`] every [`DLQ_PASS_EVERY`] with the upkeep in force
/// (`upkeep` is asked at each pass: a reload changes it) until `stop` says so.
pub async fn run_dlq_worker(
    delivery: Arc<Delivery>,
    upkeep: impl Fn() -> DlqUpkeep,
    stop: impl Fn() -> bool,
) {
    let (d, u) = (&delivery, &upkeep);
    every(DLQ_PASS_EVERY, stop, move || async move {
        d.upkeep_pass(&u(), stream_contracts::now_ms()).await
    })
    .await
}

/// Runs [`Delivery::retention_pass`] at once and every [`RETENTION_EVERY`] until `stop`
/// says so.
pub async fn run_dlq_retention(
    delivery: Arc<Delivery>,
    upkeep: impl Fn() -> DlqUpkeep,
    stop: impl Fn() -> bool,
) {
    let (d, u) = (&delivery, &upkeep);
    every(RETENTION_EVERY, stop, move || async move {
        d.retention_pass(&u(), stream_contracts::now_ms()).await
    })
    .await
}

/// `pass` at once and every `period` (a late tick waits a whole period) until `stop`.
async fn every<F: std::future::Future<Output = ()>>(
    period: std::time::Duration,
    stop: impl Fn() -> bool,
    pass: impl Fn() -> F,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stop() {
            return;
        }
        pass().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_removes_only_rows_done_with_by_age_and_count() {
        let mut upkeep = DlqUpkeep::from_config(&DlqConfig::default(), true);
        let now = 100 * 86_400_000;
        let rule = upkeep.retention(now).expect("on by default");
        assert_eq!(rule.older_than_ms, Some(70 * 86_400_000), "30 days");
        assert_eq!(rule.keep_newest, Some(100_000));
        assert!(rule.statuses.iter().all(|s| !s.is_pending()));
        upkeep.retention_days = 0;
        assert_eq!(upkeep.retention(now).unwrap().older_than_ms, None);
        upkeep.max_settled_rows = 0;
        assert_eq!(upkeep.retention(now), None, "both off: rows are kept");
    }
}
