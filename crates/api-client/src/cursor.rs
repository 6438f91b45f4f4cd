//! Incremental cursors: where each source left off, committed only once every record of
//! the fetch that produced it is safe (acknowledged by Kafka or dead-lettered).

use std::collections::{BTreeMap, HashMap};
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
    async fn load(&self, source_id: &str) -> crate::Result<Option<Cursor>>;
    /// Commits `cursor` for `source_id`.
    async fn commit(&self, source_id: &str, cursor: &Cursor) -> crate::Result<()>;

    /// Takes `source_id` for `owner` (one worker of several sharing the sources): the
    /// returned lease is newer than every lease taken before, and from now on only
    /// commits under the newest lease land ([`CursorStore::commit_leased`]). A store
    /// that cannot fence (it is not shared) refuses.
    async fn claim(&self, source_id: &str, owner: &str) -> crate::Result<Lease> {
        let _ = owner;
        Err(not_shared(source_id))
    }

    /// Commits `cursor` only if `lease` is still the newest lease of `source_id`;
    /// otherwise nothing is written and the error is [`crate::Error::Fenced`]. Must be
    /// atomic with [`CursorStore::claim`]: a commit never lands after a newer claim.
    async fn commit_leased(
        &self,
        source_id: &str,
        cursor: &Cursor,
        lease: &Lease,
    ) -> crate::Result<()> {
        let _ = (cursor, lease);
        Err(not_shared(source_id))
    }

    /// `Ok` while `lease` is still the newest claim of `source_id`, else
    /// [`crate::Error::Fenced`] naming the newer owner. An early look, not the fence: a
    /// worker asks before each fetch so it stops polling a source another worker has
    /// claimed, instead of finding out at its next commit. A store that cannot fence
    /// answers `Ok` ([`CursorStore::commit_leased`] refuses for it anyway).
    async fn check_lease(&self, source_id: &str, lease: &Lease) -> crate::Result<()> {
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
fn not_shared(source_id: &str) -> crate::Error {
    crate::Error::Fenced(format!(
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
    /// owner of the newest claim, if any); else [`crate::Error::Fenced`] naming its owner.
    pub fn check(&self, source_id: &str, newest: Option<(i64, &str)>) -> crate::Result<()> {
        match newest {
            Some((epoch, _)) if epoch == self.epoch => Ok(()),
            newest => Err(crate::Error::Fenced(fenced_message(
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
    async fn load(&self, source_id: &str) -> crate::Result<Option<Cursor>> {
        let stored = self
            .cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source_id)
            .cloned();
        Ok(self.chains.loaded(source_id, stored).await)
    }

    async fn commit(&self, source_id: &str, cursor: &Cursor) -> crate::Result<()> {
        self.chains
            .commit(source_id, cursor, |w| {
                self.write(source_id, w);
                async { Ok::<_, crate::Error>(true) }
            })
            .await
            .map(|_| ())
    }

    async fn claim(&self, source_id: &str, owner: &str) -> crate::Result<Lease> {
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
    ) -> crate::Result<()> {
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
                async move { Ok::<_, crate::Error>(written) }
            })
            .await?;
        refused.map_or(Ok(()), Err)
    }

    async fn check_lease(&self, source_id: &str, lease: &Lease) -> crate::Result<()> {
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

/// An error with its causes, for an operator.
fn error_chain(e: &crate::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// One fetch waiting for its records to be settled.
#[derive(Debug)]
struct Pending {
    cursor: Option<Cursor>,
    remaining: usize,
}

/// Tracks the fetches of one source in order, and commits a fetch's cursor once it and
/// every earlier fetch are fully settled (so a crash never skips unsettled records).
#[derive(Debug)]
pub struct CursorTracker {
    source_id: String,
    store: Arc<dyn CursorStore>,
    /// Set when the source is shared by workers: commits are fenced by it.
    lease: Option<Lease>,
    state: Mutex<TrackerState>,
    /// Held from choosing a cursor to commit until it is written: concurrent settles
    /// (one delivery task per batch) write in the order they chose, so an older cursor
    /// never lands after a newer one.
    commit_order: tokio::sync::Mutex<()>,
    /// Why the last write of the store failed; cleared by the next write that lands.
    commit_error: Mutex<Option<String>>,
}

#[derive(Debug, Default)]
struct TrackerState {
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
    current: Option<Cursor>,
}

/// Identifies one fetch's records in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchSeq(pub u64);

impl CursorTracker {
    /// Loads the committed cursor of `source_id` from `store`.
    pub async fn load(source_id: &str, store: Arc<dyn CursorStore>) -> crate::Result<Self> {
        let current = store.load(source_id).await?;
        Ok(Self {
            source_id: source_id.to_owned(),
            store,
            lease: None,
            state: Mutex::new(TrackerState {
                current,
                ..TrackerState::default()
            }),
            commit_order: tokio::sync::Mutex::new(()),
            commit_error: Mutex::new(None),
        })
    }

    /// Claims `source_id` for `owner`, then loads its committed cursor: every commit of
    /// this tracker is fenced by the claim, so once another worker has claimed the
    /// source, this one's commits fail with [`crate::Error::Fenced`] instead of landing.
    pub async fn claim(
        source_id: &str,
        owner: &str,
        store: Arc<dyn CursorStore>,
    ) -> crate::Result<Self> {
        let lease = store.claim(source_id, owner).await?;
        let mut t = Self::load(source_id, store).await?;
        t.lease = Some(lease);
        Ok(t)
    }

    /// The claim this tracker commits under, if the source is shared by workers.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// `Ok` while this tracker's claim is still the source's newest (always, when the
    /// source is not shared); [`crate::Error::Fenced`] once another worker has claimed
    /// it. Asked before each fetch ([`CursorStore::check_lease`]).
    pub async fn check_lease(&self) -> crate::Result<()> {
        match &self.lease {
            Some(lease) => self.store.check_lease(&self.source_id, lease).await,
            None => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cursor to fetch from: the newest one handed out (fetches run one after the
    /// other, so the next fetch continues where the last one ended).
    pub fn fetch_from(&self) -> Option<Cursor> {
        let s = self.lock();
        s.pending
            .values()
            .rev()
            .find_map(|p| p.cursor.clone())
            .or_else(|| s.current.clone())
    }

    /// The last committed cursor.
    pub fn committed(&self) -> Option<Cursor> {
        self.lock().current.clone()
    }

    /// Registers a fetch of `records` records ending at `cursor`. A fetch with no
    /// records settles at once.
    pub async fn register(
        &self,
        cursor: Option<Cursor>,
        records: usize,
    ) -> crate::Result<FetchSeq> {
        let seq = {
            let mut s = self.lock();
            let seq = s.next_seq;
            s.next_seq += 1;
            s.pending.insert(
                seq,
                Pending {
                    cursor,
                    remaining: records,
                },
            );
            seq
        };
        if records == 0 {
            self.commit_ready().await?;
        }
        Ok(FetchSeq(seq))
    }

    /// `n` records of fetch `seq` are safe.
    pub async fn settle(&self, seq: FetchSeq, n: usize) -> crate::Result<()> {
        {
            let mut s = self.lock();
            if let Some(p) = s.pending.get_mut(&seq.0) {
                p.remaining = p.remaining.saturating_sub(n);
            }
        }
        self.commit_ready().await
    }

    /// Commits the newest cursor of the settled prefix of fetches.
    async fn commit_ready(&self) -> crate::Result<()> {
        let _in_order = self.commit_order.lock().await;
        let to_commit = {
            let mut s = self.lock();
            let mut newest = None;
            while let Some((&seq, p)) = s.pending.iter().next() {
                if p.remaining > 0 {
                    break;
                }
                let p = s.pending.remove(&seq).expect("present");
                if p.cursor.is_some() {
                    newest = p.cursor;
                }
            }
            if let Some(c) = &newest {
                s.current = Some(c.clone());
            }
            newest
        };
        let written = match (to_commit, &self.lease) {
            (Some(c), None) => self.store.commit(&self.source_id, &c).await,
            (Some(c), Some(lease)) => self.store.commit_leased(&self.source_id, &c, lease).await,
            (None, _) => return Ok(()),
        };
        *self.commit_error.lock().unwrap_or_else(|e| e.into_inner()) =
            written.as_ref().err().map(error_chain);
        written
    }

    /// Why the store refused or failed the last commit, until a commit lands again: the
    /// fetch state is not advancing, so a restart would fetch again from an older state.
    pub fn commit_error(&self) -> Option<String> {
        self.commit_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches whose records are not all settled yet.
    pub fn unsettled(&self) -> usize {
        self.lock().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<Cursor> {
        Some(Cursor(s.to_owned()))
    }

    #[tokio::test]
    async fn commits_only_the_settled_prefix_in_order() {
        let store = MemoryCursorStore::default();
        let t = CursorTracker::load("s", Arc::new(store.clone()))
            .await
            .unwrap();
        let a = t.register(c("1"), 2).await.unwrap();
        let b = t.register(c("2"), 1).await.unwrap();
        assert_eq!(
            t.fetch_from(),
            c("2"),
            "the next fetch continues after the last"
        );
        t.settle(b, 1).await.unwrap();
        assert_eq!(
            store.load("s").await.unwrap(),
            None,
            "b is settled but a is not: nothing committed"
        );
        t.settle(a, 1).await.unwrap();
        assert_eq!(store.load("s").await.unwrap(), None);
        t.settle(a, 1).await.unwrap();
        assert_eq!(
            store.load("s").await.unwrap(),
            c("2"),
            "both settled: the newest cursor"
        );
        // An empty fetch with a cursor commits at once.
        t.register(c("3"), 0).await.unwrap();
        assert_eq!(store.load("s").await.unwrap(), c("3"));
        assert_eq!(t.unsettled(), 0);
    }

    #[tokio::test]
    async fn a_superseded_claim_can_no_longer_commit() {
        let store: Arc<dyn CursorStore> = Arc::new(MemoryCursorStore::default());
        let old = CursorTracker::claim("s", "w1", store.clone())
            .await
            .unwrap();
        let a = old.register(c("1"), 1).await.unwrap();
        old.settle(a, 1).await.unwrap();
        assert_eq!(store.load("s").await.unwrap(), c("1"), "the owner commits");
        let new = CursorTracker::claim("s", "w2", store.clone())
            .await
            .unwrap();
        assert_eq!(new.committed(), c("1"), "the new owner resumes there");
        assert!(new.lease().unwrap().epoch > old.lease().unwrap().epoch);
        assert!(new.check_lease().await.is_ok(), "the newest claim holds");
        let early = old.check_lease().await.expect_err("superseded");
        assert!(
            matches!(early, crate::Error::Fenced(ref m) if m.contains("`w2`")),
            "{early}"
        );
        let b = old.register(c("2"), 1).await.unwrap();
        let err = old.settle(b, 1).await.expect_err("fenced");
        assert!(
            matches!(err, crate::Error::Fenced(ref m) if m.contains("`w2`")),
            "{err}"
        );
        assert_eq!(store.load("s").await.unwrap(), c("1"), "nothing written");
        let d = new.register(c("3"), 0).await;
        assert!(d.is_ok());
        assert_eq!(store.load("s").await.unwrap(), c("3"));
        let plain = MemoryCursorStore::default();
        let single = CursorTracker::load("s", Arc::new(plain)).await.unwrap();
        assert!(
            single.lease().is_none(),
            "single-process trackers commit without a lease"
        );
        assert!(single.check_lease().await.is_ok(), "and are never fenced");
    }

    /// Writes of cursor "1" take 100 ms, all others 1 ms.
    #[derive(Debug, Default)]
    struct SlowFirst(MemoryCursorStore);

    #[async_trait::async_trait]
    impl CursorStore for SlowFirst {
        async fn load(&self, source_id: &str) -> crate::Result<Option<Cursor>> {
            self.0.load(source_id).await
        }
        async fn commit(&self, source_id: &str, cursor: &Cursor) -> crate::Result<()> {
            let ms = if cursor.0 == "1" { 100 } else { 1 };
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            self.0.commit(source_id, cursor).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_settles_never_leave_an_older_cursor_committed() {
        let store = Arc::new(SlowFirst::default());
        let t = Arc::new(CursorTracker::load("s", store.clone()).await.unwrap());
        let a = t.register(c("1"), 1).await.unwrap();
        let b = t.register(c("2"), 1).await.unwrap();
        // Two delivery tasks: the first commits "1" (slow write), the second, settling
        // while that write is under way, commits "2".
        let first = tokio::spawn({
            let t = t.clone();
            async move { t.settle(a, 1).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        t.settle(b, 1).await.unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(
            store.load("s").await.unwrap(),
            c("2"),
            "the newest cursor stays"
        );
        assert_eq!(t.committed(), c("2"));
    }

    #[tokio::test]
    async fn a_restart_resumes_from_the_last_commit() {
        let store: Arc<dyn CursorStore> = Arc::new(MemoryCursorStore::default());
        let t = CursorTracker::load("s", store.clone()).await.unwrap();
        let a = t.register(c("10"), 1).await.unwrap();
        t.settle(a, 1).await.unwrap();
        t.register(c("20"), 5).await.unwrap(); // fetched, never acknowledged: "crash"
        drop(t);
        let again = CursorTracker::load("s", store).await.unwrap();
        assert_eq!(
            again.fetch_from(),
            c("10"),
            "re-fetches from the old cursor"
        );
    }
}
