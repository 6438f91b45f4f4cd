//! `reconfigure`: new bounds and strategies apply to a running queue; nothing already
//! queued is lost (what a shrink evicts is handed back), blocked pushes see the change.

use std::sync::Arc;
use std::time::Duration;

use queue::{OverflowStrategy, Priority, PriorityQueue, PushError, QueueConfig};

use crate::{item, Item};

fn queue(max_items: usize, overflow: OverflowStrategy) -> Arc<PriorityQueue<Item>> {
    Arc::new(PriorityQueue::new(QueueConfig {
        max_items,
        overflow,
        ..QueueConfig::default()
    }))
}

#[test]
fn shrinking_under_drop_oldest_hands_back_the_lowest_and_oldest() {
    let q = queue(10, OverflowStrategy::DropOldest);
    for (id, p) in [
        (1, Priority::High),
        (2, Priority::Low),
        (3, Priority::Normal),
        (4, Priority::Low),
        (5, Priority::Critical),
    ] {
        q.try_push(item(id, p)).unwrap();
    }
    let evicted = q.reconfigure(QueueConfig {
        max_items: 2,
        ..q.config()
    });
    let ids: Vec<u64> = evicted.iter().map(|i| i.id).collect();
    assert_eq!(ids, [2, 4, 3], "lowest priority first, oldest first");
    assert_eq!(q.len(), 2);
    assert_eq!(q.stats().evicted, 3);
    assert_eq!(q.config().max_items, 2);
    // The new bound holds for the next push too.
    let evicted = q.try_push(item(6, Priority::High)).unwrap();
    assert_eq!(evicted.iter().map(|i| i.id).collect::<Vec<_>>(), [1]);
}

#[test]
fn shrinking_under_drop_newest_keeps_every_record_and_refuses_new_ones() {
    let q = queue(5, OverflowStrategy::DropOldest);
    for id in 0..5 {
        q.try_push(item(id, Priority::Normal)).unwrap();
    }
    let evicted = q.reconfigure(QueueConfig {
        max_items: 2,
        overflow: OverflowStrategy::DropNewest,
        ..q.config()
    });
    assert!(evicted.is_empty(), "nothing is refused retroactively");
    assert_eq!(q.len(), 5);
    assert!(matches!(
        q.try_push(item(9, Priority::Normal)),
        Err(PushError::Full(_))
    ));
    for _ in 0..4 {
        q.try_pop().unwrap();
    }
    q.try_push(item(10, Priority::Normal))
        .expect("room again below the new bound");
}

#[test]
fn growing_bytes_bound_and_strategy_take_effect() {
    let q = Arc::new(PriorityQueue::new(QueueConfig {
        max_items: 100,
        max_bytes: Some(25),
        overflow: OverflowStrategy::DropNewest,
        ..QueueConfig::default()
    }));
    q.try_push(item(1, Priority::Normal)).unwrap();
    q.try_push(item(2, Priority::Normal)).unwrap();
    assert!(q.try_push(item(3, Priority::Normal)).is_err());
    q.reconfigure(QueueConfig {
        max_bytes: Some(35),
        ..q.config()
    });
    q.try_push(item(3, Priority::Normal)).unwrap();
    q.reconfigure(QueueConfig {
        max_bytes: Some(35),
        overflow: OverflowStrategy::DropOldest,
        ..q.config()
    });
    let evicted = q.try_push(item(4, Priority::Normal)).unwrap();
    assert_eq!(evicted.iter().map(|i| i.id).collect::<Vec<_>>(), [1]);
}

#[tokio::test(start_paused = true)]
async fn a_push_blocked_on_a_full_queue_proceeds_when_the_queue_grows() {
    let q = queue(1, OverflowStrategy::Block);
    q.push(item(1, Priority::Normal)).await.unwrap();
    let task = tokio::spawn({
        let q = q.clone();
        async move { q.push(item(2, Priority::Normal)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!task.is_finished(), "waits while full");
    q.reconfigure(QueueConfig {
        max_items: 2,
        ..q.config()
    });
    task.await.unwrap().expect("room after growing");
    assert_eq!(q.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_push_blocked_when_block_ends_gets_the_new_strategys_answer() {
    let q = queue(1, OverflowStrategy::Block);
    q.push(item(1, Priority::Normal)).await.unwrap();
    let task = tokio::spawn({
        let q = q.clone();
        async move { q.push(item(2, Priority::Normal)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!task.is_finished());
    q.reconfigure(QueueConfig {
        overflow: OverflowStrategy::DropOldest,
        ..q.config()
    });
    let evicted = task.await.unwrap().expect("pushed by evicting");
    assert_eq!(evicted.iter().map(|i| i.id).collect::<Vec<_>>(), [1]);
    assert_eq!(q.try_pop().unwrap().id, 2);
}
