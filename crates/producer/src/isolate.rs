//! A broker that validates records (tansu with `--schema-registry`) refuses a whole
//! produce batch with `INVALID_RECORD` when one record in it does not match the topic's
//! schema, and librdkafka fails every record of that batch alike. Each record refused so
//! in a batch of several is sent again alone (one at a time on the `linger.ms=0`
//! producer, its report awaited before the next), so its valid batch-mates are delivered
//! and only the offending record fails — permanently, with the broker's reason; nothing
//! is retried beyond that one resend.

use crate::kafka::KafkaProducer;
use crate::{Outcome, OutgoingRecord};
use stream_contracts::FailureReason;

/// Resent alone after their batch was refused as invalid, by outcome (`delivered`: the
/// record was only a batch-mate; `refused`: the broker refused it alone too).
pub(crate) const ISOLATED: &str = "producer_isolated_resends_total";

/// `outcomes` of `batch`, with every `invalid_record` failure of a multi-record attempt
/// replaced by the outcome of sending that record again alone.
pub(crate) async fn refused_batch_mates(
    producer: &KafkaProducer,
    batch: &[(usize, OutgoingRecord)],
    mut outcomes: Vec<Outcome>,
) -> Vec<Outcome> {
    let refused = |o: &Outcome| matches!(o, Err(e) if e.reason == FailureReason::InvalidRecord);
    if batch.len() < 2 || !outcomes.iter().any(refused) {
        return outcomes;
    }
    for (i, item) in batch.iter().enumerate() {
        if !refused(&outcomes[i]) {
            continue;
        }
        let again = producer
            .attempt(std::slice::from_ref(item), true)
            .await
            .pop()
            .unwrap_or_else(|| outcomes[i].clone());
        let label = if again.is_ok() {
            "delivered"
        } else {
            "refused"
        };
        metrics::counter!(ISOLATED, "outcome" => label).increment(1);
        outcomes[i] = again;
    }
    outcomes
}
