//! Metric names of the producer and the DLQ (the server adds its namespace prefix).

pub(crate) const SENT: &str = "producer_sent_total";
pub(crate) const FAILED: &str = "producer_failed_total";
pub(crate) const RETRIES: &str = "producer_retries_total";
pub(crate) const BACKPRESSURE_WAITS: &str = "producer_backpressure_waits_total";
pub(crate) const IN_FLIGHT: &str = "producer_in_flight";
pub(crate) const DELIVERY_SECONDS: &str = "producer_delivery_seconds";
pub(crate) const E2E_SECONDS: &str = "pipeline_e2e_latency_seconds";
pub(crate) const LIBRDKAFKA_QUEUE_MESSAGES: &str = "producer_librdkafka_queue_messages";
pub(crate) const LIBRDKAFKA_QUEUE_BYTES: &str = "producer_librdkafka_queue_bytes";
pub(crate) const LIBRDKAFKA_TX_MESSAGES: &str = "producer_librdkafka_tx_messages";
pub(crate) const LIBRDKAFKA_TX_BYTES: &str = "producer_librdkafka_tx_bytes";
pub(crate) const LIBRDKAFKA_TX_RETRIES: &str = "producer_librdkafka_tx_retries";
pub(crate) const LIBRDKAFKA_TX_ERRORS: &str = "producer_librdkafka_tx_errors";
pub(crate) const BROKERS_UP: &str = "producer_brokers_up";
pub(crate) const CLIENT_ERRORS: &str = "producer_client_errors_total";
pub(crate) const BROKER_RTT_P99: &str = "producer_broker_rtt_p99_seconds";
pub(crate) const DLQ_WRITES: &str = "dlq_writes_total";
pub(crate) const DLQ_REPLAYS: &str = "dlq_replays_total";
pub(crate) const DLQ_RETRIES: &str = "dlq_retries_total";
pub(crate) const DLQ_SIZE: &str = "dlq_size";
pub(crate) const DLQ_BUFFERED: &str = "dlq_buffered_records";
