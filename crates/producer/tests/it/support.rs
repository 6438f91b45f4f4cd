//! Shared helpers: an in-memory DLQ, mock clusters, a verifying consumer.

use std::time::Duration;

use producer::{KafkaProducer, MemoryDeadLetterStore, OutgoingRecord, ProducerSettings};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A fresh in-memory DLQ (the SQL backends run the same contract in the `store` crate).
pub(crate) fn memory_store() -> MemoryDeadLetterStore {
    MemoryDeadLetterStore::default()
}

/// A one-broker mock cluster with `topics` (1 partition each).
pub(crate) fn mock_cluster(topics: &[&str]) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    for t in topics {
        mock.create_topic(t, 1, 1).expect("create topic");
    }
    mock
}

/// Fast retries for tests: 10 ms units instead of seconds.
pub(crate) fn fast_settings(max_retries: u32) -> ProducerSettings {
    ProducerSettings {
        max_retries,
        backoff_base: 2.0,
        backoff_unit: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        metadata_timeout: Duration::from_secs(5),
    }
}

pub(crate) fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000");
    c
}

pub(crate) fn producer(bootstrap: &str, extra: &[(&str, &str)], max_retries: u32) -> KafkaProducer {
    let mut c = base_config(bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    KafkaProducer::with_client_config(c, fast_settings(max_retries)).expect("producer")
}

/// `n` records to `topic` whose payload and `message_id` header carry `prefix-i`.
pub(crate) fn records(topic: &str, prefix: &str, n: usize) -> Vec<OutgoingRecord> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let mut r = OutgoingRecord::new(
                topic,
                "test-source",
                format!("{{\"id\":\"{id}\"}}").into_bytes(),
            );
            r.id = id.as_str().into();
            r.headers = std::sync::Arc::new([("message_id".into(), id.into_bytes().into())]);
            r
        })
        .collect()
}

pub(crate) use test_support::kafka::{assert_exactly_once, consume_ids};
