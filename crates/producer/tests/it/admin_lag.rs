//! Topic creation and the consumer-lag probe, on the mock broker.

use std::collections::BTreeMap;
use std::time::Duration;

use producer::{ensure_topics, KafkaLagProbe, Producer, TopicOutcome};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use stream_config::{Compression, TopicConfig};
use throttling::LagProbe;

use crate::support::{base_config, mock_cluster, producer, records};

#[tokio::test]
async fn existing_topics_are_detected_and_a_refusal_is_reported_clearly() {
    // The mock broker has no CreateTopics (creation itself is covered against a real
    // broker by the xtask suite); what it can show is the detection of existing topics
    // and a clear, bounded error when creation is impossible.
    let mock = mock_cluster(&["already-there"]);
    let config = base_config(&mock.bootstrap_servers());
    let mut topics = BTreeMap::new();
    topics.insert("already-there".to_owned(), TopicConfig::default());
    let outcomes = ensure_topics(&config, &topics, Compression::Gzip, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(outcomes["already-there"], TopicOutcome::Existed);

    topics.insert(
        "wildfire-iot-sensors".to_owned(),
        TopicConfig {
            partitions: 3,
            compression_type: Some(Compression::Lz4),
            ..TopicConfig::default()
        },
    );
    let started = std::time::Instant::now();
    let outcomes = ensure_topics(&config, &topics, Compression::Gzip, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(outcomes["already-there"], TopicOutcome::Existed);
    match &outcomes["wildfire-iot-sensors"] {
        TopicOutcome::Refused(why) => {
            assert!(why.starts_with("creating topics failed: "), "{why}");
            assert!(why.len() > "creating topics failed: ".len(), "{why}");
        }
        other => panic!("the missing topic is refused with the broker's answer: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by the timeout"
    );
}

#[tokio::test]
async fn lag_is_high_watermark_minus_committed_per_group() {
    let mock = mock_cluster(&["t", "other"]);
    let bootstrap = mock.bootstrap_servers();
    let p = producer(&bootstrap, &[], 0);
    assert!(p
        .send(records("t", "r", 50))
        .await
        .iter()
        .all(|(_, o)| o.is_ok()));
    assert!(p
        .send(records("other", "o", 5))
        .await
        .iter()
        .all(|(_, o)| o.is_ok()));
    // Group "analytics" has consumed 20 of "t" and never read "other".
    let mut c = base_config(&bootstrap);
    c.set("group.id", "analytics")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t", 0, Offset::Offset(20))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();

    let probe = KafkaLagProbe::new(
        base_config(&bootstrap),
        vec!["analytics".into()],
        vec!["t".into(), "other".into()],
    )
    .with_cache(Duration::from_secs(60));
    let lag = probe.lag().await.unwrap();
    assert_eq!(lag.total, 30);
    assert_eq!(lag.by_topic["t"], 30);
    assert_eq!(
        lag.by_topic["other"], 0,
        "a topic the group does not consume adds nothing"
    );

    // Cached: more records do not change the reading within the cache interval.
    assert!(p
        .send(records("t", "more", 10))
        .await
        .iter()
        .all(|(_, o)| o.is_ok()));
    assert_eq!(probe.lag().await.unwrap().total, 30);
    let fresh = KafkaLagProbe::new(
        base_config(&bootstrap),
        vec!["analytics".into()],
        vec!["t".into()],
    );
    assert_eq!(fresh.lag().await.unwrap().total, 40);
}

#[tokio::test]
async fn embedded_broker_serves_its_topics_until_dropped() {
    let broker = producer::EmbeddedBroker::start(&[("alerts".to_owned(), 2)]).unwrap();
    let bootstrap = broker.bootstrap_servers().to_owned();
    assert!(bootstrap.starts_with("127.0.0.1:"), "{bootstrap}");
    let p = producer(&bootstrap, &[], 0);
    assert!(p
        .send(records("alerts", "a", 5))
        .await
        .iter()
        .all(|(_, o)| o.is_ok()));
    let consumer: BaseConsumer = base_config(&bootstrap).create().unwrap();
    let md = consumer
        .fetch_metadata(Some("alerts"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 2);
    drop(consumer);
    drop(p);
    drop(broker);
    let port: u16 = bootstrap.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the broker is gone"
    );
}

#[tokio::test]
async fn discovery_on_a_broker_without_list_groups_fails_with_the_reason() {
    // librdkafka's mock cluster does not implement ListGroups: the probe must say that
    // the listing failed (the throttle then stays as it is), not report a lag of 0.
    let mock = mock_cluster(&["t"]);
    let probe = KafkaLagProbe::discovering(
        base_config(&mock.bootstrap_servers()),
        vec!["t".into()],
        vec![],
    )
    .with_cache(Duration::ZERO);
    let started = std::time::Instant::now();
    let err = probe.lag().await.unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("listing consumer groups failed"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15), "bounded");
    // Until the next listing (30 s) the failure is answered without asking again.
    let again = std::time::Instant::now();
    assert!(probe.lag().await.is_err());
    assert!(again.elapsed() < Duration::from_millis(500));
}
