//! Scenario: broker-side data contracts. tansu validates what is produced to
//! `e2e-contract` against `<registry>/e2e-contract.json`; the source's own config has no
//! schema. The broker refuses each batch holding an invalid record (`INVALID_RECORD`);
//! the producer resends the refused batch's records alone, so the invalid records land
//! in the DLQ with the broker's reason and every valid one in Kafka, once, by id.
//! Idempotence is off: tansu 0.6 answers every later produce of an idempotent producer
//! with `PRODUCER_FENCED` once one of its batches was refused (README troubleshooting).

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use e2e::{consume, json, serve, Config, Scene, Server, Storage};
use serde_json::json;
use sqlx::Row as _;
use test_support::poll_until;

const ITEMS: usize = 60;
/// Every sixth item has `temp` as a string: 10 invalid, 50 valid.
const EVERY: usize = 6;

/// tansu's schema file for the topic: `properties.value` is the value's JSON Schema.
const SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "value": {
      "type": "object",
      "required": ["id", "temp"],
      "properties": { "id": { "type": "string" }, "temp": { "type": "number" } }
    }
  }
}"#;

fn items() -> serde_json::Value {
    let items: Vec<_> = (0..ITEMS)
        .map(|i| {
            let temp = if i % EVERY == 0 {
                json!(format!("{i}C"))
            } else {
                json!(i)
            };
            json!({ "id": format!("c-{i}"), "temp": temp })
        })
        .collect();
    json!(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_side_contracts() {
    let scene = Scene::new("contracts");
    let mut tansu = scene.tansu(Storage::Memory).await;
    tansu
        .use_schema_registry(&[("e2e-contract", SCHEMA)])
        .unwrap_or_else(|e| panic!("{e}"));
    let app = axum::Router::new().route(
        "/items",
        get(|headers: HeaderMap| async move {
            if headers
                .get("if-none-match")
                .is_some_and(|v| v.as_bytes() == b"\"v1\"")
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            ([("etag", "\"v1\"")], axum::Json(items())).into_response()
        }),
    );
    let addr = serve(app).await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            // With idempotence, tansu 0.6 fences the producer after a refused batch
            // (README troubleshooting).
            "kafka": { "linger_ms": 20, "enable_idempotence": false },
            "topics": { "e2e-contract": { "partitions": 1 } },
            "routing": { "fallback_topic": "e2e-contract" },
        }))
        .source(
            "readings",
            json!({
                "source_type": "http_json",
                "ingestion": { "mode": "real_time", "polling_interval_seconds": 1 },
                "custom_params": { "url": format!("http://{addr}/items"), "decoder": { "type": "json" } },
            }),
        );
    let invalid = ITEMS.div_ceil(EVERY);
    let valid = ITEMS - invalid;
    let mut server = Server::start(&scene, &config).await;
    poll_until(
        Duration::from_secs(60),
        "every record delivered or dead-lettered",
        || async {
            let (_, s) = server.get("/streams/readings").await;
            s["records_processed"].as_u64().unwrap_or(0)
                + s["records_dead_lettered"].as_u64().unwrap_or(0)
                >= ITEMS as u64
        },
    )
    .await;
    let (_, s) = server.get("/streams/readings").await;
    let m = server.metrics().await;
    let resent = |outcome: &str| {
        m.value(
            "stream_producer_isolated_resends_total",
            &[("outcome", outcome)],
        )
    };
    let (delivered_alone, refused_alone) = (resent("delivered"), resent("refused"));
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));

    let records = consume(
        &tansu.bootstrap(),
        &["e2e-contract"],
        valid,
        Duration::from_secs(60),
    )
    .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in &records {
        *seen
            .entry(json(c)["id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let pool = sqlx::SqlitePool::connect(&scene.sqlite_url())
        .await
        .expect("dlq db");
    let rows = sqlx::query("SELECT payload, failure_reason, error_details FROM failed_messages")
        .fetch_all(&pool)
        .await
        .expect("dlq rows");
    pool.close().await;
    let mut dead: HashMap<String, (String, String)> = HashMap::new();
    for r in &rows {
        let payload: Vec<u8> = r.get(0);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
        dead.insert(
            v["id"].as_str().unwrap_or_default().to_owned(),
            (r.get::<String, _>(1), r.get::<String, _>(2)),
        );
    }
    let details = dead
        .values()
        .next()
        .map(|d| d.1.clone())
        .unwrap_or_default();
    println!(
        "contracts: {ITEMS} records from a source without a schema; tansu refused {} \
         (DLQ: {:?}), delivered {} distinct ids ({} messages); resent alone: {delivered_alone} \
         delivered, {refused_alone} refused; /streams: processed {}, dead-lettered {}",
        dead.len(),
        details,
        seen.len(),
        records.len(),
        s["records_processed"],
        s["records_dead_lettered"],
    );
    for i in 0..ITEMS {
        let id = format!("c-{i}");
        if i % EVERY == 0 {
            let (reason, details) = dead
                .get(&id)
                .unwrap_or_else(|| panic!("{id} not in the DLQ"));
            assert_eq!(reason, "invalid_record", "{id}");
            assert!(
                details.contains("Broker failed to validate record"),
                "{id}: {details}"
            );
            assert!(!seen.contains_key(&id), "{id} reached Kafka");
        } else {
            assert_eq!(seen.get(&id), Some(&1), "{id} delivered once");
            assert!(!dead.contains_key(&id), "{id} dead-lettered");
        }
    }
    assert_eq!((seen.len(), dead.len()), (valid, invalid));
}
