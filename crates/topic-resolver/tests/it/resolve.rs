//! Strategy order, operators, templates and keys.

use proptest::prelude::*;
use proptest::strategy::Strategy as _;
use serde_json::{json, Value};
use topic_resolver::{RecordView, Resolver, Strategy};

use crate::config;

const ROUTING: &str = r#"
routing:
  content_rules:
    - { field: /properties/severity, operator: in, value: [Severe, Extreme], topic: wildfire-alerts }
    - { field: /alert_id, operator: exists, topic: "alerts-{source_type}" }
    - { field: /category, operator: eq, value: "", topic: "cat-{/category}" }
    - { field: /frp, operator: gte, value: 100, topic: "hot-{/satellite}" }
  custom_mappings:
    firms_viirs: wildfire-fire-detections
  pattern_mappings:
    - { pattern: '^sensor_\d+$', topic: wildfire-iot-sensors }
    - { pattern: '^sensor_', topic: "sensors-{source_id}" }
  fallback_topic: wildfire-default
sources:
  noaa_ca:
    source_type: noaa_weather
    topic: wildfire-weather-data
  quakes:
    source_type: usgs_earthquakes
    partition_key: { pointer: /id }
  sensor_7:
    source_type: synthetic
    partition_key: { geo: { lat: /lat, lon: /lon, precision: 5 } }
"#;

#[test]
fn routing_order_puts_content_rules_first_when_asked() {
    let yaml = ROUTING.replace(
        "  fallback_topic: wildfire-default",
        "  fallback_topic: wildfire-default\n  order: [content_rules, custom_mappings, pattern_mappings]",
    );
    let r = Resolver::new(config(&yaml)).unwrap();
    let t = |id: &str, v: Value| resolve(&r, id, "synthetic", v);
    assert_eq!(
        t("noaa_ca", json!({"properties": {"severity": "Extreme"}})),
        ("wildfire-alerts".into(), Strategy::ContentRule)
    );
    assert_eq!(
        t("noaa_ca", json!({"properties": {"severity": "Minor"}})),
        ("wildfire-weather-data".into(), Strategy::CustomMapping)
    );
    // Patterns before custom mappings: a source matching both goes by its pattern.
    let yaml = ROUTING.replace(
        "  fallback_topic: wildfire-default",
        "  fallback_topic: wildfire-default\n  order: [pattern_mappings, content_rules, custom_mappings]\n  custom_mappings: { sensor_9: mine }",
    ).replace("  custom_mappings:\n    firms_viirs: wildfire-fire-detections\n", "");
    let r = Resolver::new(config(&yaml)).unwrap();
    assert_eq!(
        resolve(&r, "sensor_9", "synthetic", json!({})),
        ("wildfire-iot-sensors".into(), Strategy::Pattern)
    );
    // Each strategy once.
    for bad in [
        "[content_rules]",
        "[content_rules, content_rules, pattern_mappings]",
    ] {
        let yaml = ROUTING.replace(
            "  fallback_topic: wildfire-default",
            &format!("  fallback_topic: wildfire-default\n  order: {bad}"),
        );
        let err = Resolver::new(config(&yaml)).unwrap_err().to_string();
        assert!(err.contains("routing.order"), "{err}");
    }
}

fn resolve(r: &Resolver, source_id: &str, source_type: &str, value: Value) -> (String, Strategy) {
    let d = r.resolve(&RecordView {
        source_id,
        source_type,
        value: &value,
    });
    (d.topic.to_string(), d.strategy)
}

#[test]
fn strategies_apply_in_documented_order() {
    let r = Resolver::new(config(ROUTING)).unwrap();
    let t = |id: &str, v: Value| resolve(&r, id, "synthetic", v);
    // The seed's order: a custom mapping (here the source's own topic) comes first,
    // then content rules, then patterns.
    assert_eq!(
        t("noaa_ca", json!({"properties": {"severity": "Extreme"}})),
        ("wildfire-weather-data".into(), Strategy::CustomMapping)
    );
    assert_eq!(
        t("noaa_ca", json!({"properties": {"severity": "Minor"}})),
        ("wildfire-weather-data".into(), Strategy::CustomMapping)
    );
    // A content rule beats patterns.
    assert_eq!(
        t("sensor_12", json!({"properties": {"severity": "Extreme"}})),
        ("wildfire-alerts".into(), Strategy::ContentRule)
    );
    assert_eq!(
        t("firms_viirs", json!({})),
        ("wildfire-fire-detections".into(), Strategy::CustomMapping)
    );
    // Patterns in declared order: the first that matches wins.
    assert_eq!(
        t("sensor_12", json!({})),
        ("wildfire-iot-sensors".into(), Strategy::Pattern)
    );
    assert_eq!(
        t("sensor_x", json!({})),
        ("sensors-sensor_x".into(), Strategy::Pattern)
    );
    assert_eq!(
        t("mystery", json!({})),
        ("wildfire-default".into(), Strategy::Fallback)
    );
    // First matching content rule in declared order: both rule 0 and 1 match.
    assert_eq!(
        t(
            "x",
            json!({"properties": {"severity": "Severe"}, "alert_id": "a1"})
        ),
        ("wildfire-alerts".into(), Strategy::ContentRule)
    );
}

