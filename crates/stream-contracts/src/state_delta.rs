//! Deltas between two texts of a source's fetch state: the new text as pieces copied
//! from the old one and inserted text, so a commit that adds k dedup identities to a
//! window of any size writes O(k) bytes. Format-agnostic (any cursor text); it finds the
//! common parts by hashing blocks of the old text, so a window that drops identities at
//! its front and appends at its back costs one copy and one insert.

use std::collections::HashMap;
use std::hash::Hasher as _;

use serde::{Deserialize, Serialize};

/// Bytes per indexed block of the old text: shorter matches are inserted as text.
const BLOCK: usize = 32;
/// The rolling hash's base (any odd 64-bit number).
const BASE: u64 = 0x0100_0000_01b3;

/// One piece of the new text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Op {
    /// `len` bytes of the old text from byte `from`.
    Copy(usize, usize),
    /// Text of its own.
    Insert(String),
}

/// A delta as persisted: what it applies to (length and FNV-1a hash of the base text,
/// so a delta never applies to another text) and the pieces.
#[derive(Debug, Serialize, Deserialize)]
struct Delta {
    /// (length, hash) of the base.
    base: (usize, u64),
    ops: Vec<Op>,
}

/// FNV-1a of `text`: the same on every run and build.
fn fingerprint(text: &str) -> (usize, u64) {
    let mut h = fnv::FnvHasher::default();
    h.write(text.as_bytes());
    (text.len(), h.finish())
}

/// The polynomial hash of one block (the rolling hash's start).
fn block_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
    })
}

/// A UTF-8 character starts at `i` of `s` (or `i` is its end).
fn boundary(s: &[u8], i: usize) -> bool {
    s.get(i).is_none_or(|&b| (b as i8) >= -0x40)
}

/// The delta that turns `old` into `new` (JSON text). O(old + new) time.
pub fn diff(old: &str, new: &str) -> String {
    let (o, n) = (old.as_bytes(), new.as_bytes());
    let mut index: HashMap<u64, usize, fnv::FnvBuildHasher> = HashMap::default();
    if o.len() >= BLOCK {
        for start in (0..=o.len() - BLOCK).step_by(BLOCK) {
            index
                .entry(block_hash(&o[start..start + BLOCK]))
                .or_insert(start);
        }
    }
    // BASE^(BLOCK-1): the weight of the byte leaving the rolling window.
    let out_weight = (1..BLOCK).fold(1u64, |w, _| w.wrapping_mul(BASE));
    let mut ops = Vec::new();
    let (mut literal, mut j) = (0, 0);
    let mut h = n.get(..BLOCK).map_or(0, block_hash);
    while j + BLOCK <= n.len() {
        if let Some(found) = index
            .get(&h)
            .copied()
            .filter(|&s| o[s..s + BLOCK] == n[j..j + BLOCK])
            .and_then(|s| extend(o, n, s, j, literal))
        {
            let (from, at, len) = found;
            if at > literal {
                ops.push(Op::Insert(new[literal..at].to_owned()));
            }
            ops.push(Op::Copy(from, len));
            j = at + len;
            literal = j;
            h = n.get(j..j + BLOCK).map_or(0, block_hash);
            continue;
        }
        if let Some(&incoming) = n.get(j + BLOCK) {
            h = h
                .wrapping_sub(u64::from(n[j]).wrapping_mul(out_weight))
                .wrapping_mul(BASE)
                .wrapping_add(u64::from(incoming));
        }
        j += 1;
    }
    if literal < n.len() {
        ops.push(Op::Insert(new[literal..].to_owned()));
    }
    let delta = Delta {
        base: fingerprint(old),
        ops,
    };
    serde_json::to_string(&delta).unwrap_or_default()
}

/// A block matches at `o[s..]` and `n[j..]`: the whole match (old offset, new offset,
/// length), grown both ways (not back past `literal`) and trimmed to whole characters.
fn extend(o: &[u8], n: &[u8], s: usize, j: usize, literal: usize) -> Option<(usize, usize, usize)> {
    let (mut from, mut at) = (s, j);
    while at > literal && from > 0 && o[from - 1] == n[at - 1] {
        from -= 1;
        at -= 1;
    }
    let mut len = j - at + BLOCK;
    while from + len < o.len() && at + len < n.len() && o[from + len] == n[at + len] {
        len += 1;
    }
    // Equal bytes: a boundary in the new text is one in the old text too.
    while len > 0 && !boundary(n, at) {
        from += 1;
        at += 1;
        len -= 1;
    }
    while len > 0 && !boundary(n, at + len) {
        len -= 1;
    }
    (len >= BLOCK / 2).then_some((from, at, len))
}

/// `base` with `delta` applied; `None` if the delta was made from another text or is
/// not a delta.
pub fn apply(base: &str, delta: &str) -> Option<String> {
    let d: Delta = serde_json::from_str(delta).ok()?;
    if d.base != fingerprint(base) {
        return None;
    }
    let mut out = String::with_capacity(base.len());
    for op in &d.ops {
        match op {
            Op::Copy(from, len) => out.push_str(base.get(*from..from.checked_add(*len)?)?),
            Op::Insert(text) => out.push_str(text),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A state shaped like an HTTP fetch state: a header, then 11-character identities.
    fn window(cursor: u32, ids: std::ops::Range<u64>) -> String {
        use base64::Engine as _;
        let ids: String = ids
            .map(|i| base64::engine::general_purpose::STANDARD_NO_PAD.encode(i.to_le_bytes()))
            .collect();
        format!("{{\"http_state\":1,\"cursor\":\"{cursor}\",\"ids\":\"{ids}\"}}")
    }

    #[test]
    fn a_sliding_window_costs_what_changed() {
        let old = window(1, 0..20_000);
        let new = window(2, 10..20_010);
        let d = diff(&old, &new);
        assert_eq!(apply(&old, &d).as_deref(), Some(new.as_str()));
        assert!(old.len() > 200_000);
        assert!(d.len() < 10 * 11 + 200, "{} bytes: {d}", d.len());
        // Applied to anything else, it is refused.
        assert_eq!(apply(&new, &d), None);
        assert_eq!(apply(&old, "not a delta"), None);
    }

    #[test]
    fn unrelated_and_empty_texts() {
        for (a, b) in [("", ""), ("", "x"), ("abc", ""), ("short", "other short")] {
            assert_eq!(apply(a, &diff(a, b)).as_deref(), Some(b));
        }
    }

    proptest! {
        #[test]
        fn applying_the_diff_gives_the_new_text(
            a in "[a-zé\"\\\\]{0,300}",
            cut in 0usize..300,
            insert in "[a-z€]{0,40}",
        ) {
            // The new text is the old one with a piece taken out and another put in.
            let cut = a.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(a.len());
            let b = format!("{}{insert}{}", &a[..cut], &a[cut..].chars().skip(5).collect::<String>());
            prop_assert_eq!(apply(&a, &diff(&a, &b)), Some(b.clone()));
            let twice = format!("{b}{a}{b}");
            prop_assert_eq!(apply(&a, &diff(&a, &twice)), Some(twice));
        }
    }
}
