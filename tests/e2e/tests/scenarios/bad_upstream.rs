//! Scenario 7: bad upstreams — a malformed body, NDJSON with broken lines, a 429 storm
//! with Retry-After, an upstream that never answers — are counted, the broken lines are
//! dead-lettered, and a healthy source next to them is unaffected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use e2e::{
    committed_seq, consume, header, json, sequences, serve, tally, Config, Scene, Server, Storage,
};
use serde_json::{json, Value};
use sqlx::Row as _;
use test_support::poll_until;

const NDJSON_GOOD: usize = 20;
const NDJSON_BAD: usize = 3;
const STORM_429S: u64 = 4;
const STORM_ITEMS: usize = 10;

fn ndjson() -> String {
    let mut lines = Vec::new();
    for i in 0..NDJSON_GOOD {
        lines.push(format!("{{\"id\":\"n-{i}\",\"pm25\":{i}}}"));
        if i % 7 == 3 {
            lines.push(format!("{{\"id\":\"broken-{i}\",\"pm25\":"));
        }
    }
    lines.join("\n")
}

/// Whether the client already holds `etag` (a conditional request that gets a 304).
fn fresh(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get("if-none-match")
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upstreams() {
    let scene = Scene::new("bad_upstream");
    let tansu = scene.tansu(Storage::Memory).await;
    assert_eq!(ndjson().lines().count(), NDJSON_GOOD + NDJSON_BAD);
    let storm_calls = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/malformed",
            get(|| async {
                (
                    [("content-type", "application/json")],
                    "{\"items\": [{\"id\": 1}, {\"id\": ",
                )
            }),
        )
        .route(
            "/ndjson",
            get(|headers: HeaderMap| async move {
                if fresh(&headers, "\"n1\"") {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([("etag", "\"n1\"")], ndjson()).into_response()
            }),
        )
        .route(
            "/storm",
            get({
                let calls = storm_calls.clone();
                move |headers: HeaderMap| {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    async move {
                        if fresh(&headers, "\"s1\"") {
                            StatusCode::NOT_MODIFIED.into_response()
                        } else if n < STORM_429S {
                            (
                                StatusCode::TOO_MANY_REQUESTS,
                                [("retry-after", "1")],
                                "slow down",
                            )
                                .into_response()
                        } else {
                            let items: Vec<_> = (0..STORM_ITEMS)
                                .map(|i| serde_json::json!({ "id": format!("s-{i}") }))
                                .collect();
                            ([("etag", "\"s1\"")], axum::Json(items)).into_response()
                        }
                    }
                }
            }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        );
    let addr = serve(app).await;
    let http = |path: &str, decoder: Value| {
        json!({
            "source_type": "http_json",
            "ingestion": { "mode": "real_time", "polling_interval_seconds": 1 },
            "timeout_seconds": 1,
            "cache_ttl_seconds": 0,
            "custom_params": {
                "url": format!("http://{addr}{path}"),
                "decoder": decoder,
                "max_retries": 3,
                "retry_base_seconds": 0.1,
            },
        })
    };
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "throttling": { "max_send_rate": 10000 },
            "topics": { "e2e-web": { "partitions": 1 }, "e2e-good": { "partitions": 2 } },
            "routing": { "custom_mappings": { "good": "e2e-good" }, "fallback_topic": "e2e-web" },
        }))
        .source(
            "malformed",
            http("/malformed", json!({ "type": "json", "pointer": "/items" })),
        )
        .source("ndjson", http("/ndjson", json!({ "type": "ndjson" })))
        .source("storm", http("/storm", json!({ "type": "json" })))
        .source("hang", http("/hang", json!({ "type": "json" })))
        .synthetic("good", 300, 11);
    let mut server = Server::start(&scene, &config).await;
    poll_until(
        Duration::from_secs(60),
        "every bad upstream was met",
        || async {
            let m = server.metrics().await;
            let errors = |s: &str| m.value("stream_ingestion_errors_total", &[("source", s)]);
            errors("malformed") >= 2.0
                && errors("hang") >= 2.0
                && m.value(
                    "stream_api_requests_total",
                    &[("source", "storm"), ("status", "429")],
                ) >= STORM_429S as f64
                && m.value("stream_ingestion_records_total", &[("source", "storm")])
                    >= STORM_ITEMS as f64
        },
    )
    .await;
    let m = server.metrics().await;
    let errors = |s: &str| m.value("stream_ingestion_errors_total", &[("source", s)]);
    let (malformed_errors, hang_errors, storm_errors) =
        (errors("malformed"), errors("hang"), errors("storm"));
    let storm_429 = m.value(
        "stream_api_requests_total",
        &[("source", "storm"), ("status", "429")],
    );
    let storm_retries = m.value("stream_api_retries_total", &[("source", "storm")]);
    assert!(storm_retries >= 1.0, "429s were retried after Retry-After");
    assert_eq!(errors("good"), 0.0, "the healthy source saw no error");
    assert_eq!(errors("ndjson"), 0.0, "partial NDJSON is not a failed poll");
    // The admin API names the failing sources; every source keeps running.
    let (_, streams) = server.get("/streams").await;
    let stream = |id: &str| {
        streams
            .as_array()
            .and_then(|all| all.iter().find(|s| s["id"] == id))
            .unwrap_or_else(|| panic!("{id} missing from /streams: {streams}"))
            .clone()
    };
    for id in ["malformed", "hang"] {
        let s = stream(id);
        assert_eq!(s["status"], "running", "{s}");
        assert_eq!(s["failing"], true, "{s}");
    }
    let good = stream("good");
    assert_eq!(good["status"], "running", "{good}");
    assert_eq!(good["failing"], false, "{good}");
    assert_eq!(good["errors"], 0, "{good}");

    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));
    let n = committed_seq(&scene.sqlite_url(), "good").await;
    let expected = n as usize + NDJSON_GOOD + STORM_ITEMS;
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-web", "e2e-good"],
        expected,
        Duration::from_secs(60),
    )
    .await;
    let t = tally(&sequences(&records, "good"), n);
    assert!(
        t.missing.is_empty() && t.duplicates.is_empty() && t.unexpected.is_empty(),
        "healthy source: {}",
        t.summary()
    );
    let mut web: HashMap<String, usize> = HashMap::new();
    for c in records.iter().filter(|c| c.topic == "e2e-web") {
        let source = header(c, "source_id").unwrap_or_default().to_owned();
        assert!(
            source == "ndjson" || source == "storm",
            "{source} delivered records"
        );
        *web.entry(json(c)["id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    for i in 0..NDJSON_GOOD {
        assert_eq!(web.get(&format!("n-{i}")), Some(&1), "ndjson n-{i}");
    }
    for i in 0..STORM_ITEMS {
        assert_eq!(web.get(&format!("s-{i}")), Some(&1), "storm s-{i}");
    }
    assert_eq!(web.len(), NDJSON_GOOD + STORM_ITEMS);

    // The broken NDJSON lines are in the DLQ with their reason; nothing else is.
    let pool = sqlx::SqlitePool::connect(&scene.sqlite_url())
        .await
        .expect("dlq db");
    let rows = sqlx::query("SELECT source_id, failure_reason FROM failed_messages")
        .fetch_all(&pool)
        .await
        .expect("dlq rows");
    pool.close().await;
    let dead: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect();
    assert_eq!(
        dead,
        vec![("ndjson".to_owned(), "malformed_record".to_owned()); NDJSON_BAD],
        "DLQ rows"
    );
    println!(
        "bad_upstream: malformed body → {malformed_errors} failed polls, 0 records; hanging \
         upstream → {hang_errors} timeouts; 429 storm → {storm_429} 429s, {storm_retries} \
         retries, {storm_errors} failed polls, then {STORM_ITEMS}/{STORM_ITEMS} items once; \
         NDJSON → {NDJSON_GOOD} delivered once, {NDJSON_BAD} DLQ rows (malformed_record); \
         healthy synthetic {n} sent, {n} received, 0 duplicates"
    );
}
