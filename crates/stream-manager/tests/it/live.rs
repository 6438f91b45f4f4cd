//! The queue's bounds and strategy and the throttle's settings change in place, on a
//! running pipeline, without restarting a stream or losing a record.

use std::time::Duration;

use test_support::poll_until;

use crate::{setup, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_throttling_apply_live_and_every_record_lands() {
    let yaml = "
kafka: { linger_ms: 5, batch_size: 10 }
throttling: { max_send_rate: 20, min_send_rate: 1 }
queue_max_size: 1000
queue_overflow_strategy: drop_oldest
routing: { fallback_topic: all }
sources:
  burst:
    source_type: file
    ingestion: { mode: real_time, polling_interval_seconds: 3600 }
    custom_params: { path: '${FIXTURES}/readings.ndjson' }
";
    let (mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = start(cfg.clone()).await;
    // All 300 are read at once; at 20 records a second most of them wait in the queue.
    poll_until(Duration::from_secs(20), "the burst is queued", async || {
        m.get_metrics().await.queue.len() >= 200
    })
    .await;
    let mut next = cfg.clone();
    next.queue_max_size = 50;
    next.throttling.max_send_rate = 100_000.0;
    next.throttling.target_consumer_lag = 2_000;
    let touched = m.apply_config(next).await.expect("applied live");
    assert!(touched.is_empty(), "no stream restarted: {touched:?}");
    let after = m.get_metrics().await;
    assert!(after.queue.len() <= 50, "{:?}", after.queue);
    assert!(after.queue.evicted >= 150, "{:?}", after.queue);
    assert_eq!(after.throttle.rate, 100_000.0, "the new ceiling, at once");
    assert_eq!(m.config().queue_max_size, 50);

    poll_until(
        Duration::from_secs(30),
        "every record settled",
        async || {
            let s = m.stream("burst").await.unwrap();
            s.records_processed + s.records_dead_lettered == 300
        },
    )
    .await;
    let (s, rows, all) = crate::settled_ids(&m, &mock.bootstrap_servers(), &["all"], "burst").await;
    assert_eq!(rows.len() as u64, s.records_dead_lettered);
    assert_eq!(s.records_dead_lettered, after.queue.evicted);
    assert_eq!(
        all,
        (0..300).collect::<Vec<_>>(),
        "every record either in Kafka or in the DLQ"
    );
    m.shutdown(Duration::from_secs(10)).await;
}
