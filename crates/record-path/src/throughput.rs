//! Records in, out and dead-lettered per second over the last 15 minutes, for the
//! operator's chart (`GET /throughput`) without Prometheus. The record path only adds
//! to running totals (one atomic add per batch; records in are the queue's own
//! `enqueued` count); a task samples the totals once a second into a fixed ring of
//! [`SLOTS`] seconds. The ring's lock is taken by that task and by readers, never by
//! the record path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Seconds kept: 15 minutes.
pub const SLOTS: usize = 900;

/// Running totals the record path adds to (records in come from the queue).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// Records Kafka acknowledged.
    pub(crate) out: AtomicU64,
    /// Records dead-lettered (failed delivery, refused or evicted by the queue,
    /// undecodable, at shutdown).
    pub(crate) dead: AtomicU64,
}

impl Totals {
    pub(crate) fn delivered(&self, n: usize) {
        if n > 0 {
            self.out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn dead_lettered(&self, n: usize) {
        if n > 0 {
            self.dead.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Counts per second, oldest first, for `GET /throughput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Throughput {
    /// The first second's start, seconds since the epoch (UTC).
    pub start_unix_seconds: u64,
    /// Seconds per value (1).
    pub step_seconds: u64,
    /// Records accepted into the queue, per second.
    pub records_in: Vec<u64>,
    /// Records acknowledged by Kafka, per second.
    pub records_out: Vec<u64>,
    /// Records dead-lettered, per second.
    pub dead_lettered: Vec<u64>,
}

/// The ring: one slot per second, written by the sampler.
#[derive(Debug)]
pub(crate) struct Ring {
    slots: Box<[[u64; 3]]>,
    /// The newest second written (unix seconds) and the totals read then.
    newest: u64,
    totals: [u64; 3],
}

impl Ring {
    /// An empty ring whose history starts at `now` (unix seconds), totals zero.
    pub(crate) fn new(now: u64) -> Self {
        Self {
            slots: vec![[0; 3]; SLOTS].into_boxed_slice(),
            newest: now.saturating_sub(1),
            totals: [0; 3],
        }
    }

    /// A sample at `now` (unix seconds) of the running totals (in, out, dead): what they
    /// grew by since the last sample is the second that just ended (`now - 1`); seconds
    /// skipped since (a late sampler) read zero.
    pub(crate) fn sample(&mut self, now: u64, totals: [u64; 3]) {
        let second = now.saturating_sub(1);
        if second > self.newest {
            // At most one lap to clear, however long the gap.
            let from = self.newest + 1;
            let from = from.max(second.saturating_sub(SLOTS as u64 - 1));
            for s in from..=second {
                self.slots[s as usize % SLOTS] = [0; 3];
            }
            self.newest = second;
        }
        let slot = &mut self.slots[self.newest as usize % SLOTS];
        for (i, v) in slot.iter_mut().enumerate() {
            *v += totals[i].saturating_sub(self.totals[i]);
        }
        self.totals = totals;
    }

    /// The last [`SLOTS`] seconds up to the newest sampled, oldest first.
    pub(crate) fn snapshot(&self) -> Throughput {
        let start = (self.newest + 1).saturating_sub(SLOTS as u64);
        let mut out = Throughput {
            start_unix_seconds: start,
            step_seconds: 1,
            records_in: Vec::with_capacity(SLOTS),
            records_out: Vec::with_capacity(SLOTS),
            dead_lettered: Vec::with_capacity(SLOTS),
        };
        for s in start..=self.newest {
            let [i, o, d] = self.slots[s as usize % SLOTS];
            out.records_in.push(i);
            out.records_out.push(o);
            out.dead_lettered.push(d);
        }
        out
    }
}

/// Unix seconds on tokio's clock: wall time at creation plus tokio time since, so a
/// paused test runtime drives it with `advance`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base_unix: u64,
    base: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let base_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            base_unix,
            base: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.base_unix + self.base.elapsed().as_secs()
    }
}

/// The totals, the ring and its clock.
#[derive(Debug)]
pub struct Meter {
    pub(crate) totals: Totals,
    ring: Mutex<Ring>,
    clock: Clock,
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

impl Meter {
    /// A meter whose ring starts now.
    pub fn new() -> Self {
        let clock = Clock::new();
        Self {
            totals: Totals::default(),
            ring: Mutex::new(Ring::new(clock.now())),
            clock,
        }
    }

    /// Reads the totals (`records_in`: the queue's `enqueued`) into the ring.
    pub fn sample(&self, records_in: u64) {
        let totals = [
            records_in,
            self.totals.out.load(Ordering::Relaxed),
            self.totals.dead.load(Ordering::Relaxed),
        ];
        let now = self.clock.now();
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(now, totals);
    }

    pub fn snapshot(&self) -> Throughput {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot()
    }

    /// Samples once a second until `stop` says so.
    pub async fn run(&self, records_in: impl Fn() -> u64, stop: impl Fn() -> bool) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        while !stop() {
            tick.tick().await;
            self.sample(records_in());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn each_second_gets_what_the_totals_grew_by_and_gaps_read_zero() {
        let mut ring = Ring::new(1_000);
        ring.sample(1_001, [5, 3, 1]);
        ring.sample(1_002, [7, 6, 1]);
        // The sampler was late: 1_002 and 1_003 saw nothing, 1_004 the growth.
        ring.sample(1_005, [10, 6, 2]);
        let t = ring.snapshot();
        assert_eq!(t.start_unix_seconds, 1_004 + 1 - SLOTS as u64);
        assert_eq!(t.step_seconds, 1);
        assert_eq!(t.records_in.len(), SLOTS);
        let tail = |v: &[u64]| v[SLOTS - 5..].to_vec();
        assert_eq!(tail(&t.records_in), [5, 2, 0, 0, 3]);
        assert_eq!(tail(&t.records_out), [3, 3, 0, 0, 0]);
        assert_eq!(tail(&t.dead_lettered), [1, 0, 0, 0, 1]);
        // Two samples within one second add up.
        ring.sample(1_005, [11, 6, 2]);
        assert_eq!(*ring.snapshot().records_in.last().unwrap(), 4);
    }

    #[test]
    fn the_ring_keeps_fifteen_minutes_and_clears_what_it_laps() {
        let mut ring = Ring::new(0);
        for s in 1..=SLOTS as u64 {
            ring.sample(s, [s, 0, 0]);
        }
        let t = ring.snapshot();
        assert_eq!(t.start_unix_seconds, 0);
        assert!(t.records_in.iter().all(|&n| n == 1), "one a second");
        // Ten minutes without a sample, then one record: the lapped seconds are zero.
        let later = SLOTS as u64 + 600;
        ring.sample(later, [SLOTS as u64 + 1, 0, 0]);
        let t = ring.snapshot();
        assert_eq!(t.start_unix_seconds, later - SLOTS as u64);
        assert_eq!(t.records_in.iter().sum::<u64>(), 300 + 1);
        assert_eq!(*t.records_in.last().unwrap(), 1);
        // A gap longer than the ring clears everything but the new second.
        ring.sample(later + 5_000, [SLOTS as u64 + 3, 0, 0]);
        let t = ring.snapshot();
        assert_eq!(t.records_in.iter().sum::<u64>(), 2);
        assert_eq!(t.records_in.len(), SLOTS);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sampler_moves_with_tokio_time() {
        let meter = Arc::new(Meter::new());
        let start = meter.clock.now();
        let records_in = Arc::new(AtomicU64::new(0));
        let task = {
            let (meter, records_in) = (meter.clone(), records_in.clone());
            tokio::spawn(async move {
                meter
                    .run(|| records_in.load(Ordering::Relaxed), || false)
                    .await;
            })
        };
        tokio::task::yield_now().await;
        records_in.store(4, Ordering::Relaxed);
        meter.totals.delivered(3);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        tokio::task::yield_now().await;
        meter.totals.dead_lettered(2);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        tokio::task::yield_now().await;
        let t = meter.snapshot();
        assert_eq!(t.start_unix_seconds + SLOTS as u64, start + 2);
        assert_eq!(t.records_in[SLOTS - 2..], [4, 0]);
        assert_eq!(t.records_out[SLOTS - 2..], [3, 0]);
        assert_eq!(t.dead_lettered[SLOTS - 2..], [0, 2]);
        task.abort();
    }
}
