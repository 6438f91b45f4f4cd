//! A large body streamed into the pipeline: its records are handed on while the fetch
//! is under way, and a queue far smaller than the body holds the source back instead of
//! evicting (the default overflow strategy, `drop_oldest`, would dead-letter the
//! overflow of a fetch that had arrived whole).

use std::time::Duration;

use api_client::{Chunk, ChunkSender, Cursor, Fetch, Source};
use test_support::poll_until;

use crate::{settled_ids, setup};

/// One fetch of 40 chunks of 250 records (ids 0 – 9,999), handed on as a body arriving
/// would; nothing new afterwards.
#[derive(Debug)]
struct Big;

#[async_trait::async_trait]
impl Source for Big {
    async fn fetch(&self, _: Option<&Cursor>) -> api_client::Result<Fetch> {
        unreachable!("polled through fetch_streaming")
    }

    async fn fetch_streaming(
        &self,
        cursor: Option<&Cursor>,
        out: &ChunkSender,
    ) -> api_client::Result<Fetch> {
        if cursor.is_some() {
            return Ok(Fetch::unchanged());
        }
        for c in 0..40 {
            let records = (c * 250..(c + 1) * 250)
                .map(|id| serde_json::json!({ "id": id }).into())
                .collect();
            out.send(Chunk {
                records,
                rejected: Vec::new(),
            })
            .await?;
        }
        Ok(Fetch {
            next_cursor: Some(Cursor("done".into())),
            changed: true,
            ..Fetch::default()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_larger_than_the_queue_waits_for_room_instead_of_overflowing() {
    let yaml = "
kafka: { linger_ms: 5, batch_size: 200 }
throttling: { max_send_rate: 100000 }
queue_max_size: 100
routing: { fallback_topic: big }
sources:
  big:
    source_type: big
    ingestion: { mode: real_time, polling_interval_seconds: 0.05, max_records_per_poll: 50 }
";
    let (mock, cfg, _dir) = setup(yaml, &["big"]);
    let mut registry = api_client::Registry::builtin();
    registry.register("big", |_, _| Ok(std::sync::Arc::new(Big)));
    let m = stream_manager::StreamManager::builder(cfg)
        .registry(registry)
        .start()
        .await
        .unwrap();
    poll_until(
        Duration::from_secs(60),
        "all 10,000 delivered",
        async || m.stream("big").await.unwrap().records_processed == 10_000,
    )
    .await;
    let (_, overflow, ids) = settled_ids(&m, &mock.bootstrap_servers(), &["big"], "big").await;
    assert!(
        overflow.is_empty(),
        "{} dead-lettered by overflow",
        overflow.len()
    );
    assert_eq!(ids, (0..10_000).collect::<Vec<i64>>(), "each record once");
    m.shutdown(Duration::from_secs(5)).await;
}
