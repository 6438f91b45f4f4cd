//! Values at JSON pointers, read from JSON text without building a tree: a serde seed
//! that skips everything but the path (any JSON: bodies for decoders and pagination),
//! and a byte scan for a record's compact text (the hot path).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

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
pub fn find<'de, T: Deserialize<'de>, S: AsRef<str>>(json: &'de [u8], tokens: &[S]) -> Option<T> {
    try_find(json, tokens).ok().flatten()
}

/// [`find`], with the whole text checked as one JSON value.
pub fn try_find<'de, T: Deserialize<'de>, S: AsRef<str>>(
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
pub fn find_raw<'de>(json: &'de [u8], pointer: &str) -> Option<&'de RawValue> {
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
pub fn locate<'a, S: AsRef<str>>(json: &'a [u8], tokens: &[S]) -> Option<&'a [u8]> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use bytes::Bytes;
    use serde_json::{json, Value};

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
    fn raw_text_at_a_pointer() {
        assert_eq!(
            find_raw(br#"{"d":{"items":[1, 2]}}"#, "/d/items").map(|r| r.get().to_owned()),
            Some("[1, 2]".to_owned())
        );
    }
}
