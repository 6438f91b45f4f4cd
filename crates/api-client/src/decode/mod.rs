//! Decoders: JSON (records at a pointer), GeoJSON, CSV, NDJSON, and `fields`+`data`
//! tables, each fed the body piece by piece as it arrives (`StreamDecoder`). A
//! malformed record is rejected alone; the rest are kept.

mod csv;
mod json;
mod scan;
#[cfg(test)]
mod split_tests;

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::{Error, Rejected};
use stream_contracts::{put_json_str, Record, RecordWriter};

/// How a response body becomes records.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decoder {
    /// JSON: the array at `pointer` (default: the root), or the object there as one record.
    Json {
        /// JSON pointer to the records, e.g. `/data` (empty: the root).
        #[serde(default)]
        pointer: String,
    },
    /// A GeoJSON FeatureCollection: one record per feature (a single Feature: one record).
    Geojson,
    /// CSV with a header row; numbers typed where they parse.
    Csv,
    /// One JSON value per line.
    Ndjson,
    /// `{"fields": [...], "data": [[...], ...]}` (PurpleAir): each row becomes an object.
    FieldsData {
        /// Pointer to the field names.
        #[serde(default = "default_fields")]
        fields: String,
        /// Pointer to the rows.
        #[serde(default = "default_data")]
        data: String,
        /// Pointer to a value of the whole response (PurpleAir's `/time_stamp`, when
        /// the answer was made) added to every row under the pointer's last token,
        /// unless a column has that name: each row carries the time of the answer it
        /// came in, and an incremental cursor can take it.
        #[serde(default)]
        stamp: Option<String>,
    },
}

fn default_fields() -> String {
    "/fields".to_owned()
}
fn default_data() -> String {
    "/data".to_owned()
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::Json {
            pointer: String::new(),
        }
    }
}

/// Decoded records and rejects; `json` tells whether the body was JSON (pagination
/// reads links and tokens from it then).
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records, each serialized once (a compact copy of its text in the body, or built
    /// from a CSV row or a fields+data row).
    pub records: Vec<Record>,
    /// Records that could not be decoded.
    pub rejected: Vec<Rejected>,
    /// The body is one JSON value (checked whole).
    pub json: bool,
    /// Bytes of `records`.
    pub bytes: usize,
}

/// A record is handed on once this many bytes of records are decoded and not yet taken
/// ([`StreamDecoder::held_bytes`]) …
pub const HAND_ON_BYTES: usize = 1 << 20;
/// … or this many records and rejects.
pub const HAND_ON_RECORDS: usize = 4096;

impl Decoded {
    fn push(&mut self, record: Record) {
        self.bytes += record.len();
        self.records.push(record);
    }
}

impl Decoder {
    /// Decodes a whole body: [`Decoder::stream`] fed it at once. JSON is never built
    /// into a tree: records are found and copied as text, and only the few values a
    /// decision needs (a feature's `type`, the field names) are parsed.
    pub fn decode(&self, body: &[u8]) -> Result<Decoded, Error> {
        let mut s = self.stream(&[]);
        s.feed(body)?;
        s.finish()?;
        Ok(s.take())
    }

    /// A decoder fed the body piece by piece as it arrives, holding only the record in
    /// progress; `capture` names JSON pointers whose values are kept for the caller
    /// ([`StreamDecoder::value_at`]: a next-page link or token).
    pub fn stream(&self, capture: &[String]) -> StreamDecoder {
        let inner = match self {
            Decoder::Json { pointer } => {
                Inner::Json(Box::new(json::JsonDecoder::plain(pointer, capture)))
            }
            Decoder::Geojson => Inner::Json(Box::new(json::JsonDecoder::geo(capture))),
            Decoder::Csv => Inner::Csv(Box::default()),
            Decoder::Ndjson => Inner::Lines(Lines::default()),
            Decoder::FieldsData {
                fields,
                data,
                stamp,
            } => Inner::Json(Box::new(json::JsonDecoder::fields_data(
                fields,
                data,
                stamp.as_deref(),
                capture,
            ))),
        };
        StreamDecoder {
            json: matches!(inner, Inner::Json(_)),
            capture: capture.to_vec(),
            inner,
            out: Decoded::default(),
        }
    }
}

#[derive(Debug)]
enum Inner {
    Json(Box<json::JsonDecoder>),
    Csv(Box<csv::CsvDecoder>),
    Lines(Lines),
}

