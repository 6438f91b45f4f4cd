//! The composed pipeline on librdkafka's in-process broker, verified by consuming.

mod bodies;
mod bounds;
mod cluster;
mod commit;
mod contracts;
mod control;
mod fair;
mod faults;
mod lag;
mod lanes;
mod live;
mod modes;
mod outbound;
mod payload;
mod pipeline;
mod summary;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use stream_config::{Format, Loader, StreamConfig};
use stream_manager::StreamManager;

/// A mock cluster with single-partition `topics`, and a config from `yaml` pointed at it
/// with a fresh SQLite DLQ in a folder removed when the returned guard drops.
pub(crate) fn setup(
    yaml: &str,
    topics: &[&str],
) -> (
    MockCluster<'static, DefaultProducerContext>,
    StreamConfig,
    test_support::TempDir,
) {
    let mock = MockCluster::new(1).unwrap();
    for t in topics {
        mock.create_topic(t, 1, 1).unwrap();
    }
    let dir = test_support::TempDir::new("sm-test");
    let env = [
        (
            "STREAM__KAFKA__BOOTSTRAP_SERVERS".to_owned(),
            mock.bootstrap_servers(),
        ),
        (
            "STREAM__DLQ__URL".to_owned(),
            format!("sqlite://{}/dlq.db", dir.path().display()),
        ),
        (
            "FIXTURES".to_owned(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures").to_owned(),
        ),
    ];
    let cfg = Loader::new()
        .with_env(env)
        .load_str(yaml, Format::Yaml, "<test>")
        .expect("test config");
    (mock, cfg, dir)
}

pub(crate) async fn start(cfg: StreamConfig) -> StreamManager {
    StreamManager::builder(cfg)
        .start()
        .await
        .expect("manager starts")
}

/// The `id` of every record of `stream` that settled: consumed from `topics` (as many
/// as it delivered) and its `queue_overflow` rows in the DLQ, sorted. With the stream's
/// figures, so a test can also check them against each other.
pub(crate) async fn settled_ids(
    m: &StreamManager,
    bootstrap: &str,
    topics: &[&str],
    stream: &str,
) -> (
    stream_manager::StreamInfo,
    Vec<producer::DeadLetter>,
    Vec<i64>,
) {
    settled_by(m, bootstrap, topics, stream, "id").await
}

/// [`settled_ids`], each record identified by its number at `field`.
pub(crate) async fn settled_by(
    m: &StreamManager,
    bootstrap: &str,
    topics: &[&str],
    stream: &str,
    field: &str,
) -> (
    stream_manager::StreamInfo,
    Vec<producer::DeadLetter>,
    Vec<i64>,
) {
    let s = m.stream(stream).await.unwrap();
    let rows = m
        .dlq_list(
            &producer::DlqFilter {
                reason: Some("queue_overflow".into()),
                ..producer::DlqFilter::default()
            },
            1000,
            0,
        )
        .await
        .unwrap();
    let got = test_support::kafka::consume(
        bootstrap,
        topics,
        s.records_processed as usize,
        std::time::Duration::from_secs(20),
    );
    assert_eq!(got.len() as u64, s.records_processed);
    let id = |v: serde_json::Value| v[field].as_i64().unwrap();
    let mut all: Vec<i64> = got
        .iter()
        .map(|c| id(serde_json::from_slice(&c.payload).unwrap()))
        .chain(
            rows.iter()
                .map(|r| id(serde_json::from_str(r.payload_json.as_deref().unwrap()).unwrap())),
        )
        .collect();
    all.sort_unstable();
    (s, rows, all)
}
