//! Ingestion modes on paused time with a scripted source: exact poll counts, no overlap,
//! buffer flushes, stop semantics, cursor commits.

mod cron;
mod lateness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_client::{Cursor, CursorStore, CursorTracker, Fetch, MemoryCursorStore, Source};
use async_trait::async_trait;
use ingestion_modes::{start, Emitted, ModeSpec};
use serde_json::json;
use stream_config::{IngestionConfig, IngestionModeKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

mod streaming;

/// Returns `per_fetch` records per fetch after `delay`; records when fetches started and
/// how many ran at once.
#[derive(Debug)]
pub(crate) struct Scripted {
    per_fetch: usize,
    delay: Duration,
    origin: Instant,
    started: Mutex<Vec<Duration>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    n: AtomicUsize,
}

impl Scripted {
    fn new(per_fetch: usize, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            per_fetch,
            delay,
            origin: Instant::now(),
            started: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            n: AtomicUsize::new(0),
        })
    }
    fn starts(&self) -> Vec<u64> {
        self.started
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.as_secs())
            .collect()
    }
}

#[async_trait]
impl Source for Scripted {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, api_client::Error> {
        self.started.lock().unwrap().push(self.origin.elapsed());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let base: usize = cursor.map_or(0, |c| c.0.parse().unwrap());
        let records: Vec<_> = (0..self.per_fetch)
            .map(|i| json!({"n": base + i}).into())
            .collect();
        self.n.fetch_add(records.len(), Ordering::SeqCst);
        Ok(Fetch {
            changed: !records.is_empty(),
            next_cursor: Some(Cursor((base + records.len()).to_string())),
            records,
            ..Fetch::default()
        })
    }
}

fn spec(mode: IngestionModeKind, f: impl FnOnce(&mut IngestionConfig)) -> ModeSpec {
    let mut cfg = IngestionConfig {
        mode,
        ..IngestionConfig::default()
    };
    f(&mut cfg);
    ModeSpec::from_config(&cfg).unwrap()
}

async fn tracker(store: &MemoryCursorStore) -> Arc<CursorTracker> {
    Arc::new(
        CursorTracker::load("s", Arc::new(store.clone()))
            .await
            .unwrap(),
    )
}

fn drain(rx: &mut mpsc::Receiver<Emitted>) -> Vec<Emitted> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn real_time_polls_exactly_on_schedule() {
    let src = Scripted::new(3, Duration::ZERO);
    let (tx, mut rx) = mpsc::channel(100);
    let h = start(
        "s",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 10.0
        }),
        src.clone(),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_secs(55)).await;
    h.stop(Duration::from_secs(1)).await;
    assert_eq!(src.starts(), vec![0, 10, 20, 30, 40, 50]);
    let emitted = drain(&mut rx);
    assert_eq!(emitted.len(), 6);
    assert!(emitted.iter().all(|e| e.records.len() == 3));
}

#[tokio::test(start_paused = true)]
async fn a_slow_upstream_never_overlaps_and_missed_ticks_are_counted() {
    let src = Scripted::new(1, Duration::from_secs(25));
    let (tx, _rx) = mpsc::channel(100);
    let h = start(
        "s",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 10.0
        }),
        src.clone(),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_secs(74)).await;
    let stats = h.stats();
    h.stop(Duration::from_secs(60)).await;
    assert_eq!(
        src.max_running.load(Ordering::SeqCst),
        1,
        "polls never overlap"
    );
    assert_eq!(
        src.starts(),
        vec![0, 25, 50],
        "the next poll starts when the last ends"
    );
    assert_eq!(stats.missed_ticks, 3, "ticks at 10, 30 and 40 were skipped");
}

