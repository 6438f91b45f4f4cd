//! A record as it travels: one JSON value, serialized once at the source (compact), as
//! shared bytes. Fields are read from the bytes where a rule needs them (`pointer.rs`),
//! without building the tree; nothing downstream serializes a record again.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::chunks::Chunks;
use crate::pointer::{locate, pointer_tokens};

/// One record: the compact JSON text of one value (no whitespace outside strings).
/// Cloning shares the bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Record(Bytes);

impl Record {
    /// The record of `value` (serialized once).
    pub fn from_value(value: &Value) -> Self {
        let mut w = RecordWriter::default();
        w.value(value)
    }

    /// Checks that `json` is one JSON value in UTF-8 and keeps it compact (whitespace
    /// outside strings removed; `json` itself is kept without a copy when it has none).
    pub fn from_json(json: Bytes) -> Result<Self, serde_json::Error> {
        serde_json::from_slice::<&RawValue>(&json)?;
        if needs_compacting(&json) {
            let mut out = BytesMut::with_capacity(json.len());
            compact_into(&json, &mut out);
            Ok(Self(out.freeze()))
        } else {
            Ok(Self(json))
        }
    }

    /// The JSON text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text as shared bytes (no copy).
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The JSON text's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a record (the shortest JSON text is one byte); here for clippy.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The record parsed (a full tree: for tests and rare paths, not the hot path).
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.0).unwrap_or(Value::Null)
    }

    /// The value at a JSON pointer (`/properties/id`, `""` for the whole record), read
    /// from the bytes: only the value found is built.
    pub fn pointer(&self, pointer: &str) -> Option<Value> {
        let tokens = pointer_tokens(pointer)?;
        self.field(&tokens)
    }

    /// The value at a pointer already split into unescaped tokens.
    pub fn field<S: AsRef<str>>(&self, tokens: &[S]) -> Option<Value> {
        serde_json::from_slice(locate(&self.0, tokens)?).ok()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl From<Value> for Record {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

impl From<&Value> for Record {
    fn from(value: &Value) -> Self {
        Self::from_value(value)
    }
}

impl PartialEq<Value> for Record {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

/// Writes the records of one fetch into shared [`Chunks`]: a record costs no allocation
/// of its own, and a chunk is freed with the last record in it.
#[derive(Debug, Default)]
pub struct RecordWriter(Chunks);

impl RecordWriter {
    /// The record of a JSON text already known to be one valid value (a slice the
    /// decoder has parsed), compacted.
    pub fn valid_json(&mut self, json: &[u8]) -> Record {
        compact_into(json, self.0.buf(json.len()));
        Record(self.0.take())
    }

    /// The record of a JSON text already known to be one valid value with no whitespace
    /// outside its strings (a decoder has checked both): copied as it is.
    pub fn compact_json(&mut self, json: &[u8]) -> Record {
        Record(self.0.copy(json))
    }

    /// The record of `value`.
    pub fn value(&mut self, value: &Value) -> Record {
        self.serialize(value)
            .unwrap_or_else(|_| Record(Bytes::from_static(b"null")))
    }

    /// The record of anything serializable (fails on a map with non-text keys, which
    /// JSON cannot express).
    pub fn serialize<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<Record, serde_json::Error> {
        match serde_json::to_writer(self.0.writer(), value) {
            Ok(()) => Ok(Record(self.0.take())),
            Err(e) => {
                self.0.discard();
                Err(e)
            }
        }
    }

    /// Builds a record by hand: `write` appends compact JSON text (e.g. an object made
    /// of already valid pieces) to the buffer it is given.
    pub fn build(&mut self, size_hint: usize, write: impl FnOnce(&mut BytesMut)) -> Record {
        write(self.0.buf(size_hint));
        Record(self.0.take())
    }
}

/// Appends `s` as a JSON string (quoted, escaped).
pub fn put_json_str(out: &mut BytesMut, s: &str) {
    // Writing a `str` to a `BytesMut` cannot fail.
    let _ = serde_json::to_writer(out.writer(), s);
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Whether the text has any whitespace byte at all (then it may need compacting).
fn needs_compacting(json: &[u8]) -> bool {
    json.iter().any(|b| is_space(*b))
}

/// Appends valid JSON text without the whitespace outside its strings, copying runs.
pub fn compact_into(json: &[u8], out: &mut BytesMut) {
    if !needs_compacting(json) {
        out.extend_from_slice(json);
        return;
    }
    let (mut in_str, mut escaped) = (false, false);
    let mut run = 0;
    for (i, &b) in json.iter().enumerate() {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
        } else if is_space(b) {
            out.extend_from_slice(&json[run..i]);
            run = i + 1;
        }
    }
    out.extend_from_slice(&json[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_is_compact_and_keeps_whitespace_inside_strings() {
        let r = Record::from_json(Bytes::from_static(
            b" {\n  \"a b\" : [1, 2],\t\"c\": \"x \\\" y\\\\\", \"d\": {} }\r\n",
        ))
        .unwrap();
        assert_eq!(r.as_bytes(), br#"{"a b":[1,2],"c":"x \" y\\","d":{}}"#);
        let compact = Bytes::from_static(br#"{"a":1}"#);
        let r = Record::from_json(compact.clone()).unwrap();
        assert_eq!(
            r.as_bytes().as_ptr(),
            compact.as_ptr(),
            "compact text is not copied"
        );
        assert!(Record::from_json(Bytes::from_static(b"{\"a\":")).is_err());
        assert!(Record::from_json(Bytes::from_static(b"1 2")).is_err());
        assert!(Record::from_json(Bytes::from_static(b"\"\xff\"")).is_err());
    }

    #[test]
    fn the_writer_shares_one_chunk_between_records() {
        let mut w = RecordWriter::default();
        let a = w.valid_json(b"{ \"a\": 1 }");
        let b = w.value(&json!({"b": [true]}));
        assert_eq!(
            (a.as_bytes(), b.as_bytes()),
            (&br#"{"a":1}"#[..], &br#"{"b":[true]}"#[..])
        );
        assert_eq!(
            b.as_bytes().as_ptr() as usize - a.as_bytes().as_ptr() as usize,
            a.len()
        );
    }
}
