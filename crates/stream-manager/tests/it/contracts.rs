//! Data contracts at enqueue: a record failing its source's or its topic's schema
//! (draft 2020-12 or 7) is dead-lettered as `schema_violation` with the failing pointers,
//! never sent; observe mode delivers and counts; replay re-validates; a reload with a
//! broken schema changes nothing.

use std::time::Duration;

use producer::{DlqFilter, DlqStatus};
use serde_json::Value;
use test_support::kafka::consume;
use test_support::poll_until;

use crate::{setup, start};

/// Four valid readings and two that break the contract: `temp` a string (id 4), no `id`.
const DATA: &str = r#"{"id": 0, "temp": 20}
{"id": 1, "temp": 21.5}
{"id": 2, "temp": -3}
{"id": 3, "temp": 0}
{"id": 4, "temp": "hot"}
{"temp": 19}
"#;

/// A draft-7 schema file (used as a topic schema).
const DRAFT7: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object", "required": ["id", "temp"],
  "properties": {"id": {"type": "integer"}, "temp": {"type": "number"}}}"#;

fn config(dir: &std::path::Path, source_schema: &str, mode: &str) -> String {
    std::fs::write(dir.join("readings.ndjson"), DATA).unwrap();
    std::fs::write(dir.join("reading.json"), DRAFT7).unwrap();
    format!(
        "
file_roots: ['{d}']
routing: {{ fallback_topic: other }}
contracts:
  topics:
    readings: '{d}/reading.json'
sources:
  by_topic:
    source_type: file
    topic: readings
    schema_mode: {mode}
    ingestion: {{ mode: real_time, polling_interval_seconds: 3600 }}
    custom_params: {{ path: '{d}/readings.ndjson' }}
  by_source:
    source_type: file
    topic: other
    schema_mode: {mode}
    schema: {source_schema}
    ingestion: {{ mode: real_time, polling_interval_seconds: 3600 }}
    custom_params: {{ path: '{d}/readings.ndjson' }}
",
        d = dir.display()
    )
}

/// Draft 2020-12, inline: `id` required, `temp` a number.
const STRICT: &str = "{ $schema: 'https://json-schema.org/draft/2020-12/schema', type: object, required: [id], properties: { id: { type: integer }, temp: { type: number } } }";
/// The same with `temp` also a string: the fix that lets id 4 through.
const FIXED: &str = "{ $schema: 'https://json-schema.org/draft/2020-12/schema', type: object, required: [id], properties: { id: { type: integer }, temp: { type: [number, string] } } }";

async fn settled(m: &stream_manager::StreamManager, id: &str) -> stream_manager::StreamInfo {
    poll_until(
        Duration::from_secs(20),
        "all six records settled",
        async || {
            let s = m.stream(id).await.unwrap();
            s.records_processed + s.records_dead_lettered == 6
        },
    )
    .await;
    m.stream(id).await.unwrap()
}

