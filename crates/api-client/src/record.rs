//! A record as it travels: one JSON value, serialized once at the source (compact), as
//! shared bytes. Fields are read from the bytes where a rule needs them, without
//! building the tree; nothing downstream serializes a record again.

use std::fmt;
use std::marker::PhantomData;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

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

/// Writes the records of one fetch into shared chunks of 64 KiB (or one record's size,
/// if larger): a record costs no allocation of its own, and a chunk is freed with the
/// last record in it.
#[derive(Debug, Default)]
pub struct RecordWriter(BytesMut);

impl RecordWriter {
    const CHUNK: usize = 64 * 1024;

    fn room(&mut self, n: usize) {
        if self.0.capacity() - self.0.len() < n {
            self.0.reserve(n.max(Self::CHUNK));
        }
    }

    /// The record of a JSON text already known to be one valid value (a slice the
    /// decoder has parsed), compacted.
    pub(crate) fn valid_json(&mut self, json: &[u8]) -> Record {
        self.room(json.len());
        compact_into(json, &mut self.0);
        Record(self.0.split().freeze())
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
        self.room(1024);
        match serde_json::to_writer((&mut self.0).writer(), value) {
            Ok(()) => Ok(Record(self.0.split().freeze())),
            Err(e) => {
                self.0.clear();
                Err(e)
            }
        }
    }

    /// Builds a record by hand: `write` appends compact JSON text (e.g. an object made
    /// of already valid pieces) to the buffer it is given.
    pub(crate) fn build(&mut self, size_hint: usize, write: impl FnOnce(&mut BytesMut)) -> Record {
        self.room(size_hint);
        write(&mut self.0);
        Record(self.0.split().freeze())
    }
}

/// Appends `s` as a JSON string (quoted, escaped).
pub(crate) fn put_json_str(out: &mut BytesMut, s: &str) {
    // Writing a `str` to a `BytesMut` cannot fail.
    let _ = serde_json::to_writer(out.writer(), s);
}

/// Splits a JSON pointer into unescaped tokens (`~1` → `/`, `~0` → `~`); `None` when it
/// is neither empty nor starts with `/`.
pub fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// The value at `tokens` inside the JSON text `json`, deserialized as `T`; `None` when
/// there is nothing there, or the text is not JSON.
pub(crate) fn find<'de, T: Deserialize<'de>, S: AsRef<str>>(
    json: &'de [u8],
    tokens: &[S],
) -> Option<T> {
    try_find(json, tokens).ok().flatten()
}

/// [`find`], with the whole text checked as one JSON value.
pub(crate) fn try_find<'de, T: Deserialize<'de>, S: AsRef<str>>(
    json: &'de [u8],
    tokens: &[S],
) -> Result<Option<T>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = Find::<T, S> {
        path: tokens,
        out: PhantomData,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// The JSON text at a pointer, as a slice of `json` (for decoders: the records array,
/// a next-page link).
pub(crate) fn find_raw<'de>(json: &'de [u8], pointer: &str) -> Option<&'de RawValue> {
    find::<&RawValue, String>(json, &pointer_tokens(pointer)?)
}

struct Find<'p, T, S> {
    path: &'p [S],
    out: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, S: AsRef<str>> DeserializeSeed<'de> for Find<'_, T, S> {
    type Value = Option<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.path.split_first() {
            None => T::deserialize(d).map(Some),
            Some((head, rest)) => d.deserialize_any(FindIn::<T, S> {
                head: head.as_ref(),
                rest,
                out: PhantomData,
            }),
        }
    }
}

