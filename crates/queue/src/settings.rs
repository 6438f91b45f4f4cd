//! The queue's settings and figures: bounds, overflow, scheduling, batch limits, stats.

use std::time::Duration;

use crate::{OverflowStrategy, Priority};

/// How consumers are served across priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduling {
    /// Always the highest non-empty priority.
    #[default]
    Strict,
    /// By weight among non-empty priorities, indexed LOW, NORMAL, HIGH, CRITICAL.
    /// A weight of 0 counts as 1.
    Weighted([u32; 4]),
}

impl Scheduling {
    /// Weights given highest priority first, e.g. `weighted(8, 4, 2, 1)`.
    pub fn weighted(critical: u32, high: u32, normal: u32, low: u32) -> Self {
        Scheduling::Weighted([low.max(1), normal.max(1), high.max(1), critical.max(1)])
    }
}

/// Bounds and policies of a queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueConfig {
    /// Most records held.
    pub max_items: usize,
    /// Most payload bytes held (`None`: unbounded by bytes).
    pub max_bytes: Option<u64>,
    /// What a full queue does with one more record.
    pub overflow: OverflowStrategy,
    /// How priorities are served.
    pub scheduling: Scheduling,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_items: 10_000,
            max_bytes: None,
            overflow: OverflowStrategy::DropOldest,
            scheduling: Scheduling::Strict,
        }
    }
}

/// Limits of one [`PriorityQueue::pop_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopBatch {
    /// Most records in the batch.
    pub max_items: usize,
    /// Most payload bytes in the batch (a first record larger than this comes alone).
    pub max_bytes: u64,
    /// How long to wait for the batch to fill once it has its first record.
    pub linger: Duration,
}

/// Which priority lanes a pop may take from (a dedicated consumer of one lane, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes(pub(crate) [bool; 4]);

impl Lanes {
    /// Every lane.
    pub const ALL: Lanes = Lanes([true; 4]);

    /// Only `p`'s lane.
    pub fn only(p: Priority) -> Self {
        let mut l = [false; 4];
        l[crate::priority_index(p)] = true;
        Lanes(l)
    }

    /// Every lane but `p`'s.
    pub fn all_but(p: Priority) -> Self {
        let mut l = [true; 4];
        l[crate::priority_index(p)] = false;
        Lanes(l)
    }

    /// True when `p`'s lane is included.
    pub fn contains(self, p: Priority) -> bool {
        self.0[crate::priority_index(p)]
    }
}

/// A snapshot of the queue's state and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Records held, by priority (LOW..CRITICAL).
    pub len_by_priority: [usize; 4],
    /// Payload bytes held, by priority (LOW..CRITICAL).
    pub bytes_by_priority: [u64; 4],
    /// Records accepted since creation.
    pub enqueued: u64,
    /// Records handed to consumers since creation.
    pub dequeued: u64,
    /// Records evicted by `DropOldest`.
    pub evicted: u64,
    /// Records refused (full, too large, timeout or closed).
    pub refused: u64,
    /// Total time producers spent blocked waiting for room.
    pub blocked: Duration,
}

impl QueueStats {
    /// Records held.
    pub fn len(&self) -> usize {
        self.len_by_priority.iter().sum()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes_by_priority.iter().sum()
    }
}
