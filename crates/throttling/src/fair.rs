//! Per-source throttling: each source's fair share of a bounded pipeline (records
//! admitted and not yet settled) — a source that floods waits for its own records
//! instead of crowding out the others' — and, where lag is read per topic, a throttle of
//! its own (a [`ThrottleGroup`] key) fed by the lag of the topics its records go to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::{Lag, ThrottleGroup};

/// Most topics remembered per source for its lag (templated topics can be many; the
/// lag of those beyond it is not attributed to the source).
const MAX_TOPICS: usize = 64;

/// How often a source waiting over its share looks again without being woken.
const RECHECK: Duration = Duration::from_secs(1);

/// What every share of one pipeline has in common.
#[derive(Debug, Default)]
struct Gate {
    /// Sources with records outstanding.
    busy: AtomicUsize,
    /// Signalled whenever records settle (for a record waiting for room in a full
    /// queue, which any settle can make).
    settled: Notify,
}

/// One source's share of the pipeline.
#[derive(Debug, Default)]
pub struct SourceShare {
    gate: Arc<Gate>,
    /// Records admitted into the pipeline and not yet settled (queued or with the
    /// producer).
    outstanding: AtomicUsize,
    /// The topics its records went to (at most [`MAX_TOPICS`]).
    topics: Mutex<Vec<Arc<str>>>,
    /// The delay its own throttle decided at the last lag check, taken once.
    pending_delay_ms: AtomicU64,
    /// Signalled when this source's own records settle: what a source over its share
    /// waits for. (Waking every waiting source at every settle cost each settle a
    /// wake-up per waiting source: at 10,000 sources the pipeline spent its time
    /// waking sources that were still over their share.)
    own_settled: Notify,
}

impl SourceShare {
    /// Records admitted and not yet settled.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// `n` records of this source enter the pipeline.
    pub fn admitted(&self, n: usize) {
        if n > 0 && self.outstanding.fetch_add(n, Ordering::AcqRel) == 0 {
            self.gate.busy.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// `n` records of this source settled (delivered or dead-lettered).
    pub fn settled(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_sub(n))
            })
            .unwrap_or(0);
        if before > 0 && before <= n {
            let _ = self
                .gate
                .busy
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    Some(v.saturating_sub(1))
                });
        }
        self.own_settled.notify_waiters();
        self.gate.settled.notify_waiters();
    }

    /// Remembers the topics of a batch.
    pub fn saw_topics<'a>(&self, topics: impl IntoIterator<Item = &'a Arc<str>>) {
        let mut known = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        for t in topics {
            if known.len() < MAX_TOPICS && !known.contains(t) {
                known.push(t.clone());
            }
        }
    }
}

/// The sources' shares, and who waits for one.
#[derive(Debug, Default)]
pub struct PerSource {
    gate: Arc<Gate>,
    /// Every stream's share, by source id (for the lag checker).
    shares: Mutex<HashMap<Arc<str>, Arc<SourceShare>>>,
}

