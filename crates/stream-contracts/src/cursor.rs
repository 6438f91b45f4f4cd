//! Where each source left off, durably: the [`CursorStore`] seam, the [`Lease`] that
//! fences a shared source's commits, and the in-memory store. Committing only once every
//! record of a fetch is safe is `api_client::CursorTracker`'s job.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::source::Cursor;
use crate::state_chain::{StateChains, StateWrite, StoredState};

/// Durable cursors by source id. The SQL implementation (SQLite or PostgreSQL, beside
/// the DLQ) is the `store` crate's `SqlStore`.
#[async_trait]
pub trait CursorStore: Send + Sync + fmt::Debug {
    /// The last committed cursor of `source_id`.
    async fn load(&self, source_id: &str) -> crate::SourceResult<Option<Cursor>>;
    /// Commits `cursor` for `source_id`.
    async fn commit(&self, source_id: &str, cursor: &Cursor) -> crate::SourceResult<()>;

    /// Takes `source_id` for `owner` (one worker of several sharing the sources): the
    /// returned lease is newer than every lease taken before, and from now on only
    /// commits under the newest lease land ([`CursorStore::commit_leased`]). A store
    /// that cannot fence (it is not shared) refuses.
    async fn claim(&self, source_id: &str, owner: &str) -> crate::SourceResult<Lease> {
        let _ = owner;
        Err(not_shared(source_id))
    }

    /// Commits `cursor` only if `lease` is still the newest lease of `source_id`;
    /// otherwise nothing is written and the error is [`crate::SourceError::Fenced`]. Must be
    /// atomic with [`CursorStore::claim`]: a commit never lands after a newer claim.
    async fn commit_leased(
        &self,
        source_id: &str,
        cursor: &Cursor,
        lease: &Lease,
    ) -> crate::SourceResult<()> {
        let _ = (cursor, lease);
        Err(not_shared(source_id))
    }

    /// `Ok` while `lease` is still the newest claim of `source_id`, else
    /// [`crate::SourceError::Fenced`] naming the newer owner. An early look, not the fence: a
    /// worker asks before each fetch so it stops polling a source another worker has
    /// claimed, instead of finding out at its next commit. A store that cannot fence
    /// answers `Ok` ([`CursorStore::commit_leased`] refuses for it anyway).
    async fn check_lease(&self, source_id: &str, lease: &Lease) -> crate::SourceResult<()> {
        let _ = (source_id, lease);
        Ok(())
    }

    /// Bytes of fetch state written so far (snapshots and deltas, see
    /// [`crate::StateChains`]); 0 from a store that does not count them.
    fn state_bytes_written(&self) -> u64 {
        0
    }
}

/// The refusal of a store that cannot fence (it is not shared by workers).
fn not_shared(source_id: &str) -> crate::SourceError {
    crate::SourceError::Fenced(format!(
        "this cursor store cannot be shared by workers (source `{source_id}`): use a shared SQL store"
    ))
}

/// A worker's claim on a source's cursor: `epoch` grows with every claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who claimed it.
    pub owner: String,
    /// The claim's number; the newest claim of a source has the largest.
    pub epoch: i64,
}

impl Lease {
    /// `Ok` if this lease is the newest claim of `source_id` (`newest`: the epoch and
    /// owner of the newest claim, if any); else [`crate::SourceError::Fenced`] naming its owner.
    pub fn check(&self, source_id: &str, newest: Option<(i64, &str)>) -> crate::SourceResult<()> {
        match newest {
            Some((epoch, _)) if epoch == self.epoch => Ok(()),
            newest => Err(crate::SourceError::Fenced(fenced_message(
                source_id,
                self,
                newest.map(|(_, owner)| owner),
            ))),
        }
    }
}

/// Cursors in memory (tests, or library users who do not need durability), kept as
/// snapshots and deltas like the durable stores.
#[derive(Debug, Default, Clone)]
pub struct MemoryCursorStore {
    cursors: Arc<Mutex<HashMap<String, StoredState>>>,
    leases: Arc<Mutex<HashMap<String, Lease>>>,
    chains: Arc<StateChains>,
}

impl MemoryCursorStore {
    fn write(&self, source_id: &str, w: StateWrite) {
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        match w {
            StateWrite::Snapshot { gen, text } => {
                cursors.insert(
                    source_id.to_owned(),
                    StoredState {
                        gen,
                        snapshot: text,
                        deltas: Vec::new(),
                    },
                );
            }
            StateWrite::Delta { delta, .. } => {
                if let Some(s) = cursors.get_mut(source_id) {
                    s.deltas.push(delta);
                }
            }
        }
    }
}

#[async_trait]
impl CursorStore for MemoryCursorStore {
    async fn load(&self, source_id: &str) -> crate::SourceResult<Option<Cursor>> {
        let stored = self
            .cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source_id)
            .cloned();
        Ok(self.chains.loaded(source_id, stored).await)
    }

    async fn commit(&self, source_id: &str, cursor: &Cursor) -> crate::SourceResult<()> {
        self.chains
            .commit(source_id, cursor, |w| {
                self.write(source_id, w);
                async { Ok::<_, crate::SourceError>(true) }
            })
            .await
            .map(|_| ())
    }

    async fn claim(&self, source_id: &str, owner: &str) -> crate::SourceResult<Lease> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let epoch = leases.get(source_id).map_or(1, |l| l.epoch + 1);
        let lease = Lease {
            owner: owner.to_owned(),
            epoch,
        };
        leases.insert(source_id.to_owned(), lease.clone());
        Ok(lease)
    }

    async fn commit_leased(
        &self,
        source_id: &str,
        cursor: &Cursor,
        lease: &Lease,
    ) -> crate::SourceResult<()> {
        let mut refused = None;
        self.chains
            .commit(source_id, cursor, |w| {
                // The lease map's lock is held through the write: a claim waits for it.
                let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
                let checked = lease.check(source_id, newest(&leases, source_id));
                let written = match checked {
                    Ok(()) => {
                        self.write(source_id, w);
                        true
                    }
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                };
                async move { Ok::<_, crate::SourceError>(written) }
            })
            .await?;
        refused.map_or(Ok(()), Err)
    }

    async fn check_lease(&self, source_id: &str, lease: &Lease) -> crate::SourceResult<()> {
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        lease.check(source_id, newest(&leases, source_id))
    }

    fn state_bytes_written(&self) -> u64 {
        self.chains.bytes_written()
    }
}

/// The newest claim of `source_id` in a lease map: (epoch, owner).
fn newest<'a>(leases: &'a HashMap<String, Lease>, source_id: &str) -> Option<(i64, &'a str)> {
    leases.get(source_id).map(|l| (l.epoch, l.owner.as_str()))
}

/// Why a commit under an old lease was refused.
pub fn fenced_message(source_id: &str, lease: &Lease, newest_owner: Option<&str>) -> String {
    format!(
        "`{source_id}` was claimed by {} after this worker's claim (epoch {}): this worker no longer owns it and must stop it",
        newest_owner.map_or_else(|| "another worker".to_owned(), |o| format!("`{o}`")),
        lease.epoch
    )
}
