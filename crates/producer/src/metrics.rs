//! Metric names of the producer and the DLQ (the server adds its namespace prefix).

pub(crate) const SENT: &str = "producer_sent_total";
pub(crate) const FAILED: &str = "producer_failed_total";
pub(crate) const RETRIES: &str = "producer_retries_total";
/// The seed's names: the producer's totals since start, as gauges.
pub(crate) const SEED_TOTAL_SENT: &str = "producer_total_sent";
pub(crate) const SEED_TOTAL_FAILED: &str = "producer_total_failed";
pub(crate) const SEED_RETRY_COUNT: &str = "producer_retry_count";
pub(crate) const BACKPRESSURE_WAITS: &str = "producer_backpressure_waits_total";
pub(crate) const IN_FLIGHT: &str = "producer_in_flight";

/// Sets `producer_in_flight` to `n`, the producer's count read now. The gauge is also set
/// when each batch ends, but two batches ending together can leave the earlier one's
/// reading last; call this before a scrape so the value shown is the count itself.
pub fn publish_in_flight(n: i64) {
    metrics::gauge!(IN_FLIGHT).set(n as f64);
}
pub(crate) const DELIVERY_SECONDS: &str = "producer_delivery_seconds";
pub(crate) const E2E_SECONDS: &str = "pipeline_e2e_latency_seconds";
pub(crate) const LIBRDKAFKA_QUEUE_MESSAGES: &str = "producer_librdkafka_queue_messages";
pub(crate) const LIBRDKAFKA_QUEUE_BYTES: &str = "producer_librdkafka_queue_bytes";
pub(crate) const LIBRDKAFKA_TX_MESSAGES: &str = "producer_librdkafka_tx_messages";
pub(crate) const LIBRDKAFKA_TX_BYTES: &str = "producer_librdkafka_tx_bytes";
pub(crate) const LIBRDKAFKA_TX_RETRIES: &str = "producer_librdkafka_tx_retries";
pub(crate) const LIBRDKAFKA_BATCH_MESSAGES: &str = "producer_librdkafka_batch_messages";
pub(crate) const LIBRDKAFKA_BATCH_BYTES: &str = "producer_librdkafka_batch_bytes";
pub(crate) const LIBRDKAFKA_TX_ERRORS: &str = "producer_librdkafka_tx_errors";
pub(crate) const BROKERS_UP: &str = "producer_brokers_up";
pub(crate) const CLIENT_ERRORS: &str = "producer_client_errors_total";
pub(crate) const BROKER_RTT_P99: &str = "producer_broker_rtt_p99_seconds";
pub(crate) const DLQ_WRITES: &str = "dlq_writes_total";
pub(crate) const DLQ_REPLAYS: &str = "dlq_replays_total";
pub(crate) const DLQ_RETRIES: &str = "dlq_retries_total";
pub(crate) const DLQ_SIZE: &str = "dlq_size";
pub(crate) const DLQ_BUFFERED: &str = "dlq_buffered_records";
pub(crate) const DLQ_DROPPED: &str = "dlq_dropped_total";
pub(crate) const DLQ_ROWS: &str = "dlq_rows";
pub(crate) const DLQ_JOURNAL_REJECTED: &str = "dlq_journal_rejected_lines_total";
pub(crate) const DLQ_OLDEST_PENDING: &str = "dlq_oldest_pending_age_seconds";

