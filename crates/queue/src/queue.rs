//! The queue itself: one `VecDeque` per priority under a mutex, two `Notify`s for
//! waiting consumers and blocked producers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::PushError;
use crate::metrics as m;
use crate::settings::{Lanes, PopBatch, QueueConfig, QueueStats, Scheduling};
use crate::{priority_index, OverflowStrategy, Priority, QueueItem, PRIORITIES};

struct Inner<T> {
    lanes: [VecDeque<T>; 4],
    bytes: [u64; 4],
    len: usize,
    total_bytes: u64,
    closed: bool,
    credits: [u32; 4],
    waiting_pop: usize,
    waiting_push: usize,
    stats: QueueStats,
    published: (u64, u64),
    config: QueueConfig,
}

/// A bounded, multi-producer multi-consumer async priority queue.
pub struct PriorityQueue<T> {
    inner: Mutex<Inner<T>>,
    not_empty: Notify,
    not_full: Notify,
}

impl<T: QueueItem> fmt::Debug for PriorityQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriorityQueue")
            .field("config", &self.config())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Decrements a waiter count when a waiting future finishes or is dropped.
struct WaitGuard<'a, T> {
    queue: &'a PriorityQueue<T>,
    pop: bool,
}

impl<T> Drop for WaitGuard<'_, T> {
    fn drop(&mut self) {
        let mut inner = self.queue.lock();
        if self.pop {
            inner.waiting_pop -= 1;
        } else {
            inner.waiting_push -= 1;
        }
    }
}

impl<T> PriorityQueue<T> {
    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock cannot leave the lanes half-updated in a way
        // that matters more than losing the whole queue would: keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: QueueItem> PriorityQueue<T> {
    /// An empty queue. `max_items` below 1 is taken as 1.
    pub fn new(mut config: QueueConfig) -> Self {
        config.max_items = config.max_items.max(1);
        Self {
            inner: Mutex::new(Inner {
                lanes: Default::default(),
                bytes: [0; 4],
                len: 0,
                total_bytes: 0,
                closed: false,
                credits: [0; 4],
                waiting_pop: 0,
                waiting_push: 0,
                stats: QueueStats::default(),
                published: (0, 0),
                config,
            }),
            not_empty: Notify::new(),
            not_full: Notify::new(),
        }
    }

    /// The queue's configuration in force.
    pub fn config(&self) -> QueueConfig {
        self.lock().config
    }

    /// Applies new bounds, overflow strategy and scheduling to the running queue and
    /// returns what it evicted: nothing is refused retroactively. A queue that now holds
    /// more than the new bounds allow keeps its records under `DropNewest` and `Block`
    /// (new pushes are refused or wait until it drains below them); under `DropOldest`
    /// the excess is evicted at once, lowest priority and oldest first, and handed back
    /// like any eviction. Blocked pushes are woken to try again.
    pub fn reconfigure(&self, mut config: QueueConfig) -> Vec<T> {
        config.max_items = config.max_items.max(1);
        let mut inner = self.lock();
        inner.config = config;
        let mut evicted = Vec::new();
        if config.overflow == OverflowStrategy::DropOldest {
            for (lane, priority) in PRIORITIES.iter().enumerate() {
                while !inner.lanes[lane].is_empty()
                    && (inner.len > config.max_items
                        || config.max_bytes.is_some_and(|max| inner.total_bytes > max))
                {
                    evicted.push(self.remove_front(&mut inner, lane));
                    metrics::counter!(m::DROPPED, "reason" => "evicted", "priority" => priority.as_str())
                        .increment(1);
                }
            }
            inner.stats.evicted += evicted.len() as u64;
        }
        inner.credits = [0; 4];
        let wake = inner.waiting_push > 0;
        drop(inner);
        if wake {
            self.not_full.notify_waiters();
        }
        evicted
    }

