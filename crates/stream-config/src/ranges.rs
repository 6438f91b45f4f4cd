//! The range of every number a configuration holds, checked by `validate`, and
//! [`seconds`], the one conversion of a configured number of seconds into a `Duration`.
//!
//! Every duration, rate, count and size of the model has a range here; a value outside
//! it is a problem with its key, its line and the range as the hint, never a panic
//! later (`Duration::from_secs_f64(1e20)`, `Instant + Duration::MAX`, a semaphore of
//! `usize::MAX` permits, `base^retries` seconds). The ranges:
//!
//! | key | range |
//! |---|---|
//! | `kafka.batch_size` | 1 – 1,000,000 records |
//! | `kafka.linger_ms` | 0 – 900,000 ms |
//! | `kafka.max_retries` | 0 – 100 |
//! | `kafka.retry_backoff_base` | 1 – 10 |
//! | `kafka.message_timeout_ms` | 1 – 2,147,483,647 ms (librdkafka's limit) |
//! | `throttling.min_send_rate`, `max_send_rate` | 0.001 – 1e9 records/s |
//! | `throttling.target_consumer_lag`, `critical_consumer_lag` | 0 – 1e15 messages |
//! | `throttling.adjustment_factor` | above 1, at most 100 |
//! | `throttling.window_size_seconds` | 1 – 86,400 s |
//! | `throttling.metric_sample_size` | 1 – 1,000,000 |
//! | `throttling.max_backoff_level` | 1 – 30 |
//! | `throttling.recovery_checks` | 1 – 10,000 |
//! | `throttling.critical_share` | above 0, at most 1 (checked in `validate.rs`) |
//! | `queue_max_size` | 1 – 100,000,000 records |
//! | `queue_max_bytes` | 1 KiB – 1 TiB |
//! | `dlq.max_retries` | 0 – 100 |
//! | `dlq.retry_base_delay_seconds` | 1 – 86,400 s |
//! | `dlq.retention_days` | 0 – 36,500 days |
//! | `dlq.max_settled_rows` | 0 – 1e12 rows |
//! | `topics.*.partitions` | 1 – 100,000 |
//! | `topics.*.replication_factor` | 1 – 32,767 |
//! | `topics.*.retention_ms` | -1 (forever) or above 0 (checked in `validate.rs`) |
//! | `sources.*.rate_limit_per_minute` | 1 – 6,000,000 |
//! | `sources.*.timeout_seconds` | 0.001 – 3,600 s |
//! | `sources.*.cache_ttl_seconds` | 0 – 604,800 s (a week) |
//! | `sources.*.partition_key.geo.precision` | 1 – 12 (checked in `validate.rs`) |
//! | `sources.*.ingestion.polling_interval_seconds` | 0.001 – 31,536,000 s (a year) |
//! | `sources.*.ingestion.schedule_interval_seconds` | 1 – 31,536,000 s |
//! | `sources.*.ingestion.batch_size`, `buffer_size` | 1 – 1,000,000 records |
//! | `sources.*.ingestion.buffer_flush_interval_seconds` | 0.001 – 86,400 s |
//! | `sources.*.ingestion.max_records_per_poll` | 1 – 100,000,000 records |
//! | `server.shutdown_timeout_seconds` | 0.001 – 86,400 s |
//! | `server.header_read_timeout_seconds` | 0.001 – 3,600 s |
//! | `server.max_connections` | 1 – 100,000 |
//! | `cluster.slots` | 1 – 1,024 |
//! | `cluster.session_timeout_ms` | 1,000 – 300,000 ms |
//! | `cluster.handover_timeout_seconds` | 1 – 3,600 s |
//!
//! A connector's `custom_params` are checked by the connector itself (api-client).

use std::time::Duration;

use crate::model::StreamConfig;
use crate::path::KeyPath;
use crate::validate::Checker;

/// The longest duration any configured number of seconds becomes: ten years. Far past
/// every range above, and far from where `Instant + Duration` overflows.
pub const MAX_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;