/// A body decoded as it arrives: [`feed`](Self::feed) each piece, [`take`](Self::take)
/// what is decoded whenever it suits (after [`held`](Self::held) records or
/// [`held_bytes`](Self::held_bytes) bytes), [`finish`](Self::finish) at the end. A
/// record cut between two pieces is carried over; a body that is not what the decoder
/// reads fails with the byte offset where it stops being so, after the records before
/// that point were decoded (and can be taken).
#[derive(Debug)]
pub struct StreamDecoder {
    inner: Inner,
    out: Decoded,
    json: bool,
    capture: Vec<String>,
}

impl StreamDecoder {
    /// Decodes the next piece of the body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        match &mut self.inner {
            Inner::Json(d) => d.feed(bytes, &mut self.out),
            Inner::Csv(d) => d.feed(bytes, &mut self.out),
            Inner::Lines(d) => {
                d.feed(bytes, &mut self.out);
                Ok(())
            }
        }
    }

    /// The body ended.
    pub fn finish(&mut self) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Json(d) => d.finish(&mut self.out),
            Inner::Csv(d) => d.feed(&[], &mut self.out),
            Inner::Lines(d) => {
                d.finish(&mut self.out);
                Ok(())
            }
        }
    }

    /// Records and rejects decoded since the last `take`.
    pub fn take(&mut self) -> Decoded {
        let json = self.json;
        let mut d = std::mem::take(&mut self.out);
        d.json = json;
        d
    }

    /// Records and rejects decoded and not yet taken.
    pub fn held(&self) -> usize {
        self.out.records.len() + self.out.rejected.len()
    }

    /// Bytes of the records decoded and not yet taken.
    pub fn held_bytes(&self) -> usize {
        self.out.bytes
    }

    /// Whether enough is held to hand on ([`HAND_ON_BYTES`], [`HAND_ON_RECORDS`]).
    pub fn ready(&self) -> bool {
        self.held_bytes() >= HAND_ON_BYTES || self.held() >= HAND_ON_RECORDS
    }

    /// The value at `pointer` (one of those given to [`Decoder::stream`]) once it has
    /// arrived, in a JSON body.
    pub fn value_at(&self, pointer: &str) -> Option<Value> {
        let i = self.capture.iter().position(|p| p == pointer)?;
        match &self.inner {
            Inner::Json(d) => d.extra(i),
            _ => None,
        }
    }
}

/// NDJSON: one record per line, a line cut between pieces carried over.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
    line: u64,
    w: RecordWriter,
}

impl Lines {
    fn feed(&mut self, mut bytes: &[u8], out: &mut Decoded) {
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', bytes) {
                None => {
                    self.partial.extend_from_slice(bytes);
                    return;
                }
                Some(n) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&bytes[..n]);
                    self.one(&line, out);
                    bytes = &bytes[n + 1..];
                }
            }
        }
        while let Some(n) = memchr::memchr(b'\n', bytes) {
            self.one(&bytes[..n], out);
            bytes = &bytes[n + 1..];
        }
        self.partial.extend_from_slice(bytes);
    }

    fn finish(&mut self, out: &mut Decoded) {
        let line = std::mem::take(&mut self.partial);
        self.one(&line, out);
    }

    fn one(&mut self, line: &[u8], out: &mut Decoded) {
        self.line += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        // As text (`RawValue`), so invalid UTF-8 is refused; ignoring the value would
        // not check it.
        match serde_json::from_slice::<&RawValue>(line) {
            Ok(_) => out.push(self.w.valid_json(line)),
            Err(e) => out.rejected.push(Rejected::new(
                format!("invalid JSON on line {}: {e}", self.line),
                line,
            )),
        }
    }
}

