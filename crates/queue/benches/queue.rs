//! Queue throughput: enqueue+dequeue pairs on one thread, and four producer threads
//! feeding one consumer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use queue::{OverflowStrategy, Priority, PriorityQueue, QueueConfig, QueueItem, PRIORITIES};

/// A record of 200 bytes (shared, as the pipeline's are).
#[derive(Clone)]
struct Record {
    priority: Priority,
    payload: Bytes,
}

impl Record {
    fn new(priority: Priority) -> Self {
        Self {
            priority,
            payload: Bytes::from(vec![0u8; 200]),
        }
    }
}

impl QueueItem for Record {
    fn priority(&self) -> Priority {
        self.priority
    }
    fn size_bytes(&self) -> usize {
        self.payload.len()
    }
}

fn config() -> QueueConfig {
    QueueConfig {
        max_items: 1 << 20,
        overflow: OverflowStrategy::DropNewest,
        ..QueueConfig::default()
    }
}

fn single_thread(c: &mut Criterion) {
    let q = PriorityQueue::new(config());
    let template = Record::new(Priority::Normal);
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("push_pop_pair_1_thread", |b| {
        let mut n = 0usize;
        b.iter(|| {
            let mut e = template.clone();
            e.priority = PRIORITIES[n & 3];
            n += 1;
            q.try_push(e).unwrap();
            std::hint::black_box(q.try_pop().unwrap());
        })
    });
    g.finish();
}

fn four_producers(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("push_pop_4_producers_1_consumer", |b| {
        b.iter_custom(|iters| {
            let q = Arc::new(PriorityQueue::new(config()));
            let per = iters / 4 + 1;
            let start = Instant::now();
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let q = q.clone();
                    std::thread::spawn(move || {
                        let e = Record::new(PRIORITIES[p]);
                        for _ in 0..per {
                            while q.try_push(e.clone()).is_err() {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            let mut got = 0;
            while got < per * 4 {
                if q.try_pop().is_some() {
                    got += 1;
                }
            }
            for p in producers {
                p.join().unwrap();
            }
            start.elapsed().mul_f64(iters as f64 / (per * 4) as f64)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = single_thread, four_producers
}
criterion_main!(benches);