/// `v` seconds as a `Duration`, saturated into `[0, MAX_SECONDS]` (NaN is 0). `validate`
/// keeps configured values well inside that; this makes a conversion that `validate`
/// did not see (a library user's own settings, an upstream's number) safe as well.
pub fn seconds(v: f64) -> Duration {
    if v.is_nan() || v <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(v.min(MAX_SECONDS))
    }
}

const YEAR: f64 = 365.0 * 86_400.0;

impl Checker {
    /// `v` must be a finite number in `lo..=hi`.
    pub(crate) fn float_range(&mut self, path: KeyPath, v: f64, (lo, hi): (f64, f64), unit: &str) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.fail(
                path,
                format!("must be between {lo} and {hi}{unit}, got {v}"),
                format!(
                    "use a number from {lo} to {hi} (the README's Ranges table lists every key's)"
                ),
            );
        }
    }

    /// `v` must be in `lo..=hi`.
    pub(crate) fn int_range(&mut self, path: KeyPath, v: u64, (lo, hi): (u64, u64), unit: &str) {
        if !(lo..=hi).contains(&v) {
            self.fail(
                path,
                format!("must be between {lo} and {hi}{unit}, got {v}"),
                format!("use a whole number from {lo} to {hi} (the README's Ranges table lists every key's)"),
            );
        }
    }
}

