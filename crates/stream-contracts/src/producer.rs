//! The producer seam: a record on its way to Kafka, its outcome, the [`Producer`] trait
//! that sends it, and the error a producer or a dead-letter store returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::failure::DeliveryError;

/// A header's name: borrowed for the pipeline's fixed names, owned otherwise.
pub type HeaderName = std::borrow::Cow<'static, str>;

/// A record on its way to Kafka. Cloning it allocates nothing: every part is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingRecord {
    /// Stable identity (the DLQ's unique `message_id`).
    pub id: Arc<str>,
    /// The source that produced it.
    pub source_id: Arc<str>,
    /// Destination topic.
    pub topic: Arc<str>,
    /// Message key.
    pub key: Option<Bytes>,
    /// Message value.
    pub payload: Bytes,
    /// Message headers (the pipeline's metadata); names are usually `&'static str`.
    /// Built once (`vec![…].into()`, or an array), then shared by copies.
    pub headers: Arc<[(HeaderName, Bytes)]>,
    /// Takes the low-latency path.
    pub critical: bool,
    /// When the source emitted it, for end-to-end latency.
    pub emitted_at: Option<Instant>,
}

impl OutgoingRecord {
    /// A record with a fresh id and no key or headers.
    pub fn new(topic: &str, source_id: &str, payload: impl Into<Bytes>) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self {
            id: format!(
                "{nanos:x}-{:x}-{:x}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            )
            .into(),
            source_id: source_id.into(),
            topic: topic.into(),
            key: None,
            payload: payload.into(),
            headers: Arc::new([]),
            critical: false,
            emitted_at: None,
        }
    }
}

/// Where Kafka stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
}

/// A record's final outcome: acknowledged, or failed for good (after retries).
pub type Outcome = Result<Delivered, DeliveryError>;

/// Errors of a producer and of a dead-letter store (`producer::Error`). Causes are kept as sources; none carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Kafka client refused the configuration.
    #[error("invalid Kafka client configuration")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A Kafka operation failed.
    #[error("kafka: {what} failed")]
    Kafka {
        /// What was attempted.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedded broker could not start.
    #[error("the embedded broker could not start: {0}")]
    Embedded(String),
    /// A dead-letter store failed.
    #[error("dead-letter store failed")]
    Dlq(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A dead-letter store's own error, wrapped.
    pub fn dlq(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Dlq(cause.into())
    }

    /// A Kafka operation that failed, with what was attempted.
    pub fn kafka(
        what: &'static str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Kafka {
            what,
            source: cause.into(),
        }
    }
}

/// Result with a producer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sends records to Kafka and reports each one's outcome.
#[async_trait]
pub trait Producer: Send + Sync + std::fmt::Debug {
    /// Sends `records`; returns every record with its final outcome (in input order).
    /// A record is `Ok` only once the broker acknowledged it.
    async fn send(&self, records: Vec<OutgoingRecord>) -> Vec<(OutgoingRecord, Outcome)>;

    /// False while the local send queue is full (sends are waiting).
    fn is_ready(&self) -> bool;

    /// Records handed over and not yet reported.
    fn in_flight(&self) -> i64;

    /// Waits up to `timeout` for everything queued to be delivered.
    async fn flush(&self, timeout: Duration) -> Result<()>;

    /// Connectivity to the cluster (a metadata request with a timeout).
    async fn health(&self) -> KafkaHealth;

    /// Records sent, failed for good and resent since the producer was created (the
    /// seed's `total_sent`, `total_failed`, `retry_count`); zeros for a producer that
    /// keeps no counts.
    fn stats(&self) -> ProducerStats {
        ProducerStats::default()
    }
}

/// Kafka connectivity as last observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaHealth {
    /// A metadata request succeeded with at least one broker.
    pub connected: bool,
    /// Brokers in the cluster metadata.
    pub brokers: usize,
    /// The last client or metadata error, if any.
    pub last_error: Option<String>,
}

/// Counts since the producer was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Records acknowledged.
    pub sent: u64,
    /// Records that failed for good.
    pub failed: u64,
    /// Resends after retryable failures.
    pub retries: u64,
}
