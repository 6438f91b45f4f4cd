//! Tracks each source's fetches and commits a fetch's cursor to its `CursorStore` only once
//! every record of it and of every earlier fetch is safe (acknowledged by Kafka or
//! dead-lettered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use stream_contracts::{Cursor, CursorStore, Lease};

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
    /// Still under way ([`CursorTracker::begin`]): records may be added, and neither it
    /// nor any later fetch commits until it ends.
    open: bool,
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
        let seq = self.open(Pending {
            cursor,
            remaining: records,
            open: false,
        });
        if records == 0 {
            self.commit_ready().await?;
        }
        Ok(FetchSeq(seq))
    }

    /// Registers a fetch that is under way: its records are added as they are handed on
    /// ([`CursorTracker::add`]), and its cursor is known when it ends
    /// ([`CursorTracker::end`]). Until then nothing from it on commits.
    pub fn begin(&self) -> FetchSeq {
        FetchSeq(self.open(Pending {
            cursor: None,
            remaining: 0,
            open: true,
        }))
    }

    /// Registers `pending` under the next sequence number.
    fn open(&self, pending: Pending) -> u64 {
        let mut s = self.lock();
        let seq = s.next_seq;
        s.next_seq += 1;
        s.pending.insert(seq, pending);
        seq
    }

    /// `n` more records of the open fetch `seq` are on their way (before they are
    /// handed on, so they cannot settle first).
    pub fn add(&self, seq: FetchSeq, n: usize) {
        if let Some(p) = self.lock().pending.get_mut(&seq.0) {
            p.remaining += n;
        }
    }

    /// The open fetch `seq` ended: `cursor` guards every record it handed on (`None`:
    /// it failed, or had nothing new; the state it started from stays). Commits what is
    /// settled.
    pub async fn end(&self, seq: FetchSeq, cursor: Option<Cursor>) -> crate::Result<()> {
        {
            let mut s = self.lock();
            if let Some(p) = s.pending.get_mut(&seq.0) {
                p.cursor = cursor;
                p.open = false;
            }
        }
        self.commit_ready().await
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
                if p.remaining > 0 || p.open {
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
    use stream_contracts::MemoryCursorStore;

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
    async fn an_open_fetch_commits_only_once_ended_and_settled_and_a_failed_one_never() {
        let store = MemoryCursorStore::default();
        let t = CursorTracker::load("s", Arc::new(store.clone()))
            .await
            .unwrap();
        let a = t.begin();
        t.add(a, 2);
        t.settle(a, 2).await.unwrap();
        let b = t.register(c("2"), 0).await.unwrap();
        assert_eq!(t.fetch_from(), c("2"));
        assert_eq!(
            store.load("s").await.unwrap(),
            None,
            "a is settled so far but still under way: nothing after it commits"
        );
        t.add(a, 1);
        t.end(a, c("1")).await.unwrap();
        assert_eq!(
            store.load("s").await.unwrap(),
            None,
            "one record of a is out"
        );
        t.settle(a, 1).await.unwrap();
        assert_eq!(store.load("s").await.unwrap(), c("2"), "a and b settled");
        let _ = b;
        // A fetch that fails half way: its records settle, no state advances.
        let f = t.begin();
        t.add(f, 3);
        t.end(f, None).await.unwrap();
        t.settle(f, 3).await.unwrap();
        assert_eq!(store.load("s").await.unwrap(), c("2"));
        assert_eq!(
            t.fetch_from(),
            c("2"),
            "the next poll asks again from there"
        );
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
