//! Metrics of a mode: `ingestion_poll_lateness_seconds` (how long after its scheduled
//! time each poll started) and `ingestion_buffer_records` (a streaming source's buffer).

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

/// The value of gauge `name` for source `s`, if it has a series.
fn gauge(snapshots: &metrics_util::debugging::Snapshotter, name: &str) -> Option<f64> {
    snapshots
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(k, ..)| k.key().name() == name)
        .map(|(.., v)| match v {
            DebugValue::Gauge(g) => g.into_inner(),
            other => panic!("{name} is not a gauge: {other:?}"),
        })
}

#[tokio::test(start_paused = true)]
async fn a_streaming_buffer_shows_in_its_gauge_and_other_modes_have_none() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    // One record a second, flushed every 5 s: 3 held after the polls at 0, 1 and 2.
    let src = Scripted::new(1, Duration::ZERO);
    let (tx, _rx) = mpsc::channel(100);
    let streaming = start(
        "s",
        spec(IngestionModeKind::ContinuousStreaming, |c| {
            c.polling_interval_seconds = 1.0;
            c.buffer_size = 1000;
            c.buffer_flush_interval_seconds = 5.0;
        }),
        src.clone(),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(gauge(&snapshots, "ingestion_buffer_records"), Some(3.0));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        gauge(&snapshots, "ingestion_buffer_records"),
        Some(1.0),
        "flushed at 5 s, then the poll at 5 s holds one"
    );
    streaming.stop(Duration::from_secs(1)).await;

    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (tx, _rx) = mpsc::channel(100);
    let real_time = start(
        "r",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 1.0
        }),
        Scripted::new(1, Duration::ZERO),
        tracker(&MemoryCursorStore::default()).await,
        Arc::new(tx),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    real_time.stop(Duration::from_secs(1)).await;
    assert_eq!(gauge(&snapshots, "ingestion_buffer_records"), None);
    let names: Vec<String> = (snapshots.snapshot().into_vec().into_iter())
        .map(|(k, ..)| k.key().name().to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "ingestion_polls_total"),
        "the real-time source was metered: {names:?}"
    );
}
