//! Scenario 5: records that cannot be delivered — over the producer's size limit, or to
//! a topic that does not exist — become rows in PostgreSQL's `failed_messages` with the
//! right reasons; once the topic exists, replay through the admin API delivers them
//! and marks them replayed.

use std::collections::HashMap;
use std::time::Duration;

use axum::routing::get;
use axum::Json;
use e2e::{consume, json, serve, Config, Scene, Server, Storage};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde_json::json;
use sqlx::Row as _;
use test_support::poll_until;

const OK: usize = 15;
const LOST: usize = 10;
const BIG: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_on_postgres_and_replay() {
    let scene = Scene::new("dlq_postgres");
    let tansu = scene.tansu(Storage::Sqlite).await;
    let db = e2e::fresh_database("e2e_dlq").await;
    let items: Vec<_> = (0..OK + LOST + BIG)
        .map(|i| {
            let kind = if i < OK {
                "ok"
            } else if i < OK + LOST {
                "lost"
            } else {
                "big"
            };
            let mut item = json!({ "id": format!("d-{i}"), "kind": kind });
            if kind == "big" {
                item["blob"] = json!("x".repeat(20_000));
            }
            item
        })
        .collect();
    let body = json!({ "items": items });
    let addr = serve(axum::Router::new().route(
        "/items",
        get(move || {
            let body = body.clone();
            async move { ([("etag", "\"v1\"")], Json(body)) }
        }),
    ))
    .await;
    // `e2e-missing-lost` is routed to but never created: the server creates no topic
    // (`create_topics: false`; `e2e-ok` is created here) and tansu never auto-creates.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .create()
        .expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new("e2e-ok", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let config = Config::new(&tansu.bootstrap(), &db)
        .with(json!({
            "kafka": {
                "create_topics": false,
                "message_timeout_ms": 10000,
                "librdkafka_options": {
                    "message.max.bytes": "10000",
                    "topic.metadata.propagation.max.ms": "1000",
                },
            },
            "dlq": { "max_retries": 0 },
            "routing": {
                "content_rules": [{ "field": "/kind", "operator": "eq", "value": "lost", "topic": "e2e-missing-{/kind}" }],
                "fallback_topic": "e2e-ok",
            },
        }))
        .source(
            "web",
            json!({
                "source_type": "http_json",
                "ingestion": { "mode": "real_time", "polling_interval_seconds": 1 },
                "custom_params": {
                    "url": format!("http://{addr}/items"),
                    "decoder": { "type": "json", "pointer": "/items" },
                    // The upstream answers the same items on every poll (no validators,
                    // no cursor): dedup keeps repeats out, also of dead-lettered ones.
                    "dedup": { "keys": ["/id"] },
                },
            }),
        );
    let mut server = Server::start(&scene, &config).await;
    let pool = sqlx::PgPool::connect(&db).await.expect("connect e2e db");
    let rows = |pool: sqlx::PgPool| async move {
        sqlx::query("SELECT payload_json, failure_reason, status FROM failed_messages")
            .fetch_all(&pool)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        let v: serde_json::Value = serde_json::from_str(
                            &r.get::<Option<String>, _>(0).unwrap_or_default(),
                        )
                        .unwrap_or_default();
                        (
                            v["id"].as_str().unwrap_or_default().to_owned(),
                            r.get::<String, _>(1),
                            r.get::<String, _>(2),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    poll_until(
        Duration::from_secs(60),
        "15 rows in failed_messages",
        || {
            let pool = pool.clone();
            async move { rows(pool).await.len() >= LOST + BIG }
        },
    )
    .await;
    let dead = rows(pool.clone()).await;
    assert_eq!(dead.len(), LOST + BIG, "{dead:?}");
    let reasons: HashMap<String, (String, String)> = dead
        .iter()
        .map(|(id, r, s)| (id.clone(), (r.clone(), s.clone())))
        .collect();
    for i in OK..OK + LOST {
        assert_eq!(
            reasons[&format!("d-{i}")],
            ("unknown_topic".to_owned(), "permanent_failure".to_owned())
        );
    }
    for i in OK + LOST..OK + LOST + BIG {
        assert_eq!(
            reasons[&format!("d-{i}")],
            (
                "record_too_large".to_owned(),
                "permanent_failure".to_owned()
            )
        );
    }

    // Fix the cause: create the topic, then replay through the admin API.
    let created = admin
        .create_topics(
            &[NewTopic::new(
                "e2e-missing-lost",
                1,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let mut replay_calls = 0;
    poll_until(
        Duration::from_secs(60),
        "the unknown-topic rows replayed",
        || {
            replay_calls += 1;
            let server = &server;
            let pool = pool.clone();
            async move {
                let (status, body) = server
                    .post("/dlq/replay", json!({ "reason": "unknown_topic" }))
                    .await;
                assert_eq!(status, 200, "{body}");
                let replayed = rows(pool)
                    .await
                    .iter()
                    .filter(|(_, r, s)| r == "unknown_topic" && s == "replayed")
                    .count();
                replayed == LOST
            }
        },
    )
    .await;
    let delivered = consume(
        &tansu.bootstrap(),
        &["e2e-missing-lost"],
        LOST,
        Duration::from_secs(30),
    )
    .await;
    let mut ids: Vec<String> = delivered
        .iter()
        .map(|c| json(c)["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    let mut want: Vec<String> = (OK..OK + LOST).map(|i| format!("d-{i}")).collect();
    want.sort();
    assert_eq!(ids, want, "each replayed record arrived once");
    let ok = consume(&tansu.bootstrap(), &["e2e-ok"], OK, Duration::from_secs(30)).await;
    assert_eq!(
        ok.len(),
        OK,
        "the deliverable records went straight through"
    );
    let after = rows(pool.clone()).await;
    let still_big = after
        .iter()
        .filter(|(_, r, s)| r == "record_too_large" && s == "permanent_failure")
        .count();
    assert_eq!(still_big, BIG, "oversized records stay dead-lettered");
    println!(
        "dlq_postgres: sent {}, delivered {OK} directly, DLQ rows {} ({LOST} unknown_topic, \
         {BIG} record_too_large), replayed {} after {replay_calls} replay call(s), received {} \
         on the new topic",
        OK + LOST + BIG,
        dead.len(),
        LOST,
        delivered.len()
    );
    pool.close().await;
    assert_eq!(server.sigterm(Duration::from_secs(30)).await, Some(0));
}
