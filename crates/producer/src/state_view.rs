//! What the state topic holds and how a reader applies it (`state_log.rs` does the
//! I/O): the records (claims, fetch state as snapshot chunks and deltas, workers'
//! reports), their compaction keys, and the view built by applying them in log order,
//! where a state record counts only under the source's newest claim.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Entry {
    Claim {
        source: String,
        owner: String,
    },
    /// A whole state in one record (written by earlier versions, still read).
    State {
        source: String,
        epoch: i64,
        state: String,
    },
    Member {
        group: String,
        worker: String,
        report: String,
        at_ms: i64,
    },
    /// Piece `index` of `count` of snapshot `gen` of a source's state.
    Chunk {
        source: String,
        epoch: i64,
        gen: u64,
        index: usize,
        count: usize,
        text: String,
    },
    /// Delta `seq` (from 1) after snapshot `gen`.
    Delta {
        source: String,
        epoch: i64,
        gen: u64,
        seq: u64,
        delta: String,
    },
}

impl Entry {
    /// The compaction key: the newest claim per source, the newest state per source and
    /// epoch (a stale writer's records never replace the current owner's), the newest
    /// report per worker.
    pub(crate) fn key(&self) -> String {
        match self {
            Entry::Claim { source, .. } => format!("claim/{source}"),
            Entry::State { source, epoch, .. } => Self::state_key(source, *epoch),
            Entry::Member { group, worker, .. } => format!("member/{group}/{worker}"),
            Entry::Chunk {
                source,
                epoch,
                gen,
                index,
                ..
            } => format!("state/{source}/{epoch}/{gen}/{index}"),
            Entry::Delta {
                source,
                epoch,
                gen,
                seq,
                ..
            } => format!("state/{source}/{epoch}/{gen}/d{seq}"),
        }
    }

    pub(crate) fn state_key(source: &str, epoch: i64) -> String {
        format!("state/{source}/{epoch}")
    }
}

/// What the log says, as applied so far.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// The next offset to apply.
    pub(crate) next: i64,
    /// Source → (epoch, owner) of its newest claim.
    pub(crate) claims: HashMap<String, (i64, String)>,
    /// Source → its state under the newest claim.
    pub(crate) states: HashMap<String, Stored>,
    /// Source → the snapshot being read, until its last chunk arrives.
    pub(crate) building: HashMap<String, Stored>,
    /// (group, worker) → (report, at_ms).
    pub(crate) members: BTreeMap<(String, String), (String, i64)>,
}

/// A source's state as the log holds it: a snapshot (read from its chunks) and the
/// deltas after it, with the keys of their records.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stored {
    pub(crate) epoch: i64,
    pub(crate) chain: StateChain,
    /// Snapshot pieces while it is being read.
    pub(crate) parts: Vec<Option<String>>,
    pub(crate) keys: Vec<String>,
}

impl View {
    /// A state record under claim `epoch` counts: it is the newest claim of `source`, or
    /// no claim is known (compacted away, or single-process writes).
    fn counts(&self, source: &str, epoch: i64) -> bool {
        self.claims.get(source).is_none_or(|(e, _)| *e == epoch)
    }

    pub(crate) fn apply(&mut self, offset: i64, entry: Entry) {
        let key = entry.key();
        match entry {
            Entry::Claim { source, owner } => {
                self.claims.insert(source, (offset, owner));
            }
            Entry::State {
                source,
                epoch,
                state,
            } => {
                if self.counts(&source, epoch) {
                    let chain = StateChain {
                        gen: 0,
                        snapshot: state,
                        deltas: Vec::new(),
                    };
                    let keys = vec![key];
                    let parts = Vec::new();
                    let stored = Stored {
                        epoch,
                        chain,
                        parts,
                        keys,
                    };
                    self.states.insert(source, stored);
                }
            }
            Entry::Chunk {
                source,
                epoch,
                gen,
                index,
                count,
                text,
            } => {
                // `count` comes from the topic: bounded before it sizes an allocation
                // (64 Ki chunks of 256 KiB: 16 GiB, far past any dedup window).
                if !self.counts(&source, epoch) || index >= count || count > 1 << 16 {
                    self.next = offset + 1;
                    return;
                }
                let b = self.building.entry(source.clone()).or_default();
                if b.epoch != epoch || b.chain.gen != gen || b.parts.len() != count {
                    *b = Stored {
                        epoch,
                        chain: StateChain {
                            gen,
                            ..StateChain::default()
                        },
                        parts: vec![None; count],
                        keys: Vec::new(),
                    };
                }
                b.parts[index] = Some(text);
                b.keys.push(key);
                if b.parts.iter().all(Option::is_some) {
                    let mut done = self.building.remove(&source).unwrap_or_default();
                    done.chain.snapshot = done.parts.drain(..).flatten().collect();
                    self.states.insert(source, done);
                }
            }
            Entry::Delta {
                source,
                epoch,
                gen,
                seq,
                delta,
            } => {
                let counts = self.counts(&source, epoch);
                if let Some(s) = self.states.get_mut(&source).filter(|s| {
                    counts
                        && s.epoch == epoch
                        && s.chain.gen == gen
                        && s.chain.deltas.len() as u64 + 1 == seq
                }) {
                    s.chain.deltas.push(delta);
                    s.keys.push(key);
                }
            }
            Entry::Member {
                group,
                worker,
                report,
                at_ms,
            } => {
                self.members.insert((group, worker), (report, at_ms));
            }
        }
        self.next = offset + 1;
    }
}

