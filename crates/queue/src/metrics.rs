//! Metric names of the queue (the server adds its namespace prefix).

pub(crate) const SIZE: &str = "queue_size";
pub(crate) const BYTES: &str = "queue_bytes";
pub(crate) const UTILIZATION: &str = "queue_utilization_percent";
pub(crate) const ENQUEUED: &str = "queue_enqueued_total";
pub(crate) const DEQUEUED: &str = "queue_dequeued_total";
pub(crate) const DROPPED: &str = "queue_dropped_total";
pub(crate) const BLOCKED: &str = "queue_blocked_seconds";

pub(crate) fn priority_label(p: crate::Priority) -> &'static str {
    match p {
        crate::Priority::Low => "low",
        crate::Priority::Normal => "normal",
        crate::Priority::High => "high",
        crate::Priority::Critical => "critical",
    }
}
