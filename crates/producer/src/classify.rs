//! Kafka errors sorted into what to do about them, by an explicit list (as Vector's
//! kafka sink keeps one): fatal for the record, or retryable.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use stream_contracts::{DeliveryError, ErrorClass, FailureReason};

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
