//! Scenario 2: under steady load (≥ 2k records/s) tansu is killed for 30 s and started
//! again: nothing is lost or duplicated, the server rides it out without a restart,
//! readiness goes 503 and back to 200, and the metrics show the failed attempts.

use std::time::{Duration, Instant};

use e2e::{committed_seq, consume, sequences, tally, Config, Scene, Server, Storage};
use serde_json::json;
use test_support::poll_until;

const RATE: u64 = 2500;
const OUTAGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage() {
    let scene = Scene::new("outage");
    let mut tansu = scene.tansu(Storage::Sqlite).await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "kafka": { "linger_ms": 20, "batch_size": 1000 },
            "throttling": { "max_send_rate": 50000, "consumer_groups": [] },
            "queue_max_size": 400000,
            "queue_overflow_strategy": "block",
            "topics": { "e2e-load": { "partitions": 3 } },
            "routing": { "fallback_topic": "e2e-load" },
        }))
        .synthetic("load", RATE, 1);
    let mut server = Server::start(&scene, &config).await;
    poll_until(
        Duration::from_secs(30),
        "ready before the outage",
        || async { server.get("/ready").await.0 == 200 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = server.metrics().await;
    let sent_before = before.value("stream_producer_sent_total", &[]);
    assert!(sent_before > 0.0, "records flowed before the outage");

    tansu.stop();
    let down_at = Instant::now();
    let mut saw_unready = false;
    while down_at.elapsed() < OUTAGE {
        let (status, _) = server.get("/ready").await;
        saw_unready |= status == 503;
        assert!(status == 200 || status == 503, "ready answered {status}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(saw_unready, "readiness went 503 while the broker was down");
    let during = server.metrics().await;
    let client_errors = during.value("stream_producer_client_errors_total", &[]);
    assert!(
        client_errors > 0.0,
        "connection failures are counted (producer_client_errors_total)"
    );
    assert!(
        during.unlabelled("stream_queue_size") + during.value("stream_producer_in_flight", &[])
            > 1000.0,
        "records kept arriving and waited during the outage: {during:?}"
    );

    tansu.restart().expect("tansu restarts");
    poll_until(
        Duration::from_secs(60),
        "ready after the outage",
        || async { server.get("/ready").await.0 == 200 },
    )
    .await;
    let recovered_in = down_at.elapsed() - OUTAGE;
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.stop_stream("load").await;
    server.wait_drained(Duration::from_secs(120)).await;
    let after = server.metrics().await;
    let tx_retries = after.value("stream_producer_librdkafka_tx_retries", &[]);
    let failed = after.value("stream_producer_failed_total", &[]);
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));

    let n = committed_seq(&scene.sqlite_url(), "load").await;
    let total_secs = 10.0 + OUTAGE.as_secs_f64();
    assert!(
        n as f64 >= RATE as f64 * total_secs * 0.8,
        "steady load: {n} records in ~{total_secs} s"
    );
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-load"],
        n as usize,
        Duration::from_secs(120),
    )
    .await;
    let t = tally(&sequences(&records, "load"), n);
    println!(
        "outage: sent {n}, received {}, missing {}, duplicates {}, DLQ 0 expected; \
         client errors {client_errors}, librdkafka tx retries {tx_retries}, failed {failed}, \
         ready again {recovered_in:?} after the broker restart",
        records.len(),
        t.missing.len(),
        t.duplicates.len()
    );
    assert!(
        t.missing.is_empty() && t.duplicates.is_empty() && t.unexpected.is_empty(),
        "{}",
        t.summary()
    );
    assert_eq!(records.len() as u64, n);
    assert_eq!(failed, 0.0, "no record failed for good");
    let (_, stats) = server_dlq_total(&scene).await;
    assert_eq!(stats, 0, "nothing was dead-lettered");
}

async fn server_dlq_total(scene: &Scene) -> ((), i64) {
    use sqlx::Row as _;
    let pool = sqlx::SqlitePool::connect(&scene.sqlite_url())
        .await
        .expect("dlq db");
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM failed_messages")
        .fetch_one(&pool)
        .await
        .expect("count")
        .get(0);
    ((), n)
}
