//! Cluster mode: several processes (workers) share one set of sources. Each source id
//! maps to a slot by a stable hash ([`slot_of`]); the slots are the partitions of a
//! coordination topic, and the workers join one Kafka consumer group on it, so Kafka's
//! group coordinator decides which worker runs which sources.
//!
//! A [`Worker`] is this process's part in the group (membership, the slots it owns,
//! fencing, reports); the program running the sources is its [`Workload`]. On assign a
//! worker has the workload claim each source's fetch state (a lease in the shared store)
//! and start it; on revoke it has the workload stop them, waits for their records to
//! settle and only then lets the group hand the slots on. Commits under a superseded
//! lease are refused by the store, so a worker that lost its membership cannot
//! overwrite its successor's state; the workload reports such a refusal on
//! [`Claim::fenced`] and the worker stops the source, and claims it back a session
//! timeout later if its slot is still this worker's. Each worker writes a report every
//! 2 s to a [`Directory`] (the shared SQL store or the state topic), read back as the
//! group's [`ClusterView`].
//!
//! The program calls a worker through the [`Coordinator`] trait. Knows nothing of the
//! configuration crate: [`ClusterSettings`] is its own.

mod directory;
mod worker;

use std::time::Duration;

pub use directory::{Directory, Member};
pub use worker::{Claim, SlotSet, Unsettled, Worker, WorkerStatus, Workload};

use async_trait::async_trait;
use serde::Serialize;

/// A worker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The consumer group the workers join.
    pub group_id: String,
    /// This worker's name in the group (logs, reports, state fencing).
    pub worker_id: String,
    /// How many slots the sources are hashed onto: the coordination topic's partitions.
    pub slots: u32,
    /// The coordination topic (one partition per slot, no records).
    pub coordination_topic: String,
    /// The state topic (one partition, compacted) when fetch state lives on Kafka.
    pub state_topic: String,
    /// How long the group waits for a silent worker (`session.timeout.ms`); also how
    /// long a fenced source waits before this worker claims it back.
    pub session_timeout: Duration,
    /// How long a worker giving up slots waits for their records to settle.
    pub handover_timeout: Duration,
}

impl ClusterSettings {
    /// Settings for `group_id` with the defaults: 64 slots, topics `<group_id>.slots` and
    /// `<group_id>.state`, a worker named after the process id, 10 s session timeout,
    /// 10 s handover timeout.
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_owned(),
            worker_id: default_worker_id(),
            slots: 64,
            coordination_topic: format!("{group_id}.slots"),
            state_topic: format!("{group_id}.state"),
            session_timeout: Duration::from_secs(10),
            handover_timeout: Duration::from_secs(10),
        }
    }

    /// The slot of `source_id` (see [`slot_of`]).
    pub fn slot_of(&self, source_id: &str) -> u32 {
        slot_of(source_id, self.slots)
    }

    /// The topics cluster mode needs: the coordination topic (one partition per slot)
    /// and, when fetch state lives on Kafka (`state_on_kafka`), the state topic (one
    /// partition, so offsets order every write; compacted, kept forever).
    pub fn topics(&self, state_on_kafka: bool) -> Vec<TopicSpec> {
        let mut topics = vec![TopicSpec {
            name: self.coordination_topic.clone(),
            partitions: self.slots,
            compacted: false,
        }];
        if state_on_kafka {
            topics.push(TopicSpec {
                name: self.state_topic.clone(),
                partitions: 1,
                compacted: true,
            });
        }
        topics
    }
}

/// The name a worker gets when none is configured: `worker-<process id>`.
pub fn default_worker_id() -> String {
    format!("worker-{}", std::process::id())
}

/// A topic cluster mode needs, for whoever creates topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: u32,
    /// Compacted and kept forever (`cleanup.policy=compact`, `retention.ms=-1`); else
    /// the creator's defaults.
    pub compacted: bool,
}

/// The slot of `source_id` among `slots`: FNV-1a of its bytes modulo `slots` — stable
/// across processes, versions and platforms (never Rust's randomly seeded hasher).
/// `slots` 0 counts as 1.
pub fn slot_of(source_id: &str, slots: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in source_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % slots.max(1)
}

/// Errors of cluster mode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The group could not be joined.
    #[error("cannot join the worker group")]
    Join(#[source] producer::Error),
    /// `join` was called twice.
    #[error("this worker has already joined its group")]
    AlreadyJoined,
    /// The directory of reports could not be read.
    #[error("cannot read the workers' reports")]
    Directory(#[source] BoxError),
}

/// An error of a [`Directory`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the program running the sources calls: one worker's part in the group.
#[async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    /// This worker's name.
    fn worker_id(&self) -> &str;
    /// Joins the group: from then on the group decides which of `workload`'s sources
    /// run here. Called once.
    fn join(&self, workload: std::sync::Arc<dyn Workload>) -> Result<(), Error>;
    /// A source added after joining: started at once when its slot is this worker's.
    async fn source_added(&self, source_id: &str);
    /// Stops handling group events (first step of a shutdown: a revoke arriving later
    /// finds nobody listening and returns at once).
    fn stop_events(&self);
    /// Leaves the group (last step of a shutdown, after the records have settled).
    async fn leave(&self);
    /// The group as this worker sees it; `running` are the sources running here.
    async fn view(&self, running: Vec<String>) -> Result<ClusterView, Error>;
}

/// One worker as the group view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Its id.
    pub worker_id: String,
    /// Milliseconds since its last report (a worker reports every 2 s while alive).
    pub last_seen_ms_ago: i64,
    /// What it reported: its slots, the sources it runs, its health.
    pub report: serde_json::Value,
}

/// The whole group, as this worker sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// The consumer group.
    pub group_id: String,
    /// This worker.
    pub worker_id: String,
    /// Slots assigned to this worker.
    pub slots: Vec<u32>,
    /// Sources this worker runs.
    pub sources: Vec<String>,
    /// Every worker that has reported, this one included (from the shared store).
    pub members: Vec<MemberView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_spread() {
        // Fixed values: a change here moves every source of every running cluster.
        assert_eq!(slot_of("firms", 64), 38);
        assert_eq!(slot_of("", 64), 0x811c_9dc5 % 64);
        assert_eq!(
            [slot_of("s0", 16), slot_of("s1", 16)],
            [6, 9],
            "the e2e cluster scenario's logs show these"
        );
        let used: std::collections::BTreeSet<u32> = (0..1000)
            .map(|i| slot_of(&format!("source-{i}"), 64))
            .collect();
        assert_eq!(used.len(), 64, "1000 ids reach every one of 64 slots");
        assert_eq!(slot_of("anything", 1), 0);
        assert_eq!(slot_of("anything", 0), 0, "0 slots count as one");
        assert_eq!(ClusterSettings::new("g").slot_of("firms"), 38);
    }

    #[test]
    fn the_state_topic_is_needed_only_when_state_lives_on_kafka() {
        let s = ClusterSettings {
            slots: 16,
            ..ClusterSettings::new("fires")
        };
        let spec = |name: &str, partitions, compacted| TopicSpec {
            name: name.into(),
            partitions,
            compacted,
        };
        assert_eq!(s.topics(false), [spec("fires.slots", 16, false)]);
        assert_eq!(
            s.topics(true),
            [spec("fires.slots", 16, false), spec("fires.state", 1, true)]
        );
    }
}
