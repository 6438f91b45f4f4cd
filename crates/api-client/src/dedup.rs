//! A bounded window of record identities, for upstreams that return overlapping windows.
//! The window is part of a source's fetch state (`http/state.rs`): it is remembered only
//! when the records it admitted have settled, and survives restarts with the cursor.

use std::collections::{HashSet, VecDeque};
use std::hash::Hasher as _;

use serde::Deserialize;
use serde_json::Value;

use crate::Record;
use stream_contracts::pointer::pointer_tokens;

/// Which fields identify a record, and how many identities to remember.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSpec {
    /// JSON pointers whose values together identify a record. A record missing any of
    /// them is never treated as a repeat (and not remembered).
    pub keys: Vec<String>,
    /// Identities remembered (oldest forgotten first). Each costs 8 bytes of persisted
    /// state.
    #[serde(default = "default_window")]
    pub window: usize,
}

pub(crate) fn default_window() -> usize {
    20_000
}

impl DedupSpec {
    /// Each key split into pointer tokens (a key that is not a pointer finds nothing).
    fn tokens(&self) -> Vec<Option<Vec<String>>> {
        self.keys.iter().map(|k| pointer_tokens(k)).collect()
    }
}

/// The record's identity: a stable 64-bit hash (FNV-1a, the same on every run and
/// build) of the values at `keys` (split once per fetch); `None` when a key is missing
/// or null.
fn identity(keys: &[Option<Vec<String>>], record: &Record) -> Option<u64> {
    let mut h = fnv::FnvHasher::default();
    for key in keys {
        match key.as_ref().and_then(|k| record.field(k)) {
            None | Some(Value::Null) => return None,
            Some(v) => {
                h.write(v.to_string().as_bytes());
                h.write_u8(0x1f);
            }
        }
    }
    Some(h.finish())
}

/// The identities remembered, oldest first, with a set for lookups.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    order: VecDeque<u64>,
    set: HashSet<u64>,
}

/// The same identities in the same order. `set` holds what `order` does, so it is not
/// compared (that would hash every identity again, at every poll).
impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}

impl Eq for Window {}

impl Window {
    pub(crate) fn from_ids(ids: impl IntoIterator<Item = u64>) -> Self {
        let mut w = Self::default();
        for id in ids {
            if w.set.insert(id) {
                w.order.push_back(id);
            }
        }
        w
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.order.iter().copied()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Keeps the records not seen within the window and remembers their identities;
    /// records without an identity always pass.
    pub(crate) fn filter(&mut self, spec: &DedupSpec, records: Vec<Record>) -> Vec<Record> {
        let cap = spec.window.max(1);
        let keys = spec.tokens();
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            match identity(&keys, &r) {
                None => out.push(r),
                Some(id) if self.set.insert(id) => {
                    self.order.push_back(id);
                    while self.order.len() > cap {
                        if let Some(old) = self.order.pop_front() {
                            self.set.remove(&old);
                        }
                    }
                    out.push(r);
                }
                Some(_) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    macro_rules! recs {
        ($($v:expr),* $(,)?) => { vec![$(Record::from(&$v)),*] };
    }

    fn spec(window: usize) -> DedupSpec {
        DedupSpec {
            keys: vec!["/lat".into(), "/lon".into()],
            window,
        }
    }

    #[test]
    fn drops_repeats_within_the_window_only() {
        let (d, mut w) = (spec(2), Window::default());
        let a = json!({"lat": 1, "lon": 2, "x": "first"});
        let b = json!({"lat": 1, "lon": 3});
        let c = json!({"lat": 9, "lon": 9});
        assert_eq!(
            w.filter(&d, recs![a.clone(), a.clone(), b.clone()]).len(),
            2
        );
        assert_eq!(
            w.filter(&d, recs![json!({"lat": 1, "lon": 2, "x": "later"})])
                .len(),
            0
        );
        assert_eq!(w.filter(&d, recs![c]).len(), 1); // evicts a's identity
        assert_eq!(w.filter(&d, recs![a]).len(), 1);
    }

    #[test]
    fn records_missing_a_key_are_never_collapsed() {
        let (d, mut w) = (spec(10), Window::default());
        let no_lon = json!({"lat": 1});
        let null_lon = json!({"lat": 1, "lon": null});
        let kept = w.filter(&d, recs![no_lon.clone(), no_lon.clone(), null_lon.clone()]);
        assert_eq!(
            kept.len(),
            3,
            "three records without an identity are three records"
        );
        assert!(w.is_empty(), "and none is remembered");
        // `1` and `"1"` are different values, so different identities.
        let kept = w.filter(
            &d,
            recs![json!({"lat": 1, "lon": 1}), json!({"lat": 1, "lon": "1"})],
        );
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn identities_are_stable_across_runs() {
        // Persisted windows must mean the same after a restart or a rebuild.
        let id = identity(
            &spec(1).tokens(),
            &json!({"lat": 38.5, "lon": -121.4}).into(),
        );
        assert_eq!(id, Some(0xd314_2ac1_a09e_9562));
    }
}
