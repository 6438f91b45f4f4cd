//! Fuzz targets of the decoders (property tests): arbitrary bytes never panic a decoder
//! and whatever it accepts is JSON; generated documents decode to exactly their
//! records. `cargo xtask test` runs a bounded number of cases; `cargo xtask fuzz` sets
//! `FUZZ_CASES` for a long run.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::decode::Decoder;

/// Cases per target: `FUZZ_CASES`, or `default`.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` over `strategy` for `cases(default)` cases and prints the count (the
/// figure `cargo xtask fuzz` reports).
pub(crate) fn run<S: Strategy>(
    name: &str,
    default: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let n = cases(default);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("fuzz target {name}: {e}");
    }
    println!("fuzz: {name}: {n} cases, 0 failures");
}

fn decoders() -> Vec<Decoder> {
    vec![
        Decoder::Json {
            pointer: String::new(),
        },
        Decoder::Json {
            pointer: "/data".into(),
        },
        Decoder::Geojson,
        Decoder::Csv,
        Decoder::Ndjson,
        Decoder::FieldsData {
            fields: "/fields".into(),
            data: "/data".into(),
            stamp: Some("/time_stamp".into()),
        },
    ]
}

/// JSON values, nested a few levels, with the characters parsers trip on.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1_000_000i64..1_000_000).prop_map(|n| Value::from(n as f64 / 8.0)),
        "[a-c\\\\\"/~ é\\n,\\t\u{1F525}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-c~/\\\\\" ]{0,3}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes that are often almost JSON or CSV: fragments of documents glued at random.
fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        any::<Vec<u8>>(),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        Just(br#"{"type":"FeatureCollection","features":["#.to_vec()),
        Just(br#"{"fields":["a","b"],"data":[[1,"#.to_vec()),
        Just(b"a,b,c\n1,\"2\n".to_vec()),
        Just(b"\xff\xfe\"\\u12".to_vec()),
        Just(b"\n".to_vec()),
    ];
    proptest::collection::vec(fragment, 0..6).prop_map(|parts| parts.concat())
}

fn records_as_values(decoded: &crate::decode::Decoded) -> Result<Vec<Value>, TestCaseError> {
    decoded
        .records
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(r.as_bytes()).map_err(|e| {
                TestCaseError::fail(format!(
                    "a record that is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(r.as_bytes())
                ))
            })
        })
        .collect()
}

#[test]
fn decoders_never_panic_and_accept_only_json() {
    run("decoders/arbitrary-bytes", 2_000, arb_body(), |body| {
        for d in decoders() {
            if let Ok(decoded) = d.decode(&body) {
                records_as_values(&decoded)?;
            }
        }
        Ok(())
    });
}

#[test]
fn json_ndjson_and_geojson_decode_to_exactly_their_records() {
    let items = proptest::collection::vec(arb_json(), 0..8);
    run("decoders/generated-documents", 500, items, |items| {
        // An array at a pointer.
        let body = json!({ "meta": 1, "data": items }).to_string();
        let d = Decoder::Json {
            pointer: "/data".into(),
        }
        .decode(body.as_bytes())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let items_no_null: Vec<Value> = items.clone();
        prop_assert_eq!(records_as_values(&d)?, items_no_null);

        // One value per line (nulls and all).
        let lines: String = items.iter().map(|v| format!("{v}\n")).collect();
        let d = Decoder::Ndjson
            .decode(lines.as_bytes())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(records_as_values(&d)?.len() + d.rejected.len(), items.len());

        // Features with the values as properties.
        let features: Vec<Value> = items
            .iter()
            .map(|p| json!({"type": "Feature", "properties": {"v": p}, "geometry": null}))
            .collect();
        let body = json!({"type": "FeatureCollection", "features": features}).to_string();
        let d = Decoder::Geojson
            .decode(body.as_bytes())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(records_as_values(&d)?, features);
        Ok(())
    });
}

#[test]
fn csv_and_fields_data_rows_become_one_object_each() {
    let cell = prop_oneof![
        "[a-z0-9 .,\"\n-]{0,6}",
        "-?[0-9]{1,3}(\\.[0-9]{1,2})?([eE][-+]?[0-9]{1,3})?",
    ];
    let rows = proptest::collection::vec(proptest::collection::vec(cell, 3), 0..10);
    run("decoders/generated-rows", 500, rows, |rows| {
        let quote = |c: &String| format!("\"{}\"", c.replace('"', "\"\""));
        let mut csv = String::from("a,b,c\n");
        for r in &rows {
            csv.push_str(&r.iter().map(quote).collect::<Vec<_>>().join(","));
            csv.push('\n');
        }
        let d = Decoder::Csv
            .decode(csv.as_bytes())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = records_as_values(&d)?;
        prop_assert_eq!(got.len() + d.rejected.len(), rows.len());
        for v in &got {
            prop_assert!(v.get("a").is_some() && v.get("c").is_some(), "{}", v);
        }

        let body = json!({"fields": ["a", "b", "c"], "data": rows}).to_string();
        let d = Decoder::FieldsData {
            fields: "/fields".into(),
            data: "/data".into(),
            stamp: None,
        }
        .decode(body.as_bytes())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = records_as_values(&d)?;
        prop_assert_eq!(got.len(), rows.len());
        for (v, r) in got.iter().zip(&rows) {
            prop_assert_eq!(v, &json!({"a": r[0], "b": r[1], "c": r[2]}));
        }
        Ok(())
    });
}

/// Records (as text), rejects and the error of `body` fed to `d` in the pieces `cuts`
/// makes, everything taken after each piece.
fn in_pieces(
    d: &Decoder,
    body: &[u8],
    cuts: &[usize],
) -> (Vec<Vec<u8>>, Vec<String>, Option<String>) {
    let mut s = d.stream(&[]);
    let (mut records, mut rejected, mut error) = (Vec::new(), Vec::new(), None);
    let mut take = |s: &mut crate::decode::StreamDecoder| {
        let got = s.take();
        records.extend(got.records.iter().map(|r| r.as_bytes().to_vec()));
        rejected.extend(got.rejected.into_iter().map(|r| r.reason));
    };
    let mut at = 0;
    for &cut in cuts.iter().chain([body.len()].iter()) {
        let cut = cut.clamp(at, body.len());
        if let Err(e) = s.feed(&body[at..cut]) {
            error = Some(e.to_string());
            break;
        }
        take(&mut s);
        at = cut;
    }
    if error.is_none() {
        error = s.finish().err().map(|e| e.to_string());
    }
    take(&mut s);
    (records, rejected, error)
}

#[test]
fn decoders_decode_any_body_alike_however_it_is_cut() {
    let cuts = proptest::collection::vec(any::<prop::sample::Index>(), 0..6);
    run(
        "decoders/split-bodies",
        1_000,
        (arb_body(), cuts),
        |(body, cuts)| {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
            at.sort_unstable();
            for d in decoders() {
                prop_assert_eq!(
                    in_pieces(&d, &body, &at),
                    in_pieces(&d, &body, &[]),
                    "{:?}",
                    d
                );
            }
            Ok(())
        },
    );
}
