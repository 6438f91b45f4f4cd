//! Fetch state persisted incrementally: a store keeps each source's state as a snapshot
//! followed by deltas ([`crate::state_delta`]), so a commit writes what changed since the
//! last one, not the whole state again. [`StateChains`] is the bookkeeping every store
//! shares (memory, SQL, the state topic): per source, the text last written and how long
//! its chain of deltas is; it decides whether a commit is a delta or a new snapshot, and
//! rebuilds a state from what a store loaded.
//!
//! A chain is compacted (a snapshot written, the deltas dropped) when its deltas together
//! outgrow the state, or after [`MAX_DELTAS`] deltas (a load applies every delta). After
//! a failed write the store's state is unknown, so the next commit is a snapshot.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::source::Cursor;
use crate::state_delta;

/// Deltas after which the next commit is a snapshot.
pub const MAX_DELTAS: u64 = 256;

/// What a store is asked to persist for one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// The whole state; it replaces the source's snapshot and every delta. `gen` is new
    /// for each snapshot (random), for stores that keep several chains apart.
    Snapshot {
        /// This snapshot's generation.
        gen: u64,
        /// The state.
        text: String,
    },
    /// The change since the last write: appended after delta `seq - 1` (1 is the first
    /// after the snapshot) of snapshot `gen`.
    Delta {
        /// The snapshot it follows.
        gen: u64,
        /// Its place in the chain, from 1.
        seq: u64,
        /// The delta (JSON text).
        delta: String,
    },
}

impl StateWrite {
    /// Bytes of state it writes.
    pub fn len(&self) -> usize {
        match self {
            StateWrite::Snapshot { text, .. } => text.len(),
            StateWrite::Delta { delta, .. } => delta.len(),
        }
    }

    /// Writes nothing (never: even an unchanged state writes a small delta).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A source's state as a store holds it: a snapshot and the deltas after it, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// The snapshot's generation (0 when the store does not keep one).
    pub gen: u64,
    /// The snapshot.
    pub snapshot: String,
    /// The deltas written after it, oldest first.
    pub deltas: Vec<String>,
}

/// What a store last wrote for one source.
#[derive(Debug)]
struct Chain {
    /// The state as written (`None`: unknown after a failed write).
    text: Option<String>,
    gen: u64,
    deltas: u64,
    delta_bytes: usize,
}

/// Per source, the chain a store has written (see the module doc).
#[derive(Debug)]
pub struct StateChains {
    /// A delta larger than this is written as a snapshot instead (a store whose records
    /// are bounded chunks its snapshots but not its deltas).
    max_delta: usize,
    chains: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Chain>>>>>,
    written: AtomicU64,
}

impl Default for StateChains {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl StateChains {
    /// Chains whose deltas are at most `max_delta` bytes.
    pub fn new(max_delta: usize) -> Self {
        Self {
            max_delta,
            chains: Mutex::default(),
            written: AtomicU64::new(0),
        }
    }

    fn slot(&self, source: &str) -> Arc<tokio::sync::Mutex<Option<Chain>>> {
        self.chains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(source.to_owned())
            .or_default()
            .clone()
    }

    /// Bytes of state written through these chains (snapshots and deltas that landed).
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Commits `cursor` for `source`: chooses a delta or a snapshot and has `write`
    /// persist it. Commits of one source run one at a time. `write` answers whether it
    /// wrote: `Ok(false)` (refused, nothing written — a fence) keeps the chain as it was;
    /// an error makes the next commit a snapshot.
    pub async fn commit<F, Fut, E>(
        &self,
        source: &str,
        cursor: &Cursor,
        write: F,
    ) -> Result<bool, E>
    where
        F: FnOnce(StateWrite) -> Fut,
        Fut: Future<Output = Result<bool, E>>,
    {
        let slot = self.slot(source);
        let mut chain = slot.lock().await;
        let text = &cursor.0;
        let delta = chain.as_ref().and_then(|c| {
            let old = c.text.as_ref()?;
            if c.deltas >= MAX_DELTAS {
                return None;
            }
            let d = state_delta::diff(old, text);
            (d.len() <= self.max_delta && c.delta_bytes + d.len() < text.len()).then(|| {
                StateWrite::Delta {
                    gen: c.gen,
                    seq: c.deltas + 1,
                    delta: d,
                }
            })
        });
        let plan = delta.unwrap_or_else(|| StateWrite::Snapshot {
            gen: rand::random::<u64>() | 1,
            text: text.clone(),
        });
        let len = plan.len();
        let next = match &plan {
            StateWrite::Snapshot { gen, .. } => (*gen, 0, 0),
            StateWrite::Delta { gen, seq, .. } => (
                *gen,
                *seq,
                chain.as_ref().map_or(0, |c| c.delta_bytes) + len,
            ),
        };
        match write(plan).await {
            Ok(true) => {
                self.written.fetch_add(len as u64, Ordering::Relaxed);
                *chain = Some(Chain {
                    text: Some(text.clone()),
                    gen: next.0,
                    deltas: next.1,
                    delta_bytes: next.2,
                });
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                if let Some(c) = chain.as_mut() {
                    c.text = None;
                }
                Err(e)
            }
        }
    }