#[test]
fn templates_render_sanitise_and_fall_through() {
    let r = Resolver::new(config(ROUTING)).unwrap();
    assert_eq!(
        resolve(&r, "x", "noaa weather/v2", json!({"alert_id": 1})).0,
        "alerts-noaa_weather_v2"
    );
    assert_eq!(
        resolve(&r, "x", "t", json!({"frp": 120.5, "satellite": "N 20"})).0,
        "hot-N_20"
    );
    // The template's field is missing: rule 3 falls through to the fallback.
    assert_eq!(
        resolve(&r, "x", "t", json!({"frp": 120.5})),
        ("wildfire-default".into(), Strategy::Fallback)
    );
    // An empty value falls through too.
    assert_eq!(
        resolve(&r, "x", "t", json!({"category": ""})).1,
        Strategy::Fallback
    );
    // A number in a template renders as text.
    assert_eq!(
        resolve(&r, "x", "t", json!({"frp": 100, "satellite": 18})).0,
        "hot-18"
    );
}

#[test]
fn every_operator() {
    let cases: &[(&str, Value, Value, bool)] = &[
        ("eq", json!("a"), json!("a"), true),
        ("eq", json!(1), json!(1.0), true),
        ("eq", json!("1"), json!(1), false),
        ("ne", json!("a"), json!("b"), true),
        ("ne", json!("a"), json!("a"), false),
        ("in", json!(["x", 2]), json!(2), true),
        ("in", json!(["x", 2]), json!("y"), false),
        ("gt", json!(5), json!(5.5), true),
        ("gt", json!(5), json!(5), false),
        ("gte", json!(5), json!(5), true),
        ("lt", json!(0), json!(-1), true),
        ("lte", json!(0), json!(0.0), true),
        ("lte", json!(0), json!("0"), false),
        ("exists", Value::Null, json!(false), true),
        ("exists", Value::Null, Value::Null, false),
        ("matches", json!("^fire-\\d+$"), json!("fire-42"), true),
        ("matches", json!("^fire-\\d+$"), json!("fire-x"), false),
        ("matches", json!("^1"), json!(1), false),
    ];
    for (op, value, field, expected) in cases {
        let value = if value.is_null() {
            String::new()
        } else {
            format!(", value: {value}")
        };
        let cfg = config(&format!(
            "routing:\n  content_rules:\n    - {{ field: /f, operator: {op}{value}, topic: hit }}\n"
        ));
        let r = Resolver::new(cfg.clone()).unwrap();
        let record = json!({ "f": field });
        let hit = resolve(&r, "s", "t", record).1 == Strategy::ContentRule;
        assert_eq!(hit, *expected, "{op} {value} against {field}");
        // A missing field never matches, whatever the operator.
        assert_eq!(
            resolve(&r, "s", "t", json!({})).1,
            Strategy::Fallback,
            "{op} on a missing field"
        );
    }
}

#[test]
fn keys_from_pointer_and_stable_geohash() {
    let r = Resolver::new(config(ROUTING)).unwrap();
    let d = r.resolve(&RecordView {
        source_id: "quakes",
        source_type: "usgs",
        value: &json!({"id": "ci40123"}),
    });
    assert_eq!(d.key.as_deref(), Some("ci40123"));
    let reading = json!({"lat": 38.5816, "lon": -121.4944});
    let d = r.resolve(&RecordView {
        source_id: "sensor_7",
        source_type: "synthetic",
        value: &reading,
    });
    assert_eq!(
        d.key.as_deref(),
        Some("9qce7"),
        "Sacramento's 5-character geohash"
    );
    let nearby = json!({"lat": "38.5820", "lon": "-121.4950"});
    let d2 = r.resolve(&RecordView {
        source_id: "sensor_7",
        source_type: "synthetic",
        value: &nearby,
    });
    assert_eq!(
        d2.key, d.key,
        "same cell, same key (coordinates as strings work too)"
    );
    let d = r.resolve(&RecordView {
        source_id: "quakes",
        source_type: "usgs",
        value: &json!({}),
    });
    assert_eq!(d.key, None);
    let d = r.resolve(&RecordView {
        source_id: "mystery",
        source_type: "x",
        value: &json!({"id": 1}),
    });
    assert_eq!(d.key, None, "no key configured for this source");
}

fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|n| json!(n)),
        ".{0,300}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn resolved_topic_is_always_a_valid_kafka_name(
        value in any_json(),
        sev in ".{0,300}",
        source_id in "[a-z_0-9]{1,20}",
        source_type in ".{0,40}",
    ) {
        let cfg = config("routing:\n  content_rules:\n    - { field: /s, operator: exists, topic: \"a-{/s}-{source_type}\" }\n    - { field: /a, operator: exists, topic: \"{/a/b}\" }\n  pattern_mappings:\n    - { pattern: '.', topic: \"p-{source_type}\" }\n");
        let r = Resolver::new(cfg.clone()).unwrap();
        let record = json!({ "s": sev, "a": value });
        let d = r.resolve(&RecordView { source_id: &source_id, source_type: &source_type, value: &record });
        prop_assert!(topic_resolver::check_topic_name(&d.topic).is_ok(), "invalid topic {:?}", d.topic);
        let d = r.resolve(&RecordView { source_id: &source_id, source_type: &source_type, value: &value });
        prop_assert!(topic_resolver::check_topic_name(&d.topic).is_ok(), "invalid topic {:?}", d.topic);
    }
}
