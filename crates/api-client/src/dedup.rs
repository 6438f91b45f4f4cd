//! A bounded window of record keys, for upstreams that return overlapping windows.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

/// Which fields identify a record, and how many identities to remember.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSpec {
    /// JSON pointers whose values together identify a record.
    pub keys: Vec<String>,
    /// Identities remembered (oldest forgotten first).
    #[serde(default = "default_window")]
    pub window: usize,
}

fn default_window() -> usize {
    100_000
}

/// Remembers the last `window` identities.
#[derive(Debug)]
pub(crate) struct Dedup {
    spec: DedupSpec,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Dedup {
    /// A window per `spec`.
    pub(crate) fn new(spec: DedupSpec) -> Self {
        Self {
            spec,
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    fn identity(&self, record: &Value) -> String {
        let parts: Vec<String> = self
            .spec
            .keys
            .iter()
            .map(|p| record.pointer(p).map(Value::to_string).unwrap_or_default())
            .collect();
        parts.join("\u{1f}")
    }

    /// Keeps the records not seen within the window (and remembers them).
    pub(crate) fn filter(&self, records: Vec<Value>) -> Vec<Value> {
        let mut guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let id = self.identity(&r);
            if set.insert(id.clone()) {
                order.push_back(id);
                while order.len() > self.spec.window.max(1) {
                    if let Some(old) = order.pop_front() {
                        set.remove(&old);
                    }
                }
                out.push(r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_repeats_within_the_window_only() {
        let d = Dedup::new(DedupSpec {
            keys: vec!["/lat".into(), "/lon".into()],
            window: 2,
        });
        let a = json!({"lat": 1, "lon": 2, "x": "first"});
        let b = json!({"lat": 1, "lon": 3});
        let c = json!({"lat": 9, "lon": 9});
        assert_eq!(d.filter(vec![a.clone(), a.clone(), b.clone()]).len(), 2);
        assert_eq!(
            d.filter(vec![json!({"lat": 1, "lon": 2, "x": "later"})])
                .len(),
            0
        );
        assert_eq!(d.filter(vec![c]).len(), 1); // evicts a's identity
        assert_eq!(d.filter(vec![a]).len(), 1);
    }
}
