//! `cluster`: several `stream-server` workers share the sources. Each source id maps to a
//! slot by a stable hash (the `cluster` crate's `slot_of`); the slots are the partitions
//! of a coordination topic, and the workers join one consumer group on it, so Kafka's
//! group coordinator decides which worker runs which sources. Fetch state lives in the shared PostgreSQL store when
//! `dlq.url` is PostgreSQL, otherwise in a compacted topic (`<group_id>.state`).

use serde::{Deserialize, Serialize};

use crate::path::KeyPath;
use crate::validate::Checker;

/// The `cluster` section. Absent or `enabled: false`: one process runs every source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Run as one worker of a group.
    #[serde(default)]
    pub enabled: bool,
    /// The consumer group the workers join; also names the coordination topic
    /// (`<group_id>.slots`). Workers with the same `group_id` share the sources.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// How many slots the sources are hashed onto: the coordination topic's partition
    /// count. More slots than workers spread sources evenly; changing it moves sources.
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// This worker's name in the group (admin API, logs, state fencing). Empty: the
    /// process id (`worker-<pid>`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub worker_id: String,
    /// How long the group waits for a silent worker before its sources move (Kafka's
    /// `session.timeout.ms`).
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// How long a worker giving up sources waits for their records to settle before it
    /// dead-letters what is still in flight and lets them go.
    #[serde(default = "default_handover_timeout_seconds")]
    pub handover_timeout_seconds: u64,
}

fn default_group_id() -> String {
    "stream-manager".to_owned()
}

fn default_slots() -> u32 {
    64
}

fn default_session_timeout_ms() -> u64 {
    10_000
}

fn default_handover_timeout_seconds() -> u64 {
    10
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            group_id: default_group_id(),
            slots: default_slots(),
            worker_id: String::new(),
            session_timeout_ms: default_session_timeout_ms(),
            handover_timeout_seconds: default_handover_timeout_seconds(),
        }
    }
}

impl ClusterConfig {
    /// The coordination topic: one partition per slot.
    pub fn coordination_topic(&self) -> String {
        format!("{}.slots", self.group_id)
    }

    /// The state topic (one partition, compacted) used when the store is not PostgreSQL.
    pub fn state_topic(&self) -> String {
        format!("{}.state", self.group_id)
    }

    pub(crate) fn check(&self, c: &mut Checker, p: KeyPath, embedded: bool) {
        if !self.enabled {
            return;
        }
        if !(1..=1024).contains(&self.slots) {
            c.fail(
                p.key("slots"),
                format!("must be between 1 and 1024, got {}", self.slots),
                "64 suits up to a few dozen workers",
            );
        }
        if let Err(why) = topic_resolver::check_topic(&self.coordination_topic(), false) {
            c.fail(
                p.key("group_id"),
                why,
                "the group id names the topic `<group_id>.slots`: use a-z A-Z 0-9 . _ -",
            );
        }
        if !(1_000..=300_000).contains(&self.session_timeout_ms) {
            c.fail(
                p.key("session_timeout_ms"),
                format!(
                    "must be between 1000 and 300000, got {}",
                    self.session_timeout_ms
                ),
                "",
            );
        }
        c.int_range(
            p.key("handover_timeout_seconds"),
            self.handover_timeout_seconds,
            (1, 3_600),
            " s",
        );
        if embedded {
            c.fail(
                p.key("enabled"),
                "a cluster needs a real Kafka cluster: the embedded broker lives inside one process",
                "set `kafka.bootstrap_servers` to the cluster the workers share",
            );
        }
    }
}
