//! The state topic as a `CursorStore` (`TopicStore`), on librdkafka's mock broker: two
//! workers, each with its own view of the log. A worker sees another's claim in its view
//! before its next fetch (`check_lease`), and its commits under the old claim are refused.
//! A state far over Kafka's record size commits in bounded records, costs what changed
//! per commit, and is rebuilt exactly by a worker that starts later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use producer::{StateLog, TopicStore};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use stream_contracts::{Cursor, CursorStore};

async fn worker(bootstrap: &str) -> TopicStore {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    TopicStore::new(Arc::new(
        StateLog::open(&c, "g.state").await.expect("state log"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sees_a_newer_claim_before_its_next_fetch() {
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    mock.create_topic("g.state", 1, 1).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let (w1, w2) = (worker(&bootstrap).await, worker(&bootstrap).await);

    let first = w1.claim("firms", "w1").await.unwrap();
    w1.check_lease("firms", &first)
        .await
        .expect("the only claim holds");
    w1.commit_leased("firms", &Cursor("c1".into()), &first)
        .await
        .unwrap();
    let second = w2.claim("firms", "w2").await.unwrap();
    assert!(second.epoch > first.epoch, "{first:?} then {second:?}");
    w2.check_lease("firms", &second)
        .await
        .expect("the newest claim holds in its own worker's view");
    assert_eq!(
        w2.load("firms").await.unwrap(),
        Some(Cursor("c1".into())),
        "the new owner resumes where w1 left"
    );

    // w1 learns of the claim as fast as it reads the log.
    let until = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        match w1.check_lease("firms", &first).await {
            Err(stream_contracts::SourceError::Fenced(why)) => break why,
            Ok(()) => {
                assert!(Instant::now() < until, "w1 never saw w2's claim");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(seen.contains("`w2`"), "{seen}");
    let refused = w1
        .commit_leased("firms", &Cursor("c2".into()), &first)
        .await
        .expect_err("the old owner's commit is refused");
    assert!(
        matches!(&refused, stream_contracts::SourceError::Fenced(m) if m.contains("`w2`")),
        "{refused}"
    );
    assert_eq!(
        w2.load("firms").await.unwrap(),
        Some(Cursor("c1".into())),
        "nothing of w1's landed"
    );
}

/// The size of the largest record in `topic` so far (key and payload).
fn largest_record(bootstrap: &str, topic: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "raw-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let (mut largest, mut records) = (0, 0);
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                let n = m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
                largest = largest.max(n);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) if records > 0 => break,
            _ => {}
        }
    }
    assert!(records > 0, "no record of {topic} was read");
    largest
}

/// The case: an `http_json` source with a dedup window of 150,000 identities
/// (≈ 1.65 MB of state) on the state topic. Each commit of it once failed with
/// MessageSizeTooLarge (a record over librdkafka's 1 MB `message.max.bytes`), and a
/// restart resumed from a stale state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_150000_ids_commits_and_is_restored_exactly_after_a_restart() {
    const WINDOW: u64 = 150_000;
    const K: u64 = 10;
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    mock.create_topic("g.state", 1, 1).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let w1 = worker(&bootstrap).await;
    let lease = w1.claim("quakes", "w1").await.unwrap();
    let big = window(0, 0..WINDOW);
    assert!(big.0.len() > 1_600_000, "{} bytes", big.0.len());
    w1.commit_leased("quakes", &big, &lease)
        .await
        .expect("a state over 1 MB commits");
    let mut costs = Vec::new();
    for step in 1..=5 {
        let before = w1.state_bytes_written();
        w1.commit_leased("quakes", &window(step, step * K..WINDOW + step * K), &lease)
            .await
            .unwrap();
        costs.push(w1.state_bytes_written() - before);
    }
    assert!(
        costs.iter().all(|&c| c < K * 11 + 600),
        "a commit of {K} new identities wrote {costs:?} bytes"
    );
    let last = window(5, 5 * K..WINDOW + 5 * K);

    // A restart: a new worker reads the log from the start and claims the source.
    drop(w1);
    let w2 = worker(&bootstrap).await;
    assert_eq!(
        w2.load("quakes").await.unwrap().as_ref(),
        Some(&last),
        "the log alone rebuilds the last commit"
    );
    let again = w2.claim("quakes", "w2").await.unwrap();
    assert_eq!(w2.load("quakes").await.unwrap().as_ref(), Some(&last));
    let next = window(6, 6 * K..WINDOW + 6 * K);
    w2.commit_leased("quakes", &next, &again).await.unwrap();
    let w3 = worker(&bootstrap).await;
    assert_eq!(w3.load("quakes").await.unwrap(), Some(next));
    let largest = largest_record(&bootstrap, "g.state");
    assert!(
        largest <= producer::STATE_CHUNK_BYTES + 200,
        "no record of the state topic is over the chunk size: {largest} bytes"
    );
}

/// A stream restarted right after a commit loads its state again at once: the load must
/// see that commit (the log's reader applies records asynchronously), or the next deltas
/// would be made from an older state than the log's and not apply for any reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_right_after_a_commit_sees_it_and_the_chain_goes_on() {
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    mock.create_topic("g.state", 1, 1).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let w1 = worker(&bootstrap).await;
    let lease = w1.claim("nws", "w1").await.unwrap();
    for step in 0..4 {
        let state = window(step, step * 3..5_000 + step * 3);
        w1.commit_leased("nws", &state, &lease).await.unwrap();
        assert_eq!(
            w1.load("nws").await.unwrap().as_ref(),
            Some(&state),
            "step {step}"
        );
    }
    let w2 = worker(&bootstrap).await;
    assert_eq!(
        w2.load("nws").await.unwrap(),
        Some(window(3, 9..5_009)),
        "every delta applied for a reader that starts later"
    );
}

/// A fetch state of the HTTP shape whose dedup window holds `ids` (hashed as the client
/// does), as the store's contract suite builds it.
fn window(cursor: u64, ids: std::ops::Range<u64>) -> Cursor {
    use base64::Engine as _;
    let mut text = format!("{{\"http_state\":1,\"cursor\":\"{cursor}\",\"ids\":\"");
    for id in ids {
        let hashed = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode_string(hashed.to_le_bytes(), &mut text);
    }
    text.push_str("\"}");
    Cursor(text)
}
