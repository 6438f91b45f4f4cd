//! Per-source throttling: a source that floods the queue waits for its own records
//! instead of crowding out the others' (`fair_share`); with `lag_per_source`, lag on one
//! source's topics holds back that source only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stream_manager::{StreamInfo, StreamManager};
use throttling::{Lag, LagProbe};

use crate::setup;

/// A flood (5,000 records a second) and a trickle (20 a second) into a queue of 100
/// drained at 300 a second, `drop_newest`: the trickle's records, once in a full queue,
/// are refused unless the flood is held to its share.
async fn flood_and_trickle(per_source: bool) -> (StreamInfo, StreamInfo) {
    let yaml = format!(
        "
kafka: {{ linger_ms: 5, batch_size: 50 }}
throttling: {{ max_send_rate: 300, min_send_rate: 1, fair_share: {per_source} }}
queue_max_size: 100
queue_overflow_strategy: drop_newest
routing: {{ fallback_topic: all }}
sources:
  flood:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.05 }}
    custom_params: {{ records_per_second: 5000, max_per_fetch: 2000, alert_probability: 0 }}
  trickle:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.1 }}
    custom_params: {{ records_per_second: 20, alert_probability: 0, seed: 7 }}
"
    );
    let (_mock, cfg, _dir) = setup(&yaml, &["all"]);
    let m = StreamManager::builder(cfg).start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let flood = m.stream("flood").await.unwrap();
    let trickle = m.stream("trickle").await.unwrap();
    m.shutdown(Duration::from_secs(10)).await;
    (flood, trickle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_does_not_starve_the_others() {
    let (flood, trickle) = flood_and_trickle(true).await;
    assert_eq!(
        trickle.records_dead_lettered, 0,
        "the trickle keeps its share: {trickle:?}"
    );
    assert!(trickle.records_processed >= 40, "{trickle:?}");
    // (Alone at the start, the flood overflows the queue as `drop_newest` says.)
    assert!(flood.records_processed >= 500, "{flood:?}");
    // The same pipeline without per-source throttling: the flood keeps the queue full
    // and the trickle's records are refused.
    let (flood, trickle) = flood_and_trickle(false).await;
    assert!(
        trickle.records_dead_lettered > 0 && flood.records_dead_lettered > 0,
        "without per_source: {trickle:?} {flood:?}"
    );
}

/// Lag by topic, as set by the test.
#[derive(Debug, Default)]
struct TopicLag(std::sync::Mutex<BTreeMap<String, i64>>);

#[async_trait]
impl LagProbe for TopicLag {
    async fn lag(&self) -> throttling::Result<Lag> {
        let by_topic = self.0.lock().unwrap().clone();
        Ok(Lag {
            total: by_topic.values().sum(),
            by_topic,
            ..Lag::default()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_on_one_sources_topic_holds_back_that_source_only() {
    let yaml = "
kafka: { linger_ms: 5, batch_size: 50 }
throttling: { max_send_rate: 100000, target_consumer_lag: 1000, critical_consumer_lag: 5000, lag_per_source: true }
routing: { fallback_topic: all, custom_mappings: { slow: slow-topic, fast: fast-topic } }
sources:
  slow:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.1 }
    custom_params: { records_per_second: 200, alert_probability: 0 }
  fast:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.1 }
    custom_params: { records_per_second: 200, alert_probability: 0, seed: 3 }
";
    let (_mock, cfg, _dir) = setup(yaml, &["all", "slow-topic", "fast-topic"]);
    let probe = Arc::new(TopicLag::default());
    let m = StreamManager::builder(cfg)
        .lag_probe(probe.clone())
        .check_interval(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    {
        let mut lag = probe.0.lock().unwrap();
        lag.insert("slow-topic".into(), 9_000);
        lag.insert("fast-topic".into(), 0);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let slow0 = m.stream("slow").await.unwrap().records_processed;
    let fast0 = m.stream("fast").await.unwrap().records_processed;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let slow = m.stream("slow").await.unwrap().records_processed - slow0;
    let fast = m.stream("fast").await.unwrap().records_processed - fast0;
    let states: BTreeMap<String, &'static str> = m
        .source_throttles()
        .into_iter()
        .map(|(k, d)| (k, d.state.as_str()))
        .collect();
    let global = m.get_metrics().await.throttle.state;
    let summary = m.summary().throttling.current_state;
    m.shutdown(Duration::from_secs(10)).await;
    assert_eq!(global, "normal", "all the lag is claimed by a source");
    assert_eq!(
        summary, "critical",
        "the summary shows the source furthest along"
    );
    assert_eq!(states.get("slow"), Some(&"critical"), "{states:?}");
    assert_eq!(states.get("fast"), Some(&"normal"), "{states:?}");
    assert!(fast >= 300, "the fast source runs on: {fast} in 3 s");
    assert!(
        slow * 5 < fast,
        "the source whose topic lags is held back: {slow} vs {fast}"
    );
}
