//! The generic HTTP limits (`max_response_bytes`, retries, breaker …) in a built-in
//! connector's `custom_params`: taken by every one, with `http_json`'s ranges and errors.

use std::collections::BTreeMap;

use api_client::{Error, HttpLimits, Registry};
use serde_json::{json, Value};
use stream_config::SourceConfig;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn source(source_type: &str, params: Value) -> SourceConfig {
    let mut cfg = SourceConfig::new(source_type);
    cfg.rate_limit_per_minute = 60_000;
    cfg.cache_ttl_seconds = 0;
    cfg.custom_params = params
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    cfg
}

/// A USGS summary feed of `n` events, each about 1 KB: 9,000 pass 8 MiB (the default
/// before bodies were decoded as they arrive).
fn big_feed(n: usize) -> String {
    let pad = "x".repeat(900);
    let features: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"Feature","id":"ev{i}","properties":{{"mag":2.5,"updated":{i},"title":"{pad}"}},"geometry":{{"type":"Point","coordinates":[-120.1,37.2,5.0]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
}

#[tokio::test]
async fn usgs_all_month_past_8_mib_passes_by_default_and_fails_under_a_lowered_limit() {
    let server = MockServer::start().await;
    let body = big_feed(9_000);
    assert!(body.len() > 8 << 20, "{}", body.len());
    Mock::given(path("/earthquakes/feed/v1.0/summary/all_month.geojson"))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let params = json!({"base_url": server.uri(), "feed": "all_month", "max_retries": 0});
    let mut lowered = params.clone();
    lowered["max_response_bytes"] = json!(8 << 20);
    let small = Registry::builtin()
        .build("quakes", source("usgs_earthquakes", lowered))
        .expect("the generic `max_response_bytes` is taken");
    let err = small.fetch(None).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit } if limit == 8 << 20),
        "{err:?}"
    );
    let s = Registry::builtin()
        .build("quakes", source("usgs_earthquakes", params))
        .expect("the generic `max_retries` is taken");
    let f = s.fetch(None).await.expect("the 256 MiB default allows it");
    assert_eq!(f.records.len(), 9_000);
    assert_eq!(f.records[8_999].to_value()["id"], json!("ev8999"));
}

#[tokio::test]
async fn firms_world_day_past_8_mib_passes_by_default_and_fails_under_a_lowered_limit() {
    let server = MockServer::start().await;
    let mut csv = String::from("latitude,longitude,acq_date,acq_time,satellite,frp\n");
    let mut i = 0_u32;
    while csv.len() <= 9 << 20 {
        csv.push_str(&format!(
            "{}.{:05},-120.5,2026-12-01,{:04},N,1.5\n",
            i / 100_000,
            i % 100_000,
            i % 2400
        ));
        i += 1;
    }
    Mock::given(path("/api/area/csv/KEY/VIIRS_SNPP_NRT/world/1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(csv))
        .mount(&server)
        .await;
    let params = json!({"base_url": server.uri(), "map_key": "KEY", "max_retries": 0});
    let mut lowered = params.clone();
    lowered["max_response_bytes"] = json!(8 << 20);
    let s = Registry::builtin()
        .build("firms", source("nasa_firms", lowered))
        .unwrap();
    assert!(matches!(s.fetch(None).await, Err(Error::TooLarge { .. })));
    let s = Registry::builtin()
        .build("firms", source("nasa_firms", params))
        .unwrap();
    assert_eq!(s.fetch(None).await.unwrap().records.len(), i as usize);
}

/// Each built-in HTTP connector with the least it needs.
fn builtins() -> Vec<(&'static str, Value)> {
    vec![
        ("noaa_weather", json!({"stations": ["KSAC"], "state": "CA"})),
        ("nasa_firms", json!({"map_key": "k"})),
        ("usgs_earthquakes", json!({})),
        (
            "airnow",
            json!({"api_key": "k", "latitude": 38.5, "longitude": -121.5}),
        ),
        ("purpleair", json!({"api_key": "k"})),
    ]
}

fn error_of(source_type: &str, params: Value) -> (String, String) {
    match Registry::builtin().build("s1", source(source_type, params)) {
        Err(Error::Config { path, message }) => (path, message),
        other => panic!("{source_type}: expected a config error, got {other:?}"),
    }
}

#[test]
fn every_builtin_takes_every_limit_with_http_json_ranges_and_errors() {
    let in_range = json!({
        "max_response_bytes": 33554432, "max_pages": 5, "max_retries": 0,
        "retry_base_seconds": 0.1, "max_retry_after_seconds": 60.0, "breaker_threshold": 2,
        "breaker_cooldown_seconds": 5.0, "max_cursor_skew_seconds": 60
    });
    assert_eq!(
        in_range.as_object().unwrap().len(),
        HttpLimits::KEYS.len(),
        "every generic key is tried"
    );
    let out_of_range = [
        ("max_response_bytes", json!(0)),
        ("max_pages", json!(0)),
        ("max_retries", json!(101)),
        ("retry_base_seconds", json!(1e20)),
        ("max_retry_after_seconds", json!(-1.0)),
        ("breaker_threshold", json!(0)),
        ("breaker_cooldown_seconds", json!(86_401.0)),
        ("max_cursor_skew_seconds", json!(31_536_001_u64)),
    ];
    for (source_type, own) in builtins() {
        let mut params = own.clone();
        for (k, v) in in_range.as_object().unwrap() {
            params[k] = v.clone();
        }
        Registry::builtin()
            .build("s1", source(source_type, params))
            .unwrap_or_else(|e| panic!("{source_type} refuses the generic limits: {e}"));
        for (key, bad) in &out_of_range {
            let mut params = own.clone();
            params[*key] = bad.clone();
            let (path, message) = error_of(source_type, params.clone());
            assert_eq!(
                path,
                format!("sources.s1.custom_params.{key}"),
                "{source_type}"
            );
            // The same message `http_json` gives for the same value.
            let mut http = json!({"url": "http://127.0.0.1:9/"});
            http[*key] = bad.clone();
            assert_eq!(
                (path, message),
                error_of("http_json", http),
                "{source_type}"
            );
        }
        // A value of the wrong type names the key too.
        let mut params = own.clone();
        params["max_pages"] = json!("many");
        let (path, _) = error_of(source_type, params);
        assert_eq!(path, "sources.s1.custom_params.max_pages", "{source_type}");
        // Keys neither generic nor the connector's own are still refused.
        let mut params = own;
        params["max_response_byte"] = json!(1);
        let (path, message) = error_of(source_type, params);
        assert_eq!(
            path, "sources.s1.custom_params.max_response_byte",
            "{source_type}"
        );
        assert!(message.contains("unknown field"), "{message}");
    }
}
