//! Data-contract cost per record: a full NWS observation (all 18 measurements, as
//! api.weather.gov sends them, ≈ 2.1 KB compacted) against the built-in
//! `noaa_observation` schema — the fast path on the record's text (what the pipeline
//! does per valid record), and the full path: parsing the text, validating it, both
//! (what a record the fast path cannot pass costs), and an invalid record with its
//! errors collected (what a dead letter costs).

use api_client::schema_scan::{ScanSchema, Verdict};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

fn measurement(unit: &str, value: f64) -> Value {
    json!({ "unitCode": format!("wmoUnit:{unit}"), "value": value, "qualityControl": "V" })
}

fn observation() -> Value {
    json!({
        "@context": ["https://geojson.org/geojson-ld/geojson-context.jsonld", { "@version": "1.1" }],
        "id": "https://api.weather.gov/stations/KSAC/observations/2026-11-27T00:53:00+00:00",
        "type": "Feature",
        "geometry": { "type": "Point", "coordinates": [-121.5, 38.52] },
        "properties": {
            "@id": "https://api.weather.gov/stations/KSAC/observations/2026-11-27T00:53:00+00:00",
            "@type": "wx:ObservationStation",
            "elevation": measurement("m", 8.0),
            "station": "https://api.weather.gov/stations/KSAC",
            "stationId": "KSAC",
            "stationName": "Sacramento Executive Airport",
            "timestamp": "2026-11-27T00:53:00+00:00",
            "rawMessage": "KSAC 270053Z 32012KT 10SM CLR 14/M03 A3012 RMK AO2 SLP199 T01440033",
            "textDescription": "Clear",
            "icon": "https://api.weather.gov/icons/land/night/skc?size=medium",
            "presentWeather": [],
            "temperature": measurement("degC", 14.4),
            "dewpoint": measurement("degC", -3.3),
            "windDirection": measurement("degree_(angle)", 320.0),
            "windSpeed": measurement("km_h-1", 22.3),
            "windGust": { "unitCode": "wmoUnit:km_h-1", "value": null, "qualityControl": "Z" },
            "barometricPressure": measurement("Pa", 102_030.0),
            "seaLevelPressure": measurement("Pa", 101_990.0),
            "visibility": measurement("m", 16_090.0),
            "maxTemperatureLast24Hours": { "unitCode": "wmoUnit:degC", "value": null },
            "minTemperatureLast24Hours": { "unitCode": "wmoUnit:degC", "value": null },
            "precipitationLastHour": measurement("mm", 0.0),
            "precipitationLast3Hours": measurement("mm", 0.0),
            "precipitationLast6Hours": measurement("mm", 0.0),
            "relativeHumidity": measurement("percent", 31.2),
            "windChill": { "unitCode": "wmoUnit:degC", "value": null, "qualityControl": "V" },
            "heatIndex": { "unitCode": "wmoUnit:degC", "value": null, "qualityControl": "V" },
            "cloudLayers": [{ "base": { "unitCode": "wmoUnit:m", "value": null }, "amount": "CLR" }]
        }
    })
}

fn contracts(c: &mut Criterion) {
    let schema: Value =
        serde_json::from_str(api_client::builtin_schema("noaa_observation").unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let record = observation();
    let text = serde_json::to_vec(&record).unwrap();
    assert!(validator.is_valid(&record));
    let mut bad = record.clone();
    bad["properties"]["temperature"]["value"] = json!("14.4");
    bad["properties"]["station"] = json!(null);
    assert!(!validator.is_valid(&bad));

    let mut g = c.benchmark_group(format!("noaa_observation ({} B)", text.len()));
    g.throughput(Throughput::Elements(1));
    let fast = ScanSchema::compile(&schema).expect("the fast path takes the NWS schema");
    assert_eq!(fast.check(&text), Verdict::Valid);
    g.bench_function("fast path on the text (per record, schema on)", |b| {
        b.iter(|| fast.check(std::hint::black_box(&text)))
    });
    // The floor: the grammar alone (schema `{}`), what any schema costs at least.
    let any = ScanSchema::compile(&json!({})).unwrap();
    g.bench_function("fast path, grammar only (schema {})", |b| {
        b.iter(|| any.check(std::hint::black_box(&text)))
    });
    g.bench_function("parse record text", |b| {
        b.iter(|| serde_json::from_slice::<Value>(std::hint::black_box(&text)).unwrap())
    });
    g.bench_function("validate parsed record", |b| {
        b.iter(|| validator.is_valid(std::hint::black_box(&record)))
    });
    g.bench_function("full path: parse + validate", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(std::hint::black_box(&text)).unwrap();
            validator.is_valid(&v)
        })
    });
    g.bench_function("invalid: collect errors", |b| {
        b.iter(|| {
            validator
                .iter_errors(std::hint::black_box(&bad))
                .map(|e| e.instance_path().as_str().len())
                .sum::<usize>()
        })
    });
    g.finish();
    c.bench_function("compile noaa_observation schema", |b| {
        b.iter(|| jsonschema::validator_for(std::hint::black_box(&schema)).unwrap())
    });
}

/// The pipeline bench's sensor reading (`stream-manager/benches/pipeline/fair.rs`) and
/// its contract, bare (≈ 230 B) and padded with a 1.8 KB `notes` string (≈ 2 KB).
fn sensor_records(c: &mut Criterion) {
    let schema: Value = serde_json::from_str(r#"{ "type": "object", "required": ["station_id", "sequence", "timestamp", "latitude", "longitude", "temperature_c"], "properties": { "station_id": { "type": "string", "pattern": "^sensor_\\d+$" }, "sequence": { "type": "integer", "minimum": 0 }, "timestamp": { "type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}" }, "latitude": { "type": "number", "minimum": -90, "maximum": 90 }, "longitude": { "type": "number", "minimum": -180, "maximum": 180 }, "temperature_c": { "type": "number" }, "humidity_pct": { "type": "number", "minimum": 0, "maximum": 100 }, "wind_speed_ms": { "type": "number", "minimum": 0 }, "wind_direction_deg": { "type": "integer", "minimum": 0, "maximum": 360 }, "pm25_ugm3": { "type": "number", "minimum": 0 }, "alert_id": { "type": "string" }, "severity": { "type": "string" }, "alert_type": { "type": "string" }, "notes": { "type": "string" } } }"#).unwrap();
    let fast = ScanSchema::compile(&schema).expect("the fast path takes the sensor schema");
    let mut record = json!({ "station_id": "sensor_0042", "sequence": 183_311, "timestamp": "2026-11-26T12:00:01.250Z", "latitude": 38.5123, "longitude": -121.4932, "temperature_c": 14.37, "humidity_pct": 31.2, "wind_speed_ms": 3.25, "wind_direction_deg": 270, "pm25_ugm3": 12.5 });
    let mut g = c.benchmark_group("sensor reading");
    g.throughput(Throughput::Elements(1));
    for pad in [0usize, 1800] {
        if pad > 0 {
            let notes: String = (0..pad)
                .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
                .collect();
            record["notes"] = json!(notes);
        }
        let text = serde_json::to_vec(&record).unwrap();
        assert_eq!(fast.check(&text), Verdict::Valid);
        g.bench_function(format!("fast path ({} B)", text.len()), |b| {
            b.iter(|| fast.check(std::hint::black_box(&text)))
        });
    }
    g.finish();
}

criterion_group!(benches, contracts, sensor_records);
criterion_main!(benches);
