//! A broker that refuses a whole batch as `INVALID_RECORD` (tansu validating against a
//! schema): the batch-mates are delivered, only the refused record fails, nothing loops.

use std::collections::HashMap;
use std::time::Duration;

use producer::{FailureReason, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::support::{assert_exactly_once, consume_ids, mock_cluster, producer, records};

#[tokio::test]
async fn a_batch_refused_as_invalid_delivers_its_batch_mates_and_fails_only_the_refused_one() {
    let mock = mock_cluster(&["t"]);
    let p = producer(&mock.bootstrap_servers(), &[("linger.ms", "50")], 3);
    assert!(p.send(records("t", "warm", 1)).await[0].1.is_ok());
    // The batch of 20 is refused; then the first record, resent alone, is refused again.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD; 2],
    );
    let outcomes = p.send(records("t", "x", 20)).await;
    let failed: Vec<_> = outcomes
        .iter()
        .filter_map(|(r, o)| o.as_ref().err().map(|e| (r.id.to_string(), e.clone())))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "x-0");
    assert_eq!(failed[0].1.reason, FailureReason::InvalidRecord);
    assert_eq!(failed[0].1.code.as_deref(), Some("InvalidRecord"));
    assert_eq!(p.stats().retries, 0, "a refusal is not retried");
    let seen = consume_ids(&mock.bootstrap_servers(), "t", 20, Duration::from_secs(20));
    let x: HashMap<_, _> = seen
        .into_iter()
        .filter(|(k, _)| k.starts_with("x-") && k != "x-0")
        .map(|(k, n)| (format!("y-{}", k[2..].parse::<usize>().unwrap() - 1), n))
        .collect();
    assert_exactly_once(&x, "y", 19);
}
