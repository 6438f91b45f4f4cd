//! Block mode: producers wait for room, wake when it appears, can be cancelled or time
//! out without changing the queue; batches linger for more records.

use std::sync::Arc;
use std::time::Duration;

use queue::{OverflowStrategy, PopBatch, Priority, PriorityQueue, PushError, QueueConfig};

use crate::{item, Item};

fn blocking_queue(max_items: usize) -> Arc<PriorityQueue<Item>> {
    Arc::new(PriorityQueue::new(QueueConfig {
        max_items,
        overflow: OverflowStrategy::Block,
        ..QueueConfig::default()
    }))
}

#[tokio::test(start_paused = true)]
async fn blocked_push_wakes_when_a_record_is_popped() {
    let q = blocking_queue(2);
    q.push(item(1, Priority::Low)).await.unwrap();
    q.push(item(2, Priority::Low)).await.unwrap();
    let task = tokio::spawn({
        let q = q.clone();
        async move { q.push(item(3, Priority::High)).await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !task.is_finished(),
        "push must wait while the queue is full"
    );
    assert_eq!(q.len(), 2);
    assert_eq!(q.try_pop().unwrap().id, 1);
    let evicted = task.await.unwrap().unwrap();
    assert!(evicted.is_empty());
    assert_eq!(
        q.try_pop().unwrap().id,
        3,
        "the woken record is queued at its priority"
    );
    assert!(q.stats().blocked >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn cancelled_push_leaves_the_queue_unchanged() {
    let q = blocking_queue(1);
    q.push(item(1, Priority::Normal)).await.unwrap();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        q.push(item(2, Priority::Normal)),
    )
    .await;
    assert!(cancelled.is_err(), "still blocked when cancelled");
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_pop().unwrap().id, 1);
    assert!(
        q.try_pop().is_none(),
        "the cancelled record was never queued"
    );
    // The queue still works after the cancelled waiter.
    q.push(item(3, Priority::Normal)).await.unwrap();
    assert_eq!(q.try_pop().unwrap().id, 3);
}

#[tokio::test(start_paused = true)]
async fn push_timeout_hands_the_record_back() {
    let q = blocking_queue(1);
    q.push(item(1, Priority::Normal)).await.unwrap();
    let err = q
        .push_timeout(item(2, Priority::Critical), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PushError::Timeout(Item { id: 2, .. })),
        "{err:?}"
    );
    assert_eq!(q.stats().refused, 1);
    assert_eq!(q.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn close_releases_blocked_producers_and_waiting_consumers() {
    let q = blocking_queue(1);
    q.push(item(1, Priority::Normal)).await.unwrap();
    let producer = tokio::spawn({
        let q = q.clone();
        async move { q.push(item(2, Priority::Normal)).await }
    });
    tokio::task::yield_now().await;
    q.close();
    assert!(matches!(
        producer.await.unwrap(),
        Err(PushError::Closed(Item { id: 2, .. }))
    ));
    // Consumers drain what is left, then see the end.
    assert_eq!(q.pop().await.unwrap().id, 1);
    assert!(q.pop().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn pop_waits_for_a_record() {
    let q = blocking_queue(4);
    let consumer = tokio::spawn({
        let q = q.clone();
        async move { q.pop().await }
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!consumer.is_finished());
    q.push(item(7, Priority::Low)).await.unwrap();
    assert_eq!(consumer.await.unwrap().unwrap().id, 7);
}

fn limits(max_items: usize, max_bytes: u64, linger_ms: u64) -> PopBatch {
    PopBatch {
        max_items,
        max_bytes,
        linger: Duration::from_millis(linger_ms),
    }
}

#[tokio::test(start_paused = true)]
async fn batch_lingers_for_more_records_instead_of_returning_half_empty() {
    let q = blocking_queue(100);
    for id in 0..3 {
        q.push(item(id, Priority::Normal)).await.unwrap();
    }
    let consumer = tokio::spawn({
        let q = q.clone();
        async move { q.pop_batch(limits(10, u64::MAX, 100)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!consumer.is_finished(), "batch waits up to its linger time");
    for id in 3..5 {
        q.push(item(id, Priority::Normal)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let batch = consumer.await.unwrap();
    assert_eq!(
        batch.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
}

#[tokio::test(start_paused = true)]
async fn batch_returns_at_once_when_full_by_count_or_bytes() {
    let q = blocking_queue(100);
    for id in 0..10 {
        q.push(item(id, Priority::Normal)).await.unwrap();
    }
    let start = tokio::time::Instant::now();
    assert_eq!(q.pop_batch(limits(4, u64::MAX, 1000)).await.len(), 4);
    // Items are 10 bytes: 25 bytes fit two.
    assert_eq!(q.pop_batch(limits(100, 25, 1000)).await.len(), 2);
    assert_eq!(start.elapsed(), Duration::ZERO);
    // A first record larger than the byte limit still comes, alone.
    let big = Item {
        id: 99,
        priority: Priority::Critical,
        size: 500,
    };
    q.push(big).await.unwrap();
    assert_eq!(q.pop_batch(limits(100, 25, 1000)).await, vec![big]);
}

#[tokio::test(start_paused = true)]
async fn batch_on_closed_queue_drains_then_ends() {
    let q = blocking_queue(100);
    q.push(item(1, Priority::Low)).await.unwrap();
    q.push(item(2, Priority::Critical)).await.unwrap();
    q.close();
    let batch = q.pop_batch(limits(10, u64::MAX, 1000)).await;
    assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), vec![2, 1]);
    assert!(q.pop_batch(limits(10, u64::MAX, 1000)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_producers_and_consumers_lose_nothing_under_backpressure() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 5_000;
    let q = blocking_queue(64);
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let q = q.clone();
        producers.push(tokio::spawn(async move {
            for n in 0..PER_PRODUCER {
                let priority = queue::PRIORITIES[(n % 4) as usize];
                q.push(item(p * PER_PRODUCER + n, priority)).await.unwrap();
            }
        }));
    }
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let q = q.clone();
        consumers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let batch = q.pop_batch(limits(50, u64::MAX, 1)).await;
                if batch.is_empty() {
                    return seen;
                }
                seen.extend(batch.into_iter().map(|i| i.id));
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    q.close();
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.await.unwrap());
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..PRODUCERS * PER_PRODUCER).collect();
    assert_eq!(all, expected, "every record exactly once");
    let stats = q.stats();
    assert_eq!(stats.enqueued, PRODUCERS * PER_PRODUCER);
    assert_eq!(stats.dequeued, PRODUCERS * PER_PRODUCER);
}
