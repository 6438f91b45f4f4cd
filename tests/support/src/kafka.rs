//! Verification by consuming: what reached a topic, counted by the `message_id` header.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

static GROUP: AtomicU64 = AtomicU64::new(0);

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// Its topic.
    pub topic: String,
    /// Its `message_id` header (empty when absent).
    pub id: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub payload: Vec<u8>,
}

/// Consumes `topics` from the start until `expected` records arrived (or `timeout`),
/// then half a second more to catch duplicates. Records in arrival order.
pub fn consume(
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    consume_with(&[], bootstrap, topics, expected, timeout)
}

/// [`consume`] with more librdkafka properties (security settings, say).
pub fn consume_with(
    properties: &[(String, String)],
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!(
                "verify-{}-{}",
                std::process::id(),
                GROUP.fetch_add(1, Ordering::Relaxed)
            ),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(topics).expect("subscribe");
    let mut out = Vec::new();
    let start = Instant::now();
    let mut grace: Option<Instant> = None;
    while start.elapsed() < timeout {
        if out.len() >= expected
            && grace.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(500)
        {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let headers: Vec<(String, String)> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let id = headers
                    .iter()
                    .find(|(k, _)| k == "message_id")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                out.push(Consumed {
                    topic: m.topic().to_owned(),
                    id,
                    headers,
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                });
            }
            // Topics that do not exist yet are not an error for a waiting consumer.
            Some(Err(e)) if e.to_string().contains("UnknownTopic") => {}
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    out
}

/// `message_id` → how many times it arrived on `topic`.
pub fn consume_ids(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for c in consume(bootstrap, &[topic], expected, timeout) {
        *seen.entry(c.id).or_default() += 1;
    }
    seen
}

/// Asserts every `prefix-0..n` id arrived exactly once and nothing else did.
pub fn assert_exactly_once(seen: &HashMap<String, usize>, prefix: &str, n: usize) {
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let missing: Vec<_> = (0..n)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|id| !seen.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {n} missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(seen.len(), n, "unexpected extra records");
}
