//! The manager's control surface under trouble, on in-memory components (no broker, no
//! database): probes answer while a stop holds the streams, background workers (the lag
//! checker, DLQ retries, retention) come back after a panic and show it in health, and
//! `cluster` keys need a restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api_client::MemoryCursorStore;
use producer::{
    DeadLetter, DeadLetterStore, DlqFilter, DlqStats, DlqStatus, MemoryDeadLetterStore,
    NewDeadLetter, NullProducer, Purge,
};
use stream_config::{Format, Loader};
use stream_manager::{Builder, StreamManager};
use throttling::{Lag, LagProbe};

/// A manager for `yaml` on a null producer and in-memory stores.
fn builder(yaml: &str) -> Builder {
    let cfg = Loader::new()
        .load_str(yaml, Format::Yaml, "<test>")
        .expect("test config");
    StreamManager::builder(cfg)
        .producer(Arc::new(NullProducer))
        .dlq(Arc::new(MemoryDeadLetterStore::default()))
        .cursors(Arc::new(MemoryCursorStore::default()))
}

#[tokio::test]
async fn health_answers_while_a_stop_holds_the_streams() {
    // An upstream that takes the request and never answers: the stop waits out its grace.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let yaml = format!(
        "
sources:
  slow:
    source_type: http_json
    timeout_seconds: 300
    custom_params: {{ url: 'http://{}/items' }}
",
        upstream.local_addr().unwrap()
    );
    let m = Arc::new(builder(&yaml).start().await.expect("manager starts"));
    let (_poll_in_flight, _) = upstream.accept().await.unwrap();
    let stopping = tokio::spawn({
        let m = m.clone();
        async move { m.stop_stream("slow").await }
    });
    // One turn of this (single-threaded) runtime: the stop takes the streams and waits.
    tokio::task::yield_now().await;
    tokio::time::pause();

    // Paused clock: were health waiting on the stop, the clock would jump to this timeout.
    let h = tokio::time::timeout(Duration::from_secs(1), m.health())
        .await
        .expect("health answers without waiting for the stop");

    assert!(
        !stopping.is_finished(),
        "the stop was in progress throughout"
    );
    assert_eq!(
        h.streams.total, 1,
        "the streams as seen when the stop began"
    );
    stopping.abort();
}

#[tokio::test]
async fn a_stop_in_its_grace_holds_up_neither_listings_nor_other_streams_and_a_start_waits_for_it()
{
    // `slow` hangs in a poll, so its stop waits out the 10 s grace; `other` is idle.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let yaml = format!(
        "
sources:
  slow:
    source_type: http_json
    timeout_seconds: 300
    custom_params: {{ url: 'http://{}/items' }}
  other:
    source_type: http_json
    enabled: false
    custom_params: {{ url: 'http://{}/other' }}
",
        upstream.local_addr().unwrap(),
        upstream.local_addr().unwrap()
    );
    let m = Arc::new(builder(&yaml).start().await.expect("manager starts"));
    let (_poll_in_flight, _) = upstream.accept().await.unwrap();
    let stopping = tokio::spawn({
        let m = m.clone();
        async move { m.stop_stream("slow").await }
    });
    tokio::task::yield_now().await;
    // Paused clock: whatever waited on the stop would see the clock jump to its timeout.
    tokio::time::pause();
    let quick = Duration::from_secs(1);

    let list = tokio::time::timeout(quick, m.list_streams())
        .await
        .expect("the list answers without waiting for the stop");
    let slow = list.iter().find(|s| s.id == "slow").unwrap();
    assert_eq!(slow.status, stream_manager::StreamStatus::Stopped);
    let one = tokio::time::timeout(quick, m.stream("slow"))
        .await
        .expect("one stream answers without waiting for the stop")
        .unwrap();
    assert_eq!(one.status, stream_manager::StreamStatus::Stopped);
    tokio::time::timeout(quick, m.start_stream("other"))
        .await
        .expect("another stream starts without waiting for the stop")
        .unwrap();
    assert!(
        tokio::time::timeout(quick, m.start_stream("slow"))
            .await
            .is_err(),
        "a start of the stopping stream waits for its stop: never two ingestions of one source"
    );
    assert!(!stopping.is_finished(), "the stop is still in its grace");

    // The grace ends; the stop reports the stream stopped, and it can start again.
    let stopped = stopping.await.unwrap().unwrap();
    assert_eq!(stopped.status, stream_manager::StreamStatus::Stopped);
    let started = m.start_stream("slow").await.unwrap();
    assert_eq!(started.status, stream_manager::StreamStatus::Running);
}

