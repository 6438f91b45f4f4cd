//! The queue's one error: a push that was not accepted, with the record handed back.

use std::fmt;

/// Why a record was not accepted. The record always comes back.
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError<T> {
    /// The queue is full and the strategy refused this record.
    Full(T),
    /// The record alone is larger than `max_bytes`: it can never fit.
    TooLarge(T),
    /// `push_timeout` waited its whole timeout for room.
    Timeout(T),
    /// The queue was closed.
    Closed(T),
}

impl<T> PushError<T> {
    /// The record that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(t)
            | PushError::TooLarge(t)
            | PushError::Timeout(t)
            | PushError::Closed(t) => t,
        }
    }

    /// A short reason, usable as a metric label or DLQ reason.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::Full(_) => "queue_overflow",
            PushError::TooLarge(_) => "record_too_large",
            PushError::Timeout(_) => "queue_full_timeout",
            PushError::Closed(_) => "queue_closed",
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PushError::{}", self.reason())
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "queue is full",
            PushError::TooLarge(_) => "record is larger than the queue's byte limit",
            PushError::Timeout(_) => "timed out waiting for room in the queue",
            PushError::Closed(_) => "queue is closed",
        })
    }
}

impl<T> std::error::Error for PushError<T> {}
