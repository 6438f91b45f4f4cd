//! A bounded async priority queue that never loses a record silently.
//!
//! Four priorities (CRITICAL > HIGH > NORMAL > LOW), FIFO within a priority, bounded by
//! record count and by bytes. When full, the [`OverflowStrategy`] decides: evict the
//! oldest record of the lowest priority not above the incoming one (`DropOldest`), refuse
//! the incoming one (`DropNewest`), or wait for room (`Block`). Evicted and refused records
//! are always handed back to the caller, tokio `TrySendError::Full(T)` style.
//!
//! ```
//! use queue::{OverflowStrategy, Priority, PriorityQueue, QueueConfig, QueueItem};
//!
//! // Anything can be queued that says its priority and its size.
//! #[derive(Debug)]
//! struct Reading(&'static str, Priority);
//! impl QueueItem for Reading {
//!     fn priority(&self) -> Priority { self.1 }
//!     fn size_bytes(&self) -> usize { 1 }
//! }
//!
//! let q = PriorityQueue::new(QueueConfig {
//!     max_items: 2,
//!     overflow: OverflowStrategy::DropOldest,
//!     ..QueueConfig::default()
//! });
//! q.try_push(Reading("sensor_1", Priority::Low)).unwrap();
//! q.try_push(Reading("sensor_2", Priority::Normal)).unwrap();
//! // Full: a CRITICAL record evicts the oldest LOW one, which comes back to us.
//! let evicted = q.try_push(Reading("alerts", Priority::Critical)).unwrap();
//! assert_eq!(evicted[0].0, "sensor_1");
//! assert_eq!(q.try_pop().unwrap().1, Priority::Critical);
//! ```
//!
//! # Scheduling
//!
//! [`Scheduling::Strict`] (the default) always serves the highest non-empty priority, so
//! a sustained CRITICAL stream can starve LOW. [`Scheduling::Weighted`] serves the
//! priorities by weight (e.g. 8:4:2:1 for CRITICAL:HIGH:NORMAL:LOW) among the non-empty
//! ones, in rounds: within a round each priority is served at most its weight, highest
//! first, so LOW always moves.

mod error;
mod id;
mod metrics;
mod queue;
mod settings;

pub use error::PushError;
pub use id::{HexId, MessageId};
pub use metrics::describe_metrics;
pub use queue::PriorityQueue;
pub use settings::{Lanes, PopBatch, QueueConfig, QueueStats, Scheduling};

/// Priority of a record in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Lowest.
    Low,
    /// Default.
    #[default]
    Normal,
    /// Above normal.
    High,
    /// Highest.
    Critical,
}

impl Priority {
    /// The lowercase name (`low`, `normal`, `high`, `critical`), e.g. for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// What a full queue does with one more record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowStrategy {
    /// Evict the oldest record of the lowest priority not above the incoming one.
    #[default]
    DropOldest,
    /// Refuse the incoming record.
    DropNewest,
    /// Wait for room (backpressure on the source).
    Block,
}

/// What the queue needs to know about an item.
pub trait QueueItem {
    /// The item's priority.
    fn priority(&self) -> Priority;
    /// The bytes the item counts against `max_bytes`.
    fn size_bytes(&self) -> usize;
}

/// Index of a priority in per-priority arrays: LOW = 0 … CRITICAL = 3.
pub fn priority_index(p: Priority) -> usize {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    }
}

/// All priorities, lowest first (the order of [`priority_index`]).
pub const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Critical,
];