    /// Adds a record without waiting. `Ok` holds the records evicted to make room
    /// (`DropOldest` only; usually empty). In `Block` mode a full queue returns `Full`.
    pub fn try_push(&self, item: T) -> Result<Vec<T>, PushError<T>> {
        let mut inner = self.lock();
        let result = self.push_locked(&mut inner, item);
        let wake = result.is_ok() && inner.waiting_pop > 0;
        drop(inner);
        if wake {
            self.wake_pops();
        }
        result
    }

    fn push_locked(&self, inner: &mut Inner<T>, item: T) -> Result<Vec<T>, PushError<T>> {
        let size = item.size_bytes() as u64;
        let priority = item.priority();
        if inner.closed {
            return Err(self.refuse(inner, PushError::Closed(item), priority));
        }
        if inner.config.max_bytes.is_some_and(|max| size > max) {
            return Err(self.refuse(inner, PushError::TooLarge(item), priority));
        }
        let mut evicted = Vec::new();
        if !self.fits(inner, size) {
            match inner.config.overflow {
                OverflowStrategy::DropNewest | OverflowStrategy::Block => {
                    return Err(self.refuse(inner, PushError::Full(item), priority));
                }
                OverflowStrategy::DropOldest => {
                    let Some(victims) = self.eviction_plan(inner, priority, size) else {
                        return Err(self.refuse(inner, PushError::Full(item), priority));
                    };
                    evicted.reserve(victims.iter().sum());
                    for (lane, count) in victims.iter().enumerate() {
                        for _ in 0..*count {
                            let victim = self.remove_front(inner, lane);
                            metrics::counter!(m::DROPPED, "reason" => "evicted", "priority" => PRIORITIES[lane].as_str())
                                .increment(1);
                            evicted.push(victim);
                        }
                    }
                    inner.stats.evicted += evicted.len() as u64;
                }
            }
        }
        let lane = priority_index(priority);
        inner.lanes[lane].push_back(item);
        inner.bytes[lane] += size;
        inner.len += 1;
        inner.total_bytes += size;
        inner.stats.enqueued += 1;
        Ok(evicted)
    }

    fn refuse(&self, inner: &mut Inner<T>, err: PushError<T>, priority: Priority) -> PushError<T> {
        inner.stats.refused += 1;
        metrics::counter!(m::DROPPED, "reason" => err.reason(), "priority" => priority.as_str())
            .increment(1);
        err
    }

    fn fits(&self, inner: &Inner<T>, size: u64) -> bool {
        inner.len < inner.config.max_items
            && inner
                .config
                .max_bytes
                .is_none_or(|max| inner.total_bytes + size <= max)
    }

    /// How many records to evict from each lane (lowest priority first, oldest first,
    /// never above `incoming`) so that a record of `size` fits; `None` if impossible.
    fn eviction_plan(&self, inner: &Inner<T>, incoming: Priority, size: u64) -> Option<[usize; 4]> {
        let need_items = (inner.len + 1).saturating_sub(inner.config.max_items);
        let need_bytes = inner
            .config
            .max_bytes
            .map_or(0, |max| (inner.total_bytes + size).saturating_sub(max));
        let mut plan = [0usize; 4];
        let (mut freed_items, mut freed_bytes) = (0usize, 0u64);
        for lane in 0..=priority_index(incoming) {
            for victim in &inner.lanes[lane] {
                if freed_items >= need_items && freed_bytes >= need_bytes {
                    return Some(plan);
                }
                plan[lane] += 1;
                freed_items += 1;
                freed_bytes += victim.size_bytes() as u64;
            }
        }
        (freed_items >= need_items && freed_bytes >= need_bytes).then_some(plan)
    }

    /// Adds a record; in `Block` mode waits for room. Cancelling the returned future
    /// before it completes leaves the queue unchanged (the record is dropped with the
    /// future: use [`PriorityQueue::push_timeout`] to get it back instead).
    pub async fn push(&self, item: T) -> Result<Vec<T>, PushError<T>> {
        self.push_until(item, None).await
    }

