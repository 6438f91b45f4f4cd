//! `ingestion_poll_lateness_seconds`: how long after its scheduled time each poll started.

use std::sync::Arc;
use std::time::Duration;

use api_client::MemoryCursorStore;
use ingestion_modes::start;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use stream_config::IngestionModeKind;
use tokio::sync::mpsc;

use crate::{spec, tracker, Scripted};

#[tokio::test(start_paused = true)]
async fn each_poll_records_how_late_it_started_against_its_schedule() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    // Every 10 s, each poll taking 25 s: the poll at 0 ends at 25, when the tick of 20
    // is the latest due (5 s late); the one at 25 ends at 50, on the tick of 50.
    let src = Scripted::new(1, Duration::from_secs(25));
    let (tx, _rx) = mpsc::channel(100);
    let h = start(
        "s",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 10.0
        }),
        src.clone(),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_secs(74)).await;
    h.stop(Duration::from_secs(60)).await;
    assert_eq!(src.starts(), vec![0, 25, 50]);
    let samples: Vec<f64> = snapshots
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| k.key().name() == "ingestion_poll_lateness_seconds")
        .inspect(|(k, ..)| assert_eq!(k.key().labels().count(), 0, "one series"))
        .flat_map(|(.., v)| match v {
            DebugValue::Histogram(s) => s.into_iter().map(|f| f.into_inner()).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(samples, vec![0.0, 5.0, 0.0]);
}