/// Registers the help text of every producer and DLQ metric with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(SENT, Unit::Count, "Records acknowledged by Kafka.");
    describe_counter!(
        crate::isolate::ISOLATED,
        Unit::Count,
        "Records resent alone after the broker refused their batch as invalid (a validating broker), by outcome: delivered (a batch-mate) or refused."
    );
    describe_counter!(
        FAILED,
        Unit::Count,
        "Records that failed for good after retries, by error type."
    );
    describe_counter!(
        RETRIES,
        Unit::Count,
        "Records resent by the producer's retry layer."
    );
    describe_gauge!(
        SEED_TOTAL_SENT,
        Unit::Count,
        "Records acknowledged by Kafka since start (the seed's `producer_total_sent`)."
    );
    describe_gauge!(
        SEED_TOTAL_FAILED,
        Unit::Count,
        "Records that failed for good since start (the seed's `producer_total_failed`)."
    );
    describe_gauge!(
        SEED_RETRY_COUNT,
        Unit::Count,
        "Resends since start (the seed's `producer_retry_count`)."
    );
    describe_counter!(
        BACKPRESSURE_WAITS,
        Unit::Count,
        "Sends that waited because librdkafka's local queue was full."
    );
    describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "Records handed to librdkafka and not yet reported."
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "Time from send to delivery report."
    );
    describe_histogram!(E2E_SECONDS, Unit::Seconds, "Time from a source emitting a record to Kafka acknowledging it, by path (normal, critical).");
    describe_gauge!(
        LIBRDKAFKA_QUEUE_MESSAGES,
        Unit::Count,
        "Messages in librdkafka's local queue, by producer path."
    );
    describe_gauge!(
        LIBRDKAFKA_QUEUE_BYTES,
        Unit::Bytes,
        "Bytes in librdkafka's local queue, by producer path."
    );
    describe_gauge!(
        LIBRDKAFKA_TX_MESSAGES,
        Unit::Count,
        "Messages librdkafka has transmitted (cumulative per client), by producer path."
    );
    describe_gauge!(
        LIBRDKAFKA_BATCH_MESSAGES,
        Unit::Count,
        "Mean records per message set librdkafka built in its last statistics interval, by producer path."
    );
    describe_gauge!(
        LIBRDKAFKA_BATCH_BYTES,
        Unit::Bytes,
        "Mean bytes per message set librdkafka built in its last statistics interval, by producer path."
    );
    describe_gauge!(
        LIBRDKAFKA_TX_BYTES,
        Unit::Bytes,
        "Bytes librdkafka has transmitted (cumulative per client), by producer path."
    );
    describe_gauge!(
        LIBRDKAFKA_TX_RETRIES,
        Unit::Count,
        "librdkafka's own request retries (cumulative per client), by producer path."
    );
    describe_gauge!(
        LIBRDKAFKA_TX_ERRORS,
        Unit::Count,
        "librdkafka's request errors (cumulative per client), by producer path."
    );
    describe_gauge!(
        BROKERS_UP,
        Unit::Count,
        "Brokers librdkafka sees up, by producer path."
    );
    describe_counter!(
        CLIENT_ERRORS,
        Unit::Count,
        "Client-level librdkafka errors (e.g. all brokers down), by path and error."
    );
    describe_gauge!(
        BROKER_RTT_P99,
        Unit::Seconds,
        "99th percentile broker round-trip time, by path and broker."
    );
    describe_counter!(
        DLQ_WRITES,
        Unit::Count,
        "Records written to the dead-letter store, by reason."
    );
    describe_counter!(
        DLQ_REPLAYS,
        Unit::Count,
        "Dead letters delivered by an operator's replay."
    );
    describe_counter!(
        DLQ_RETRIES,
        Unit::Count,
        "Background retry attempts of dead letters."
    );
    describe_gauge!(
        DLQ_SIZE,
        Unit::Count,
        "Dead letters still to deliver (queued for retry or permanent failure)."
    );
    describe_gauge!(
        DLQ_BUFFERED,
        Unit::Count,
        "Dead letters held in memory while the store is unreachable."
    );
    describe_gauge!(
        DLQ_ROWS,
        Unit::Count,
        "Rows in the dead-letter store, by status."
    );
    describe_gauge!(
        DLQ_OLDEST_PENDING,
        Unit::Seconds,
        "Age of the oldest dead letter still to deliver (0 when none)."
    );
    describe_counter!(
        DLQ_DROPPED,
        Unit::Count,
        "Undeliverable records dropped because enable_dlq is false, by source and reason."
    );
    describe_counter!(
        DLQ_JOURNAL_REJECTED,
        Unit::Count,
        "Unreadable dead-letter journal lines set aside in <journal>.rejected at replay."
    );
}
