//! Incremental cursors: where each source left off, committed only once every record of
//! the fetch that produced it is safe (acknowledged by Kafka or dead-lettered).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::source::Cursor;

/// Durable cursors by source id. The SQL implementation (SQLite or PostgreSQL, beside
/// the DLQ) is the `store` crate's `SqlStore`.
#[async_trait]
pub trait CursorStore: Send + Sync + fmt::Debug {
    /// The last committed cursor of `source_id`.
    async fn load(&self, source_id: &str) -> crate::Result<Option<Cursor>>;
    /// Commits `cursor` for `source_id`.
    async fn commit(&self, source_id: &str, cursor: &Cursor) -> crate::Result<()>;
}

/// Cursors in memory (tests, or library users who do not need durability).
#[derive(Debug, Default, Clone)]
pub struct MemoryCursorStore {
    cursors: Arc<Mutex<HashMap<String, Cursor>>>,
}

#[async_trait]
impl CursorStore for MemoryCursorStore {
    async fn load(&self, source_id: &str) -> crate::Result<Option<Cursor>> {
        Ok(self
            .cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source_id)
            .cloned())
    }

    async fn commit(&self, source_id: &str, cursor: &Cursor) -> crate::Result<()> {
        self.cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source_id.to_owned(), cursor.clone());
        Ok(())
    }
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
    state: Mutex<TrackerState>,
    /// Held from choosing a cursor to commit until it is written: concurrent settles
    /// (one delivery task per batch) write in the order they chose, so an older cursor
    /// never lands after a newer one.
    commit_order: tokio::sync::Mutex<()>,
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
            state: Mutex::new(TrackerState {
                current,
                ..TrackerState::default()
            }),
            commit_order: tokio::sync::Mutex::new(()),
        })
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
        match to_commit {
            Some(c) => self.store.commit(&self.source_id, &c).await,
            None => Ok(()),
        }
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
