//! The record path's lanes, on tokio's paused clock with a producer that records what it
//! is given: a CRITICAL record overtakes a throttled LOW backlog at once — it never
//! waits for another record's tokens — and is paced by its own share of the rate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_client::{Cursor, Fetch, Registry, Source};
use async_trait::async_trait;
use producer::{
    Delivered, KafkaHealth, MemoryDeadLetterStore, NullProducer, Outcome, OutgoingRecord, Producer,
};
use serde_json::{json, Value};
use stream_config::{Format, Loader};
use stream_manager::StreamManager;

/// 1,000 LOW readings on the first poll, then `alerts` critical alerts, then nothing.
#[derive(Debug)]
struct Backlog {
    alerts: u64,
}

#[async_trait]
impl Source for Backlog {
    async fn fetch(&self, cursor: Option<&Cursor>) -> api_client::Result<Fetch> {
        let records: Vec<api_client::Record> = match cursor.map(|c| c.0.as_str()) {
            None => (0..1000).map(|n| json!({ "n": n }).into()).collect(),
            Some("backlog") => (0..self.alerts)
                .map(|n| json!({ "alert": n, "severity": "critical" }).into())
                .collect(),
            Some(_) => Vec::new(),
        };
        let next = if cursor.is_none() { "backlog" } else { "done" };
        Ok(Fetch {
            changed: !records.is_empty(),
            records,
            next_cursor: Some(Cursor(next.to_owned())),
            ..Fetch::default()
        })
    }
}

/// Acknowledges at once; remembers each record's payload and when (paused clock) it
/// was handed over.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(tokio::time::Instant, Value)>>);

#[async_trait]
impl Producer for Recorder {
    async fn send(&self, records: Vec<OutgoingRecord>) -> Vec<(OutgoingRecord, Outcome)> {
        let now = tokio::time::Instant::now();
        let mut seen = self.0.lock().unwrap();
        records
            .into_iter()
            .map(|r| {
                seen.push((now, serde_json::from_slice(&r.payload).unwrap()));
                let ok = Ok(Delivered {
                    partition: 0,
                    offset: 0,
                });
                (r, ok)
            })
            .collect()
    }
    fn is_ready(&self) -> bool {
        NullProducer.is_ready()
    }
    fn in_flight(&self) -> i64 {
        NullProducer.in_flight()
    }
    async fn flush(&self, timeout: Duration) -> producer::Result<()> {
        NullProducer.flush(timeout).await
    }
    async fn health(&self) -> KafkaHealth {
        NullProducer.health().await
    }
}

async fn run(alerts: u64, virtual_secs: u64) -> (Arc<Recorder>, tokio::time::Instant) {
    let yaml = "
kafka: { bootstrap_servers: '127.0.0.1:1', batch_size: 500 }
throttling: { max_send_rate: 100, min_send_rate: 1, critical_share: 0.1 }
routing:
  fallback_topic: all
  priority_rules:
    - { field: /severity, operator: eq, value: critical, priority: critical }
sources:
  s:
    source_type: backlog
    priority: low
    ingestion: { mode: real_time, polling_interval_seconds: 1 }
";
    let cfg = Loader::new()
        .with_source_types(["backlog"])
        .load_str(yaml, Format::Yaml, "lanes.yaml")
        .expect("config");
    let mut registry = Registry::empty();
    registry.register("backlog", move |_, _| Ok(Arc::new(Backlog { alerts })));
    let recorder = Arc::new(Recorder::default());
    let start = tokio::time::Instant::now();
    let m = StreamManager::builder(cfg)
        .registry(registry)
        .producer(recorder.clone())
        .dlq(Arc::new(MemoryDeadLetterStore::default()))
        .cursors(Arc::new(api_client::MemoryCursorStore::default()))
        .start_jitter(Duration::ZERO)
        .start()
        .await
        .expect("manager");
    tokio::time::sleep(Duration::from_secs(virtual_secs)).await;
    m.shutdown(Duration::from_millis(10)).await;
    (recorder, start)
}

#[tokio::test(start_paused = true)]
async fn a_critical_record_overtakes_a_throttled_backlog_at_once() {
    let (recorder, start) = run(1, 4).await;
    let seen = recorder.0.lock().unwrap();
    let alert_at = seen
        .iter()
        .position(|(_, v)| v.get("alert").is_some())
        .expect("the alert was sent");
    let (sent_at, _) = seen[alert_at];
    // The alert is emitted by the second poll, 1 s after the first; 100 LOW records/s
    // drain meanwhile. It must not wait for a 500-record batch's tokens (5 s).
    let waited = sent_at - start;
    assert!(
        waited < Duration::from_millis(1100),
        "the alert reached the producer {waited:?} after start"
    );
    assert!(
        alert_at < 300,
        "{alert_at} LOW records went before the alert"
    );
    let low_after = seen.len() - alert_at - 1;
    assert!(low_after > 0, "the LOW backlog was still draining");
}

#[tokio::test(start_paused = true)]
async fn an_alert_storm_is_paced_by_its_share_of_the_rate() {
    // 100 alerts at once, 10 % of 100 records/s for them: about 10 per second after the
    // bucket's first burst, so the storm takes seconds, not an instant.
    let (recorder, start) = run(100, 3).await;
    let seen = recorder.0.lock().unwrap();
    let alerts: Vec<Duration> = seen
        .iter()
        .filter(|(_, v)| v.get("alert").is_some())
        .map(|(at, _)| *at - start)
        .collect();
    assert!(!alerts.is_empty(), "alerts were sent");
    assert!(
        alerts.len() < 60,
        "{} of 100 alerts went within 2 s of their emission at 10 records/s",
        alerts.len()
    );
}
