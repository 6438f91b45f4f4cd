//! Why a record failed and what to do about it: [`FailureReason`] (the DLQ's
//! `failure_reason` and a metric label), [`ErrorClass`] and a classified
//! [`DeliveryError`]. The Kafka error codes are sorted into them by `producer`'s
//! `classify.rs`.

use std::fmt;
use std::str::FromStr;

/// Why a record failed: the DLQ's `failure_reason` and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// Evicted or refused by a full queue.
    QueueOverflow,
    /// Larger than the broker or producer allows.
    RecordTooLarge,
    /// The topic does not exist (brokers in use do not auto-create).
    UnknownTopic,
    /// Not authorised to write the topic.
    Authorization,
    /// The broker or client rejected the record itself.
    InvalidRecord,
    /// No broker (or leader) could take the record.
    BrokerUnavailable,
    /// Delivery timed out.
    Timeout,
    /// Connection-level failure.
    Network,
    /// The broker throttled the producer.
    RateLimit,
    /// A source delivered a record that could not be decoded.
    MalformedRecord,
    /// The service stopped before the record could be delivered.
    Shutdown,
    /// The service's own delivery task failed (panicked) while holding the record.
    TaskPanic,
    /// Anything else Kafka reported.
    KafkaError,
    /// The record does not match its data contract (a JSON Schema of its source or
    /// topic): never sent; the details name the failing JSON pointers.
    SchemaViolation,
}

impl FailureReason {
    /// Every reason, for listing and parsing.
    pub const ALL: [FailureReason; 14] = [
        FailureReason::QueueOverflow,
        FailureReason::RecordTooLarge,
        FailureReason::UnknownTopic,
        FailureReason::Authorization,
        FailureReason::InvalidRecord,
        FailureReason::BrokerUnavailable,
        FailureReason::Timeout,
        FailureReason::Network,
        FailureReason::RateLimit,
        FailureReason::MalformedRecord,
        FailureReason::Shutdown,
        FailureReason::TaskPanic,
        FailureReason::KafkaError,
        FailureReason::SchemaViolation,
    ];

    /// The stored and labelled name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::QueueOverflow => "queue_overflow",
            FailureReason::RecordTooLarge => "record_too_large",
            FailureReason::UnknownTopic => "unknown_topic",
            FailureReason::Authorization => "authorization",
            FailureReason::InvalidRecord => "invalid_record",
            FailureReason::BrokerUnavailable => "broker_unavailable",
            FailureReason::Timeout => "timeout",
            FailureReason::Network => "network",
            FailureReason::RateLimit => "rate_limit",
            FailureReason::MalformedRecord => "malformed_record",
            FailureReason::Shutdown => "shutdown",
            FailureReason::TaskPanic => "task_panic",
            FailureReason::KafkaError => "kafka_error",
            FailureReason::SchemaViolation => "schema_violation",
        }
    }

    /// Whether the DLQ's background worker retries records failed for this reason.
    /// Only transient causes are: the rest wait for an operator's replay.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            FailureReason::BrokerUnavailable
                | FailureReason::Timeout
                | FailureReason::Network
                | FailureReason::RateLimit
                | FailureReason::Shutdown
                | FailureReason::TaskPanic
        )
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureReason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        FailureReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown failure reason `{s}`"))
    }
}

/// What the producer does with a failed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Send it again after a backoff (only this record).
    Retryable,
    /// Retrying cannot help: dead-letter it now.
    Fatal,
}

/// A failed delivery, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// Retry or give up.
    pub class: ErrorClass,
    /// The reason recorded in the DLQ.
    pub reason: FailureReason,
    /// librdkafka's error code name, e.g. `MessageSizeTooLarge`.
    pub code: Option<String>,
    /// Human-readable detail.
    pub message: String,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for DeliveryError {}
