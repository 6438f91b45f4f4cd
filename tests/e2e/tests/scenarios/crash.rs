//! Scenario 3: `kill -9` of the server mid-stream, then a restart: the source resumes
//! from its last committed cursor, nothing is lost, and the duplicates are exactly the
//! records delivered after that cursor but before the crash (the un-acked window).

use std::time::Duration;

use e2e::{committed_seq, consume, sequences, tally, Config, Scene, Server, Storage};
use serde_json::json;

const RATE: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_resume() {
    let scene = Scene::new("crash");
    let tansu = scene.tansu(Storage::Sqlite).await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "kafka": { "linger_ms": 10 },
            "throttling": { "max_send_rate": 20000 },
            "topics": { "e2e-crash": { "partitions": 2 } },
            "routing": { "fallback_topic": "e2e-crash" },
        }))
        .synthetic("gen", RATE, 3);
    let mut server = Server::start(&scene, &config).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.kill();
    let committed_at_crash = committed_seq(&scene.sqlite_url(), "gen").await;
    assert!(
        committed_at_crash > 0,
        "some progress was committed before the crash"
    );
    // What reached Kafka before the crash (some of it past the committed cursor).
    let before = consume(
        &tansu.bootstrap(),
        &["e2e-crash"],
        usize::MAX,
        Duration::from_secs(5),
    )
    .await;
    let delivered_before = sequences(&before, "gen");
    let max_before = delivered_before.keys().copied().max().unwrap_or(0);
    let window = max_before.saturating_sub(committed_at_crash);

    server.launch().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.stop_stream("gen").await;
    server.wait_drained(Duration::from_secs(60)).await;
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));

    let n = committed_seq(&scene.sqlite_url(), "gen").await;
    assert!(n > max_before, "the source resumed and went further ({n})");
    let unique = n as usize;
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-crash"],
        unique + window as usize,
        Duration::from_secs(60),
    )
    .await;
    let seen = sequences(&records, "gen");
    let t = tally(&seen, n);
    println!(
        "crash: committed {committed_at_crash} at the kill, {max_before} delivered before it \
         (un-acked window {window}); sent {n} unique, received {}, missing {}, duplicates {}, \
         DLQ rows 0",
        records.len(),
        t.missing.len(),
        t.duplicates.len()
    );
    assert!(
        t.missing.is_empty() && t.unexpected.is_empty(),
        "{}",
        t.summary()
    );
    // Every duplicate lies in the window between the committed cursor and the crash.
    for (seq, count) in &t.duplicates {
        assert!(
            *seq > committed_at_crash && *seq <= max_before && *count == 2,
            "duplicate {seq}×{count} outside the un-acked window ({committed_at_crash}, {max_before}]"
        );
    }
    assert!(t.duplicates.len() as u64 <= window);
}