impl PerSource {
    /// The share of source `id`, created on first use (kept across its restarts).
    pub fn share(&self, id: &Arc<str>) -> Arc<SourceShare> {
        self.shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(SourceShare {
                    gate: self.gate.clone(),
                    ..SourceShare::default()
                })
            })
            .clone()
    }

    /// Forgets a removed source (its records still settle against the share they hold).
    pub fn forget(&self, id: &str) {
        self.shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Completes at the next settle of any source's records (enable it before checking
    /// what it waits for, as `Notify` asks).
    pub fn next_settle(&self) -> tokio::sync::futures::Notified<'_> {
        self.gate.settled.notified()
    }

    /// Sources with records outstanding.
    pub fn busy(&self) -> usize {
        self.gate.busy.load(Ordering::Relaxed)
    }

    /// True while `share` holds its fair share of `capacity` or more and another source
    /// has records outstanding too: `capacity` ÷ busy sources, at least one record.
    pub fn over_share(&self, share: &SourceShare, capacity: usize) -> bool {
        let busy = self.busy();
        let mine = share.outstanding();
        busy > 1 && mine > 0 && mine >= (capacity / busy).max(1)
    }

    /// Waits until `share` is below its fair share of `capacity` (or `stop` says the
    /// pipeline is closing: the push that follows then dead-letters the record).
    pub async fn wait_for_room(
        &self,
        share: &SourceShare,
        capacity: usize,
        stop: impl Fn() -> bool,
    ) {
        loop {
            // The usual case, once per record: under its share, no waiter registered
            // (registering takes the `Notify`'s lock) and `stop` not asked.
            if !self.over_share(share, capacity) {
                return;
            }
            // Its own records settling is what brings it under; others draining (fewer
            // busy sources, a larger share) is seen at the next re-check.
            let notified = share.own_settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.over_share(share, capacity) || stop() {
                return;
            }
            // Re-checked at least every second: a closing pipeline settles nothing, and
            // the share grows when other sources drain. (Every 100 ms, 100,000 waiting
            // sources kept the timer wheel busy with a million wake-ups a second.)
            let _ = tokio::time::timeout(RECHECK, notified).await;
        }
    }

    /// Feeds each source's own throttle with the lag of its topics (those the reading
    /// has), keeping the delay it decides for the source's next batch, and returns the
    /// lag no source claims (all of it when the reading has no per-topic figures).
    pub fn record_lag(&self, throttles: &ThrottleGroup, lag: &Lag) -> i64 {
        if lag.by_topic.is_empty() {
            return lag.total;
        }
        let mut claimed = std::collections::BTreeSet::new();
        let shares: Vec<(Arc<str>, Arc<SourceShare>)> = self
            .shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        for (id, share) in shares {
            let topics = share
                .topics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            claimed.extend(
                topics
                    .iter()
                    .filter(|t| lag.by_topic.contains_key(&***t))
                    .cloned(),
            );
            let mut own = topics
                .iter()
                .filter_map(|t| lag.by_topic.get(&**t))
                .peekable();
            if own.peek().is_none() {
                continue;
            }
            let sum = own.fold(0i64, |acc, l| acc.saturating_add((*l).max(0)));
            let d = throttles.for_key(&id).record(sum);
            if !d.delay.is_zero() {
                share
                    .pending_delay_ms
                    .fetch_max(d.delay.as_millis() as u64, Ordering::Relaxed);
            }
        }
        lag.by_topic
            .iter()
            .filter(|(t, _)| !claimed.contains(t.as_str()))
            .fold(0i64, |acc, (_, l)| acc.saturating_add((*l).max(0)))
    }

    /// The delay `share`'s own throttle asked for, taken (zero when none).
    pub fn take_delay(&self, share: &SourceShare) -> Duration {
        Duration::from_millis(share.pending_delay_ms.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_source_over_its_share_waits_until_its_own_records_settle() {
        let p = Arc::new(PerSource::default());
        let (a, b) = (p.share(&"a".into()), p.share(&"b".into()));
        a.admitted(10);
        // Alone, `a` may use the whole capacity.
        assert!(!p.over_share(&a, 10));
        b.admitted(1);
        assert_eq!(p.busy(), 2);
        assert!(p.over_share(&a, 10), "10 of 10 with two busy sources");
        assert!(!p.over_share(&b, 10));
        let waiter = tokio::spawn({
            let (p, a) = (p.clone(), a.clone());
            async move { p.wait_for_room(&a, 10, || false).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiter.is_finished());
        a.settled(6);
        waiter.await.unwrap();
        b.settled(1);
        assert_eq!(p.busy(), 1);
        a.settled(99);
        assert_eq!((p.busy(), a.outstanding()), (0, 0), "saturates");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_source_is_woken_by_its_own_settles_not_by_every_other_sources() {
        use std::future::Future as _;
        let p = Arc::new(PerSource::default());
        let (a, b) = (p.share(&"a".into()), p.share(&"b".into()));
        a.admitted(5);
        b.admitted(5);
        assert!(p.over_share(&a, 10), "5 of 10 with two busy sources");
        let polls = Arc::new(AtomicUsize::new(0));
        let waiter = tokio::spawn({
            let (p, a, polls) = (p.clone(), a.clone(), polls.clone());
            async move {
                let wait = p.wait_for_room(&a, 10, || false);
                tokio::pin!(wait);
                std::future::poll_fn(|cx| {
                    polls.fetch_add(1, Ordering::Relaxed);
                    wait.as_mut().poll(cx)
                })
                .await
            }
        });
        tokio::task::yield_now().await;
        let before = polls.load(Ordering::Relaxed);
        // Another source's records settling one by one does not wake `a` (it stays
        // over: 5 of 10 while `b` is busy)…
        for _ in 0..4 {
            b.settled(1);
            tokio::task::yield_now().await;
        }
        assert_eq!(polls.load(Ordering::Relaxed), before, "not woken by b");
        assert!(!waiter.is_finished());
        // …its own do, at once (well before the re-check).
        a.settled(1);
        let woken = tokio::time::timeout(Duration::from_millis(50), waiter).await;
        assert!(woken.is_ok(), "woken by its own settle");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_source_sees_its_share_grow_when_the_others_drain() {
        let p = Arc::new(PerSource::default());
        let (a, b) = (p.share(&"a".into()), p.share(&"b".into()));
        a.admitted(5);
        b.admitted(5);
        let waiter = tokio::spawn({
            let (p, a) = (p.clone(), a.clone());
            async move { p.wait_for_room(&a, 10, || false).await }
        });
        tokio::task::yield_now().await;
        b.settled(5);
        // `a` is alone now: it may use the whole pipeline, seen at the next re-check.
        tokio::time::sleep(RECHECK + Duration::from_millis(1)).await;
        assert!(waiter.is_finished());
    }

    #[test]
    fn lag_is_attributed_by_topic() {
        let p = PerSource::default();
        let g = ThrottleGroup::new(crate::ThrottleSettings::default());
        let (a, b) = (p.share(&"a".into()), p.share(&"b".into()));
        a.saw_topics([&Arc::from("ta")]);
        b.saw_topics([&Arc::from("tb")]);
        let lag = Lag {
            total: 9_000,
            by_topic: [("ta".to_owned(), 9_000), ("tb".to_owned(), 0)].into(),
            ..Lag::default()
        };
        let unclaimed = p.record_lag(&g, &lag);
        assert_eq!(unclaimed, 0, "both topics are claimed");
        assert_eq!(g.for_key("a").snapshot().state.as_str(), "critical");
        assert_eq!(g.for_key("b").snapshot().state.as_str(), "normal");
        assert_eq!(p.take_delay(&a), Duration::from_secs(2));
        assert_eq!(p.take_delay(&a), Duration::ZERO, "taken once");
        assert_eq!(p.take_delay(&b), Duration::ZERO);
    }
}
