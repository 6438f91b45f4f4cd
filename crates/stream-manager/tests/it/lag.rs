//! `throttling.consumer_groups` decides where the throttle's lag comes from (issue #23):
//! absent → discovered on the cluster, `[]` → no lag throttling, a list → those groups;
//! health names the mode, the groups watched and a failed reading. The mock broker has
//! no ListGroups, so discovery itself is proven on tansu (e2e `lag_discovery`); here its
//! failure must be visible, never a silent lag of 0.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use stream_manager::StreamManager;
use test_support::poll_until;

use crate::setup;

/// The manager and what must outlive it (the mock broker, the DLQ folder).
type Guard = (
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    test_support::TempDir,
);

async fn start(yaml: &str, topics: &[&str]) -> (StreamManager, String, Guard) {
    let (mock, cfg, dir) = setup(yaml, topics);
    let bootstrap = mock.bootstrap_servers();
    let m = StreamManager::builder(cfg)
        .check_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("manager starts");
    (m, bootstrap, (mock, dir))
}

const BASE: &str = "routing: { fallback_topic: lagged }\n";

#[tokio::test]
async fn without_the_key_groups_are_discovered_and_a_refused_listing_is_shown() {
    let (m, _b, _guard) = start(BASE, &["lagged"]).await;
    assert_eq!(m.lag_health().mode, "discovered");
    poll_until(
        Duration::from_secs(20),
        "the listing's failure in health",
        async || m.health().await.lag.error.is_some(),
    )
    .await;
    let h = m.health().await;
    let why = h.lag.error.clone().unwrap();
    assert!(why.contains("listing consumer groups failed"), "{why}");
    assert!(h.lag.watched_groups.is_empty());
    assert!(
        h.workers.iter().any(|w| w.name == "lag_checker"),
        "the lag is checked"
    );
    assert_eq!(
        m.get_metrics().await.throttle.state,
        "normal",
        "an unknown lag leaves the throttle as it is"
    );
}

#[tokio::test]
async fn an_empty_list_turns_lag_throttling_off() {
    let yaml = format!("{BASE}throttling: {{ consumer_groups: [] }}\n");
    let (m, _b, _guard) = start(&yaml, &["lagged"]).await;
    let h = m.health().await;
    assert_eq!(h.lag.mode, "off");
    assert!(
        !h.workers.iter().any(|w| w.name == "lag_checker"),
        "no lag checker runs: {:?}",
        h.workers
    );
}

#[tokio::test]
async fn a_list_watches_exactly_those_groups_with_their_lag() {
    let yaml = format!("{BASE}throttling: {{ consumer_groups: [analytics, idle] }}\n");
    let (mock, cfg, _dir) = setup(&yaml, &["lagged"]);
    let b = mock.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .create()
        .unwrap();
    for i in 0..40 {
        let key = i.to_string();
        producer
            .send(BaseRecord::to("lagged").key(&key).payload("x"))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    for (group, at) in [("analytics", 15), ("unlisted", 0)] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", group)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("lagged", 0, Offset::Offset(at))
            .unwrap();
        consumer.commit(&tpl, CommitMode::Sync).unwrap();
    }
    let m = StreamManager::builder(cfg)
        .check_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("manager starts");
    poll_until(Duration::from_secs(20), "a lag reading", async || {
        !m.lag_health().watched_groups.is_empty()
    })
    .await;
    let lag = m.health().await.lag;
    assert_eq!(lag.mode, "listed");
    assert_eq!(
        lag.watched_groups,
        BTreeMap::from([("analytics".to_owned(), 25), ("idle".to_owned(), 0)]),
        "the listed groups, and only they (a listed group without commits counts 0)"
    );
    assert_eq!(lag.error, None);
}
