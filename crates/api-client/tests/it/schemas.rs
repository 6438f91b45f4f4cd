//! Each built-in connector's records, fetched from its recorded real-shaped sample,
//! pass its built-in schema; a record with a field of the wrong type does not.

use std::collections::BTreeMap;

use api_client::{builtin_schema, builtin_schemas, Registry};
use serde_json::{json, Value};
use stream_config::SourceConfig;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixture;

fn validator(name: &str) -> jsonschema::Validator {
    let text = builtin_schema(name).unwrap_or_else(|| panic!("no built-in schema {name}"));
    let schema: Value = serde_json::from_str(text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// Every record of one fetch of `source_type` with `params`, `body` served at `at`.
async fn records(source_type: &str, at: &str, body: String, params: Value) -> Vec<Value> {
    let server = MockServer::start().await;
    Mock::given(path(at))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let mut cfg = SourceConfig::new(source_type);
    cfg.rate_limit_per_minute = 60_000;
    let mut params = params;
    params["base_url"] = json!(server.uri());
    cfg.custom_params = params
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    let source = Registry::builtin().build("s", &cfg).expect("builds");
    let fetch = source.fetch(None).await.expect("fetches");
    assert!(!fetch.records.is_empty(), "{source_type}: no records");
    fetch.records.iter().map(|r| r.to_value()).collect()
}

fn assert_valid(name: &str, records: &[Value]) {
    let v = validator(name);
    for r in records {
        let errors: Vec<String> = v
            .iter_errors(r)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {r}\n{errors:#?}");
    }
}

/// `record` with the value at `pointer` replaced: must fail `name`'s schema there.
fn assert_caught(name: &str, record: &Value, pointer: &str, bad: Value) {
    let mut r = record.clone();
    *r.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in {record}")) = bad;
    let v = validator(name);
    let err = v.iter_errors(&r).next().expect("invalid record caught");
    assert!(
        err.instance_path().as_str().starts_with(pointer),
        "{name}: {} for {pointer}",
        err.instance_path()
    );
}

#[tokio::test]
async fn every_connectors_sample_passes_its_builtin_schema() {
    let noaa = records(
        "noaa_weather",
        "/stations/KSAC/observations/latest",
        fixture("noaa_observation.json"),
        json!({"stations": ["KSAC"], "user_agent": "t (t@example.org)"}),
    )
    .await;
    assert_valid("noaa_observation", &noaa);
    assert_caught(
        "noaa_observation",
        &noaa[0],
        "/properties/temperature/value",
        json!("14.4"),
    );

    let alerts = records(
        "noaa_weather",
        "/alerts/active",
        fixture("noaa_alerts.json"),
        json!({"state": "CA", "user_agent": "t (t@example.org)"}),
    )
    .await;
    assert_eq!(alerts.len(), 2);
    assert_valid("noaa_alert", &alerts);
    assert_caught(
        "noaa_alert",
        &alerts[0],
        "/properties/severity",
        json!("Bad"),
    );
    // `noaa_weather`: the connector's one schema, observations and alerts alike.
    assert_valid("noaa_weather", &noaa);
    assert_valid("noaa_weather", &alerts);
    assert_caught("noaa_weather", &alerts[1], "/properties/severity", json!(3));
    assert_caught(
        "noaa_weather",
        &noaa[0],
        "/properties/temperature/value",
        json!("14.4"),
    );

    let firms = records(
        "nasa_firms",
        "/api/area/csv/K/VIIRS_SNPP_NRT/-124.5,32.5,-114,42/2",
        fixture("firms.csv"),
        json!({"map_key": "K", "area": [-124.5, 32.5, -114.0, 42.0], "days": 2}),
    )
    .await;
    assert_valid("firms_row", &firms);
    assert_caught("firms_row", &firms[0], "/latitude", json!("39.76"));

    let quakes = records(
        "usgs_earthquakes",
        "/earthquakes/feed/v1.0/summary/2.5_day.geojson",
        fixture("usgs.geojson"),
        json!({"feed": "2.5_day"}),
    )
    .await;
    assert_valid("usgs_feature", &quakes);
    assert_caught(
        "usgs_feature",
        &quakes[0],
        "/properties/time",
        json!("yesterday"),
    );

    let air = records(
        "airnow",
        "/aq/observation/latLong/current/",
        fixture("airnow.json"),
        json!({"api_key": "k", "latitude": 38.58, "longitude": -121.49}),
    )
    .await;
    assert_valid("airnow_observation", &air);
    assert_caught("airnow_observation", &air[0], "/AQI", json!(null));

    let pa = records(
        "purpleair",
        "/v1/sensors",
        fixture("purpleair.json"),
        json!({"api_key": "k"}),
    )
    .await;
    assert_valid("purpleair_row", &pa);
    assert_caught("purpleair_row", &pa[0], "/sensor_index", json!("131075"));
}

#[test]
fn every_builtin_schema_is_listed_with_a_connector_and_compiles() {
    let names: Vec<(&str, &str)> = builtin_schemas().collect();
    assert_eq!(names.len(), 7);
    let connectors = Registry::builtin().names();
    for (name, connector) in names {
        assert!(connectors.iter().any(|c| c == connector), "{connector}");
        validator(name);
    }
}
