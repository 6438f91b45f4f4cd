//! A record path built from its components alone: records go from a sink through the
//! queue and the dispatcher to a producer, or to the DLQ with their reason, and each
//! fetch's cursor commits only once all its records have settled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_client::{Cursor, CursorStore, CursorTracker, FetchSeq, Freshness, Record};
use async_trait::async_trait;
use ingestion_modes::{Emitted, Sink};
use producer::{
    Delivered, Delivery, DeliveryError, ErrorClass, FailureReason, KafkaHealth, Outcome,
    OutgoingRecord, Producer,
};
use queue::{OverflowStrategy, Priority, PriorityQueue, QueueConfig, Scheduling};
use record_path::{supervise_dispatch, Components, RecordPath, SourceCtx, StreamSink};
use stream_contracts::{DeadLetterStore, DlqFilter, MemoryCursorStore, MemoryDeadLetterStore};
use throttling::{Throttle, ThrottleGroup, ThrottleSettings};
use topic_resolver::{Resolver, Rules};

/// Keeps what it is sent; refuses every record (fatally) while `refuse` is set.
#[derive(Debug, Default)]
struct Recording {
    sent: Mutex<Vec<OutgoingRecord>>,
    refuse: bool,
}

#[async_trait]
impl Producer for Recording {
    async fn send(&self, records: Vec<OutgoingRecord>) -> Vec<(OutgoingRecord, Outcome)> {
        records
            .into_iter()
            .map(|r| {
                let outcome = if self.refuse {
                    Err(DeliveryError {
                        class: ErrorClass::Fatal,
                        reason: FailureReason::Authorization,
                        code: Some("TopicAuthorizationFailed".into()),
                        message: "not allowed".into(),
                    })
                } else {
                    self.sent.lock().unwrap().push(r.clone());
                    Ok(Delivered {
                        partition: 0,
                        offset: 0,
                    })
                };
                (r, outcome)
            })
            .collect()
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn in_flight(&self) -> i64 {
        0
    }
    async fn flush(&self, _: Duration) -> producer::Result<()> {
        Ok(())
    }
    async fn health(&self) -> KafkaHealth {
        KafkaHealth {
            connected: true,
            brokers: 1,
            last_error: None,
        }
    }
}

struct Rig {
    path: Arc<RecordPath>,
    producer: Arc<Recording>,
    dlq: Arc<MemoryDeadLetterStore>,
    cursors: Arc<MemoryCursorStore>,
}

fn rig(max_items: usize, producer: Recording) -> Rig {
    let producer = Arc::new(producer);
    let dlq = Arc::new(MemoryDeadLetterStore::default());
    let path = RecordPath::new(Components {
        config: Arc::new(stream_config::StreamConfig::default()),
        queue: Arc::new(PriorityQueue::new(QueueConfig {
            max_items,
            max_bytes: None,
            overflow: OverflowStrategy::DropOldest,
            scheduling: Scheduling::Strict,
        })),
        throttle: Arc::new(ThrottleGroup::new(ThrottleSettings::default())),
        critical_throttle: Arc::new(Throttle::new(ThrottleSettings::default(), "critical")),
        resolver: Arc::new(
            Resolver::new(Rules {
                fallback_topic: "readings".into(),
                ..Rules::default()
            })
            .unwrap(),
        ),
        priority_rules: Vec::new(),
        delivery: Arc::new(Delivery::new(producer.clone(), dlq.clone())),
        topics: None,
        contracts: api_client::Contracts::default(),
    });
    Rig {
        path: Arc::new(path),
        producer,
        dlq,
        cursors: Arc::new(MemoryCursorStore::default()),
    }
}

impl Rig {
    /// A sink for source `id`, and its fetch-state tracker.
    async fn sink(&self, id: &str) -> (StreamSink, Arc<CursorTracker>) {
        let store: Arc<dyn CursorStore> = self.cursors.clone();
        let tracker = Arc::new(CursorTracker::load(id, store).await.unwrap());
        let ctx = SourceCtx::new(
            &self.path,
            id,
            "http_json",
            Priority::Normal,
            tracker.clone(),
            Freshness::new(None),
        );
        let sink = StreamSink {
            ctx: Arc::new(ctx),
            shared: self.path.clone(),
        };
        (sink, tracker)
    }

    /// Runs the dispatcher until the queue is closed and drained.
    async fn drain(&self) {
        let dispatcher = tokio::spawn(supervise_dispatch(self.path.clone(), 4));
        self.path.queue.close();
        dispatcher.await.unwrap();
    }

