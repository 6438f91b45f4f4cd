//! Priority order: strict by default; weighted so LOW still moves under CRITICAL load.

use queue::{Priority, PriorityQueue, QueueConfig, Scheduling};

use crate::item;

#[test]
fn strict_serves_highest_first_and_fifo_within_a_priority() {
    let q = PriorityQueue::new(QueueConfig::default());
    let order = [
        (1, Priority::Low),
        (2, Priority::Critical),
        (3, Priority::Normal),
        (4, Priority::Critical),
        (5, Priority::High),
        (6, Priority::Low),
    ];
    for (id, p) in order {
        q.try_push(item(id, p)).unwrap();
    }
    let got: Vec<u64> = std::iter::from_fn(|| q.try_pop()).map(|i| i.id).collect();
    assert_eq!(got, vec![2, 4, 5, 3, 1, 6]);
}

#[test]
fn weighted_gives_every_priority_its_share() {
    let q = PriorityQueue::new(QueueConfig {
        max_items: 100_000,
        scheduling: Scheduling::weighted(8, 4, 2, 1),
        ..QueueConfig::default()
    });
    for n in 0..4_000u64 {
        for p in queue::PRIORITIES {
            q.try_push(item(n, p)).unwrap();
        }
    }
    // 15 pops per full round: 8 critical, 4 high, 2 normal, 1 low.
    let mut counts = [0usize; 4];
    for _ in 0..1_500 {
        counts[queue::priority_index(q.try_pop().unwrap().priority)] += 1;
    }
    assert_eq!(counts, [100, 200, 400, 800]);
}

#[test]
fn weighted_falls_back_to_whatever_is_queued() {
    let q = PriorityQueue::new(QueueConfig {
        scheduling: Scheduling::weighted(8, 4, 2, 1),
        ..QueueConfig::default()
    });
    for n in 0..5 {
        q.try_push(item(n, Priority::Low)).unwrap();
    }
    assert_eq!(std::iter::from_fn(|| q.try_pop()).count(), 5);
}

#[test]
fn records_count_their_size_in_bytes() {
    let q = PriorityQueue::new(QueueConfig {
        max_bytes: Some(10),
        ..QueueConfig::default()
    });
    let six = |id| crate::Item {
        id,
        priority: Priority::Normal,
        size: 6,
    };
    q.try_push(six(1)).unwrap();
    assert_eq!(q.bytes(), 6);
    let evicted = q.try_push(six(2)).unwrap();
    assert_eq!(evicted.len(), 1, "the older record made room");
    assert_eq!(evicted[0].id, 1);
    assert_eq!(q.bytes(), 6);
    assert_eq!(q.utilization_percent(), 60.0);
}