    /// Like [`PriorityQueue::push`], but gives the record back as
    /// [`PushError::Timeout`] after `timeout` without room.
    pub async fn push_timeout(&self, item: T, timeout: Duration) -> Result<Vec<T>, PushError<T>> {
        self.push_until(item, Some(Instant::now() + timeout)).await
    }

    async fn push_until(&self, item: T, deadline: Option<Instant>) -> Result<Vec<T>, PushError<T>> {
        if self.lock().config.overflow != OverflowStrategy::Block {
            return self.try_push(item);
        }
        // Room now (the usual case): no waiting machinery, no clock read, no sample.
        let mut item = match self.admit(&mut self.lock(), item, None) {
            Ok(result) => return result,
            Err(item) => item,
        };
        // Taken when the push first has to wait.
        let mut started: Option<Instant> = None;
        loop {
            let notified = self.not_full.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let guard = {
                let mut inner = self.lock();
                item = match self.admit(&mut inner, item, started) {
                    Ok(result) => return result,
                    Err(item) => item,
                };
                inner.waiting_push += 1;
                started.get_or_insert_with(Instant::now);
                WaitGuard {
                    queue: self,
                    pop: false,
                }
            };
            match deadline {
                None => notified.await,
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        drop(guard);
                        let mut inner = self.lock();
                        let waited = started.map_or(Duration::ZERO, |s| s.elapsed());
                        inner.stats.blocked += waited;
                        metrics::histogram!(m::BLOCKED).record(waited.as_secs_f64());
                        let priority = item.priority();
                        return Err(self.refuse(&mut inner, PushError::Timeout(item), priority));
                    }
                }
            }
            drop(guard);
        }
    }

    /// A blocking push's attempt: pushes `item` when there is room (or when the push
    /// must fail at once: closed, larger than the cap), waking a waiting pop and
    /// recording the time waited since `started`; hands `item` back when it must wait.
    fn admit(
        &self,
        inner: &mut MutexGuard<'_, Inner<T>>,
        item: T,
        started: Option<Instant>,
    ) -> Result<Result<Vec<T>, PushError<T>>, T> {
        let size = item.size_bytes() as u64;
        // A reconfiguration may have ended `Block` while this push waited.
        if !(inner.closed
            || inner.config.overflow != OverflowStrategy::Block
            || inner.config.max_bytes.is_some_and(|max| size > max)
            || self.fits(inner, size))
        {
            return Err(item);
        }
        let result = self.push_locked(inner, item);
        let wake = result.is_ok() && inner.waiting_pop > 0;
        if let Some(started) = started {
            let waited = started.elapsed();
            inner.stats.blocked += waited;
            metrics::histogram!(m::BLOCKED).record(waited.as_secs_f64());
        }
        if wake {
            self.wake_pops(); // under the lock: a pop woken now finds the item
        }
        Ok(result)
    }

    /// Wakes every waiting pop (few: one per lane consumer). `notify_one` could wake a
    /// consumer of another [`Lanes`], which finds nothing and waits again while the
    /// pushed record's consumer sleeps on: a lost wake-up.
    fn wake_pops(&self) {
        self.not_empty.notify_waiters();
    }

    /// Which lane the next pop serves, without consuming a scheduling credit.
    fn next_lane(&self, inner: &Inner<T>) -> Option<usize> {
        self.next_lane_in(inner, Lanes::ALL)
    }

    /// [`Self::next_lane`] among `lanes` only.
    fn next_lane_in(&self, inner: &Inner<T>, lanes: Lanes) -> Option<usize> {
        let non_empty = |i: &usize| lanes.0[*i] && !inner.lanes[*i].is_empty();
        match inner.config.scheduling {
            Scheduling::Strict => (0..4).rev().find(non_empty),
            Scheduling::Weighted(_) => (0..4)
                .rev()
                .find(|i| non_empty(i) && inner.credits[*i] > 0)
                .or_else(|| (0..4).rev().find(non_empty)),
        }
    }

    /// Pops the front of `lane`, charging a scheduling credit (refilling a round when
    /// every non-empty lane has spent its credits).
    fn take(&self, inner: &mut Inner<T>, lane: usize) -> T {
        if let Scheduling::Weighted(weights) = inner.config.scheduling {
            if inner.credits[lane] == 0 {
                inner.credits = weights.map(|w| w.max(1));
            }
            inner.credits[lane] -= 1;
        }
        inner.stats.dequeued += 1;
        self.remove_front(inner, lane)
    }

    /// Pops the front of a non-empty `lane` and updates the sizes.
    fn remove_front(&self, inner: &mut Inner<T>, lane: usize) -> T {
        let item = inner.lanes[lane]
            .pop_front()
            .expect("lane chosen non-empty");
        let size = item.size_bytes() as u64;
        inner.bytes[lane] -= size;
        inner.total_bytes -= size;
        inner.len -= 1;
        item
    }

    fn after_pop(&self, inner: MutexGuard<'_, Inner<T>>, popped: usize) {
        let wake = popped > 0 && inner.waiting_push > 0;
        drop(inner);
        if wake {
            self.not_full.notify_waiters();
        }
    }

    /// Takes the highest-priority record without waiting.
    pub fn try_pop(&self) -> Option<T> {
        let mut inner = self.lock();
        let lane = self.next_lane(&inner)?;
        let item = self.take(&mut inner, lane);
        self.after_pop(inner, 1);
        Some(item)
    }

    /// Waits for a record; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<T> {
        loop {
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _guard = {
                let mut inner = self.lock();
                if let Some(lane) = self.next_lane(&inner) {
                    let item = self.take(&mut inner, lane);
                    self.after_pop(inner, 1);
                    return Some(item);
                }
                if inner.closed {
                    return None;
                }
                inner.waiting_pop += 1;
                WaitGuard {
                    queue: self,
                    pop: true,
                }
            };
            notified.await;
        }
    }

    /// Waits for a first record, then up to `limits.linger` for the batch to reach
    /// `max_items` or `max_bytes`. Returns an empty batch only once the queue is closed
    /// and drained. Records come highest priority first.
    pub async fn pop_batch(&self, limits: PopBatch) -> Vec<T> {
        self.pop_batch_from(limits, Lanes::ALL).await
    }

    /// Takes up to `max_items` records (and `max_bytes`, but at least one record if
    /// any) from `lanes` without waiting, highest priority first.
    pub fn try_pop_batch_from(&self, max_items: usize, max_bytes: u64, lanes: Lanes) -> Vec<T> {
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        let mut inner = self.lock();
        let (popped, _) = self.fill(
            &mut inner, &mut batch, &mut bytes, max_items, max_bytes, lanes,
        );
        self.after_pop(inner, popped);
        batch
    }

    /// Moves records from `lanes` into `batch` (highest priority first) until it holds
    /// `max_items`, or the next record would pass `max_bytes` (a first record always
    /// fits), or the lanes are empty. Returns how many were moved and whether the byte
    /// limit stopped it.
    fn fill(
        &self,
        inner: &mut Inner<T>,
        batch: &mut Vec<T>,
        bytes: &mut u64,
        max_items: usize,
        max_bytes: u64,
        lanes: Lanes,
    ) -> (usize, bool) {
        let mut popped = 0;
        while batch.len() < max_items {
            let Some(lane) = self.next_lane_in(inner, lanes) else {
                break;
            };
            let size = inner.lanes[lane]
                .front()
                .map_or(0, |i| i.size_bytes() as u64);
            if !batch.is_empty() && *bytes + size > max_bytes {
                return (popped, true);
            }
            batch.push(self.take(inner, lane));
            *bytes += size;
            popped += 1;
        }
        (popped, false)
    }

    /// Records held in `lanes`.
    pub fn len_in(&self, lanes: Lanes) -> usize {
        let inner = self.lock();
        (0..4)
            .filter(|i| lanes.0[*i])
            .map(|i| inner.lanes[i].len())
            .sum()
    }

    /// [`Self::pop_batch`] from `lanes` only: returns an empty batch once the queue is
    /// closed and those lanes are drained.
    pub async fn pop_batch_from(&self, limits: PopBatch, lanes: Lanes) -> Vec<T> {
        let max_items = limits.max_items.max(1);
        let mut batch: Vec<T> = Vec::new();
        let mut bytes = 0u64;
        let mut deadline: Option<Instant> = None;
        loop {
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _guard = {
                let mut inner = self.lock();
                let (popped, mut full) = self.fill(
                    &mut inner,
                    &mut batch,
                    &mut bytes,
                    max_items,
                    limits.max_bytes,
                    lanes,
                );
                full |= batch.len() >= max_items || bytes >= limits.max_bytes;
                let closed = inner.closed;
                let lanes_empty = (0..4).all(|i| !lanes.0[i] || inner.lanes[i].is_empty());
                if full || (closed && (!batch.is_empty() || lanes_empty)) {
                    self.after_pop(inner, popped);
                    return batch;
                }
                if !batch.is_empty() && deadline.is_none() {
                    deadline = Some(Instant::now() + limits.linger);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    self.after_pop(inner, popped);
                    return batch;
                }
                inner.waiting_pop += 1;
                let guard = WaitGuard {
                    queue: self,
                    pop: true,
                };
                self.after_pop(inner, popped);
                guard
            };
            match deadline {
                None => notified.await,
                Some(d) => {
                    let _ = tokio::time::timeout_at(d, notified).await;
                }
            }
        }
    }

    /// Takes everything left, highest priority first (for shutdown).
    pub fn drain(&self) -> Vec<T> {
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(inner.len);
        while let Some(lane) = self.next_lane(&inner) {
            out.push(self.take(&mut inner, lane));
        }
        let n = out.len();
        self.after_pop(inner, n);
        out
    }

    /// Refuses new records from now on; consumers drain what is left, then see the end.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_waiters();
        self.not_full.notify_waiters();
    }

    /// True once [`PriorityQueue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    /// Fill level in percent of the tighter of the two bounds.
    pub fn utilization_percent(&self) -> f64 {
        let inner = self.lock();
        self.utilization(&inner)
    }

    fn utilization(&self, inner: &Inner<T>) -> f64 {
        let by_items = inner.len as f64 / inner.config.max_items as f64;
        let by_bytes = inner
            .config
            .max_bytes
            .map_or(0.0, |max| inner.total_bytes as f64 / max.max(1) as f64);
        by_items.max(by_bytes) * 100.0
    }

    /// A snapshot of sizes and counters.
    pub fn stats(&self) -> QueueStats {
        let inner = self.lock();
        let mut stats = inner.stats;
        stats.len_by_priority = [0, 1, 2, 3].map(|i| inner.lanes[i].len());
        stats.bytes_by_priority = inner.bytes;
        stats
    }

    /// Publishes gauges (size and bytes by priority, utilization) and the counters'
    /// progress since the last call. Call it per batch or on a timer, not per record.
    pub fn publish_metrics(&self) {
        let mut inner = self.lock();
        for (i, p) in PRIORITIES.iter().enumerate() {
            let label = p.as_str();
            metrics::gauge!(m::SIZE, "priority" => label).set(inner.lanes[i].len() as f64);
            metrics::gauge!(m::BYTES, "priority" => label).set(inner.bytes[i] as f64);
        }
        // The seed's `queue_size`: the total, as a series without the label.
        metrics::gauge!(m::SIZE).set(inner.len as f64);
        metrics::gauge!(m::UTILIZATION).set(self.utilization(&inner));
        metrics::gauge!(m::SEED_DROPPED).set((inner.stats.evicted + inner.stats.refused) as f64);
        let (enq, deq) = inner.published;
        metrics::counter!(m::ENQUEUED).increment(inner.stats.enqueued - enq);
        metrics::counter!(m::DEQUEUED).increment(inner.stats.dequeued - deq);
        inner.published = (inner.stats.enqueued, inner.stats.dequeued);
    }
}
