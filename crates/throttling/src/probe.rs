//! Where lag comes from: the `LagProbe` trait and the probes that need no Kafka (the
//! Kafka one lives in the producer crate, which owns rdkafka).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

/// A lag reading: total and by topic (either may be from stale watermarks, so negative
/// values are possible and count as 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lag {
    /// Sum over all watched partitions.
    pub total: i64,
    /// Per topic.
    pub by_topic: BTreeMap<String, i64>,
    /// Per watched consumer group (empty when the probe has no groups: a static value,
    /// the queue's fill). Its keys are the groups watched at this reading.
    pub by_group: BTreeMap<String, i64>,
}

impl Lag {
    /// A reading with only a total.
    pub fn total(total: i64) -> Self {
        Self {
            total,
            ..Self::default()
        }
    }
}

/// Errors of the throttling crate: a probe could not read the lag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend (e.g. the Kafka cluster) did not answer; the cause is the source.
    #[error("lag probe unavailable")]
    ProbeUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result with the throttling crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads consumer lag.
#[async_trait]
pub trait LagProbe: Send + Sync + fmt::Debug {
    /// The current lag.
    async fn lag(&self) -> Result<Lag>;
}

/// A lag set by hand: for tests, demos, or an external signal.
#[derive(Debug, Clone, Default)]
pub struct StaticLagProbe {
    value: Arc<AtomicI64>,
}

impl StaticLagProbe {
    /// A probe reporting `lag` until changed.
    pub fn new(lag: i64) -> Self {
        Self {
            value: Arc::new(AtomicI64::new(lag)),
        }
    }

    /// Changes the reported lag (clones share it).
    pub fn set(&self, lag: i64) {
        self.value.store(lag, Ordering::Relaxed);
    }
}

#[async_trait]
impl LagProbe for StaticLagProbe {
    async fn lag(&self) -> Result<Lag> {
        Ok(Lag::total(self.value.load(Ordering::Relaxed)))
    }
}

/// The fallback when no consumer group is watched: the records waiting in the
/// pipeline's own queue stand in for lag (same thresholds, in records).
pub struct QueueFillProbe {
    fill: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl QueueFillProbe {
    /// `fill` returns the number of records waiting, e.g. `move || queue.len() as u64`.
    pub fn new(fill: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self {
            fill: Box::new(fill),
        }
    }
}

impl fmt::Debug for QueueFillProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueFillProbe").finish_non_exhaustive()
    }
}

#[async_trait]
impl LagProbe for QueueFillProbe {
    async fn lag(&self) -> Result<Lag> {
        Ok(Lag::total(i64::try_from((self.fill)()).unwrap_or(i64::MAX)))
    }
}
