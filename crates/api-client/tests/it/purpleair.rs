//! PurpleAir asks only for what changed since its last settled poll: `modified_since`
//! is the `time_stamp` of the last answer whose records settled (the source's cursor).

use api_client::CursorSummary as _;
use std::collections::BTreeMap;
use std::sync::Arc;

use api_client::{CursorStore, CursorTracker, MemoryCursorStore, Registry};
use serde_json::json;
use stream_config::SourceConfig;
use wiremock::matchers::{path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn answer(time_stamp: u64, rows: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "api_version": "V1.0.11-0.0.49", "time_stamp": time_stamp,
        "data_time_stamp": time_stamp - 20, "max_age": 604800,
        "fields": ["sensor_index", "name", "last_seen", "pm2.5"], "data": rows
    }))
}

/// The `modified_since` of each request the server saw, in order.
async fn asked(server: &MockServer) -> Vec<Option<String>> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "modified_since")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

#[tokio::test]
async fn purpleair_asks_for_sensors_modified_since_its_last_settled_poll() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sensors"))
        .and(query_param_is_missing("modified_since"))
        .respond_with(answer(
            1_795_740_000,
            json!([
                [131075, "Oakdale Rd", 1795739950, 12.4],
                [131079, "Midtown", 1795739960, 35.1]
            ]),
        ))
        .mount(&server)
        .await;
    Mock::given(path("/v1/sensors"))
        .and(query_param("modified_since", "1795740000"))
        .respond_with(answer(
            1_795_740_120,
            json!([[131079, "Midtown", 1795740100, 36.0]]),
        ))
        .mount(&server)
        .await;
    let mut cfg = SourceConfig::new("purpleair");
    cfg.rate_limit_per_minute = 60_000;
    cfg.cache_ttl_seconds = 0;
    cfg.custom_params = BTreeMap::from([
        ("base_url".to_owned(), json!(server.uri())),
        ("api_key".to_owned(), json!("pa-key")),
    ]);
    let source = Registry::builtin().build("pa", &cfg).unwrap();
    let store = MemoryCursorStore::default();
    let tracker = CursorTracker::load("pa", Arc::new(store.clone()))
        .await
        .unwrap();

    // First poll: no cursor, no parameter: every sensor.
    let first = source.fetch(tracker.fetch_from().as_ref()).await.unwrap();
    assert_eq!(first.records.len(), 2);
    assert_eq!(first.records[0].to_value()["time_stamp"], json!(1795740000));
    let seq = tracker
        .register(first.next_cursor.clone(), first.records.len())
        .await
        .unwrap();
    tracker.settle(seq, 2).await.unwrap();
    assert_eq!(asked(&server).await, vec![None]);

    // Second poll: since the first answer's time_stamp; only the changed sensor.
    let second = source.fetch(tracker.fetch_from().as_ref()).await.unwrap();
    assert_eq!(
        asked(&server).await,
        vec![None, Some("1795740000".to_owned())]
    );
    assert_eq!(second.records.len(), 1);
    assert_eq!(second.records[0].to_value()["pm2.5"], json!(36.0));
    // Its record never settles (still in flight when the process stops).
    let _unsettled = tracker
        .register(second.next_cursor.clone(), 1)
        .await
        .unwrap();
    assert_eq!(
        store.load("pa").await.unwrap().map(|c| c.summary()),
        Some("1795740000".to_owned()),
        "the settled cursor is the first answer's time_stamp"
    );

    // After a restart the source asks again since the last *settled* poll, not since
    // the second answer (1795740120), so the unsettled reading is fetched again.
    let restarted = CursorTracker::load("pa", Arc::new(store.clone()))
        .await
        .unwrap();
    let again = source.fetch(restarted.fetch_from().as_ref()).await.unwrap();
    assert_eq!(
        asked(&server).await,
        vec![
            None,
            Some("1795740000".to_owned()),
            Some("1795740000".to_owned())
        ]
    );
    assert_eq!(again.records.len(), 1, "the unsettled reading comes again");
}
