//! The state log on librdkafka's mock broker: claims are ordered by the log, a claim
//! sees its predecessor's state, a superseded owner's commits are refused and — when
//! they land anyway — ignored by every reader, and a worker opening the log later reads
//! the same state.

use producer::{Claimed, StateLog};
use rdkafka::config::ClientConfig;

use crate::support::mock_cluster;

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn won(c: Claimed) -> (i64, Option<String>) {
    match c {
        Claimed::Won { epoch, state } => (epoch, state.map(|s| s.snapshot)),
        Claimed::Lost { owner } => panic!("lost to {owner}"),
    }
}

/// Every record of `g.state` so far: (key, payload).
fn read_all(bootstrap: &str) -> Vec<(String, Option<Vec<u8>>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = config(bootstrap)
        .set("group.id", "raw-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    consumer.subscribe(&["g.state"]).unwrap();
    let mut out = Vec::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < until {
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                m.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_fence_stale_writers_by_log_order() {
    let mock = mock_cluster(&["g.state"]);
    let bootstrap = mock.bootstrap_servers();
    let w1 = StateLog::open(&config(&bootstrap), "g.state")
        .await
        .unwrap();
    let w2 = StateLog::open(&config(&bootstrap), "g.state")
        .await
        .unwrap();

    let (e1, before) = won(w1.claim("firms", "w1").await.unwrap());
    assert_eq!(before, None, "nothing committed yet");
    assert!(w1.commit("firms", e1, "c1").await.unwrap());

    let (e2, state) = won(w2.claim("firms", "w2").await.unwrap());
    assert!(e2 > e1, "a later claim has a larger epoch");
    assert_eq!(
        state.as_deref(),
        Some("c1"),
        "the new owner resumes where w1 left"
    );
    // w1's state key is deleted once w2 has its state under its own: the topic keeps one
    // state per source, not one per claim.
    let tombstoned = format!("state/firms/{e1}/");
    assert!(
        read_all(&bootstrap)
            .iter()
            .any(|(key, payload)| key.starts_with(&tombstoned) && payload.is_none()),
        "a tombstone for {tombstoned}…"
    );

    // w1 may not have read w2's claim yet: its write may land after the claim. Readers
    // apply the log in order and ignore it (its epoch is no longer the newest claim).
    let _ = w1.commit("firms", e1, "stale").await.unwrap();
    assert!(w2.commit("firms", e2, "c2").await.unwrap());
    for _ in 0..200 {
        if w2.state("firms").map(|s| s.snapshot).as_deref() == Some("c2") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(w2.state("firms").map(|s| s.snapshot).as_deref(), Some("c2"));

    // w1 has read w2's claim by the time it commits again: refused, nothing written.
    for _ in 0..200 {
        if w1.owner("firms").is_some_and(|(e, _)| e == e2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!w1.commit("firms", e1, "stale").await.unwrap(), "refused");
    assert_eq!(w1.owner("firms").map(|(_, o)| o).as_deref(), Some("w2"));

    // A third reader opened now replays the log: w2's state, whatever came after.
    let w3 = StateLog::open(&config(&bootstrap), "g.state")
        .await
        .unwrap();
    assert_eq!(w3.state("firms").map(|s| s.snapshot).as_deref(), Some("c2"));
    assert_eq!(w3.owner("firms"), Some((e2, "w2".to_owned())));

    w1.report("g", "w1", "{\"sources\":[]}", 5).await.unwrap();
    w2.report("g", "w2", "{}", 6).await.unwrap();
    w2.report("other", "w9", "{}", 7).await.unwrap();
    for _ in 0..200 {
        if w3.members("g").len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let m = w3.members("g");
    assert_eq!(
        m,
        vec![
            ("w1".to_owned(), "{\"sources\":[]}".to_owned(), 5),
            ("w2".to_owned(), "{}".to_owned(), 6)
        ]
    );
}