#[tokio::test]
async fn shutdown_waits_for_a_stop_in_progress() {
    // What a stopping stream flushes goes into the queue before shutdown closes it.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let yaml = format!(
        "
sources:
  slow:
    source_type: http_json
    timeout_seconds: 300
    custom_params: {{ url: 'http://{}/items' }}
",
        upstream.local_addr().unwrap()
    );
    let m = Arc::new(builder(&yaml).start().await.expect("manager starts"));
    let (_poll_in_flight, _) = upstream.accept().await.unwrap();
    let stopping = tokio::spawn({
        let m = m.clone();
        async move { m.stop_stream("slow").await }
    });
    tokio::task::yield_now().await;
    tokio::time::pause();
    m.shutdown(Duration::from_secs(30)).await;
    assert!(
        stopping.is_finished(),
        "shutdown returned while a stop was still in its grace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_larger_than_the_whole_queue_is_dead_lettered_as_too_large() {
    let dir = test_support::TempDir::new("too-large");
    let path = dir.path().join("big.ndjson");
    let big = "x".repeat(4096);
    std::fs::write(&path, format!("{{\"big\":\"{big}\"}}\n")).unwrap();
    let yaml = format!(
        "
queue_max_bytes: 1024
sources:
  f:
    source_type: file
    ingestion: {{ mode: real_time, polling_interval_seconds: 3600 }}
    custom_params: {{ path: '{}' }}
",
        path.display()
    );
    let dlq = Arc::new(MemoryDeadLetterStore::default());
    let cfg = Loader::new()
        .load_str(&yaml, Format::Yaml, "<test>")
        .expect("test config");
    let m = StreamManager::builder(cfg)
        .producer(Arc::new(NullProducer))
        .dlq(dlq.clone())
        .cursors(Arc::new(MemoryCursorStore::default()))
        .start()
        .await
        .expect("manager starts");
    test_support::poll_until(
        Duration::from_secs(20),
        "the record is dead-lettered",
        async || dlq.stats().await.unwrap().total > 0,
    )
    .await;
    let stats = dlq.stats().await.unwrap();
    assert_eq!(
        stats.by_reason,
        vec![("record_too_large".to_owned(), 1)],
        "never fits, so not a queue overflow: {stats:?}"
    );
    m.shutdown(Duration::from_secs(5)).await;
}

/// Panics on its first reading, then reports no lag.
#[derive(Debug, Default)]
struct PanicsOnce {
    readings: AtomicU64,
}

