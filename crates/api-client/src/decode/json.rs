//! The JSON decoders as the body arrives: records at a pointer, GeoJSON features, and
//! `fields`+`data` rows, on the push scanner (`scan.rs`).

use bytes::BytesMut;
use serde_json::value::RawValue;
use serde_json::Value;

use super::scan::{Found, JsonScan, ScanError};
use super::{Columns, Decoded};
use crate::{Error, Rejected};
use stream_contracts::pointer::{locate, pointer_tokens};
use stream_contracts::{compact_into, put_json_str, RecordWriter};

/// The most a captured value (a field list, a stamp, a next link, a GeoJSON document
/// while its `type` is unknown) may hold.
const MAX_CAPTURE: u64 = 16 << 20;

#[derive(Debug)]
pub(super) enum Kind {
    /// Array elements are records; a value that is not an array is one (unless null).
    Plain,
    /// Captures: 1 the root's `type`, 2 the root itself (a single Feature).
    Geo,
    /// Captures: 1 the field names, 2 the stamp (if any).
    FieldsData {
        fields: String,
        stamp_name: Option<String>,
        columns: Option<Columns>,
        /// Rows that came before the field names.
        held: Vec<Vec<u8>>,
    },
}

/// A JSON-family decoder fed piece by piece.
#[derive(Debug)]
pub(super) struct JsonDecoder {
    scan: JsonScan,
    kind: Kind,
    /// Captured values by capture index (pagination's pointers follow the kind's own).
    captured: Vec<Option<Vec<u8>>>,
    /// The first capture index that is the caller's (pagination).
    extra: usize,
    /// The first bytes of the body (for an error's excerpt).
    head: Vec<u8>,
    w: RecordWriter,
}

fn tokens(pointer: &str) -> Vec<String> {
    pointer_tokens(pointer).unwrap_or_default()
}

impl JsonDecoder {
    pub(super) fn plain(pointer: &str, extra: &[String]) -> Self {
        Self::new(Kind::Plain, vec![tokens(pointer)], extra)
    }

    pub(super) fn geo(extra: &[String]) -> Self {
        Self::new(
            Kind::Geo,
            vec![tokens("/features"), tokens("/type"), Vec::new()],
            extra,
        )
    }

    pub(super) fn fields_data(
        fields: &str,
        data: &str,
        stamp: Option<&str>,
        extra: &[String],
    ) -> Self {
        let mut pointers = vec![tokens(data), tokens(fields)];
        let stamp_name = stamp.and_then(|p| {
            let t = pointer_tokens(p)?;
            let name = t.last()?.clone();
            pointers.push(t);
            Some(name)
        });
        let kind = Kind::FieldsData {
            fields: fields.to_owned(),
            stamp_name,
            columns: None,
            held: Vec::new(),
        };
        Self::new(kind, pointers, extra)
    }

    fn new(kind: Kind, mut pointers: Vec<Vec<String>>, extra: &[String]) -> Self {
        let first_extra = pointers.len();
        pointers.extend(extra.iter().map(|p| tokens(p)));
        Self {
            captured: vec![None; pointers.len()],
            scan: JsonScan::new(pointers),
            kind,
            extra: first_extra,
            head: Vec::new(),
            w: RecordWriter::default(),
        }
    }

    /// The value captured at the caller's `i`-th pointer.
    pub(super) fn extra(&self, i: usize) -> Option<Value> {
        let raw = self.captured.get(self.extra + i)?.as_deref()?;
        serde_json::from_slice(raw).ok()
    }

    fn error(&self, e: ScanError) -> Error {
        // Up to the offending byte: the same however the body was cut.
        let n = self.head.len().min(e.offset as usize + 1);
        let excerpt = Rejected::new("", &self.head[..n]).excerpt;
        Error::Decode(format!(
            "invalid JSON at byte {}: {}; body starts with: {}",
            e.offset,
            e.what,
            excerpt.chars().take(120).collect::<String>()
        ))
    }

