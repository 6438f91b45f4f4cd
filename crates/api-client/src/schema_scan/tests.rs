//! The fast path against `jsonschema` itself: whenever it decides (`Valid` or
//! `Invalid`), `jsonschema` on the parsed text must agree — for hand-picked corners,
//! for the built-in schemas with real-shaped records and mutations of them, and for
//! random schemas against random (also malformed) JSON text. Each also asserts the
//! fast path passes most of the valid records it is given itself, so it cannot pass by
//! being `Unsure`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{ScanSchema, Verdict};

/// The full path's answer: parse, then validate (text that is not JSON fails).
fn slow(validator: &jsonschema::Validator, text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| validator.is_valid(&v))
}

/// Both paths on `text`; panics when the fast one decides against the full one.
fn agree(
    schema: &Value,
    validator: &jsonschema::Validator,
    fast: &ScanSchema,
    text: &str,
) -> Verdict {
    let verdict = fast.check(text.as_bytes());
    let full = slow(validator, text);
    match verdict {
        Verdict::Valid => assert!(
            full,
            "fast Valid, jsonschema invalid\nschema {schema}\ntext {text}"
        ),
        Verdict::Invalid => assert!(
            !full,
            "fast Invalid, jsonschema valid\nschema {schema}\ntext {text}"
        ),
        Verdict::Unsure => {}
    }
    verdict
}

fn case(schema: Value, text: &str) -> Verdict {
    let validator = stream_config::compile_schema(&schema).expect("schema compiles");
    let fast = ScanSchema::compile(&schema).expect("fast path compiles");
    agree(&schema, &validator, &fast, text)
}

use Verdict::{Invalid, Unsure, Valid};