/// A source's fetch state in the log: a snapshot and the deltas written after it (the
/// caller applies them, see `api_client::StateChains`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChain {
    /// The snapshot's generation.
    pub gen: u64,
    /// The snapshot, whole (it may have been written in several records).
    pub snapshot: String,
    /// The deltas after it, oldest first.
    pub deltas: Vec<String>,
}

/// A state record's text is cut into pieces of at most this many bytes once escaped as
/// JSON, so no record of the state topic exceeds it by more than its envelope (the
/// source id and a few numbers), whatever the size of the state: far below Kafka's
/// default `max.message.bytes` (1 MB).
pub const STATE_CHUNK_BYTES: usize = 256 * 1024;

/// Bytes `c` takes in a JSON string.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `text` in pieces of at most [`STATE_CHUNK_BYTES`] escaped bytes (one, empty, for an
/// empty text).
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, c) in text.char_indices() {
        let n = escaped_len(c);
        if size + n > STATE_CHUNK_BYTES {
            out.push(&text[start..i]);
            (start, size) = (i, 0);
        }
        size += n;
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(source: &str, epoch: i64, s: &str) -> Entry {
        Entry::State {
            source: source.into(),
            epoch,
            state: s.into(),
        }
    }

    #[test]
    fn a_write_under_a_superseded_claim_is_ignored_wherever_it_lands() {
        let mut v = View::default();
        let claim = |owner: &str| Entry::Claim {
            source: "s".into(),
            owner: owner.into(),
        };
        v.apply(0, claim("w1"));
        v.apply(1, state("s", 0, "c1"));
        v.apply(2, claim("w2"));
        assert_eq!(
            v.states["s"].chain.snapshot, "c1",
            "the new owner starts from w1's last state"
        );
        v.apply(3, state("s", 2, "c2"));
        v.apply(4, state("s", 0, "stale"));
        assert_eq!(
            v.states["s"].chain.snapshot, "c2",
            "w1's late write is ignored"
        );
        assert_eq!(v.claims["s"], (2, "w2".to_owned()));
        assert_eq!(v.next, 5);
        // Compaction removed every claim: the newest state counts.
        let mut compacted = View::default();
        compacted.apply(7, state("s", 2, "c2"));
        assert_eq!(compacted.states["s"].chain.snapshot, "c2");
    }

    fn chunk(epoch: i64, gen: u64, index: usize, count: usize, text: &str) -> Entry {
        Entry::Chunk {
            source: "s".into(),
            epoch,
            gen,
            index,
            count,
            text: text.into(),
        }
    }

    fn delta(epoch: i64, gen: u64, seq: u64, d: &str) -> Entry {
        Entry::Delta {
            source: "s".into(),
            epoch,
            gen,
            seq,
            delta: d.into(),
        }
    }

    #[test]
    fn a_snapshot_counts_once_whole_and_deltas_follow_it_in_order() {
        let mut v = View::default();
        v.apply(0, chunk(-1, 5, 1, 2, "world"));
        assert!(!v.states.contains_key("s"), "half a snapshot is no state");
        v.apply(1, chunk(-1, 5, 0, 2, "hello "));
        v.apply(2, delta(-1, 5, 1, "d1"));
        v.apply(3, delta(-1, 5, 3, "skips d2: ignored"));
        v.apply(4, delta(-1, 4, 2, "another snapshot's: ignored"));
        v.apply(5, delta(-1, 5, 2, "d2"));
        let s = &v.states["s"];
        assert_eq!(s.chain.snapshot, "hello world");
        assert_eq!(s.chain.deltas, ["d1", "d2"]);
        assert_eq!(s.keys.len(), 4, "{:?}", s.keys);
        // A new snapshot replaces it only once whole.
        v.apply(6, chunk(-1, 9, 0, 2, "new "));
        assert_eq!(v.states["s"].chain.gen, 5);
        v.apply(7, chunk(-1, 9, 1, 2, "state"));
        assert_eq!(v.states["s"].chain.snapshot, "new state");
        assert!(v.states["s"].chain.deltas.is_empty());
    }

    #[test]
    fn pieces_stay_under_the_limit_escaped() {
        let text = "\"é\u{1}".repeat(STATE_CHUNK_BYTES / 3);
        let p = pieces(&text);
        assert!(p.len() > 1);
        assert_eq!(p.concat(), text);
        for piece in p {
            let escaped = serde_json::to_string(piece).unwrap().len();
            assert!(escaped <= STATE_CHUNK_BYTES + 2, "{escaped}");
        }
        assert_eq!(pieces(""), [""]);
    }

    #[test]
    fn keys_keep_one_state_per_claim() {
        assert_eq!(state("s", 4, "x").key(), "state/s/4");
        assert_ne!(state("s", 4, "x").key(), state("s", 6, "x").key());
    }
}
