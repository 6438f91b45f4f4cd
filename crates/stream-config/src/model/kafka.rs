//! The `kafka` section (brokers, producer settings, `security`) and the `topics` section.

use super::*;

/// Kafka connection and producer settings. `Debug` shows it with secrets redacted (`debug.rs`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list, or the reserved word `embedded` for the
    /// in-process broker the server can start.
    #[serde(default = "default_bootstrap_servers")]
    pub bootstrap_servers: String,
    /// Client id reported to the brokers.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Compression codec for produced batches.
    #[serde(default)]
    pub compression_type: Compression,
    /// Maximum records per produce batch (librdkafka `batch.num.messages`).
    #[serde(default = "default_kafka_batch_size")]
    pub batch_size: u32,
    /// How long the producer waits to fill a batch (librdkafka `linger.ms`).
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// Delivery attempts after the first failure before a record goes to the DLQ.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Base of the exponential retry backoff: retry n waits `retry_backoff_base^(n-1)`
    /// seconds (1, 2, 4, 8 s with the default 2, as the seed; at most 30 s).
    #[serde(default = "default_retry_backoff_base")]
    pub retry_backoff_base: f64,
    /// Acknowledgements the leader waits for: `all`, `1` or `0`.
    #[serde(default)]
    pub acks: Acks,
    /// Idempotent producer: retries never duplicate records.
    #[serde(default = "default_true")]
    pub enable_idempotence: bool,
    /// Time a record may wait for delivery before it fails (librdkafka `message.timeout.ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_timeout_ms: Option<u32>,
    /// TLS and SASL to the cluster; default plaintext without authentication.
    #[serde(default, skip_serializing_if = "is_plaintext")]
    pub security: KafkaSecurity,
    /// librdkafka properties passed through verbatim; they win over the keys above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub librdkafka_options: BTreeMap<String, String>,
    /// Create missing topics: those the configuration names (at start and with each
    /// runtime update) and those a topic template resolves to. `false`: every topic must
    /// exist beforehand (records for a missing one are dead-lettered as `unknown_topic`).
    #[serde(default = "yes")]
    pub create_topics: bool,
}

fn is_plaintext(security: &KafkaSecurity) -> bool {
    !security.is_secured()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: default_bootstrap_servers(),
            client_id: default_client_id(),
            compression_type: Compression::default(),
            batch_size: default_kafka_batch_size(),
            linger_ms: default_linger_ms(),
            max_retries: default_max_retries(),
            retry_backoff_base: default_retry_backoff_base(),
            acks: Acks::default(),
            enable_idempotence: true,
            message_timeout_ms: None,
            security: KafkaSecurity::default(),
            librdkafka_options: BTreeMap::new(),
            create_topics: true,
        }
    }
}

impl KafkaConfig {
    /// The reserved `bootstrap_servers` value that asks for the in-process broker.
    pub const EMBEDDED: &'static str = "embedded";

    /// True when `bootstrap_servers` names the in-process broker.
    pub fn is_embedded(&self) -> bool {
        self.bootstrap_servers.trim() == Self::EMBEDDED
    }
}

/// Compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    #[default]
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka name of the codec.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Producer acknowledgements: `all` (or `-1`), `1`, `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// Every in-sync replica.
    #[default]
    All,
    /// The leader only.
    Leader,
    /// No acknowledgement.
    None,
}

impl Acks {
    /// The librdkafka value of `acks`.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

impl Serialize for Acks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Acks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`all`, `-1`, `1` or `0`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Acks, E> {
                match v {
                    "all" | "-1" => Ok(Acks::All),
                    "1" => Ok(Acks::Leader),
                    "0" => Ok(Acks::None),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Acks, E> {
                match v {
                    -1 => Ok(Acks::All),
                    1 => Ok(Acks::Leader),
                    0 => Ok(Acks::None),
                    other => Err(E::invalid_value(
                        serde::de::Unexpected::Signed(other),
                        &self,
                    )),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Acks, E> {
                match v {
                    1 => Ok(Acks::Leader),
                    0 => Ok(Acks::None),
                    other => Err(E::invalid_value(
                        serde::de::Unexpected::Unsigned(other),
                        &self,
                    )),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A topic the manager creates when missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Partition count.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Replication factor.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: u16,
    /// Retention in milliseconds (`-1` keeps forever).
    #[serde(default = "default_retention_ms")]
    pub retention_ms: i64,
    /// Topic-level compression (the producer's codec when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_type: Option<Compression>,
    /// `cleanup.policy`: `delete` (the broker's default) or `compact` (keep the newest
    /// record of each key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_policy: Option<CleanupPolicy>,
}

/// A topic's `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupPolicy {
    /// Old segments are deleted by age and size.
    Delete,
    /// The newest record of each key is kept.
    Compact,
}

impl CleanupPolicy {
    /// The broker's value.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            retention_ms: default_retention_ms(),
            compression_type: None,
            cleanup_policy: None,
        }
    }
}