#[test]
fn corners_decide_as_jsonschema_does() {
    let obj = json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": 0}}, "additionalProperties": false});
    assert_eq!(case(obj.clone(), r#"{"a": 3}"#), Valid);
    assert_eq!(case(obj.clone(), r#" { "a" : 3 } "#), Valid);
    // A failing member decides once its key does not come again (the last one counts).
    assert_eq!(case(obj.clone(), r#"{"a": -1}"#), Invalid);
    assert_eq!(case(obj.clone(), r#"{"a": -1, "a": 1}"#), Unsure);
    assert_eq!(case(obj.clone(), r#"{"a": 1, "a": -1}"#), Invalid);
    assert_eq!(case(obj.clone(), r#"{"a": 2.5}"#), Invalid);
    assert_eq!(
        case(obj.clone(), r#"{"a": 1.0}"#),
        Unsure,
        "1.0 is an integer to JSON Schema"
    );
    assert_eq!(case(obj.clone(), r#"{}"#), Invalid);
    assert_eq!(case(obj.clone(), r#"{"a": 1, "b": 2}"#), Invalid);
    assert_eq!(case(obj.clone(), r#"{"\u0061": 1}"#), Valid, "escaped key");
    assert_eq!(case(obj.clone(), r#"{"a": 1} x"#), Unsure, "trailing text");
    assert_eq!(case(obj.clone(), r#"{"a": 1,}"#), Unsure, "trailing comma");
    assert_eq!(case(obj.clone(), r#"{"a": 01}"#), Unsure, "leading zero");
    assert_eq!(case(obj, r#"{"a": 1e400}"#), Unsure, "out of f64's range");

    let any = json!({"type": "object"});
    assert_eq!(
        case(any.clone(), r#"{"s": "\ud800"}"#),
        Unsure,
        "lone surrogate"
    );
    assert_eq!(
        case(any.clone(), "{\"s\": \"a\tb\"}"),
        Unsure,
        "raw control character"
    );
    assert_eq!(
        case(
            any.clone(),
            r#"{"s": "\ud83d\ude00", "n": [1, {"x": null}]}"#
        ),
        Unsure
    );
    assert_eq!(
        case(any.clone(), r#"{"s": "é\n", "n": [1, {"x": null}]}"#),
        Valid
    );
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert_eq!(
        case(json!({}), &deep),
        Unsure,
        "deeper than the fast path reads"
    );

    // minProperties counts distinct keys, as serde_json keeps the last of duplicates.
    let two = json!({"minProperties": 2});
    assert_eq!(case(two.clone(), r#"{"a": 1, "a": 2}"#), Invalid);
    assert_eq!(case(two, r#"{"a": 1, "b": 2}"#), Valid);

    // Strings: length in characters; a pattern only on printable ASCII.
    let s = json!({"type": "string", "maxLength": 2, "pattern": "^\\d"});
    assert_eq!(case(s.clone(), r#""1é""#), Unsure);
    assert_eq!(case(s.clone(), r#""12""#), Valid);
    assert_eq!(case(s.clone(), r#""123""#), Invalid);
    assert_eq!(case(s, r#""a""#), Invalid);
    let len = json!({"minLength": 2});
    assert_eq!(case(len.clone(), r#""é""#), Invalid);
    assert_eq!(case(len, r#""éé""#), Valid);

    // Enums of scalars; oneOf / anyOf / not.
    let e = json!({"enum": ["a", null, true]});
    assert_eq!(case(e.clone(), "null"), Valid);
    assert_eq!(case(e.clone(), r#""b""#), Invalid);
    assert_eq!(case(e, "1"), Invalid);
    let ints = json!({"enum": [0, 1]});
    assert_eq!(case(ints.clone(), "1"), Valid);
    assert_eq!(case(ints.clone(), "2"), Invalid);
    assert_eq!(case(ints.clone(), "1.0"), Unsure);
    assert_eq!(case(ints, r#""1""#), Invalid);
    let one = json!({"oneOf": [{"type": "integer"}, {"minimum": 2}]});
    assert_eq!(case(one.clone(), "1"), Valid);
    assert_eq!(case(one.clone(), "3"), Invalid);
    assert_eq!(case(one, "2.5"), Valid);
    assert_eq!(case(json!({"not": {"type": "string"}}), r#""x""#), Invalid);
    assert_eq!(
        case(
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
            "null"
        ),
        Valid
    );
}

#[test]
fn drafts_differ_where_jsonschema_does() {
    // Draft 7 ignores the siblings of `$ref`; 2020-12 (also the default) applies them.
    let defs = |draft: Option<&str>| {
        let mut s = json!({"$ref": "#/definitions/a", "type": "string", "definitions": {"a": {"minimum": 0}}});
        if let Some(d) = draft {
            s["$schema"] = json!(d);
        }
        s
    };
    assert_eq!(
        case(defs(Some("http://json-schema.org/draft-07/schema#")), "5"),
        Valid
    );
    assert_eq!(
        case(
            defs(Some("https://json-schema.org/draft/2020-12/schema")),
            "5"
        ),
        Invalid
    );
    assert_eq!(case(defs(None), "5"), Invalid);
    // Draft 7: `items` as a list with `additionalItems`; `format` asserted.
    let d7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}], "additionalItems": false});
    assert_eq!(case(d7.clone(), r#"["a"]"#), Valid);
    assert_eq!(case(d7, r#"["a", 1]"#), Invalid);
    let f7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "format": "date"});
    assert_eq!(case(f7, r#""2026-13-45""#), Unsure);
    let f20 = json!({"format": "date"});
    assert_eq!(
        case(f20, r#""2026-13-45""#),
        Valid,
        "an annotation in 2020-12"
    );
    // 2020-12: prefixItems, then items.
    let t =
        json!({"prefixItems": [{"type": "number"}], "items": {"type": "string"}, "minItems": 2});
    assert_eq!(case(t.clone(), r#"[1, "a"]"#), Valid);
    assert_eq!(case(t.clone(), r#"[1, 2]"#), Invalid);
    assert_eq!(case(t, r#"[1]"#), Invalid);
    // A cycle of references reads nothing forever.
    let cyc = json!({"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#"});
    let v = stream_config::compile_schema(&cyc);
    if let Ok(v) = v {
        let fast = ScanSchema::compile(&cyc).expect("compiles");
        agree(&cyc, &v, &fast, "1");
    }
}

/// The NWS observation the benchmarks use, as the connector emits it.
fn observation() -> Value {
    let m = |unit: &str, value: f64| json!({"unitCode": format!("wmoUnit:{unit}"), "value": value, "qualityControl": "V"});
    json!({
        "id": "https://api.weather.gov/stations/KSAC/observations/2026-11-27T00:53:00+00:00",
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-121.5, 38.52]},
        "properties": {
            "station": "https://api.weather.gov/stations/KSAC",
            "stationId": "KSAC", "stationName": "Sacramento Executive Airport",
            "timestamp": "2026-11-27T00:53:00+00:00", "textDescription": "Clear",
            "rawMessage": "KSAC 270053Z 32012KT 10SM CLR 14/M03 A3012", "icon": null,
            "elevation": m("m", 8.0), "temperature": m("degC", 14.4), "dewpoint": m("degC", -3.3),
            "windDirection": m("degree_(angle)", 320.0), "windSpeed": m("km_h-1", 22.3),
            "windGust": {"unitCode": "wmoUnit:km_h-1", "value": null, "qualityControl": "Z"},
            "barometricPressure": m("Pa", 102030.0), "relativeHumidity": m("percent", 31.2),
            "presentWeather": [], "cloudLayers": [{"base": {"unitCode": "wmoUnit:m", "value": null}, "amount": "CLR"}]
        }
    })
}

/// Every built-in schema with records of its shape, and mutations of them: the fast
/// path passes the real records itself and agrees with `jsonschema` on every mutant.
#[test]
fn builtin_schemas_agree_on_real_shapes_and_mutants() {
    let usgs: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/usgs.geojson"
    )))
    .unwrap();
    let alerts: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/noaa_alerts.json"
    )))
    .unwrap();
    let alerts = alerts["features"].as_array().unwrap().clone();
    let mut weather = alerts.clone();
    weather.push(observation());
    let samples = [
        ("noaa_observation", vec![observation()]),
        ("noaa_alert", alerts),
        ("noaa_weather", weather),
        ("usgs_feature", usgs["features"].as_array().unwrap().clone()),
    ];
    // Every built-in schema takes the fast path.
    for (name, _) in crate::builtin_schemas() {
        let schema: Value = serde_json::from_str(crate::builtin_schema(name).unwrap()).unwrap();
        assert!(ScanSchema::compile(&schema).is_some(), "{name}");
    }
    let mut rng = StdRng::seed_from_u64(27);
    for (name, records) in samples {
        let schema: Value = serde_json::from_str(crate::builtin_schema(name).unwrap()).unwrap();
        let validator = stream_config::compile_schema(&schema).unwrap();
        let fast =
            ScanSchema::compile(&schema).unwrap_or_else(|| panic!("{name}: fast path compiles"));
        for r in &records {
            let text = r.to_string();
            assert_eq!(
                agree(&schema, &validator, &fast, &text),
                Valid,
                "{name}: {text}"
            );
        }
        let (mut passed, mut valid) = (0, 0);
        for _ in 0..3000 {
            let mut r = records[rng.random_range(0..records.len())].clone();
            for _ in 0..rng.random_range(1..3) {
                mutate(&mut rng, &mut r);
            }
            let text = r.to_string();
            let verdict = agree(&schema, &validator, &fast, &text);
            if slow(&validator, &text) {
                valid += 1;
                passed += usize::from(verdict == Valid);
            }
        }
        assert!(valid > 200, "{name}: {valid} valid mutants");
        assert!(
            passed * 10 >= valid * 9,
            "{name}: passed {passed} of {valid} valid"
        );
    }
}

/// Replaces, removes or adds one value somewhere in `v`.
fn mutate(rng: &mut StdRng, v: &mut Value) {
    // A random path down, chosen on a shared borrow; then one change there.
    let mut path = String::new();
    let mut at = &*v;
    loop {
        let next = match at {
            Value::Object(m) if !m.is_empty() && rng.random_bool(0.7) => {
                let k = m.keys().nth(rng.random_range(0..m.len())).unwrap();
                Some((k.replace('~', "~0").replace('/', "~1"), &m[k]))
            }
            Value::Array(a) if !a.is_empty() && rng.random_bool(0.7) => {
                let i = rng.random_range(0..a.len());
                Some((i.to_string(), &a[i]))
            }
            _ => None,
        };
        let Some((step, inner)) = next else { break };
        path.push('/');
        path.push_str(&step);
        at = inner;
    }
    let target = v.pointer_mut(&path).unwrap();
    match target {
        Value::Object(m) if rng.random_bool(0.3) => {
            if rng.random_bool(0.5) && !m.is_empty() {
                let k = m.keys().nth(rng.random_range(0..m.len())).unwrap().clone();
                m.remove(&k);
            } else {
                m.insert("extra".into(), random_value(rng));
            }
        }
        t => *t = random_value(rng),
    }
}

fn random_value(rng: &mut StdRng) -> Value {
    serde_json::from_str(&random_text(rng, 0, false)).unwrap_or(Value::Null)
}

const STRINGS: &[&str] = &[
    r#""""#,
    r#""a""#,
    r#""ab""#,
    r#""abc""#,
    r#""é""#,
    r#""1234""#,
    r#""a\nb""#,
    r#""\u00e9""#,
    r#""\ud83d\ude00""#,
    r#""a\"b""#,
    r#""wmoUnit:degC""#,
    r#""Point""#,
    r#""Feature""#,
    r#""2026-11-27T00:53:00+00:00""#,
    "\"a\u{7f}\"",
];
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "3",
    "10",
    "1.0",
    "2.5",
    "-3.75",
    "1e2",
    "1E-2",
    "0.1",
    "180",
    "180.0000001",
    "-90",
    "-180",
    "9007199254740993",
    "123456789012345678901234567890",
];
const BROKEN: &[&str] = &[
    "tru",
    "01",
    "1.",
    "[1,]",
    "{\"a\":1,}",
    "\"\\ud800\"",
    "\"\\x\"",
    "-",
    "[",
    "{\"a\" 1}",
];

/// Random JSON text (keys may repeat; with `broken`, sometimes not JSON at all).
fn random_text(rng: &mut StdRng, depth: usize, broken: bool) -> String {
    let pick = |rng: &mut StdRng, list: &[&str]| list[rng.random_range(0..list.len())].to_owned();
    match rng.random_range(0..if depth > 3 { 6 } else { 9 }) {
        0 => "null".into(),
        1 => ["true", "false"][rng.random_range(0..2)].into(),
        2 | 3 => pick(rng, NUMBERS),
        4 | 5 => pick(rng, STRINGS),
        _ if broken && rng.random_bool(0.05) => pick(rng, BROKEN),
        6 | 7 => {
            let n = rng.random_range(0..4);
            let items: Vec<String> = (0..n)
                .map(|_| random_text(rng, depth + 1, broken))
                .collect();
            format!("[{}]", items.join(", "))
        }
        _ => {
            let n = rng.random_range(0..4);
            let keys = ["a", "b", "c", "é", "a\\\"b", "\\u0061"];
            let items: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "\"{}\": {}",
                        keys[rng.random_range(0..keys.len())],
                        random_text(rng, depth + 1, broken)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

/// A random schema of the keywords the fast path knows (and, rarely, one it does not).
fn random_schema(rng: &mut StdRng, depth: usize) -> Value {
    let num = |rng: &mut StdRng| -> Value {
        [json!(0), json!(2), json!(-1.5), json!(180), json!(2.5)][rng.random_range(0..5)].clone()
    };
    let sub = |rng: &mut StdRng| random_schema(rng, depth + 1);
    if depth > 2 || rng.random_bool(0.1) {
        return [
            json!(true),
            json!(false),
            json!({}),
            json!({"type": "string"}),
            json!({"type": ["integer", "null"]}),
        ][rng.random_range(0..5)]
        .clone();
    }
    let mut s = serde_json::Map::new();
    for _ in 0..rng.random_range(1..4) {
        let (k, v) = match rng.random_range(0..22) {
            0 => (
                "type",
                json!(
                    ["object", "array", "string", "number", "integer", "boolean", "null"]
                        [rng.random_range(0..7)]
                ),
            ),
            1 => ("type", json!(["string", "number"])),
            2 => ("properties", json!({"a": sub(rng), "é": sub(rng)})),
            3 => ("required", json!(["a"])),
            4 => ("additionalProperties", sub(rng)),
            5 => ("minProperties", json!(rng.random_range(0..3))),
            6 => ("maxProperties", json!(rng.random_range(0..3))),
            7 => ("items", sub(rng)),
            8 => ("prefixItems", json!([sub(rng)])),
            9 => ("minItems", json!(rng.random_range(0..3))),
            10 => ("maxLength", json!(rng.random_range(0..4))),
            11 => ("minLength", json!(rng.random_range(0..3))),
            12 => (
                "pattern",
                json!(
                    ["^a", "b$", "^\\d+$", "^[a-c]*$", ".", "^.$", "\\w"][rng.random_range(0..7)]
                ),
            ),
            13 => ("minimum", num(rng)),
            14 => ("exclusiveMaximum", num(rng)),
            15 => ("enum", json!(["a", null, true, "é", 2, -1])),
            16 => ("const", json!(["a", "abc"][rng.random_range(0..2)])),
            17 => ("anyOf", json!([sub(rng), sub(rng)])),
            18 => ("oneOf", json!([sub(rng), sub(rng)])),
            19 => ("not", sub(rng)),
            20 => ("allOf", json!([sub(rng)])),
            _ => ("uniqueItems", json!(true)),
        };
        s.insert(k.into(), v);
    }
    Value::Object(s)
}

#[test]
fn random_schemas_agree_with_jsonschema_on_random_text() {
    // `SCAN_SEED=N` runs 20× as many from another seed (a longer search).
    let seed = std::env::var("SCAN_SEED").ok().and_then(|s| s.parse().ok());
    let rounds = if seed.is_some() { 30_000 } else { 1500 };
    let mut rng = StdRng::seed_from_u64(seed.unwrap_or(2026));
    let (mut passed, mut valid, mut total) = (0u32, 0u32, 0u32);
    for _ in 0..rounds {
        let mut schema = random_schema(&mut rng, 0);
        if let Value::Object(m) = &mut schema {
            match rng.random_range(0..3) {
                0 => drop(m.insert(
                    "$schema".into(),
                    json!("http://json-schema.org/draft-07/schema#"),
                )),
                1 => drop(m.insert(
                    "$schema".into(),
                    json!("https://json-schema.org/draft/2020-12/schema"),
                )),
                _ => {}
            }
            if rng.random_bool(0.3) {
                m.insert("$defs".into(), json!({"d": random_schema(&mut rng, 1)}));
                m.insert("properties".into(), json!({"a": {"$ref": "#/$defs/d"}}));
            }
        }
        let Ok(validator) = stream_config::compile_schema(&schema) else {
            continue;
        };
        let Some(fast) = ScanSchema::compile(&schema) else {
            continue;
        };
        for _ in 0..20 {
            let text = random_text(&mut rng, 0, true);
            total += 1;
            let verdict = agree(&schema, &validator, &fast, &text);
            if slow(&validator, &text) {
                valid += 1;
                passed += u32::from(verdict == Valid);
            }
        }
    }
    assert!(total > 20_000, "{total}");
    eprintln!("random: {passed} of {valid} valid texts passed by the fast path ({total} in all)");
    assert!(
        valid > 2_000 && passed * 10 >= valid * 7,
        "passed only {passed} of {valid}"
    );
}

/// `jsonschema` 0.41 let an object through that lacked two required names when its
/// schema listed them among 15 or more properties (the built-in NWS observation
/// schema did not require `station`): found by the differential tests above, fixed by
/// 0.47. Both paths must refuse it.
#[test]
fn required_holds_on_wide_objects() {
    let props: serde_json::Map<String, Value> =
        (0..20).map(|i| (format!("k{i}"), json!({}))).collect();
    let schema = json!({"required": ["k0", "k1"], "properties": props});
    assert_eq!(case(schema, r#"{"b": true}"#), Invalid);
    let nws: Value =
        serde_json::from_str(crate::builtin_schema("noaa_observation").unwrap()).unwrap();
    let mut record = observation();
    record["properties"]
        .as_object_mut()
        .unwrap()
        .remove("station");
    let text = record.to_string();
    assert_eq!(case(nws.clone(), &text), Invalid);
    let full = stream_config::compile_schema(&nws).unwrap();
    assert!(
        !slow(&full, &text),
        "jsonschema passes an observation without a station"
    );
}

/// UTF-8 is checked in each string as it is read (there is no pass over the whole
/// text): a broken sequence anywhere is `Unsure`, as `serde_json` refuses the text.
#[test]
fn text_that_is_not_utf8_is_never_valid() {
    let fast = ScanSchema::compile(&json!({
        "type": "object",
        "properties": { "s": { "type": "string", "maxLength": 3 } }
    }))
    .unwrap();
    let check = |text: &[u8]| fast.check(text);
    assert_eq!(check("{\"s\": \"é\\nà\"}".as_bytes()), Verdict::Valid);
    for broken in [
        &b"{\"s\": \"\xff\"}"[..],
        b"{\"s\": \"a\xc3\"}",
        b"{\"s\": \"\xc3\\n\xa9\"}",
        b"{\"s\": \"\xc0\xaf\"}",
        b"{\"\xff\": 1}",
        b"{\"t\": \"\xed\xa0\x80\"}",
        b"{\"s\": \"a\"}\xff",
        b"{\"s\": \"a\"\xc2\xa0}",
    ] {
        assert!(serde_json::from_slice::<Value>(broken).is_err());
        assert_eq!(
            check(broken),
            Verdict::Unsure,
            "{}",
            String::from_utf8_lossy(broken)
        );
    }
}