    pub(super) fn feed(&mut self, bytes: &[u8], out: &mut Decoded) -> Result<(), Error> {
        if self.head.len() < 120 {
            let n = (120 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
        }
        let fed = self.scan.feed(bytes);
        self.take_spans(out);
        fed.map_err(|e| self.error(e))?;
        if let Kind::Geo = self.kind {
            // Known to be a collection (the usual case: `type` comes first): the
            // document need not be kept whole.
            let collection = self.captured[1].as_deref() == Some(b"\"FeatureCollection\"");
            if collection || self.scan.open_capture_bytes(2) > MAX_CAPTURE {
                self.scan.abandon(2);
            }
        }
        for i in 1..self.captured.len() {
            if self.scan.open_capture_bytes(i) > MAX_CAPTURE {
                self.scan.abandon(i);
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self, out: &mut Decoded) -> Result<(), Error> {
        let done = self.scan.finish();
        self.take_spans(out);
        done.map_err(|e| self.error(e))?;
        match &mut self.kind {
            Kind::Plain => Ok(()),
            Kind::Geo => {
                let kind = self.captured[1]
                    .as_deref()
                    .and_then(|t| serde_json::from_slice::<Value>(t).ok());
                match kind.as_ref().and_then(Value::as_str) {
                    Some("FeatureCollection") => Ok(()),
                    Some("Feature") => match self.captured[2].take() {
                        Some(whole) => {
                            out.push(self.w.valid_json(&whole));
                            Ok(())
                        }
                        None => Err(Error::Decode(format!(
                            "a single GeoJSON Feature larger than {MAX_CAPTURE} bytes"
                        ))),
                    },
                    _ => Err(Error::Decode(
                        "expected a GeoJSON FeatureCollection or Feature".to_owned(),
                    )),
                }
            }
            Kind::FieldsData { fields, .. } => {
                if self.captured[1].is_none() {
                    return Err(Error::Decode(format!("no field list at `{fields}`")));
                }
                self.rows(out)
            }
        }
    }

    fn take_spans(&mut self, out: &mut Decoded) {
        let mut rows = Vec::new();
        for span in self.scan.spans() {
            let text = &self.scan.buf()[span.start..span.end];
            let w = &mut self.w;
            let mut record = || {
                if span.spaced {
                    w.valid_json(text)
                } else {
                    w.compact_json(text)
                }
            };
            match span.found {
                Found::Capture(i) => self.captured[i] = Some(text.to_vec()),
                Found::Whole => {
                    if matches!(self.kind, Kind::Plain) && text != b"null" {
                        out.push(record());
                    }
                }
                Found::Element => match &self.kind {
                    Kind::Plain => out.push(record()),
                    Kind::Geo => {
                        // Read from the compacted record by a scan (the last `type` wins,
                        // as when the text is parsed).
                        let r = record();
                        let feature = match locate(r.as_bytes(), &["type"]) {
                            Some(b"\"Feature\"") => true,
                            Some(raw) if raw.contains(&b'\\') => {
                                serde_json::from_slice::<String>(raw).is_ok_and(|t| t == "Feature")
                            }
                            _ => false,
                        };
                        if feature {
                            out.push(r);
                        } else {
                            out.rejected.push(Rejected::new(
                                "GeoJSON feature without `\"type\": \"Feature\"`",
                                text,
                            ));
                        }
                    }
                    Kind::FieldsData { .. } => rows.push(text.to_vec()),
                },
            }
        }
        self.scan.consume();
        if let Kind::FieldsData { held, .. } = &mut self.kind {
            held.extend(rows);
            if self.captured[1].is_some() && !held.is_empty() {
                // Field names known: the rows become records.
                let _ = self.rows(out);
            }
        }
    }

    /// The rows held become records (the field names are known).
    fn rows(&mut self, out: &mut Decoded) -> Result<(), Error> {
        let Kind::FieldsData {
            fields,
            stamp_name,
            columns,
            held,
        } = &mut self.kind
        else {
            return Ok(());
        };
        if columns.is_none() {
            let names: Vec<Value> = self.captured[1]
                .as_deref()
                .and_then(|t| serde_json::from_slice(t).ok())
                .ok_or_else(|| Error::Decode(format!("no field list at `{fields}`")))?;
            let names: Vec<String> = names
                .iter()
                .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_owned))
                .collect();
            let mut c = Columns::new(&names);
            let stamp = stamp_name.as_ref().and_then(|name| {
                let value = self.captured.get(2)?.as_deref()?;
                (!names.contains(name)).then_some((name, value))
            });
            if let Some((name, value)) = stamp {
                let mut tail = BytesMut::new();
                put_json_str(&mut tail, name);
                tail.extend_from_slice(b":");
                compact_into(value, &mut tail);
                c.tail = tail.to_vec();
            }
            *columns = Some(c);
        }
        let Some(columns) = columns.as_ref() else {
            return Ok(());
        };
        for row in held.drain(..) {
            match serde_json::from_slice::<Vec<&RawValue>>(&row) {
                Ok(cells) if cells.len() == columns.count() => {
                    out.push(columns.object(&mut self.w, row.len(), cells, |b, cell| {
                        compact_into(cell.get().as_bytes(), b)
                    }));
                }
                _ => out.rejected.push(Rejected::new(
                    format!("row does not have the {} fields", columns.count()),
                    &row,
                )),
            }
        }
        Ok(())
    }
}