/// Checks every number of `cfg` (but `cluster.*`, checked with the cluster section, and
/// the pairs whose order matters, checked beside their other rules).
pub(crate) fn check(c: &mut Checker, cfg: &StreamConfig) {
    let root = KeyPath::default();
    let k = root.key("kafka");
    let kafka = &cfg.kafka;
    c.int_range(
        k.key("batch_size"),
        kafka.batch_size.into(),
        (1, 1_000_000),
        " records",
    );
    c.int_range(
        k.key("linger_ms"),
        kafka.linger_ms.into(),
        (0, 900_000),
        " ms",
    );
    c.int_range(k.key("max_retries"), kafka.max_retries.into(), (0, 100), "");
    c.float_range(
        k.key("retry_backoff_base"),
        kafka.retry_backoff_base,
        (1.0, 10.0),
        "",
    );
    if let Some(ms) = kafka.message_timeout_ms {
        c.int_range(
            k.key("message_timeout_ms"),
            ms.into(),
            (1, i32::MAX as u64),
            " ms",
        );
    }

    let t = root.key("throttling");
    let th = &cfg.throttling;
    for (key, rate) in [
        ("min_send_rate", th.min_send_rate),
        ("max_send_rate", th.max_send_rate),
    ] {
        if !(rate.is_finite() && (0.001..=1e9).contains(&rate)) {
            c.fail(
                t.key(key),
                format!("must be between 0.001 and 1e9 records per second, got {rate}"),
                "use at most 1000000000 (1e9), the fastest a throttle paces; set `throttling.enabled: false` for no limit",
            );
        }
    }
    for (key, lag) in [
        ("target_consumer_lag", th.target_consumer_lag),
        ("critical_consumer_lag", th.critical_consumer_lag),
    ] {
        c.int_range(t.key(key), lag, (0, 1_000_000_000_000_000), " messages");
    }
    let factor = th.adjustment_factor;
    if !(factor.is_finite() && factor > 1.0 && factor <= 100.0) {
        c.fail(
            t.key("adjustment_factor"),
            format!("must be above 1 and at most 100, got {factor}"),
            "e.g. 1.5: each backoff level divides the rate by 1.5",
        );
    }
    c.int_range(
        t.key("window_size_seconds"),
        th.window_size_seconds,
        (1, 86_400),
        " s",
    );
    c.int_range(
        t.key("metric_sample_size"),
        th.metric_sample_size as u64,
        (1, 1_000_000),
        "",
    );
    c.int_range(
        t.key("max_backoff_level"),
        th.max_backoff_level.into(),
        (1, 30),
        "",
    );
    c.int_range(
        t.key("recovery_checks"),
        th.recovery_checks.into(),
        (1, 10_000),
        "",
    );

    c.int_range(
        root.key("queue_max_size"),
        cfg.queue_max_size as u64,
        (1, 100_000_000),
        " records",
    );
    if let Some(bytes) = cfg.queue_max_bytes {
        c.int_range(
            root.key("queue_max_bytes"),
            bytes,
            (1 << 10, 1 << 40),
            " bytes",
        );
    }

    let d = root.key("dlq");
    c.int_range(
        d.key("max_retries"),
        cfg.dlq.max_retries.into(),
        (0, 100),
        "",
    );
    c.int_range(
        d.key("retry_base_delay_seconds"),
        cfg.dlq.retry_base_delay_seconds,
        (1, 86_400),
        " s",
    );
    c.int_range(
        d.key("retention_days"),
        cfg.dlq.retention_days.into(),
        (0, 36_500),
        " days",
    );
    c.int_range(
        d.key("max_settled_rows"),
        cfg.dlq.max_settled_rows,
        (0, 1_000_000_000_000),
        " rows",
    );

    for (name, topic) in &cfg.topics {
        let p = root.key("topics").key(name);
        c.int_range(
            p.key("partitions"),
            topic.partitions.into(),
            (1, 100_000),
            "",
        );
        c.int_range(
            p.key("replication_factor"),
            topic.replication_factor.into(),
            (1, i16::MAX as u64),
            "",
        );
    }

    for (id, src) in &cfg.sources {
        let p = root.key("sources").key(id);
        c.int_range(
            p.key("rate_limit_per_minute"),
            src.rate_limit_per_minute.into(),
            (1, 6_000_000),
            "",
        );
        c.float_range(
            p.key("timeout_seconds"),
            src.timeout_seconds,
            (0.001, 3_600.0),
            " s",
        );
        c.int_range(
            p.key("cache_ttl_seconds"),
            src.cache_ttl_seconds,
            (0, 7 * 86_400),
            " s",
        );
        let i = p.key("ingestion");
        let ing = &src.ingestion;
        c.float_range(
            i.key("polling_interval_seconds"),
            ing.polling_interval_seconds,
            (0.001, YEAR),
            " s",
        );
        c.int_range(
            i.key("schedule_interval_seconds"),
            ing.schedule_interval_seconds,
            (1, YEAR as u64),
            " s",
        );
        for (key, n) in [
            ("batch_size", ing.batch_size),
            ("buffer_size", ing.buffer_size),
        ] {
            c.int_range(i.key(key), n as u64, (1, 1_000_000), " records");
        }
        c.float_range(
            i.key("buffer_flush_interval_seconds"),
            ing.buffer_flush_interval_seconds,
            (0.001, 86_400.0),
            " s",
        );
        c.int_range(
            i.key("max_records_per_poll"),
            ing.max_records_per_poll as u64,
            (1, 100_000_000),
            " records",
        );
    }

    let s = root.key("server");
    c.float_range(
        s.key("shutdown_timeout_seconds"),
        cfg.server.shutdown_timeout_seconds,
        (0.001, 86_400.0),
        " s",
    );
    c.float_range(
        s.key("header_read_timeout_seconds"),
        cfg.server.header_read_timeout_seconds,
        (0.001, 3_600.0),
        " s",
    );
    c.int_range(
        s.key("max_connections"),
        cfg.server.max_connections as u64,
        (1, 100_000),
        "",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_saturate_instead_of_panicking() {
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
        for v in [f64::NAN, -1.0, f64::NEG_INFINITY, 0.0, -0.0] {
            assert_eq!(seconds(v), Duration::ZERO, "{v}");
        }
        for v in [1e20, f64::INFINITY, f64::MAX] {
            assert_eq!(seconds(v), Duration::from_secs_f64(MAX_SECONDS), "{v}");
        }
        // Ten years from now is still an Instant.
        let _ = std::time::Instant::now() + seconds(f64::INFINITY);
    }
}