#[tokio::test(start_paused = true)]
async fn streaming_flushes_on_size() {
    let src = Scripted::new(2, Duration::ZERO);
    let (tx, mut rx) = mpsc::channel(100);
    let s = spec(IngestionModeKind::ContinuousStreaming, |c| {
        c.polling_interval_seconds = 1.0;
        c.buffer_size = 5;
        c.buffer_flush_interval_seconds = 1000.0;
    });
    let h = start(
        "s",
        s,
        src.clone(),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        drain(&mut rx).is_empty(),
        "4 records buffered, below the size"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = drain(&mut rx);
    assert_eq!(
        out.iter().map(Emitted::len).sum::<usize>(),
        6,
        "the third poll crossed the size"
    );
    h.stop(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn streaming_flushes_on_interval_and_on_stop() {
    let src = Scripted::new(1, Duration::ZERO);
    let (tx, mut rx) = mpsc::channel(100);
    let s = spec(IngestionModeKind::ContinuousStreaming, |c| {
        c.polling_interval_seconds = 1.0;
        c.buffer_size = 1000;
        c.buffer_flush_interval_seconds = 5.0;
    });
    let h = start(
        "s",
        s,
        src.clone(),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let first: usize = drain(&mut rx).iter().map(Emitted::len).sum();
    assert_eq!(first, 5, "polls at 0..4 s flushed at 5 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(h.stats().buffered > 0);
    let report = h.stop(Duration::from_secs(1)).await;
    let rest: usize = drain(&mut rx).iter().map(Emitted::len).sum();
    assert_eq!(report.flushed, rest);
    assert_eq!(
        first + rest,
        src.n.load(Ordering::SeqCst),
        "nothing in the buffer is lost on stop"
    );
}

#[tokio::test(start_paused = true)]
async fn batch_emits_in_chunks_of_batch_size() {
    let src = Scripted::new(25, Duration::ZERO);
    let (tx, mut rx) = mpsc::channel(100);
    let s = spec(IngestionModeKind::Batch, |c| {
        c.schedule_interval_seconds = 3600;
        c.batch_size = 10;
    });
    let h = start(
        "s",
        s,
        src.clone(),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_secs(3599)).await;
    let sizes: Vec<usize> = drain(&mut rx).iter().map(Emitted::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(drain(&mut rx).len(), 3, "the next scheduled run");
    h.stop(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn stop_abandons_a_poll_that_outlasts_the_grace() {
    let src = Scripted::new(4, Duration::from_secs(100));
    let (tx, mut rx) = mpsc::channel(100);
    let store = MemoryCursorStore::default();
    let h = start(
        "s",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 10.0
        }),
        src.clone(),
        tracker(&store).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let report = h.stop(Duration::from_secs(5)).await;
    assert!(report.abandoned_poll);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "stop waits the grace, no longer"
    );
    assert!(drain(&mut rx).is_empty());
    assert_eq!(
        store.load("s").await.unwrap(),
        None,
        "no cursor committed for unemitted records"
    );
}

#[tokio::test(start_paused = true)]
async fn cursor_commits_only_after_settling_and_a_restart_refetches() {
    let src = Scripted::new(2, Duration::ZERO);
    let store = MemoryCursorStore::default();
    let t = tracker(&store).await;
    let (tx, mut rx) = mpsc::channel(100);
    let h = start(
        "s",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 10.0
        }),
        src.clone(),
        t.clone(),
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    h.stop(Duration::from_secs(1)).await;
    let batches = drain(&mut rx);
    assert_eq!(batches.len(), 2);
    // The pipeline acknowledges the first fetch only, then "crashes".
    let seq = batches[0].records[0].0;
    t.settle(seq, 2).await.unwrap();
    assert_eq!(store.load("s").await.unwrap(), Some(Cursor("2".into())));
    let restarted = tracker(&store).await;
    assert_eq!(
        restarted.fetch_from(),
        Some(Cursor("2".into())),
        "the unacknowledged fetch is fetched again"
    );
}

/// Counts what a stream tells its sink about a lost claim.
#[derive(Default)]
struct FencedSink {
    emitted: AtomicUsize,
    told: Mutex<Vec<String>>,
}

#[async_trait]
impl ingestion_modes::Sink for FencedSink {
    async fn emit(&self, batch: Emitted) -> Result<(), ingestion_modes::Error> {
        self.emitted.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(())
    }
    async fn fenced(&self, source_id: &str, why: &str) {
        self.told
            .lock()
            .unwrap()
            .push(format!("{source_id}: {why}"));
    }
}

/// A shared store that counts how often a claim is checked.
#[derive(Debug, Default)]
struct CountedChecks {
    inner: MemoryCursorStore,
    checks: AtomicUsize,
}

#[async_trait]
impl CursorStore for CountedChecks {
    async fn load(&self, id: &str) -> api_client::Result<Option<Cursor>> {
        self.inner.load(id).await
    }
    async fn commit(&self, id: &str, c: &Cursor) -> api_client::Result<()> {
        self.inner.commit(id, c).await
    }
    async fn claim(&self, id: &str, owner: &str) -> api_client::Result<api_client::Lease> {
        self.inner.claim(id, owner).await
    }
    async fn commit_leased(
        &self,
        id: &str,
        c: &Cursor,
        lease: &api_client::Lease,
    ) -> api_client::Result<()> {
        self.inner.commit_leased(id, c, lease).await
    }
    async fn check_lease(&self, id: &str, lease: &api_client::Lease) -> api_client::Result<()> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.check_lease(id, lease).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_claimed_by_another_worker_is_fetched_no_more_and_the_sink_is_told_once() {
    let counted = Arc::new(CountedChecks::default());
    let shared: Arc<dyn CursorStore> = counted.clone();
    let mine = Arc::new(
        CursorTracker::claim("s", "w1", shared.clone())
            .await
            .unwrap(),
    );
    let src = Scripted::new(2, Duration::ZERO);
    let sink = Arc::new(FencedSink::default());
    let h = start(
        "s",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 10.0
        }),
        src.clone(),
        mine,
        sink.clone(),
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(
        src.starts(),
        vec![0, 10, 20],
        "fetched while the claim holds"
    );
    let _theirs = CursorTracker::claim("s", "w2", shared).await.unwrap();
    tokio::time::sleep(Duration::from_secs(40)).await;
    h.stop(Duration::from_secs(1)).await;
    assert_eq!(
        src.starts(),
        vec![0, 10, 20],
        "no fetch after another worker's claim"
    );
    assert_eq!(sink.emitted.load(Ordering::SeqCst), 6);
    let told = sink.told.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "told once, not at every tick: {told:?}");
    assert_eq!(
        counted.checks.load(Ordering::SeqCst),
        4,
        "checked before the fetches at 0, 10, 20 s and at 30 s (fenced), then never again"
    );
    assert!(
        told[0].starts_with("s: ") && told[0].contains("`w2`"),
        "{told:?}"
    );
}

/// A registered mode that asks for two polls at once gets them one after the other
/// (polls of a source never overlap), each fetch continuing from the one before, and a
/// stop ends it.
#[tokio::test(start_paused = true)]
async fn a_registered_mode_polls_one_at_a_time_and_stops() {
    use ingestion_modes::{start_mode, IngestionMode, ModeContext, ModeRegistry, StopReport};

    #[derive(Debug)]
    struct Pairs;

    #[async_trait]
    impl IngestionMode for Pairs {
        fn name(&self) -> &str {
            "pairs"
        }

        async fn run(&self, ctx: &ModeContext) -> StopReport {
            loop {
                let (a, b) = tokio::join!(ctx.poll(), ctx.poll());
                for batch in [a, b].into_iter().flatten() {
                    if ctx.emit(batch).await.is_err() {
                        return StopReport::default();
                    }
                }
                if !ctx.sleep(Duration::from_secs(10)).await {
                    return StopReport::default();
                }
            }
        }
    }

    let mut modes = ModeRegistry::builtin();
    modes.register(
        "pairs",
        |_, _| Ok(Arc::new(Pairs) as Arc<dyn IngestionMode>),
    );
    let cfg = IngestionConfig {
        mode: IngestionModeKind::Custom("pairs".into()),
        ..IngestionConfig::default()
    };
    let src = Scripted::new(2, Duration::from_secs(1));
    let store = MemoryCursorStore::default();
    let (tx, mut rx) = mpsc::channel(64);
    let h = start_mode(
        "s",
        modes.build("s", &cfg).unwrap(),
        src.clone(),
        tracker(&store).await,
        Arc::new(tx),
        Duration::ZERO,
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        src.max_running.load(Ordering::SeqCst),
        1,
        "never two at once"
    );
    assert_eq!(src.starts(), vec![0, 1, 12, 13]);
    let mut got: Vec<i64> = drain(&mut rx)
        .into_iter()
        .flat_map(|e| e.records)
        .map(|(_, r)| r.to_value()["n"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        (0..8).collect::<Vec<_>>(),
        "each fetch continues the last"
    );
    assert_eq!(h.stats().polls, 4);
    let report = h.stop(Duration::from_secs(5)).await;
    assert!(!report.abandoned_poll);
    assert!(
        ModeRegistry::builtin().build("s", &cfg).is_err(),
        "not registered there"
    );
}