    async fn dead_letters(&self) -> Vec<(String, String)> {
        let rows = self.dlq.list(&DlqFilter::default(), 100, 0).await.unwrap();
        rows.into_iter()
            .map(|r| (r.failure_reason, String::from_utf8_lossy(&r.payload).into()))
            .collect()
    }
}

fn fetch(seq: FetchSeq, values: &[u32]) -> Emitted {
    Emitted {
        source_id: "sensors".into(),
        records: values
            .iter()
            .map(|v| (seq, Record::from_value(&serde_json::json!({ "v": v }))))
            .collect(),
        rejected: Vec::new(),
    }
}

fn header<'a>(r: &'a OutgoingRecord, name: &str) -> &'a [u8] {
    r.headers
        .iter()
        .find(|(n, _)| n.as_ref() == name)
        .map(|(_, v)| v.as_ref())
        .unwrap_or_else(|| panic!("no header {name}"))
}

#[tokio::test(start_paused = true)]
async fn delivered_records_carry_their_source_and_commit_their_fetch() {
    let rig = rig(100, Recording::default());
    let (sink, tracker) = rig.sink("sensors").await;
    let seq = tracker
        .register(Some(Cursor("page-2".into())), 3)
        .await
        .unwrap();
    sink.emit(fetch(seq, &[1, 2, 3])).await.unwrap();
    // Queued, not yet delivered: the fetch has not settled.
    assert_eq!(tracker.committed(), None);
    assert_eq!(rig.path.queue.len(), 3);

    rig.drain().await;

    let sent = rig.producer.sent.lock().unwrap().clone();
    let payloads: Vec<&[u8]> = sent.iter().map(|r| r.payload.as_ref()).collect();
    assert_eq!(payloads, [&b"{\"v\":1}"[..], b"{\"v\":2}", b"{\"v\":3}"]);
    for r in &sent {
        assert_eq!(&*r.topic, "readings");
        assert_eq!(header(r, "source_id"), b"sensors");
        assert_eq!(header(r, "source_type"), b"http_json");
        assert_eq!(header(r, "priority"), b"normal");
        assert_eq!(header(r, "message_id"), r.id.as_bytes());
    }
    assert_eq!(tracker.committed(), Some(Cursor("page-2".into())));
    assert_eq!(
        rig.cursors.load("sensors").await.unwrap(),
        Some(Cursor("page-2".into()))
    );
    let counters = &sink.ctx.counters;
    assert_eq!(
        counters
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert!(rig.dead_letters().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn what_a_full_queue_evicts_is_dead_lettered_and_the_fetch_still_commits() {
    let rig = rig(2, Recording::default());
    let (sink, tracker) = rig.sink("sensors").await;
    let seq = tracker
        .register(Some(Cursor("c5".into())), 5)
        .await
        .unwrap();
    sink.emit(fetch(seq, &[1, 2, 3, 4, 5])).await.unwrap();
    // drop_oldest keeps the newest two; the three it pushed out are in the DLQ.
    let mut dead = rig.dead_letters().await;
    dead.sort();
    assert_eq!(
        dead,
        [1, 2, 3]
            .map(|v| ("queue_overflow".to_owned(), format!("{{\"v\":{v}}}")))
            .to_vec()
    );
    assert_eq!(tracker.committed(), None, "two records are still queued");

    rig.drain().await;

    let sent = rig.producer.sent.lock().unwrap().clone();
    let payloads: Vec<&[u8]> = sent.iter().map(|r| r.payload.as_ref()).collect();
    assert_eq!(payloads, [&b"{\"v\":4}"[..], b"{\"v\":5}"]);
    assert_eq!(tracker.committed(), Some(Cursor("c5".into())));
}

#[tokio::test(start_paused = true)]
async fn records_the_producer_refuses_are_dead_lettered_with_its_reason_before_the_fetch_commits() {
    let rig = rig(
        100,
        Recording {
            refuse: true,
            ..Recording::default()
        },
    );
    let (sink, tracker) = rig.sink("sensors").await;
    let seq = tracker
        .register(Some(Cursor("c2".into())), 2)
        .await
        .unwrap();
    sink.emit(fetch(seq, &[7, 8])).await.unwrap();

    rig.drain().await;

    assert!(rig.producer.sent.lock().unwrap().is_empty());
    let mut dead = rig.dead_letters().await;
    dead.sort();
    assert_eq!(
        dead,
        [7, 8]
            .map(|v| ("authorization".to_owned(), format!("{{\"v\":{v}}}")))
            .to_vec()
    );
    assert_eq!(tracker.committed(), Some(Cursor("c2".into())));
    let counters = &sink.ctx.counters;
    assert_eq!(
        counters
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}
