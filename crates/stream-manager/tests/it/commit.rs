//! A cursor commit that fails is loud: the source shows `failing` with the store's
//! reason in `/streams`, health lists it (so `/ready` is not ready), and
//! `cursor_commit_failures_total{source}` counts it; once a commit lands it recovers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api_client::{Cursor, CursorStore, MemoryCursorStore};
use async_trait::async_trait;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use test_support::poll_until;

use crate::setup;

/// Commits fail while `fail` is set, as the state topic refused a too-large record.
#[derive(Debug, Default)]
struct Refusing {
    inner: MemoryCursorStore,
    fail: AtomicBool,
}

#[async_trait]
impl CursorStore for Refusing {
    async fn load(&self, source_id: &str) -> api_client::Result<Option<Cursor>> {
        self.inner.load(source_id).await
    }

    async fn commit(&self, source_id: &str, cursor: &Cursor) -> api_client::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(api_client::Error::cursor(
                "Message size too large (MessageSizeTooLarge)",
            ));
        }
        self.inner.commit(source_id, cursor).await
    }
}

#[tokio::test]
async fn a_failing_commit_shows_the_source_failing_and_counts() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (_mock, cfg, _dir) = setup(
        "
kafka: { linger_ms: 5 }
throttling: { max_send_rate: 100000 }
routing: { fallback_topic: readings }
sources:
  replay:
    source_type: file
    ingestion: { mode: real_time, polling_interval_seconds: 0.05, max_records_per_poll: 100 }
    custom_params: { path: '${FIXTURES}/readings.ndjson', records_per_fetch: 10, loop: true }
",
        &["readings"],
    );
    let store = Arc::new(Refusing::default());
    store.fail.store(true, Ordering::SeqCst);
    let m = stream_manager::StreamManager::builder(cfg)
        .cursors(store.clone())
        .start()
        .await
        .expect("manager starts");

    poll_until(
        Duration::from_secs(20),
        "the stream shows its commit failing",
        async || m.stream("replay").await.unwrap().commit_failing,
    )
    .await;
    let info = m.stream("replay").await.unwrap();
    assert!(info.failing, "{info:?}");
    let why = info.last_error.unwrap_or_default();
    assert!(
        why.contains("cannot commit fetch state") && why.contains("MessageSizeTooLarge"),
        "{why}"
    );
    let health = m.health().await;
    assert_eq!(health.streams.commit_failing, ["replay"]);
    assert!(!health.healthy);
    let failures = |snapshots: &metrics_util::debugging::Snapshotter| {
        snapshots
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == "cursor_commit_failures_total")
            .filter(|(k, ..)| k.key().labels().any(|l| l.value() == "replay"))
            .map(|(.., v)| match v {
                DebugValue::Counter(n) => n,
                _ => 0,
            })
            .sum::<u64>()
    };
    assert!(failures(&snapshots) >= 1, "counted");

    // The store takes commits again: the source recovers at its next commit.
    store.fail.store(false, Ordering::SeqCst);
    poll_until(
        Duration::from_secs(20),
        "a commit lands and the source is no longer failing",
        async || {
            let s = m.stream("replay").await.unwrap();
            !s.commit_failing && !s.failing
        },
    )
    .await;
    assert!(store.inner.load("replay").await.unwrap().is_some());
    assert!(m.health().await.streams.commit_failing.is_empty());
    m.shutdown(Duration::from_secs(5)).await;
}