/// Writes a CSV cell typed: a cell spelled as a JSON number becomes that number, as
/// written (`1.50`, `1e3`, a 30-digit integer); anything else stays text, so a code
/// with a leading zero (FIRMS `acq_time` `0954`, a ZIP code, a station id) keeps it,
/// and `+5`, `.5`, `1.`, `inf`, `NaN` and `1e400` (beyond a double) are strings too.
fn put_typed(out: &mut BytesMut, cell: &str) {
    // A number beyond f64 (`1e400`) is JSON by grammar but no parser reads it back;
    // only an exponent or 300+ digits can get there, so only those are parsed.
    let b = cell.as_bytes();
    let may_overflow = b.len() > 300 || b.iter().any(|c| matches!(c, b'e' | b'E'));
    if is_json_number(b) && (!may_overflow || cell.parse::<f64>().is_ok_and(f64::is_finite)) {
        out.extend_from_slice(cell.as_bytes());
    } else if b.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\') {
        // Nothing to escape (the usual cell): quoted as it is.
        out.extend_from_slice(b"\"");
        out.extend_from_slice(b);
        out.extend_from_slice(b"\"");
    } else {
        put_json_str(out, cell);
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`: JSON's number grammar.
fn is_json_number(s: &[u8]) -> bool {
    let digits = |s: &[u8], i: usize| s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = usize::from(s.first() == Some(&b'-'));
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(s, i),
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        let n = digits(s, i + 1);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(s, i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == s.len()
}

/// Column names, each written once as `"name":`, for rows that become objects.
#[derive(Debug)]
struct Columns {
    keys: Vec<Vec<u8>>,
    /// The keys' total length.
    len: usize,
    /// A member written after the cells of every row (`"key":value`), or empty.
    tail: Vec<u8>,
}

impl Columns {
    fn new(names: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let keys: Vec<Vec<u8>> = names
            .into_iter()
            .map(|n| {
                let mut k = BytesMut::new();
                put_json_str(&mut k, n.as_ref());
                k.extend_from_slice(b":");
                k.to_vec()
            })
            .collect();
        let len = keys.iter().map(Vec::len).sum();
        Self {
            keys,
            len,
            tail: Vec::new(),
        }
    }

    fn count(&self) -> usize {
        self.keys.len()
    }

    /// One row as an object record: each cell written by `put` after its column's key
    /// (`cells_len`: about how many bytes the cells take).
    fn object<C>(
        &self,
        w: &mut RecordWriter,
        cells_len: usize,
        cells: impl IntoIterator<Item = C>,
        put: impl Fn(&mut BytesMut, C),
    ) -> Record {
        w.build(cells_len + self.len + self.tail.len() + 3, |b| {
            b.extend_from_slice(b"{");
            for (i, (key, cell)) in self.keys.iter().zip(cells).enumerate() {
                if i > 0 {
                    b.extend_from_slice(b",");
                }
                b.extend_from_slice(key);
                put(b, cell);
            }
            if !self.tail.is_empty() {
                if !self.keys.is_empty() {
                    b.extend_from_slice(b",");
                }
                b.extend_from_slice(&self.tail);
            }
            b.extend_from_slice(b"}");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_at_pointer_root_and_single_object() {
        let body = br#"{"data": {"items": [{"a": 1}, {"a": 2}]}, "one": {"b": 1}}"#;
        let d = Decoder::Json {
            pointer: "/data/items".into(),
        }
        .decode(body)
        .unwrap();
        assert_eq!(d.records, vec![json!({"a": 1}), json!({"a": 2})]);
        let d = Decoder::Json {
            pointer: "/one".into(),
        }
        .decode(body)
        .unwrap();
        assert_eq!(d.records, vec![json!({"b": 1})]);
        let d = Decoder::default().decode(b"[1, 2, 3]").unwrap();
        assert_eq!(d.records.len(), 3);
        assert!(Decoder::default().decode(b"{nope").is_err());
    }

    #[test]
    fn geojson_features() {
        let body = br#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "a", "geometry": null, "properties": {}},
            {"type": "Nope"}
        ]}"#;
        let d = Decoder::Geojson.decode(body).unwrap();
        assert_eq!(d.records.len(), 1);
        assert_eq!(d.rejected.len(), 1);
        // A single Feature is one record, compacted; invalid UTF-8 anywhere in it (here
        // in a member the decoder never reads) makes the body an error.
        let one = Decoder::Geojson
            .decode(b"{ \"type\": \"Feature\", \"properties\": {\"n\": 1} }")
            .unwrap();
        assert_eq!(
            one.records[0].as_bytes(),
            br#"{"type":"Feature","properties":{"n":1}}"#
        );
        assert!(Decoder::Geojson
            .decode(b"{\"type\": \"Feature\", \"properties\": {\"n\": \"\xff\"}}")
            .is_err());
    }

    #[test]
    fn csv_typed_and_bad_rows_rejected() {
        let body = b"latitude,longitude,acq_date,confidence\n34.1,-118.2,2026-11-01,n\n35,-119.5\n36.5,-120,2026-11-02,h\n";
        let d = Decoder::Csv.decode(body).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(
            d.records[0],
            json!({"latitude": 34.1, "longitude": -118.2, "acq_date": "2026-11-01", "confidence": "n"})
        );
        assert_eq!(d.records[1].pointer("/longitude"), Some(json!(-120)));
        assert_eq!(d.rejected.len(), 1);
        assert!(d.rejected[0].reason.contains("row 3"), "{:?}", d.rejected);
    }

    #[test]
    fn csv_numbers_are_kept_as_written_and_leading_zeros_stay_text() {
        let body = b"acq_time,zip,bright,big,plus,dot,inf,neg,exp,zero,huge\n0954,02134,301.50,123456789012345678901234567890,+5,.5,inf,-0.25,1e3,0,1e400\n";
        let d = Decoder::Csv.decode(body).unwrap();
        assert_eq!(
            std::str::from_utf8(d.records[0].as_bytes()).unwrap(),
            r#"{"acq_time":"0954","zip":"02134","bright":301.50,"big":123456789012345678901234567890,"plus":"+5","dot":".5","inf":"inf","neg":-0.25,"exp":1e3,"zero":0,"huge":"1e400"}"#
        );
        for (text, number) in [
            ("0", true),
            ("-0", true),
            ("10", true),
            ("1.0", true),
            ("1E-7", true),
            ("00", false),
            ("01", false),
            ("1.", false),
            ("-", false),
            ("", false),
            ("1e", false),
            ("1e+", false),
            ("0x10", false),
            (" 1", false),
            ("NaN", false),
        ] {
            assert_eq!(is_json_number(text.as_bytes()), number, "{text:?}");
        }
    }

    #[test]
    fn ndjson_keeps_good_lines() {
        let d = Decoder::Ndjson
            .decode(b"{\"a\":1}\n{broken\n\n{\"a\":3}\r\n{\"b\":\"\xff\"}\n")
            .unwrap();
        assert_eq!(d.records, vec![json!({"a": 1}), json!({"a": 3})]);
        assert_eq!(d.rejected.len(), 2, "{:?}", d.rejected);
        assert!(d.rejected[0].reason.contains("line 2"));
        assert_eq!(d.rejected[0].excerpt, "{broken");
    }

    #[test]
    fn fields_data_rows_become_objects() {
        let body = br#"{"fields": ["sensor_index", "pm2.5"], "data": [[1, 3.5], [2, 7.0], [3]]}"#;
        let d = Decoder::FieldsData {
            fields: "/fields".into(),
            data: "/data".into(),
            stamp: None,
        }
        .decode(body)
        .unwrap();
        assert_eq!(
            d.records,
            vec![
                json!({"sensor_index": 1, "pm2.5": 3.5}),
                json!({"sensor_index": 2, "pm2.5": 7.0})
            ]
        );
        assert_eq!(d.rejected.len(), 1);
    }

    #[test]
    fn fields_data_rows_carry_the_stamp_of_the_answer() {
        let stamped = |body: &[u8]| {
            Decoder::FieldsData {
                fields: "/fields".into(),
                data: "/data".into(),
                stamp: Some("/time_stamp".into()),
            }
            .decode(body)
            .unwrap()
            .records
        };
        let body = br#"{"time_stamp": 1795740000, "fields": ["sensor_index"], "data": [[1], [2]]}"#;
        assert_eq!(
            stamped(body),
            vec![
                json!({"sensor_index": 1, "time_stamp": 1795740000}),
                json!({"sensor_index": 2, "time_stamp": 1795740000})
            ]
        );
        // A column of that name wins; no stamp in the answer, none in the rows; no
        // columns at all still makes an object.
        let own = br#"{"time_stamp": 5, "fields": ["time_stamp"], "data": [[1]]}"#;
        assert_eq!(stamped(own), vec![json!({"time_stamp": 1})]);
        let none = br#"{"fields": ["a"], "data": [[1]]}"#;
        assert_eq!(stamped(none), vec![json!({"a": 1})]);
        let empty = br#"{"time_stamp": {"x": [1, 2]}, "fields": [], "data": [[]]}"#;
        assert_eq!(stamped(empty), vec![json!({"time_stamp": {"x": [1, 2]}})]);
    }
}