#[async_trait::async_trait]
impl LagProbe for PanicsOnce {
    async fn lag(&self) -> throttling::Result<Lag> {
        let n = self.readings.fetch_add(1, Ordering::Relaxed);
        assert!(n > 0, "lag probe exploded");
        Ok(Lag::default())
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_lag_checker_is_restarted_and_shown_in_health() {
    let probe = Arc::new(PanicsOnce::default());
    let m = builder("{}")
        .lag_probe(probe.clone())
        .check_interval(Duration::from_secs(1))
        .start()
        .await
        .expect("manager starts");

    // The panic, the 1 s backoff, and a few checks after it.
    tokio::time::sleep(Duration::from_secs(5)).await;

    assert!(
        probe.readings.load(Ordering::Relaxed) >= 3,
        "the lag is checked again after the panic"
    );
    let h = m.health().await;
    let checker = h
        .workers
        .iter()
        .find(|w| w.name == "lag_checker")
        .expect("the lag checker is a component of health");
    assert_eq!(checker.restarts, 1);
    assert!(checker.running);
    let why = checker.last_error.as_deref().unwrap_or_default();
    assert!(why.contains("lag probe exploded"), "{why}");
    assert!(!h.healthy, "a panic is a bug to be seen");
    let names: Vec<&str> = h.workers.iter().map(|w| w.name.as_str()).collect();
    for name in ["dispatcher", "lag_checker", "dlq_worker", "dlq_retention"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    for other in h.workers.iter().filter(|w| w.name != "lag_checker") {
        assert_eq!(other.restarts, 0, "{other:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn cluster_keys_changed_at_run_time_need_a_restart() {
    let m = builder("{}").start().await.expect("manager starts");
    let mut next = m.config().as_ref().clone();
    next.cluster.group_id = "another-group".into();
    next.cluster.handover_timeout_seconds += 1;

    match m.apply_config(next).await {
        Err(stream_manager::Error::NeedsRestart { keys }) => {
            // `cluster`, or its changed keys (a default section is not serialized).
            assert!(!keys.is_empty(), "the changed keys are named");
            assert!(keys.iter().all(|k| k.starts_with("cluster")), "{keys:?}");
        }
        other => panic!("expected NeedsRestart, got {other:?}"),
    }
    assert_ne!(
        m.config().cluster.group_id,
        "another-group",
        "nothing applied"
    );
}

/// The in-memory store, but its first due-rows query panics and every purge does.
#[derive(Debug, Default)]
struct PanickyStore {
    inner: MemoryDeadLetterStore,
    due_calls: AtomicU64,
}

#[async_trait::async_trait]
impl DeadLetterStore for PanickyStore {
    async fn insert(&self, l: &[NewDeadLetter], first: Duration) -> producer::Result<()> {
        self.inner.insert(l, first).await
    }
    async fn due(&self, now: i64, limit: i64) -> producer::Result<Vec<DeadLetter>> {
        let n = self.due_calls.fetch_add(1, Ordering::Relaxed);
        assert!(n > 0, "due rows exploded");
        self.inner.due(now, limit).await
    }
    async fn retry_failed(&self, id: i64, d: &str, next: Option<i64>) -> producer::Result<()> {
        self.inner.retry_failed(id, d, next).await
    }
    async fn set_status(&self, ids: &[i64], s: DlqStatus) -> producer::Result<u64> {
        self.inner.set_status(ids, s).await
    }
    async fn get(&self, id: i64) -> producer::Result<Option<DeadLetter>> {
        self.inner.get(id).await
    }
    async fn list(&self, f: &DlqFilter, limit: i64, off: i64) -> producer::Result<Vec<DeadLetter>> {
        self.inner.list(f, limit, off).await
    }
    async fn stats(&self) -> producer::Result<DlqStats> {
        self.inner.stats().await
    }
    async fn delete(&self, id: i64) -> producer::Result<bool> {
        self.inner.delete(id).await
    }
    async fn purge(&self, _: &Purge) -> producer::Result<u64> {
        panic!("retention exploded")
    }
    async fn ping(&self) -> producer::Result<()> {
        self.inner.ping().await
    }
}

#[tokio::test(start_paused = true)]
async fn dlq_retries_go_on_after_panics_in_the_dlq_worker_and_in_retention() {
    let store = Arc::new(PanickyStore::default());
    let m = builder("{}")
        .dlq(store.clone())
        .start()
        .await
        .expect("manager starts");

    tokio::time::sleep(Duration::from_secs(5)).await;

    assert!(
        store.due_calls.load(Ordering::Relaxed) >= 3,
        "due rows are asked for again after the panic"
    );
    let h = m.health().await;
    let worker = |name: &str| h.workers.iter().find(|w| w.name == name).cloned().unwrap();
    let dlq = worker("dlq_worker");
    assert_eq!(dlq.restarts, 1, "{dlq:?}");
    assert!(dlq.last_error.unwrap().contains("due rows exploded"));
    // Retention panics at every run: restarted each time (after 1 s, then 2 s), on its
    // own, without taking the retries with it.
    let retention = worker("dlq_retention");
    assert!(retention.restarts >= 2, "{retention:?}");
    assert!(retention.running);
    assert!(retention.last_error.unwrap().contains("retention exploded"));
}

/// Reports where it stands, like a NOAA state sweep.
#[derive(Debug)]
struct Progressing;

#[async_trait::async_trait]
impl api_client::Source for Progressing {
    async fn fetch(&self, _: Option<&api_client::Cursor>) -> api_client::Result<api_client::Fetch> {
        Ok(api_client::Fetch::unchanged())
    }
    fn progress(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({"kind": "test", "stations_known": 3}))
    }
}

#[tokio::test]
async fn a_sources_progress_is_shown_with_its_stream_and_left_out_without_one() {
    let mut registry = api_client::Registry::builtin();
    registry.register("progressing", |_, _| Ok(Arc::new(Progressing)));
    let yaml = "
sources:
  p: { source_type: progressing }
  gen: { source_type: synthetic }
";
    let m = builder(yaml)
        .registry(registry)
        .start()
        .await
        .expect("manager starts");
    let shown = serde_json::to_value(m.stream("p").await.unwrap()).unwrap();
    assert_eq!(
        shown["progress"]["stations_known"],
        serde_json::json!(3),
        "{shown}"
    );
    let plain = serde_json::to_value(m.stream("gen").await.unwrap()).unwrap();
    assert!(plain.get("progress").is_none(), "{plain}");
    m.shutdown(Duration::from_secs(1)).await;
}
