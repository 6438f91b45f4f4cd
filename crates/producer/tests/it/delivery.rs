//! `Delivery` with the DLQ: background retries, and a store that goes away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use producer::{
    retry_due, DeadLetter, DeadLetterStore, Delivery, DlqFilter, DlqStats, DlqStatus,
    FailureReason, MemoryDeadLetterStore, NewDeadLetter,
};

use crate::support::{consume_ids, memory_store, mock_cluster, producer, records};

fn letters(prefix: &str, n: usize, reason: FailureReason) -> Vec<NewDeadLetter> {
    records("t", prefix, n)
        .into_iter()
        .map(|record| NewDeadLetter {
            record,
            reason,
            details: "test".into(),
        })
        .collect()
}

#[tokio::test]
async fn background_retry_delivers_due_rows_once() {
    let mock = mock_cluster(&["t"]);
    let p = producer(&mock.bootstrap_servers(), &[], 1);
    let store = memory_store();
    store
        .insert(
            &letters("late", 3, FailureReason::BrokerUnavailable),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    store
        .insert(
            &letters("perm", 1, FailureReason::RecordTooLarge),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    let now = producer_now();
    assert_eq!(
        retry_due(&store, &p, now, Duration::from_secs(1), 3)
            .await
            .unwrap(),
        (0, 0),
        "nothing due yet"
    );
    let later = now + 2_000;
    assert_eq!(
        retry_due(&store, &p, later, Duration::from_secs(1), 3)
            .await
            .unwrap(),
        (3, 0)
    );
    assert_eq!(
        retry_due(&store, &p, later, Duration::from_secs(1), 3)
            .await
            .unwrap(),
        (0, 0),
        "done rows are not retried"
    );
    let done = store
        .list(
            &DlqFilter {
                status: Some(DlqStatus::RetrySuccess),
                ..DlqFilter::default()
            },
            10,
            0,
        )
        .await
        .unwrap();
    assert_eq!(done.len(), 3);
    let seen = consume_ids(&mock.bootstrap_servers(), "t", 3, Duration::from_secs(20));
    crate::support::assert_exactly_once(&seen, "late", 3);
}

#[tokio::test]
async fn failing_retries_back_off_doubling_then_become_permanent() {
    let port = test_support::free_port().unwrap();
    let p = producer(
        &format!("127.0.0.1:{port}"),
        &[
            ("message.timeout.ms", "200"),
            ("enable.idempotence", "false"),
        ],
        0,
    );
    let store = memory_store();
    store
        .insert(&letters("x", 1, FailureReason::Timeout), Duration::ZERO)
        .await
        .unwrap();
    let base = Duration::from_secs(10);
    let mut now = producer_now() + 1;
    let mut waits = Vec::new();
    for _ in 0..3 {
        assert_eq!(retry_due(&store, &p, now, base, 3).await.unwrap(), (0, 1));
        let row = store
            .list(&DlqFilter::default(), 1, 0)
            .await
            .unwrap()
            .remove(0);
        match row.retry_at {
            Some(at) => {
                waits.push(at - now);
                now = at;
            }
            None => {
                assert_eq!(
                    (row.status, row.retry_count),
                    (DlqStatus::PermanentFailure, 3)
                );
            }
        }
    }
    assert_eq!(
        waits,
        vec![20_000, 40_000],
        "base × 2^n, n = retries so far"
    );
}

/// A real store that can be switched off, to see what `Delivery` does meanwhile.
#[derive(Debug)]
struct SwitchableStore {
    inner: MemoryDeadLetterStore,
    down: AtomicBool,
    /// Each insert takes this long (a slow store).
    insert_delay: Duration,
    /// The message id of every letter each successful insert wrote, in order.
    written: std::sync::Mutex<Vec<String>>,
}

impl SwitchableStore {
    fn new(down: bool, insert_delay: Duration) -> Self {
        Self {
            inner: memory_store(),
            down: AtomicBool::new(down),
            insert_delay,
            written: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl SwitchableStore {
    fn check(&self) -> Result<(), producer::Error> {
        if self.down.load(Ordering::Relaxed) {
            Err(producer::Error::dlq(
                "connection refused (switched off by the test)",
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl DeadLetterStore for SwitchableStore {
    async fn insert(&self, l: &[NewDeadLetter], first: Duration) -> Result<(), producer::Error> {
        self.check()?;
        tokio::time::sleep(self.insert_delay).await;
        self.inner.insert(l, first).await?;
        let mut written = self.written.lock().unwrap();
        written.extend(l.iter().map(|l| l.record.id.to_string()));
        Ok(())
    }
    async fn due(&self, now: i64, limit: i64) -> Result<Vec<DeadLetter>, producer::Error> {
        self.check()?;
        self.inner.due(now, limit).await
    }
    async fn retry_failed(
        &self,
        id: i64,
        d: &str,
        next: Option<i64>,
    ) -> Result<(), producer::Error> {
        self.check()?;
        self.inner.retry_failed(id, d, next).await
    }
    async fn set_status(&self, ids: &[i64], s: DlqStatus) -> Result<u64, producer::Error> {
        self.check()?;
        self.inner.set_status(ids, s).await
    }
    async fn get(&self, id: i64) -> Result<Option<DeadLetter>, producer::Error> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn list(
        &self,
        f: &DlqFilter,
        l: i64,
        o: i64,
    ) -> Result<Vec<DeadLetter>, producer::Error> {
        self.check()?;
        self.inner.list(f, l, o).await
    }
    async fn stats(&self) -> Result<DlqStats, producer::Error> {
        self.check()?;
        self.inner.stats().await
    }
    async fn delete(&self, id: i64) -> Result<bool, producer::Error> {
        self.check()?;
        self.inner.delete(id).await
    }
    async fn purge(&self, p: &producer::Purge) -> Result<u64, producer::Error> {
        self.check()?;
        self.inner.purge(p).await
    }
    async fn ping(&self) -> Result<(), producer::Error> {
        self.check()
    }
}

#[tokio::test]
async fn unreachable_store_buffers_in_memory_and_writes_when_it_returns() {
    let mock = mock_cluster(&["t"]);
    let p = Arc::new(producer(
        &mock.bootstrap_servers(),
        &[("message.max.bytes", "1000")],
        0,
    ));
    let store = Arc::new(SwitchableStore::new(true, Duration::ZERO));
    let delivery = Delivery::new(p, store.clone()).with_buffer_capacity(10);
    delivery
        .dead_letter(letters("a", 4, FailureReason::QueueOverflow))
        .await;
    let mut big = records("t", "big", 1);
    big[0].payload = vec![b'x'; 4000].into();
    let report = delivery.deliver(big).await;
    assert_eq!(report.dead_lettered, 1);
    assert!(!delivery.dlq_healthy());
    assert_eq!(delivery.buffered(), 5);

    // Over capacity: the call waits for the store instead of dropping anything.
    let blocked = tokio::time::timeout(
        Duration::from_millis(1500),
        delivery.dead_letter(letters("b", 8, FailureReason::QueueOverflow)),
    )
    .await;
    assert!(blocked.is_err(), "a full buffer waits");
    assert_eq!(delivery.buffered(), 10);

    store.down.store(false, Ordering::Relaxed);
    delivery.flush_buffer().await.unwrap();
    assert!(delivery.dlq_healthy());
    assert_eq!(delivery.buffered(), 0);
    let stats = store.stats().await.unwrap();
    // 4 + 1 + the 5 of "b" that fitted before the timeout cancelled the call.
    assert_eq!(stats.total, 10);
}

/// Two flushes at once (the DLQ worker's timer and a delivery task whose buffer is
/// full) over a slow store, while new letters arrive: every letter is written exactly
/// once and none is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flushes_over_a_slow_store_write_each_letter_once() {
    let mock = mock_cluster(&["t"]);
    let p = Arc::new(producer(&mock.bootstrap_servers(), &[], 0));
    let store = Arc::new(SwitchableStore::new(true, Duration::from_millis(30)));
    let delivery = Arc::new(Delivery::new(p, store.clone()));
    // 1,234 letters wait in memory while the store is down (not a multiple of 500,
    // so a flush's last chunk is short).
    delivery
        .dead_letter(letters("a", 1234, FailureReason::QueueOverflow))
        .await;
    assert_eq!(delivery.buffered(), 1234);
    store.down.store(false, Ordering::Relaxed);

    let mut tasks = Vec::new();
    for _ in 0..3 {
        let d = delivery.clone();
        tasks.push(tokio::spawn(async move { d.flush_buffer().await }));
    }
    // More letters arrive while the flushes run: they queue behind the buffered ones.
    let d = delivery.clone();
    let arriving = tokio::spawn(async move {
        for batch in 0..5 {
            d.dead_letter(letters(&format!("b{batch}"), 60, FailureReason::Timeout))
                .await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    for t in tasks {
        t.await.expect("a flush panicked").unwrap();
    }
    arriving.await.unwrap();
    delivery.flush_buffer().await.unwrap();

    assert_eq!(delivery.buffered(), 0);
    let written = store.written.lock().unwrap().clone();
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for id in &written {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "{} letters written more than once, e.g. {:?}",
        doubled.len(),
        doubled.first()
    );
    assert_eq!(counts.len(), 1234 + 5 * 60, "every letter written");
    assert_eq!(store.stats().await.unwrap().total, 1234 + 5 * 60);
}

fn producer_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn with_the_dlq_disabled_undeliverable_records_are_dropped_not_stored() {
    let mock = mock_cluster(&["t"]);
    let p = Arc::new(producer(&mock.bootstrap_servers(), &[], 0));
    let store = Arc::new(memory_store());
    let delivery = Delivery::new(p, store.clone());
    delivery.set_dlq_enabled(false);
    delivery
        .dead_letter(letters("gone", 3, FailureReason::RecordTooLarge))
        .await;
    assert_eq!(store.stats().await.unwrap().total, 0, "nothing stored");
    assert_eq!(delivery.buffered(), 0, "nothing held either");
    // Turned back on (a runtime config change): stored again.
    delivery.set_dlq_enabled(true);
    delivery
        .dead_letter(letters("kept", 2, FailureReason::RecordTooLarge))
        .await;
    assert_eq!(store.stats().await.unwrap().total, 2);
}
