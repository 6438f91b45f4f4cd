//! An ingestion mode a program registers by name runs in the real pipeline beside the
//! built-in ones: selected by `ingestion.mode`, its records delivered to Kafka and its
//! cursor committed; a name nobody registered is refused with the registered names.

use std::sync::Arc;
use std::time::Duration;

use ingestion_modes::{IngestionMode, ModeContext, ModeRegistry, StopReport};
use serde_json::Value;
use stream_manager::StreamManager;
use test_support::kafka::consume;
use test_support::poll_until;

use crate::setup;

/// Fetches `polls` times back to back when the stream starts, emitting each fetch, then
/// idles until stopped.
#[derive(Debug)]
struct Backfill {
    polls: u32,
}

#[async_trait::async_trait]
impl IngestionMode for Backfill {
    fn name(&self) -> &str {
        "backfill"
    }

    async fn run(&self, ctx: &ModeContext) -> StopReport {
        for _ in 0..self.polls {
            let Some(batch) = ctx.poll().await else {
                break;
            };
            if ctx.emit(batch).await.is_err() {
                return StopReport::default();
            }
        }
        while ctx.sleep(Duration::from_secs(3600)).await {}
        StopReport::default()
    }
}

fn modes() -> ModeRegistry {
    let mut modes = ModeRegistry::builtin();
    modes.register("backfill", |_, ing| {
        Ok(Arc::new(Backfill {
            polls: ing.batch_size.clamp(1, 10) as u32,
        }) as Arc<dyn IngestionMode>)
    });
    modes
}

const YAML: &str = "
kafka: { linger_ms: 5, batch_size: 200 }
throttling: { max_send_rate: 100000 }
routing: { fallback_topic: readings }
sources:
  replay:
    source_type: file
    ingestion: { mode: backfill, batch_size: 3 }
    custom_params: { path: '${FIXTURES}/readings.ndjson', records_per_fetch: 100 }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_mode_runs_in_the_pipeline() {
    let (mock, cfg, _dir) = setup(YAML, &["readings"]);
    let m = StreamManager::builder(cfg.clone())
        .ingestion_modes(modes())
        .start()
        .await
        .expect("the registered mode is known");
    poll_until(
        Duration::from_secs(20),
        "300 records processed",
        async || m.stream("replay").await.unwrap().records_processed == 300,
    )
    .await;
    let got = consume(
        &mock.bootstrap_servers(),
        &["readings"],
        300,
        Duration::from_secs(20),
    );
    let mut ids: Vec<i64> = got
        .iter()
        .map(|c| {
            serde_json::from_slice::<Value>(&c.payload).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..300).collect::<Vec<_>>(), "every record once");
    let info = m.stream("replay").await.unwrap();
    assert_eq!(info.mode, "backfill");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        m.stream("replay").await.unwrap().polls,
        3,
        "three polls and no more: the mode decides when to poll"
    );
    m.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        m.stream("replay").await.unwrap().cursor.as_deref(),
        Some("300"),
        "cursor committed once the records settled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_mode_is_refused_with_the_registered_names() {
    let (_mock, cfg, _dir) = setup(YAML, &["readings"]);
    let err = StreamManager::builder(cfg)
        .start()
        .await
        .expect_err("`backfill` is not built in");
    let text = err.to_string();
    assert!(
        text.contains("sources.replay.ingestion.mode")
            && text.contains(
                "unknown ingestion mode `backfill`; registered: batch, continuous_streaming, real_time"
            ),
        "{text}"
    );
}
