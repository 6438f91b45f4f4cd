//! Scenario 4: SIGTERM under load, with a backlog in the queue: the server drains it
//! into Kafka before exiting 0, and nothing is lost.

use std::time::Duration;

use e2e::{committed_seq, consume, sequences, tally, Config, Scene, Server, Storage};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains() {
    let scene = Scene::new("shutdown");
    let tansu = scene.tansu(Storage::Sqlite).await;
    // Offered 3,000 records/s against a send rate of 1,500/s: a backlog builds.
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "kafka": { "linger_ms": 10 },
            "throttling": { "max_send_rate": 1500 },
            "queue_max_size": 100000,
            "queue_overflow_strategy": "block",
            "topics": { "e2e-drain": { "partitions": 2 } },
            "routing": { "fallback_topic": "e2e-drain" },
        }))
        .synthetic("gen", 3000, 5);
    let mut server = Server::start(&scene, &config).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let backlog = server.metrics().await.unlabelled("stream_queue_size");
    assert!(backlog >= 1000.0, "a backlog built up ({backlog})");
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));

    let n = committed_seq(&scene.sqlite_url(), "gen").await;
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-drain"],
        n as usize,
        Duration::from_secs(60),
    )
    .await;
    let t = tally(&sequences(&records, "gen"), n);
    println!(
        "shutdown: backlog {backlog} at SIGTERM; sent {n}, received {}, missing {}, duplicates {}",
        records.len(),
        t.missing.len(),
        t.duplicates.len()
    );
    assert!(
        t.missing.is_empty() && t.duplicates.is_empty() && t.unexpected.is_empty(),
        "{}",
        t.summary()
    );
    assert!(
        n as f64 >= backlog,
        "the committed cursor covers the drained backlog"
    );
}
