//! Scenario 3: `kill -9` of the server mid-stream, then a restart: the source resumes
//! from its last committed cursor, nothing is lost, and the duplicates are exactly the
//! records delivered after that cursor but before the crash (the un-acked window). An
//! HTTP source with dedup over an overlapping window (as USGS, FIRMS and NWS answer)
//! re-emits nothing after the restart: its dedup window is committed fetch state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use e2e::{
    committed_seq, consume, header, json, sequences, serve, tally, Config, Scene, Server, Storage,
};
use serde_json::json;

const RATE: u64 = 1000;
/// The quake feed answers the 20 newest ids up to this.
const WINDOW: u64 = 20;

/// The feed's position, and every id it has answered.
#[derive(Default)]
struct Feed {
    upto: AtomicU64,
    served: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

async fn quakes(State(feed): State<Arc<Feed>>) -> Json<serde_json::Value> {
    let upto = feed.upto.load(Ordering::SeqCst);
    let ids: Vec<String> = (upto.saturating_sub(WINDOW) + 1..=upto)
        .map(|i| format!("q{i}"))
        .collect();
    feed.served.lock().unwrap().extend(ids.iter().cloned());
    let items: Vec<_> = ids
        .iter()
        .map(|id| json!({ "id": id, "mag": 2.5 }))
        .collect();
    Json(json!({ "items": items }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_resume() {
    let scene = Scene::new("crash");
    let tansu = scene.tansu(Storage::Sqlite).await;
    let feed = Arc::new(Feed::default());
    feed.upto.store(WINDOW, Ordering::SeqCst);
    let upto = &feed.upto;
    let addr = serve(
        axum::Router::new()
            .route("/quakes", get(quakes))
            .with_state(feed.clone()),
    )
    .await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "kafka": { "linger_ms": 10 },
            "throttling": { "max_send_rate": 20000 },
            "topics": { "e2e-crash": { "partitions": 2 } },
            "routing": { "fallback_topic": "e2e-crash" },
        }))
        .synthetic("gen", RATE, 3)
        .source(
            "quakes",
            json!({
                "source_type": "http_json",
                "rate_limit_per_minute": 6000,
                "ingestion": { "mode": "real_time", "polling_interval_seconds": 0.3 },
                "custom_params": {
                    "url": format!("http://{addr}/quakes"),
                    "decoder": { "type": "json", "pointer": "/items" },
                    "dedup": { "keys": ["/id"] },
                },
            }),
        );
    let mut server = Server::start(&scene, &config).await;
    // The feed moves for 2 s, then holds still: by the kill, every quake answered has
    // long been delivered and its identity committed; later polls repeat the window.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        upto.fetch_add(2, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
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
    tokio::time::sleep(Duration::from_secs(2)).await;
    // After the restart the feed moves again: only the new quakes may arrive.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        upto.fetch_add(2, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.stop_stream("gen").await;
    server.stop_stream("quakes").await;
    server.wait_drained(Duration::from_secs(60)).await;
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));

    let n = committed_seq(&scene.sqlite_url(), "gen").await;
    assert!(n > max_before, "the source resumed and went further ({n})");
    let unique = n as usize;
    let served = feed.served.lock().unwrap().clone();
    let answered = served.len() as u64;
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-crash"],
        unique + window as usize + answered as usize,
        Duration::from_secs(60),
    )
    .await;
    // The dedup source: every quake ever answered exactly once, across the restart.
    let mut quake_ids: HashMap<String, usize> = HashMap::new();
    for c in records
        .iter()
        .filter(|c| header(c, "source_id") == Some("quakes"))
    {
        let id = json(c)["id"].as_str().expect("quake id").to_owned();
        *quake_ids.entry(id).or_default() += 1;
    }
    let quake_dups: Vec<_> = quake_ids.iter().filter(|(_, n)| **n > 1).collect();
    let quake_missing: Vec<_> = served
        .iter()
        .filter(|id| !quake_ids.contains_key(*id))
        .collect();
    println!(
        "crash, dedup source: {answered} quakes answered, {} distinct received, {} duplicates after the restart, {} missing",
        quake_ids.len(),
        quake_dups.len(),
        quake_missing.len()
    );
    assert!(quake_missing.is_empty(), "missing: {quake_missing:?}");
    assert!(
        quake_dups.is_empty(),
        "re-emitted after the restart: {quake_dups:?}"
    );
    assert_eq!(
        quake_ids.len() as u64,
        answered,
        "nothing but what was served"
    );
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
