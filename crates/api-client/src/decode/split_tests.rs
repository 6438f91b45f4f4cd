//! The streaming decoders against themselves: a body fed in pieces split anywhere
//! decodes to exactly what the whole body decodes to, errors included (same byte
//! offset).

use serde_json::json;

use super::*;

/// Records (as text), rejects and the error of `body` fed in the pieces `cuts` makes.
fn run(d: &Decoder, body: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, Vec<Rejected>, Option<String>) {
    let mut s = d.stream(&["/next".to_owned()]);
    let (mut records, mut rejected) = (Vec::new(), Vec::new());
    let mut at = 0;
    let mut error = None;
    for &cut in cuts.iter().chain([body.len()].iter()) {
        if let Err(e) = s.feed(&body[at..cut]) {
            error = Some(e.to_string());
            break;
        }
        let got = s.take();
        records.extend(got.records.iter().map(|r| r.as_bytes().to_vec()));
        rejected.extend(got.rejected);
        at = cut;
    }
    if error.is_none() {
        error = s.finish().err().map(|e| e.to_string());
    }
    let got = s.take();
    records.extend(got.records.iter().map(|r| r.as_bytes().to_vec()));
    rejected.extend(got.rejected);
    (records, rejected, error)
}

/// Every split in two, and 200 random splits into up to 12 pieces (fixed seed).
fn same_at_every_split(d: &Decoder, body: &[u8]) {
    let whole = run(d, body, &[]);
    for cut in 0..=body.len() {
        assert_eq!(run(d, body, &[cut]), whole, "{d:?} split at {cut}");
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let n = (next() % 12) as usize;
        let mut cuts: Vec<usize> = (0..n)
            .map(|_| (next() % (body.len() as u64 + 1)) as usize)
            .collect();
        cuts.sort_unstable();
        assert_eq!(run(d, body, &cuts), whole, "{d:?} cut at {cuts:?}");
    }
}

fn geojson_body() -> Vec<u8> {
    let features: Vec<_> = (0..6)
        .map(|i| {
            json!({"type": "Feature", "id": format!("us{i}"),
                   "geometry": {"type": "Point", "coordinates": [-121.5 - f64::from(i), 38.25, 1.5e1]},
                   "properties": {"mag": 2.5, "place": "10 km N of \"Somewhere\", CA \u{e9}\u{1F525}", "time": 1_795_747_900_461u64 + i as u64}})
        })
        .collect();
    let mut doc = json!({"type": "FeatureCollection", "metadata": {"count": 6, "url": "https://x/\\/y"},
                         "features": features, "bbox": [-180, -90, 180, 90]});
    doc["features"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Nope"}));
    serde_json::to_string_pretty(&doc).unwrap().into_bytes()
}

#[test]
fn json_at_a_pointer_and_geojson_decode_alike_however_the_body_is_cut() {
    let body = br#" { "next": "/p?2", "data": [ {"a": [1, -2.5e-3, true, null]}, "s\u00e9\"\\", 0, -0.5, 123,
        {"nested": {"data": [9]}}, [] , {} ], "tail": {"data": 7} } "#;
    let d = Decoder::Json {
        pointer: "/data".into(),
    };
    let whole = run(&d, body, &[]);
    assert_eq!(whole.0.len(), 8, "{whole:?}");
    assert_eq!(whole.2, None);
    same_at_every_split(&d, body);
    let mut s = d.stream(&["/next".to_owned()]);
    s.feed(body).unwrap();
    assert_eq!(s.value_at("/next"), Some(json!("/p?2")));
    same_at_every_split(&Decoder::default(), b"[1,[2,[3]],{\"x\":\"y\"}]");
    same_at_every_split(&Decoder::default(), b"{\"one\": \"object\"}");
    same_at_every_split(&Decoder::default(), b"  42  ");
    let geo = geojson_body();
    let got = run(&Decoder::Geojson, &geo, &[]);
    assert_eq!((got.0.len(), got.1.len(), got.2), (6, 1, None));
    same_at_every_split(&Decoder::Geojson, &geo);
    same_at_every_split(
        &Decoder::Geojson,
        b"{\"properties\": {\"n\": 1}, \"type\": \"Feature\"}",
    );
}

#[test]
fn csv_ndjson_and_fields_data_decode_alike_however_the_body_is_cut() {
    let csv = "latitude,longitude,acq_date,acq_time,confidence,note\n\
               34.1,-118.2,2026-11-01,0954,n,\"quoted, with comma\"\r\n\
               35,-119.5\n\
               36.5,-120,2026-11-02,1200,h,\"multi\nline \"\"quote\"\"\"\n\
               \n\
               37,-121,2026-11-03,0001,l,caf\u{e9}\n"
        .as_bytes();
    let got = run(&Decoder::Csv, csv, &[]);
    assert_eq!((got.0.len(), got.1.len(), &got.2), (3, 1, &None), "{got:?}");
    same_at_every_split(&Decoder::Csv, csv);
    same_at_every_split(&Decoder::Csv, b"a,b\n1,2");
    let nd = b"{\"a\":1}\n{broken\n\n  {\"a\": [3, 4]}  \r\n{\"b\":\"\xff\"}\n{\"c\":\"\xc3\xa9\"}";
    let got = run(&Decoder::Ndjson, nd, &[]);
    assert_eq!((got.0.len(), got.1.len()), (3, 2), "{got:?}");
    same_at_every_split(&Decoder::Ndjson, nd);
    let fd = br#"{"time_stamp": 1795740000, "fields": ["sensor_index", "pm2.5"],
        "data": [[1, 3.5], [2, 7.0], [3], [4, {"x": [1]}]]}"#;
    let d = Decoder::FieldsData {
        fields: "/fields".into(),
        data: "/data".into(),
        stamp: Some("/time_stamp".into()),
    };
    let got = run(&d, fd, &[]);
    assert_eq!((got.0.len(), got.1.len(), &got.2), (3, 1, &None), "{got:?}");
    assert_eq!(
        got.0[0],
        br#"{"sensor_index":1,"pm2.5":3.5,"time_stamp":1795740000}"#
    );
    same_at_every_split(&d, fd);
    // Rows before the field names are held until the names come.
    same_at_every_split(&d, br#"{"data": [[1], [2, 3]], "fields": ["a"]}"#);
}

#[test]
fn a_body_broken_half_way_fails_at_its_byte_offset_after_the_records_before_it() {
    let d = Decoder::Json {
        pointer: "/data".into(),
    };
    for (body, offset, records) in [
        (&br#"{"data": [{"a": 1}, {"a": 2}, {"a": 3 x}]}"#[..], 38, 2),
        (br#"{"data": [1, 2] "#, 16, 2),
        (br#"{"data": [1, 2]} trailing"#, 17, 2),
        (b"{\"data\": [1, \"\xff\"]}", 14, 1),
        (b"{\"data\": [1, \"a\x01\"]}", 15, 1),
        (br#"{"data": [1, 01]}"#, 14, 2),
        (b"", 0, 0),
        (b"<html>", 0, 0),
    ] {
        let (got, _, error) = run(&d, body, &[]);
        let error = error.expect("an error");
        assert!(
            error.contains(&format!("at byte {offset}:")),
            "{:?}: {error}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(got.len(), records, "{error}");
        same_at_every_split(&d, body);
    }
    // GeoJSON that is not a collection, a Feature, nor JSON at all.
    let (_, _, e) = run(&Decoder::Geojson, br#"{"type": "Point"}"#, &[]);
    assert!(e.unwrap().contains("FeatureCollection"));
}