    /// The state `stored` holds, rebuilt (snapshot, then each delta in order), and
    /// remembered as what the store holds for `source`. A delta that does not apply (made
    /// from another text) ends the rebuild there, and the next commit is a snapshot.
    pub async fn loaded(&self, source: &str, stored: Option<StoredState>) -> Option<Cursor> {
        let slot = self.slot(source);
        let mut chain = slot.lock().await;
        let Some(stored) = stored else {
            *chain = None;
            return None;
        };
        let mut text = stored.snapshot;
        let mut broken = false;
        let mut delta_bytes = 0;
        for d in &stored.deltas {
            match state_delta::apply(&text, d) {
                Some(next) => {
                    text = next;
                    delta_bytes += d.len();
                }
                None => {
                    tracing::warn!(
                        %source,
                        "a delta of the fetch state does not apply; the state is rebuilt up to it and the next commit writes a snapshot"
                    );
                    broken = true;
                    break;
                }
            }
        }
        *chain = Some(Chain {
            text: (!broken).then(|| text.clone()),
            gen: stored.gen,
            deltas: stored.deltas.len() as u64,
            delta_bytes,
        });
        Some(Cursor(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: String) -> Cursor {
        Cursor(s)
    }

    /// Commits through `chains` into `stored`, as a store would.
    async fn commit(
        chains: &StateChains,
        stored: &mut Option<StoredState>,
        text: String,
    ) -> StateWrite {
        let mut seen = None;
        chains
            .commit("s", &c(text), |w| {
                seen = Some(w.clone());
                match w {
                    StateWrite::Snapshot { gen, text } => {
                        *stored = Some(StoredState {
                            gen,
                            snapshot: text,
                            deltas: vec![],
                        })
                    }
                    StateWrite::Delta { seq, delta, .. } => {
                        let s = stored.as_mut().expect("a snapshot first");
                        assert_eq!(seq as usize, s.deltas.len() + 1);
                        s.deltas.push(delta);
                    }
                }
                async { Ok::<_, ()>(true) }
            })
            .await
            .unwrap();
        seen.unwrap()
    }

    fn state(n: u64) -> String {
        let ids: String = (n..n + 2_000).map(|i| format!("{i:011}")).collect();
        format!("{{\"cursor\":{n},\"ids\":\"{ids}\"}}")
    }

    #[tokio::test]
    async fn deltas_until_they_outgrow_the_state_then_a_snapshot() {
        let chains = StateChains::default();
        let mut stored = None;
        assert!(matches!(
            commit(&chains, &mut stored, state(0)).await,
            StateWrite::Snapshot { .. }
        ));
        let mut deltas = 0;
        for n in 1..=200 {
            match commit(&chains, &mut stored, state(n * 10)).await {
                StateWrite::Delta { delta, .. } => {
                    deltas += 1;
                    assert!(delta.len() < 400, "{}", delta.len());
                }
                StateWrite::Snapshot { .. } => break,
            }
            // A fresh store rebuilds exactly what was committed.
            let again = StateChains::default();
            assert_eq!(
                again.loaded("s", stored.clone()).await,
                Some(c(state(n * 10)))
            );
        }
        assert!(
            (50..200).contains(&deltas),
            "compacted once the deltas outgrew the {}-byte state: {deltas}",
            state(0).len()
        );
        // After a failed write the next commit is a snapshot.
        let failed = chains
            .commit("s", &c(state(7)), |_| async { Err::<bool, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        assert!(matches!(
            commit(&chains, &mut stored, state(8)).await,
            StateWrite::Snapshot { .. }
        ));
        assert_eq!(chains.loaded("s", stored).await, Some(c(state(8))));
    }
}
