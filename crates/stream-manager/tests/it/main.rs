//! The composed pipeline on librdkafka's in-process broker, verified by consuming.

mod pipeline;

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use stream_config::{Format, Loader, StreamConfig};
use stream_manager::StreamManager;

static N: AtomicU64 = AtomicU64::new(0);

/// A mock cluster with single-partition `topics`, and a config from `yaml` pointed at it
/// with a fresh SQLite DLQ.
pub(crate) fn setup(
    yaml: &str,
    topics: &[&str],
) -> (
    MockCluster<'static, DefaultProducerContext>,
    StreamConfig,
    std::path::PathBuf,
) {
    let mock = MockCluster::new(1).unwrap();
    for t in topics {
        mock.create_topic(t, 1, 1).unwrap();
    }
    let dir = std::env::temp_dir().join(format!(
        "sm-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let env = [
        (
            "STREAM__KAFKA__BOOTSTRAP_SERVERS".to_owned(),
            mock.bootstrap_servers(),
        ),
        (
            "STREAM__DLQ__URL".to_owned(),
            format!("sqlite://{}/dlq.db", dir.display()),
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
