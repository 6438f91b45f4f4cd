//! Kafka errors sorted into what to do about them, by an explicit list (as Vector's
//! kafka sink keeps one): fatal for the record, or retryable.

use std::fmt;
use std::str::FromStr;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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

/// Fatal codes: the record itself, its topic or our rights are the problem.
fn fatal_reason(code: RDKafkaErrorCode) -> Option<FailureReason> {
    use RDKafkaErrorCode::*;
    Some(match code {
        MessageSizeTooLarge | InvalidMessageSize | MessageBatchTooLarge => {
            FailureReason::RecordTooLarge
        }
        UnknownTopic
        | UnknownTopicOrPartition
        | UnknownPartition
        | InvalidTopic
        | UnknownTopicId => FailureReason::UnknownTopic,
        TopicAuthorizationFailed
        | ClusterAuthorizationFailed
        | TransactionalIdAuthorizationFailed
        | SaslAuthenticationFailed
        | Authentication => FailureReason::Authorization,
        InvalidMessage
        | InvalidRecord
        | BadMessage
        | InvalidTimestamp
        | InvalidRequiredAcks
        | UnsupportedForMessageFormat
        | UnsupportedCompressionType
        | KeySerialization
        | ValueSerialization
        | PolicyViolation => FailureReason::InvalidRecord,
        _ => return None,
    })
}

/// Retryable codes sorted into reasons; anything not fatal is retryable.
fn retry_reason(code: RDKafkaErrorCode) -> FailureReason {
    use RDKafkaErrorCode::*;
    match code {
        MessageTimedOut | RequestTimedOut | OperationTimedOut | TimedOutQueue => {
            FailureReason::Timeout
        }
        BrokerTransportFailure | NetworkException | Resolve | SSL => FailureReason::Network,
        ThrottlingQuotaExceeded => FailureReason::RateLimit,
        AllBrokersDown
        | BrokerNotAvailable
        | LeaderNotAvailable
        | NotLeaderForPartition
        | NotEnoughReplicas
        | NotEnoughReplicasAfterAppend
        | ReplicaNotAvailable
        | KafkaStorageError
        | FencedLeaderEpoch
        | UnknownLeaderEpoch
        | QueueFull
        | PreferredLeaderNotAvailable
        | ISRInsufficient => FailureReason::BrokerUnavailable,
        _ => FailureReason::KafkaError,
    }
}

/// Classifies a librdkafka error code.
pub fn classify_code(code: RDKafkaErrorCode) -> DeliveryError {
    let (class, reason) = match fatal_reason(code) {
        Some(reason) => (ErrorClass::Fatal, reason),
        None => (ErrorClass::Retryable, retry_reason(code)),
    };
    DeliveryError {
        class,
        reason,
        code: Some(format!("{code:?}")),
        message: code.to_string(),
    }
}

/// Classifies an rdkafka error.
pub fn classify(err: &KafkaError) -> DeliveryError {
    match err.rdkafka_error_code() {
        Some(code) => DeliveryError {
            message: err.to_string(),
            ..classify_code(code)
        },
        None => DeliveryError {
            class: ErrorClass::Retryable,
            reason: FailureReason::KafkaError,
            code: None,
            message: err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_lists() {
        for (code, class, reason) in [
            (
                RDKafkaErrorCode::MessageSizeTooLarge,
                ErrorClass::Fatal,
                FailureReason::RecordTooLarge,
            ),
            (
                RDKafkaErrorCode::UnknownTopicOrPartition,
                ErrorClass::Fatal,
                FailureReason::UnknownTopic,
            ),
            (
                RDKafkaErrorCode::TopicAuthorizationFailed,
                ErrorClass::Fatal,
                FailureReason::Authorization,
            ),
            (
                RDKafkaErrorCode::InvalidRecord,
                ErrorClass::Fatal,
                FailureReason::InvalidRecord,
            ),
            (
                RDKafkaErrorCode::MessageTimedOut,
                ErrorClass::Retryable,
                FailureReason::Timeout,
            ),
            (
                RDKafkaErrorCode::AllBrokersDown,
                ErrorClass::Retryable,
                FailureReason::BrokerUnavailable,
            ),
            (
                RDKafkaErrorCode::NotLeaderForPartition,
                ErrorClass::Retryable,
                FailureReason::BrokerUnavailable,
            ),
            (
                RDKafkaErrorCode::NotEnoughReplicas,
                ErrorClass::Retryable,
                FailureReason::BrokerUnavailable,
            ),
            (
                RDKafkaErrorCode::NetworkException,
                ErrorClass::Retryable,
                FailureReason::Network,
            ),
            (
                RDKafkaErrorCode::ThrottlingQuotaExceeded,
                ErrorClass::Retryable,
                FailureReason::RateLimit,
            ),
        ] {
            let e = classify_code(code);
            assert_eq!((e.class, e.reason), (class, reason), "{code:?}");
        }
    }

    #[test]
    fn reasons_round_trip_and_retriability() {
        for r in FailureReason::ALL {
            assert_eq!(r.as_str().parse::<FailureReason>(), Ok(r));
        }
        assert!(FailureReason::BrokerUnavailable.is_retriable());
        assert!(!FailureReason::RecordTooLarge.is_retriable());
        assert!(!FailureReason::QueueOverflow.is_retriable());
    }
}
