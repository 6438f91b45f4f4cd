//! Metric names of the queue (the server adds its namespace prefix), and their help text.

pub(crate) const SIZE: &str = "queue_size";
pub(crate) const BYTES: &str = "queue_bytes";
pub(crate) const UTILIZATION: &str = "queue_utilization_percent";
pub(crate) const ENQUEUED: &str = "queue_enqueued_total";
pub(crate) const DEQUEUED: &str = "queue_dequeued_total";
pub(crate) const DROPPED: &str = "queue_dropped_total";
/// The seed's name: records dropped since start (evicted + refused), as a gauge.
pub(crate) const SEED_DROPPED: &str = "queue_dropped";
pub(crate) const BLOCKED: &str = "queue_blocked_seconds";

/// Registers the help text of every queue metric with the installed recorder (call once,
/// after installing it, so `/metrics` carries `# HELP` lines).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        SIZE,
        Unit::Count,
        "Records held in the queue, by priority; the series without a priority label is the total (the seed's `queue_size`)."
    );
    describe_gauge!(BYTES, Unit::Bytes, "Bytes held in the queue.");
    describe_gauge!(
        UTILIZATION,
        Unit::Percent,
        "Fill of the queue's tighter bound (count or bytes)."
    );
    describe_counter!(
        ENQUEUED,
        Unit::Count,
        "Records accepted by the queue, by priority."
    );
    describe_counter!(
        DEQUEUED,
        Unit::Count,
        "Records handed to the dispatcher, by priority."
    );
    describe_gauge!(
        SEED_DROPPED,
        Unit::Count,
        "Records evicted or refused by the queue since start (the seed's `queue_dropped`; `queue_dropped_total` has them by reason)."
    );
    describe_counter!(DROPPED, Unit::Count, "Records evicted or refused by the queue (each handed back for the DLQ), by reason and priority.");
    describe_histogram!(
        BLOCKED,
        Unit::Seconds,
        "Time a push waited for room under the block strategy."
    );
}