fn ids(payloads: &[test_support::kafka::Consumed]) -> Vec<i64> {
    let mut ids: Vec<i64> = payloads
        .iter()
        .filter_map(|c| serde_json::from_slice::<Value>(&c.payload).ok()?["id"].as_i64())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforced_violations_go_to_the_dlq_with_their_pointers_and_never_to_kafka() {
    let data = test_support::TempDir::new("contracts-enforce");
    let (mock, cfg, _dir) = setup(
        &config(data.path(), STRICT, "enforce"),
        &["readings", "other"],
    );
    let m = start(cfg).await;
    for id in ["by_topic", "by_source"] {
        let s = settled(&m, id).await;
        assert_eq!(
            (s.records_processed, s.records_dead_lettered),
            (4, 2),
            "{s:?}"
        );
        assert_eq!(s.schema_violations, 2);
        let last = s
            .last_schema_violation
            .clone()
            .expect("last violation shown");
        assert_eq!(last.mode, "enforce");
        // The cursor settled past the dead letters like past any other.
        assert!(s.cursor.is_some(), "{s:?}");
    }
    for topic in ["readings", "other"] {
        let got = consume(
            &mock.bootstrap_servers(),
            &[topic],
            4,
            Duration::from_secs(20),
        );
        assert_eq!(ids(&got), [0, 1, 2, 3], "{topic}: only the valid records");
    }
    let rows = m
        .dlq_list(
            &DlqFilter {
                reason: Some("schema_violation".into()),
                ..DlqFilter::default()
            },
            100,
            0,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let detail = |source: &str, needle: &str| {
        rows.iter()
            .any(|r| r.source_id == source && r.error_details.contains(needle))
    };
    // The failing pointer and the validator's message, per draft.
    assert!(
        detail("by_topic", "schema reading.json: /temp: "),
        "{rows:#?}"
    );
    assert!(
        detail("by_topic", "\"id\" is a required property"),
        "{rows:#?}"
    );
    assert!(
        detail("by_source", "schema inline:sources.by_source: /temp: "),
        "{rows:#?}"
    );
    assert!(
        detail("by_source", "/: \"id\" is a required property"),
        "{rows:#?}"
    );
    assert!(rows.iter().all(|r| r.status == DlqStatus::PermanentFailure));
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_mode_delivers_counts_and_shows_the_last_violation() {
    let data = test_support::TempDir::new("contracts-observe");
    let (mock, cfg, _dir) = setup(
        &config(data.path(), STRICT, "observe"),
        &["readings", "other"],
    );
    let m = start(cfg).await;
    for id in ["by_topic", "by_source"] {
        let s = settled(&m, id).await;
        assert_eq!(
            (s.records_processed, s.records_dead_lettered),
            (6, 0),
            "{s:?}"
        );
        assert_eq!(s.schema_violations, 2);
        let last = s
            .last_schema_violation
            .clone()
            .expect("last violation shown");
        assert_eq!(last.mode, "observe");
        assert!(last.details.contains("is a required property"), "{last:?}");
    }
    let got = consume(
        &mock.bootstrap_servers(),
        &["other"],
        6,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 6);
    assert_eq!(m.dlq_stats().await.unwrap().pending, 0);
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_revalidates_and_a_reload_with_a_broken_schema_changes_nothing() {
    let data = test_support::TempDir::new("contracts-replay");
    let (mock, cfg, _dir) = setup(
        &config(data.path(), STRICT, "enforce"),
        &["readings", "other"],
    );
    let m = start(cfg.clone()).await;
    settled(&m, "by_source").await;
    let filter = DlqFilter {
        source_id: Some("by_source".into()),
        ..DlqFilter::default()
    };
    // Still the strict schema: nothing goes.
    let out = m.dlq_replay(&filter, 100, None).await.unwrap();
    assert_eq!((out.replayed, out.failed), (0, 2));
    let rows = m.dlq_list(&filter, 100, 0).await.unwrap();
    assert!(
        rows.iter().all(|r| r
            .error_details
            .starts_with("replay refused, still invalid: schema")),
        "{rows:#?}"
    );

    // A broken schema in an update: refused, the running contracts unchanged.
    let mut broken = cfg.clone();
    let src = broken.sources.get_mut("by_source").unwrap();
    src.schema = Some(serde_yaml::from_str("{ type: 5 }").unwrap());
    let err = m
        .apply_config(broken)
        .await
        .expect_err("a broken schema is refused");
    assert!(
        err.to_string().contains("sources.by_source.schema"),
        "{err}"
    );
    assert_eq!(*m.config(), cfg);
    let out = m.dlq_replay(&filter, 100, None).await.unwrap();
    assert_eq!(
        (out.replayed, out.failed),
        (0, 2),
        "still the strict schema"
    );

    // The fixed schema lets the string `temp` through; the row without `id` stays.
    let mut fixed = cfg.clone();
    let src = fixed.sources.get_mut("by_source").unwrap();
    src.schema = Some(serde_yaml::from_str(FIXED).unwrap());
    m.apply_config(fixed).await.expect("the fix applies");
    let out = m.dlq_replay(&filter, 100, None).await.unwrap();
    assert_eq!((out.replayed, out.failed), (1, 1));
    let left = m
        .dlq_list(
            &DlqFilter {
                status: Some(DlqStatus::PermanentFailure),
                ..filter.clone()
            },
            100,
            0,
        )
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0]
        .error_details
        .contains("\"id\" is a required property"));
    let got = consume(
        &mock.bootstrap_servers(),
        &["other"],
        5,
        Duration::from_secs(20),
    );
    assert!(
        ids(&got).contains(&4),
        "the replayed record reached its topic"
    );
    m.shutdown(Duration::from_secs(10)).await;
}
