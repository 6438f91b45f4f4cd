//! Scenario 1: HTTP and synthetic sources → server → tansu; every record arrives once,
//! on the topic its routing rules name, with its headers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use e2e::{
    committed_seq, consume, header, json, sequences, serve, tally, Config, Scene, Server, Storage,
};
use serde_json::json;

const PAGES: u64 = 3;
const PER_PAGE: u64 = 50;

#[derive(Default)]
struct Upstream {
    requests: AtomicU64,
    not_modified: AtomicU64,
}

/// Three pages of 50 items linked by `/next`, every fifth item an alert; each page has
/// an ETag and answers a matching `If-None-Match` with 304.
async fn items(
    State(s): State<Arc<Upstream>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    s.requests.fetch_add(1, Ordering::Relaxed);
    let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let etag = format!("\"page-{page}-v1\"");
    if headers
        .get("if-none-match")
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        s.not_modified.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    let items: Vec<_> = (0..PER_PAGE)
        .map(|i| {
            let n = (page - 1) * PER_PAGE + i;
            let mut item = json!({ "id": format!("h-{n}"), "value": n, "station": "ridge" });
            if n % 5 == 0 {
                item["alert_id"] = json!(format!("a-{n}"));
            }
            item
        })
        .collect();
    let next = (page < PAGES).then(|| format!("/items?page={}", page + 1));
    (
        [("etag", etag)],
        Json(json!({ "items": items, "next": next })),
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end() {
    let scene = Scene::new("end_to_end");
    let tansu = scene.tansu(Storage::Memory).await;
    let upstream = Arc::new(Upstream::default());
    let addr = serve(
        axum::Router::new()
            .route("/items", get(items))
            .with_state(upstream.clone()),
    )
    .await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "throttling": { "max_send_rate": 10000 },
            // `e2e-sensors` and `e2e-alerts` are named only by routing rules: the server
            // creates them (tansu creates no topic by itself), or every record sent
            // there would be dead-lettered as `unknown_topic`.
            "topics": {
                "e2e-http": { "partitions": 2 },
                "e2e-default": { "partitions": 1 },
            },
            "routing": {
                "content_rules": [{ "field": "/alert_id", "operator": "exists", "topic": "e2e-alerts" }],
                "custom_mappings": { "web": "e2e-http" },
                "pattern_mappings": [{ "pattern": "^syn", "topic": "e2e-sensors" }],
                "fallback_topic": "e2e-default",
            },
        }))
        .source(
            "web",
            json!({
                "source_type": "http_json",
                "priority": "high",
                "ingestion": { "mode": "real_time", "polling_interval_seconds": 1 },
                // No response cache: every poll is a conditional request.
                "cache_ttl_seconds": 0,
                "custom_params": {
                    "url": format!("http://{addr}/items?page=1"),
                    "decoder": { "type": "json", "pointer": "/items" },
                    "pagination": { "type": "next_link", "pointer": "/next" },
                },
            }),
        )
        .source(
            "syn_a",
            json!({
                "source_type": "synthetic",
                "ingestion": {
                    "mode": "continuous_streaming",
                    "polling_interval_seconds": 0.2,
                    "buffer_size": 100,
                    "buffer_flush_interval_seconds": 1,
                },
                "custom_params": { "records_per_second": 300, "seed": 7, "alert_probability": 0.05 },
            }),
        );
    let mut server = Server::start(&scene, &config).await;
    // Let both sources run, the HTTP one polling several times (later polls are 304s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));
    assert!(
        upstream.not_modified.load(Ordering::Relaxed) >= 1,
        "repeat polls were conditional"
    );

    let synthetic = committed_seq(&scene.sqlite_url(), "syn_a").await;
    assert!(synthetic >= 500, "synthetic emitted only {synthetic}");
    let http = PAGES * PER_PAGE;
    let expected = (synthetic + http) as usize;
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-http", "e2e-sensors", "e2e-alerts", "e2e-default"],
        expected,
        Duration::from_secs(60),
    )
    .await;

    // Synthetic: every sequence 1..=cursor exactly once, alerts routed by content.
    let t = tally(&sequences(&records, "syn_a"), synthetic);
    assert!(
        t.missing.is_empty() && t.duplicates.is_empty() && t.unexpected.is_empty(),
        "synthetic: {}",
        t.summary()
    );
    // HTTP: every item exactly once.
    let mut http_ids: HashMap<String, usize> = HashMap::new();
    let mut message_ids: HashMap<String, usize> = HashMap::new();
    let mut web_alerts = 0;
    for c in &records {
        let v = json(c);
        let source = header(c, "source_id").expect("source_id header");
        let alert = v.get("alert_id").is_some();
        // The seed's order: a custom mapping (web's) before content rules, content
        // rules before patterns (syn_a's).
        let want_topic = match (source, alert) {
            ("web", _) => "e2e-http",
            ("syn_a", true) => "e2e-alerts",
            ("syn_a", false) => "e2e-sensors",
            (other, _) => panic!("record from unknown source {other}"),
        };
        web_alerts += usize::from(source == "web" && alert);
        assert_eq!(c.topic, want_topic, "routing of {v}");
        let source_type = if source == "web" {
            "http_json"
        } else {
            "synthetic"
        };
        assert_eq!(header(c, "source_type"), Some(source_type));
        let priority = if source == "web" { "high" } else { "normal" };
        assert_eq!(header(c, "priority"), Some(priority));
        assert!(header(c, "ingested_at_ms").is_some_and(|t| t.parse::<u64>().is_ok()));
        *message_ids.entry(c.id.clone()).or_default() += 1;
        if source == "web" {
            *http_ids
                .entry(v["id"].as_str().expect("id").to_owned())
                .or_default() += 1;
        }
    }
    assert!(web_alerts > 0, "the upstream's alerts show the order");
    assert_eq!(http_ids.len() as u64, http, "every HTTP item arrived");
    assert!(http_ids.values().all(|&c| c == 1), "no HTTP item twice");
    assert_eq!(records.len(), expected, "nothing else arrived");
    assert_eq!(message_ids.len(), expected, "message ids are unique");
    assert!(message_ids.keys().all(|id| !id.is_empty()));
    println!(
        "end_to_end: {synthetic} synthetic + {http} http sent, {} received, 0 duplicates, {} conditional 304s",
        records.len(),
        upstream.not_modified.load(Ordering::Relaxed)
    );
}