/// Walks one level: an object's member named `head` or an array's element at `head`;
/// everything else is skipped without being built.
struct FindIn<'p, T, S> {
    head: &'p str,
    rest: &'p [S],
    out: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, S: AsRef<str>> Visitor<'de> for FindIn<'_, T, S> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.head))? {
            if hit {
                // The last of repeated names wins, as when the text is parsed whole.
                found = map.next_value_seed(Find::<T, S> {
                    path: self.rest,
                    out: PhantomData,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let index = array_index(self.head);
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(Find::<T, S> {
                    path: self.rest,
                    out: PhantomData,
                })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// The text of the value at `tokens` inside compact, valid JSON text (a record's): a
/// scan that skips strings with `memchr` and builds nothing. Out-of-shape text finds
/// nothing rather than failing.
fn locate<'a, S: AsRef<str>>(json: &'a [u8], tokens: &[S]) -> Option<&'a [u8]> {
    let mut cur = json;
    for token in tokens {
        let token = token.as_ref();
        let mut found = None;
        match cur.first()? {
            b'{' => {
                let mut i = 1;
                if cur.get(i) == Some(&b'}') {
                    return None;
                }
                loop {
                    let key_end = skip_string(cur, i)?;
                    let key = cur.get(i + 1..key_end - 1)?;
                    let hit = if memchr::memchr(b'\\', key).is_none() {
                        key == token.as_bytes()
                    } else {
                        serde_json::from_slice::<String>(cur.get(i..key_end)?).ok()? == token
                    };
                    let start = key_end + 1;
                    let end = skip_value(cur, start)?;
                    if hit {
                        // The last of repeated names wins, as when the text is parsed.
                        found = Some(start..end);
                    }
                    match cur.get(end)? {
                        b',' => i = end + 1,
                        _ => break,
                    }
                }
            }
            b'[' => {
                let index = array_index(token)?;
                let mut i = 1;
                if cur.get(i) == Some(&b']') {
                    return None;
                }
                let mut n = 0;
                loop {
                    let end = skip_value(cur, i)?;
                    if n == index {
                        found = Some(i..end);
                        break;
                    }
                    match cur.get(end)? {
                        b',' => (i, n) = (end + 1, n + 1),
                        _ => break,
                    }
                }
            }
            _ => return None,
        }
        cur = cur.get(found?)?;
    }
    Some(cur)
}

/// The index just past the string that opens at `i`.
fn skip_string(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', s.get(j..)?)?;
        if s[j] == b'\\' {
            j += 2;
        } else {
            return Some(j + 1);
        }
    }
}

/// The index just past the value that starts at `i`.
fn skip_value(s: &[u8], i: usize) -> Option<usize> {
    match s.get(i)? {
        b'"' => skip_string(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match s.get(j)? {
                    b'"' => {
                        j = skip_string(s, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => Some(
            i + s[i..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']'))
                .unwrap_or(s.len() - i),
        ),
    }
}

/// An array index as JSON pointers write it: digits, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// Deserializes an object's key into "is it `self.0`?" without allocating.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Whether the text has any whitespace byte at all (then it may need compacting).
fn needs_compacting(json: &[u8]) -> bool {
    json.iter().any(|b| is_space(*b))
}

/// Appends valid JSON text without the whitespace outside its strings, copying runs.
pub(crate) fn compact_into(json: &[u8], out: &mut BytesMut) {
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
    fn pointers_read_from_the_bytes_agree_with_the_parsed_tree() {
        let doc = json!({
            "a": {"b": [10, {"c": "deep"}, null], "": 1, "x/y": 2, "m~n": 3},
            "s": "text", "n": -1.5, "t": true, "u": null, "big": 18446744073709551615u64,
            "esc\"aped": "é\n"
        });
        let r = Record::from_value(&doc);
        for p in [
            "",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/2",
            "/a/b/3",
            "/a/b/01",
            "/a/b/-",
            "/a/",
            "/a/x~1y",
            "/a/m~0n",
            "/s",
            "/s/0",
            "/n",
            "/t",
            "/u",
            "/big",
            "/esc\"aped",
            "/nope",
            "/a/b/1/c/d",
            "nope",
        ] {
            assert_eq!(r.pointer(p), doc.pointer(p).cloned(), "pointer {p:?}");
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Exact binary fractions: parsing text back is exact for them.
            (-1_000_000i64..1_000_000).prop_map(|n| Value::from(n as f64 / 8.0)),
            "[a-c\\\\\"/~ é\\n]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c~/\\\\\" ]{0,3}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every pointer to something in `v`, and one past each container's end.
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    pointers(
                        x,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
                out.push(format!("{at}/zz"));
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    pointers(x, format!("{at}/{i}"), out);
                }
                out.push(format!("{at}/{}", items.len()));
            }
            _ => out.push(format!("{at}/0")),
        }
    }

    proptest::proptest! {
        #[test]
        fn the_scan_finds_what_the_parsed_tree_finds(doc in arb_json()) {
            let r = Record::from_value(&doc);
            let mut all = Vec::new();
            pointers(&doc, String::new(), &mut all);
            for p in all {
                proptest::prop_assert_eq!(r.pointer(&p), doc.pointer(&p).cloned(), "pointer {:?} in {}", p, r);
            }
        }
    }

    #[test]
    fn the_last_of_repeated_names_wins_as_in_a_parsed_tree() {
        let text = br#"{"k":1,"k":{"z":2}}"#;
        let r = Record::from_json(Bytes::from_static(text)).unwrap();
        let parsed: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(r.pointer("/k"), parsed.pointer("/k").cloned());
        assert_eq!(r.pointer("/k/z"), Some(json!(2)));
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
        assert_eq!(
            find_raw(br#"{"d":{"items":[1, 2]}}"#, "/d/items").map(|r| r.get().to_owned()),
            Some("[1, 2]".to_owned())
        );
    }
}
