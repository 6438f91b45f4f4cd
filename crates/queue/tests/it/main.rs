//! Integration tests of the queue, compiled as one binary.

mod blocking;
mod lanes;
mod model;
mod reconfigure;
mod scheduling;

use queue::{Priority, QueueItem};

/// A test record: an id to follow it, a priority and a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) id: u64,
    pub(crate) priority: Priority,
    pub(crate) size: usize,
}

impl QueueItem for Item {
    fn priority(&self) -> Priority {
        self.priority
    }
    fn size_bytes(&self) -> usize {
        self.size
    }
}

pub(crate) fn item(id: u64, priority: Priority) -> Item {
    Item {
        id,
        priority,
        size: 10,
    }
}
