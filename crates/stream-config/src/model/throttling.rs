//! The `throttling` section, the queue's overflow strategy and the `dlq` section.

use super::*;

/// Consumer-lag-aware send control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottlingConfig {
    /// Whether sends are throttled at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Lowest send rate, records per second.
    #[serde(default = "default_min_send_rate")]
    pub min_send_rate: f64,
    /// Highest send rate, records per second.
    #[serde(default = "default_max_send_rate")]
    pub max_send_rate: f64,
    /// Average lag below which sending is unrestricted.
    #[serde(default = "default_target_consumer_lag")]
    pub target_consumer_lag: u64,
    /// Average lag at or above which sending backs off exponentially.
    #[serde(default = "default_critical_consumer_lag")]
    pub critical_consumer_lag: u64,
    /// Factor by which the rate is divided under lag and multiplied on recovery (> 1).
    #[serde(default = "default_adjustment_factor")]
    pub adjustment_factor: f64,
    /// Width of the sliding window of lag samples.
    #[serde(default = "default_window_size_seconds")]
    pub window_size_seconds: u64,
    /// Most samples kept in the window.
    #[serde(default = "default_metric_sample_size")]
    pub metric_sample_size: usize,
    /// Highest backoff level (the delay doubles per level from 2 s).
    #[serde(default = "default_max_backoff_level")]
    pub max_backoff_level: u32,
    /// Consecutive low-lag checks before the rate is raised again.
    #[serde(default = "default_recovery_checks")]
    pub recovery_checks: u32,
    /// Consumer groups whose lag is watched. Absent: every group with committed offsets
    /// on the pipeline's topics, discovered through the cluster (Kafka's ListGroups and
    /// OffsetFetch) and refreshed every 30 s; `[]`: no lag throttling (only
    /// `max_send_rate` applies); a list: exactly those groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_groups: Option<Vec<String>>,
    /// CRITICAL records' own send rate, as a share of `max_send_rate` (0 < share ≤ 1):
    /// they never wait behind other records' tokens, and an alert storm cannot send
    /// faster than this.
    #[serde(default = "default_critical_share")]
    pub critical_share: f64,
    /// Per-source fairness: while more than one source has records in the pipeline,
    /// each may hold at most its fair share of the queue (`queue_max_size` ÷ busy
    /// sources) and waits for its own records beyond it, and a full queue holds (rather
    /// than refuses) a record of a source under its share, so one that floods cannot
    /// crowd out the others. Alone, a source uses the whole queue and its overflow
    /// strategy.
    #[serde(default = "yes")]
    pub fair_share: bool,
    /// Lag per source: each source gets a throttle of its own (the same states, levels
    /// and settings) fed by the lag of the topics its records go to, and is held back
    /// by it alone; the global throttle then sees only the lag of topics no source
    /// sends to. Off (the seed's behaviour): the total lag throttles every source.
    #[serde(default)]
    pub lag_per_source: bool,
}

fn default_critical_share() -> f64 {
    0.2
}

impl Default for ThrottlingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_send_rate: default_min_send_rate(),
            max_send_rate: default_max_send_rate(),
            target_consumer_lag: default_target_consumer_lag(),
            critical_consumer_lag: default_critical_consumer_lag(),
            adjustment_factor: default_adjustment_factor(),
            window_size_seconds: default_window_size_seconds(),
            metric_sample_size: default_metric_sample_size(),
            max_backoff_level: default_max_backoff_level(),
            recovery_checks: default_recovery_checks(),
            consumer_groups: None,
            critical_share: default_critical_share(),
            fair_share: true,
            lag_per_source: false,
        }
    }
}

/// What a full queue does with one more record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowStrategy {
    /// Evict the oldest record of the lowest priority not above the incoming one.
    #[default]
    DropOldest,
    /// Refuse the incoming record.
    DropNewest,
    /// Wait for room (backpressure on the source).
    Block,
}

/// Dead-letter queue storage and retry policy. `Debug` shows it with secrets redacted (`debug.rs`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqConfig {
    /// Storage URL: `sqlite://path` (embedded default) or `postgres://user:pass@host/db`.
    #[serde(default = "default_dlq_url")]
    pub url: String,
    /// Background retries of a retriable failure before it becomes permanent.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First retry delay; retry n waits `retry_base_delay_seconds * 2^n`.
    #[serde(default = "default_retry_base_delay_seconds")]
    pub retry_base_delay_seconds: u64,
    /// Where dead letters still held in memory at exit (the store was unreachable) are
    /// written; replayed into the store, and removed, at the next start (a line that
    /// cannot be read is set aside in `<journal_path>.rejected`).
    #[serde(default = "default_journal_path")]
    pub journal_path: String,
    /// Rows done with (delivered by a retry, replayed, discarded) are deleted this many
    /// days after their last change (0: kept). Pending rows are never deleted by
    /// retention.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// At most this many rows done with are kept, the newest (0: no limit).
    #[serde(default = "default_max_settled_rows")]
    pub max_settled_rows: u64,
}

impl Default for DlqConfig {
    fn default() -> Self {
        Self {
            url: default_dlq_url(),
            max_retries: default_max_retries(),
            retry_base_delay_seconds: default_retry_base_delay_seconds(),
            journal_path: default_journal_path(),
            retention_days: default_retention_days(),
            max_settled_rows: default_max_settled_rows(),
        }
    }
}
