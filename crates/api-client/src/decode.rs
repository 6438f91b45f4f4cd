//! Decoders: JSON (records at a pointer), GeoJSON, CSV, NDJSON, and `fields`+`data`
//! tables. A malformed record is rejected alone; the rest are kept.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::source::{Error, Rejected};

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

/// Decoded records, rejects, and the parsed JSON body (for pagination) when there is one.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records.
    pub records: Vec<Value>,
    /// Records that could not be decoded.
    pub rejected: Vec<Rejected>,
    /// The body as JSON, for JSON-based decoders.
    pub json: Option<Value>,
}

impl Decoder {
    /// Decodes a body.
    pub fn decode(&self, body: &[u8]) -> Result<Decoded, Error> {
        match self {
            Decoder::Json { pointer } => {
                let mut json = parse_json(body)?;
                // The records are moved out, not cloned (half the decode time went to the
                // copy); what stays behind (links, tokens) is all pagination needs.
                let records = match json.pointer_mut(pointer) {
                    Some(Value::Array(items)) => std::mem::take(items),
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => vec![other.clone()],
                };
                Ok(Decoded {
                    records,
                    rejected: Vec::new(),
                    json: Some(json),
                })
            }
            Decoder::Geojson => {
                let mut json = parse_json(body)?;
                let mut out = Decoded::default();
                match json.get("type").and_then(Value::as_str) {
                    Some("FeatureCollection") => {
                        let features = match json.get_mut("features") {
                            Some(Value::Array(items)) => std::mem::take(items),
                            _ => Vec::new(),
                        };
                        for f in features {
                            if f.get("type").and_then(Value::as_str) == Some("Feature") {
                                out.records.push(f);
                            } else {
                                out.rejected.push(Rejected::new(
                                    "GeoJSON feature without `\"type\": \"Feature\"`",
                                    f.to_string().as_bytes(),
                                ));
                            }
                        }
                    }
                    Some("Feature") => out.records.push(json.clone()),
                    _ => {
                        return Err(Error::Decode(
                            "expected a GeoJSON FeatureCollection or Feature".to_owned(),
                        ))
                    }
                }
                out.json = Some(json);
                Ok(out)
            }
            Decoder::Csv => decode_csv(body),
            Decoder::Ndjson => {
                let mut out = Decoded::default();
                for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<Value>(line) {
                        Ok(v) => out.records.push(v),
                        Err(e) => out.rejected.push(Rejected::new(
                            format!("invalid JSON on line {}: {e}", i + 1),
                            line,
                        )),
                    }
                }
                Ok(out)
            }
            Decoder::FieldsData { fields, data } => {
                let json = parse_json(body)?;
                let names: Vec<String> = json
                    .pointer(fields)
                    .and_then(Value::as_array)
                    .ok_or_else(|| Error::Decode(format!("no field list at `{fields}`")))?
                    .iter()
                    .map(|f| {
                        f.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| f.to_string())
                    })
                    .collect();
                let mut out = Decoded::default();
                for row in json
                    .pointer(data)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match row.as_array() {
                        Some(cells) if cells.len() == names.len() => {
                            let obj: Map<String, Value> =
                                names.iter().cloned().zip(cells.iter().cloned()).collect();
                            out.records.push(Value::Object(obj));
                        }
                        _ => out.rejected.push(Rejected::new(
                            format!("row does not have the {} fields", names.len()),
                            row.to_string().as_bytes(),
                        )),
                    }
                }
                out.json = Some(json);
                Ok(out)
            }
        }
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| {
        let excerpt = Rejected::new("", body).excerpt;
        Error::Decode(format!(
            "invalid JSON ({e}); body starts with: {}",
            excerpt.chars().take(120).collect::<String>()
        ))
    })
}

/// A CSV cell typed: integers and floats become numbers, the rest stays text.
fn typed(cell: &str) -> Value {
    if let Ok(i) = cell.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Ok(f) = cell.parse::<f64>() {
        if let Some(n) = Number::from_f64(f) {
            return Value::Number(n);
        }
    }
    Value::String(cell.to_owned())
}

fn decode_csv(body: &[u8]) -> Result<Decoded, Error> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| Error::Decode(format!("CSV header row: {e}")))?
        .clone();
    let mut out = Decoded::default();
    for (i, row) in reader.records().enumerate() {
        match row {
            Ok(row) if row.len() == headers.len() => {
                let obj: Map<String, Value> = headers
                    .iter()
                    .map(str::to_owned)
                    .zip(row.iter().map(typed))
                    .collect();
                out.records.push(Value::Object(obj));
            }
            Ok(row) => out.rejected.push(Rejected::new(
                format!(
                    "CSV row {} has {} fields, the header has {}",
                    i + 2,
                    row.len(),
                    headers.len()
                ),
                row.as_slice().as_bytes(),
            )),
            Err(e) => out
                .rejected
                .push(Rejected::new(format!("CSV row {}: {e}", i + 2), b"")),
        }
    }
    Ok(out)
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
        assert_eq!(d.records[1]["longitude"], json!(-120));
        assert_eq!(d.rejected.len(), 1);
        assert!(d.rejected[0].reason.contains("row 3"), "{:?}", d.rejected);
    }

    #[test]
    fn ndjson_keeps_good_lines() {
        let d = Decoder::Ndjson
            .decode(b"{\"a\":1}\n{broken\n\n{\"a\":3}\r\n")
            .unwrap();
        assert_eq!(d.records, vec![json!({"a": 1}), json!({"a": 3})]);
        assert_eq!(d.rejected.len(), 1);
        assert!(d.rejected[0].reason.contains("line 2"));
        assert_eq!(d.rejected[0].excerpt, "{broken");
    }

    #[test]
    fn fields_data_rows_become_objects() {
        let body = br#"{"fields": ["sensor_index", "pm2.5"], "data": [[1, 3.5], [2, 7.0], [3]]}"#;
        let d = Decoder::FieldsData {
            fields: "/fields".into(),
            data: "/data".into(),
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
}
