//! Decoder throughput in MB/s: JSON records at a pointer, GeoJSON features, CSV rows
//! (2,000 records of realistic shape each).

use api_client::Decoder;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

const N: usize = 2000;

fn json_body() -> Vec<u8> {
    let items: Vec<_> = (0..N)
        .map(|i| {
            json!({
                "station_id": format!("sensor_{:03}", i % 100),
                "sequence": i,
                "timestamp": "2026-11-27T03:00:00.000Z",
                "latitude": 38.58 + i as f64 * 1e-4,
                "longitude": -121.49 - i as f64 * 1e-4,
                "temperature_c": 21.5,
                "humidity_pct": 34.2,
                "wind_speed_ms": 3.4,
                "pm25_ugm3": 12.7
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "data": items, "next": null })).unwrap()
}

fn geojson_body() -> Vec<u8> {
    let features: Vec<_> = (0..N)
        .map(|i| {
            json!({
                "type": "Feature",
                "geometry": { "type": "Point", "coordinates": [-121.49 - i as f64 * 1e-4, 38.58, 10.2] },
                "properties": { "mag": 2.1, "place": "10 km N of Somewhere, CA", "time": 1795747900461u64 + i as u64, "id": format!("ci{i}") }
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "type": "FeatureCollection", "features": features })).unwrap()
}

fn csv_body() -> Vec<u8> {
    let mut s = String::from(
        "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,version,bright_ti5,frp,daynight\n",
    );
    for i in 0..N {
        s.push_str(&format!(
            "{:.5},{:.5},330.{},0.39,0.36,2026-11-27,{:04},N,nominal,2.0NRT,290.1,{}.4,D\n",
            38.5 + i as f64 * 1e-4,
            -121.4 - i as f64 * 1e-4,
            i % 10,
            i % 2400,
            i % 90
        ));
    }
    s.into_bytes()
}

fn decoders(c: &mut Criterion) {
    let cases = [
        (
            "json_pointer",
            Decoder::Json {
                pointer: "/data".to_owned(),
            },
            json_body(),
        ),
        ("geojson", Decoder::Geojson, geojson_body()),
        ("csv", Decoder::Csv, csv_body()),
    ];
    let mut g = c.benchmark_group("decode");
    for (name, decoder, body) in &cases {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                let d = decoder.decode(body).unwrap();
                assert_eq!(d.records.len(), N);
                d
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = decoders
}
criterion_main!(benches);
