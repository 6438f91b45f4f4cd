//! The manager's control surface under trouble, on in-memory components (no broker, no
//! database): `cluster` keys need a restart.

use std::sync::Arc;

use api_client::MemoryCursorStore;
use producer::{MemoryDeadLetterStore, NullProducer};
use stream_config::{Format, Loader};
use stream_manager::{Builder, StreamManager};

/// A manager for `yaml` on a null producer and in-memory stores.
fn builder(yaml: &str) -> Builder {
    let cfg = Loader::new()
        .load_str(yaml, Format::Yaml, "<test>")
        .expect("test config");
    StreamManager::builder(cfg)
        .producer(Arc::new(NullProducer))
        .dlq(Arc::new(MemoryDeadLetterStore::default()))
        .cursors(Arc::new(MemoryCursorStore::default()))
}

#[tokio::test(start_paused = true)]
async fn cluster_keys_changed_at_run_time_need_a_restart() {
    let m = builder("{}").start().await.expect("manager starts");
    let mut next = m.config().as_ref().clone();
    next.cluster.group_id = "another-group".into();
    next.cluster.handover_timeout_seconds += 1;

    match m.apply_config(next).await {
        Err(stream_manager::Error::NeedsRestart { keys }) => {
            // `cluster`, or its changed keys (a default section is not serialized).
            assert!(!keys.is_empty(), "the changed keys are named");
            assert!(keys.iter().all(|k| k.starts_with("cluster")), "{keys:?}");
        }
        other => panic!("expected NeedsRestart, got {other:?}"),
    }
    assert_ne!(
        m.config().cluster.group_id,
        "another-group",
        "nothing applied"
    );
}
