//! Pops restricted to some priority lanes: a dedicated consumer of one lane never takes
//! another's records, and knows when its lanes are drained after close.

use std::sync::Arc;
use std::time::Duration;

use queue::{Lanes, PopBatch, Priority, PriorityQueue, QueueConfig};

use crate::item;

fn limits(max_items: usize) -> PopBatch {
    PopBatch {
        max_items,
        max_bytes: u64::MAX,
        linger: Duration::ZERO,
    }
}

#[tokio::test]
async fn each_lane_set_takes_only_its_own_records() {
    let q = PriorityQueue::new(QueueConfig::default());
    for (id, p) in [
        (1, Priority::Low),
        (2, Priority::Critical),
        (3, Priority::Normal),
        (4, Priority::Critical),
        (5, Priority::High),
    ] {
        q.try_push(item(id, p)).unwrap();
    }
    let critical = Lanes::only(Priority::Critical);
    let others = Lanes::all_but(Priority::Critical);
    assert!(critical.contains(Priority::Critical) && !critical.contains(Priority::High));
    assert_eq!((q.len_in(critical), q.len_in(others)), (2, 3));
    let ids = |v: Vec<crate::Item>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(q.pop_batch_from(limits(1), others).await), vec![5]);
    assert_eq!(ids(q.try_pop_batch_from(10, u64::MAX, others)), vec![3, 1]);
    assert!(q.try_pop_batch_from(10, u64::MAX, others).is_empty());
    assert_eq!(ids(q.try_pop_batch_from(1, u64::MAX, critical)), vec![2]);
    assert_eq!(ids(q.pop_batch_from(limits(10), Lanes::ALL).await), vec![4]);
}

/// Polls `fut` once: `true` while it is still waiting.
async fn still_waiting<F: std::future::Future + Unpin>(fut: &mut F) -> bool {
    tokio::select! {
        biased;
        _ = fut => false,
        () = std::future::ready(()) => true,
    }
}

#[tokio::test]
async fn a_lane_consumer_waits_for_its_lane_and_ends_when_it_is_drained_after_close() {
    let q = Arc::new(PriorityQueue::new(QueueConfig::default()));
    q.try_push(item(1, Priority::Low)).unwrap();
    // Polled by hand (no clock): pending with a LOW record queued before it waited ...
    let mut waiter = std::pin::pin!(q.pop_batch_from(limits(5), Lanes::only(Priority::Critical)));
    assert!(
        still_waiting(&mut waiter).await,
        "a queued LOW record does not satisfy the CRITICAL consumer"
    );
    // ... and with one pushed while it waits (which wakes it to look).
    q.try_push(item(3, Priority::Low)).unwrap();
    assert!(
        still_waiting(&mut waiter).await,
        "a LOW record pushed while it waits does not satisfy the CRITICAL consumer"
    );
    q.try_push(item(2, Priority::Critical)).unwrap();
    let got = waiter.await;
    assert_eq!(got.iter().map(|i| i.id).collect::<Vec<_>>(), vec![2]);
    q.close();
    // Its lane is drained: an empty batch, though a LOW record is still queued.
    assert!(q
        .pop_batch_from(limits(5), Lanes::only(Priority::Critical))
        .await
        .is_empty());
    assert_eq!(q.len(), 2);
}

/// Two consumers of different lanes waiting at once: a record pushed for one wakes that
/// one. With a single wake-up per push the CRITICAL consumer, waiting first, took the
/// NORMAL record's wake-up and the NORMAL consumer slept on with it queued (seen as a
/// dispatcher that left one record in the queue until the next push).
#[tokio::test(start_paused = true)]
async fn a_push_wakes_the_consumer_of_its_lane_when_another_lane_waits_too() {
    let q = Arc::new(PriorityQueue::new(QueueConfig::default()));
    let consumer = |lanes: Lanes| {
        let q = q.clone();
        tokio::spawn(async move { q.pop_batch_from(limits(5), lanes).await })
    };
    let mut critical = consumer(Lanes::only(Priority::Critical));
    tokio::task::yield_now().await;
    let mut others = consumer(Lanes::all_but(Priority::Critical));
    tokio::task::yield_now().await;
    let ids = |v: Vec<crate::Item>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    // Paused clock: the timeout fires only once every task is idle, so a consumer that
    // was not woken fails here rather than hanging.
    let within = Duration::from_secs(60);
    q.try_push(item(1, Priority::Normal)).unwrap();
    let got = tokio::time::timeout(within, &mut others)
        .await
        .expect("the NORMAL consumer was not woken by its record");
    assert_eq!(ids(got.unwrap()), vec![1]);
    q.try_push(item(2, Priority::Critical)).unwrap();
    let got = tokio::time::timeout(within, &mut critical)
        .await
        .expect("the CRITICAL consumer was not woken by its record");
    assert_eq!(ids(got.unwrap()), vec![2]);
}
