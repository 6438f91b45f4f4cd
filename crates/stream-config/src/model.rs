//! The configuration model: serde structs with documented fields and named defaults.
//!
//! Every struct denies unknown keys; every field has a default except the few that
//! cannot have one (a source's `source_type`, a rule's `topic`). Units are in the names.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::security::KafkaSecurity;

/// The whole configuration of a stream manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Kafka connection and producer settings.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Consumer-lag-aware send control.
    #[serde(default)]
    pub throttling: ThrottlingConfig,
    /// Maximum number of records held in the in-memory priority queue.
    #[serde(default = "default_queue_max_size")]
    pub queue_max_size: usize,
    /// Maximum total payload bytes held in the queue (unbounded by bytes when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_max_bytes: Option<u64>,
    /// What happens when the queue is full.
    #[serde(default)]
    pub queue_overflow_strategy: OverflowStrategy,
    /// Whether records that cannot be delivered are kept in the dead-letter queue.
    #[serde(default = "default_true")]
    pub enable_dlq: bool,
    /// Also embed the pipeline's metadata in each payload, as
    /// `{"data": <record>, "_metadata": {...}}` (it is always sent as Kafka headers).
    #[serde(default)]
    pub metadata_in_payload: bool,
    /// Folders `file` sources may read from. Empty (the default): the config file's own
    /// folder and `data/`. A path outside them is a configuration error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_roots: Vec<String>,
    /// Dead-letter queue storage and retry policy.
    #[serde(default)]
    pub dlq: DlqConfig,
    /// Topics the manager creates at start when missing, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topics: BTreeMap<String, TopicConfig>,
    /// How records are routed to topics.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Data sources, by source id.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Admin HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Several workers sharing the sources (off by default).
    #[serde(default, skip_serializing_if = "is_default_cluster")]
    pub cluster: crate::ClusterConfig,
    /// Data contracts: JSON Schemas by topic and the default mode (`contracts.rs`).
    #[serde(default, skip_serializing_if = "crate::ContractsConfig::is_unset")]
    pub contracts: crate::ContractsConfig,
}

fn is_default_cluster(c: &crate::ClusterConfig) -> bool {
    *c == crate::ClusterConfig::default()
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            kafka: KafkaConfig::default(),
            throttling: ThrottlingConfig::default(),
            queue_max_size: default_queue_max_size(),
            queue_max_bytes: None,
            queue_overflow_strategy: OverflowStrategy::default(),
            enable_dlq: true,
            metadata_in_payload: false,
            file_roots: Vec::new(),
            dlq: DlqConfig::default(),
            topics: BTreeMap::new(),
            routing: RoutingConfig::default(),
            sources: BTreeMap::new(),
            server: ServerConfig::default(),
            cluster: crate::ClusterConfig::default(),
            contracts: crate::ContractsConfig::default(),
        }
    }
}

impl StreamConfig {
    /// Every topic the configuration names literally, sorted and without repeats: the
    /// `topics` section, the fallback, custom mappings, content and pattern rules, and
    /// sources' own `topic` (templates such as `alerts-{source_type}` excluded). The
    /// topics to create on an embedded broker, and whose consumer lag is watched.
    pub fn static_topics(&self) -> Vec<String> {
        let r = &self.routing;
        let mut topics: Vec<String> = self
            .topics
            .keys()
            .chain([&r.fallback_topic])
            .chain(r.custom_mappings.values())
            .chain(r.content_rules.iter().map(|c| &c.topic))
            .chain(r.pattern_mappings.iter().map(|m| &m.topic))
            .chain(self.sources.values().filter_map(|s| s.topic.as_ref()))
            .filter(|t| !t.contains('{'))
            .cloned()
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }
}

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

/// Consumer-lag-aware send control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottlingConfig {
    /// Whether sends are throttled at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Lowest send rate, records per second.
    #[serde(default = "default_min_send_rate")]
    pub min_send_rate: f64,
    /// Highest send rate, records per second.
    #[serde(default = "default_max_send_rate")]
    pub max_send_rate: f64,
    /// Average lag below which sending is unrestricted.
    #[serde(default = "default_target_consumer_lag")]
    pub target_consumer_lag: u64,
    /// Average lag at or above which sending backs off exponentially.
    #[serde(default = "default_critical_consumer_lag")]
    pub critical_consumer_lag: u64,
    /// Factor by which the rate is divided under lag and multiplied on recovery (> 1).
    #[serde(default = "default_adjustment_factor")]
    pub adjustment_factor: f64,
    /// Width of the sliding window of lag samples.
    #[serde(default = "default_window_size_seconds")]
    pub window_size_seconds: u64,
    /// Most samples kept in the window.
    #[serde(default = "default_metric_sample_size")]
    pub metric_sample_size: usize,
    /// Highest backoff level (the delay doubles per level from 2 s).
    #[serde(default = "default_max_backoff_level")]
    pub max_backoff_level: u32,
    /// Consecutive low-lag checks before the rate is raised again.
    #[serde(default = "default_recovery_checks")]
    pub recovery_checks: u32,
    /// Consumer groups whose lag is watched. Absent: every group with committed offsets
    /// on the pipeline's topics, discovered through the cluster (Kafka's ListGroups and
    /// OffsetFetch) and refreshed every 30 s; `[]`: no lag throttling (only
    /// `max_send_rate` applies); a list: exactly those groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_groups: Option<Vec<String>>,
    /// CRITICAL records' own send rate, as a share of `max_send_rate` (0 < share ≤ 1):
    /// they never wait behind other records' tokens, and an alert storm cannot send
    /// faster than this.
    #[serde(default = "default_critical_share")]
    pub critical_share: f64,
    /// Per-source fairness: while more than one source has records in the pipeline,
    /// each may hold at most its fair share of the queue (`queue_max_size` ÷ busy
    /// sources) and waits for its own records beyond it, and a full queue holds (rather
    /// than refuses) a record of a source under its share, so one that floods cannot
    /// crowd out the others. Alone, a source uses the whole queue and its overflow
    /// strategy.
    #[serde(default = "yes")]
    pub fair_share: bool,
    /// Lag per source: each source gets a throttle of its own (the same states, levels
    /// and settings) fed by the lag of the topics its records go to, and is held back
    /// by it alone; the global throttle then sees only the lag of topics no source
    /// sends to. Off (the seed's behaviour): the total lag throttles every source.
    #[serde(default)]
    pub lag_per_source: bool,
}

fn yes() -> bool {
    true
}

fn default_critical_share() -> f64 {
    0.2
}

impl Default for ThrottlingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_send_rate: default_min_send_rate(),
            max_send_rate: default_max_send_rate(),
            target_consumer_lag: default_target_consumer_lag(),
            critical_consumer_lag: default_critical_consumer_lag(),
            adjustment_factor: default_adjustment_factor(),
            window_size_seconds: default_window_size_seconds(),
            metric_sample_size: default_metric_sample_size(),
            max_backoff_level: default_max_backoff_level(),
            recovery_checks: default_recovery_checks(),
            consumer_groups: None,
            critical_share: default_critical_share(),
            fair_share: true,
            lag_per_source: false,
        }
    }
}

/// What a full queue does with one more record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowStrategy {
    /// Evict the oldest record of the lowest priority not above the incoming one.
    #[default]
    DropOldest,
    /// Refuse the incoming record.
    DropNewest,
    /// Wait for room (backpressure on the source).
    Block,
}

/// Dead-letter queue storage and retry policy. `Debug` shows it with secrets redacted (`debug.rs`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqConfig {
    /// Storage URL: `sqlite://path` (embedded default) or `postgres://user:pass@host/db`.
    #[serde(default = "default_dlq_url")]
    pub url: String,
    /// Background retries of a retriable failure before it becomes permanent.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First retry delay; retry n waits `retry_base_delay_seconds * 2^n`.
    #[serde(default = "default_retry_base_delay_seconds")]
    pub retry_base_delay_seconds: u64,
    /// Where dead letters still held in memory at exit (the store was unreachable) are
    /// written; replayed into the store, and removed, at the next start (a line that
    /// cannot be read is set aside in `<journal_path>.rejected`).
    #[serde(default = "default_journal_path")]
    pub journal_path: String,
    /// Rows done with (delivered by a retry, replayed, discarded) are deleted this many
    /// days after their last change (0: kept). Pending rows are never deleted by
    /// retention.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// At most this many rows done with are kept, the newest (0: no limit).
    #[serde(default = "default_max_settled_rows")]
    pub max_settled_rows: u64,
}

impl Default for DlqConfig {
    fn default() -> Self {
        Self {
            url: default_dlq_url(),
            max_retries: default_max_retries(),
            retry_base_delay_seconds: default_retry_base_delay_seconds(),
            journal_path: default_journal_path(),
            retention_days: default_retention_days(),
            max_settled_rows: default_max_settled_rows(),
        }
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

/// How records are routed to topics. Strategies apply in `order` — by default the
/// seed's: custom mappings (a source's own `topic` counts as one), content rules,
/// pattern mappings — then the fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Source id → topic.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_mappings: BTreeMap<String, String>,
    /// Rules on record content, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_rules: Vec<ContentRule>,
    /// Regexes on the source id, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pattern_mappings: Vec<PatternMapping>,
    /// Topic used when nothing else matches.
    #[serde(default = "default_fallback_topic")]
    pub fallback_topic: String,
    /// The order the strategies are tried in, each listed once (the fallback comes
    /// last). Default: the seed's, `[custom_mappings, content_rules, pattern_mappings]`;
    /// `[content_rules, custom_mappings, pattern_mappings]` lets a content rule (say,
    /// severe alerts) override a source's own topic.
    #[serde(default = "default_routing_order")]
    pub order: Vec<RoutingStep>,
    /// Rules that raise (or set) a record's queue priority by its content, first match
    /// wins, e.g. records with an `alert_id` → `critical`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_rules: Vec<PriorityRule>,
}

/// A rule on a record's content that sets its priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRule {
    /// JSON pointer to the field.
    pub field: String,
    /// Comparison to apply.
    pub operator: RuleOperator,
    /// Value to compare with (unused for `exists`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    /// The priority of matching records.
    pub priority: Priority,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            custom_mappings: BTreeMap::new(),
            content_rules: Vec::new(),
            pattern_mappings: Vec::new(),
            fallback_topic: default_fallback_topic(),
            order: default_routing_order(),
            priority_rules: Vec::new(),
        }
    }
}

/// One routing strategy, as `routing.order` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStep {
    /// `custom_mappings` (and sources' own `topic`).
    CustomMappings,
    /// `content_rules`.
    ContentRules,
    /// `pattern_mappings`.
    PatternMappings,
}

fn default_routing_order() -> Vec<RoutingStep> {
    vec![
        RoutingStep::CustomMappings,
        RoutingStep::ContentRules,
        RoutingStep::PatternMappings,
    ]
}

/// A rule on a record's content: `field` (a JSON pointer) `operator` `value` → `topic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRule {
    /// JSON pointer to the field, e.g. `/properties/severity`.
    pub field: String,
    /// Comparison to apply.
    pub operator: RuleOperator,
    /// Value to compare with (a list for `in`, a regex for `matches`, unused for `exists`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    /// Destination topic; may be a template such as `alerts-{/properties/severity}`.
    pub topic: String,
}

/// Operators of content rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOperator {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Member of a list.
    In,
    /// Greater than (numbers).
    Gt,
    /// Greater than or equal (numbers).
    Gte,
    /// Less than (numbers).
    Lt,
    /// Less than or equal (numbers).
    Lte,
    /// The field is present and not null.
    Exists,
    /// The field is a string matching a regex.
    Matches,
}

/// A regex on the source id → topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternMapping {
    /// Regex matched against the source id, e.g. `^sensor_\d+`.
    pub pattern: String,
    /// Destination topic.
    pub topic: String,
}

/// Priority of a source's records in the queue.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Lowest.
    Low,
    /// Default.
    #[default]
    Normal,
    /// Above normal.
    High,
    /// Highest; also takes the producer's low-latency path.
    Critical,
}

/// One data source. `Debug` shows it with secrets redacted (`debug.rs`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Connector type, e.g. `noaa_weather`, `http_json`, `synthetic`.
    pub source_type: String,
    /// Whether the source runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Destination topic (a custom mapping for this source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Queue priority of the source's records.
    #[serde(default)]
    pub priority: Priority,
    /// When and how the source is polled.
    #[serde(default)]
    pub ingestion: IngestionConfig,
    /// Requests per minute the source may make upstream, pages included.
    #[serde(default = "default_rate_limit_per_minute")]
    pub rate_limit_per_minute: u32,
    /// Per-request timeout.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: f64,
    /// How long an identical request is answered "nothing new" without asking the
    /// upstream again (0, the default: every poll asks; validators make unchanged
    /// answers cheap anyway). Longer than the polling interval, it slows polling to one
    /// request per TTL — `validate` and the server warn about that.
    #[serde(default = "default_cache_ttl_seconds")]
    pub cache_ttl_seconds: u64,
    /// How the Kafka message key of each record is derived (no key when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<PartitionKeyConfig>,
    /// HTTP sources: hosts besides the configured URL's origin that redirects and
    /// next-page links may lead to (`api.example.com`, `cdn.example.com:443`,
    /// `*.example.com`). Empty (the default): only the configured origin. The admin API's
    /// own address is refused unless an entry names it with its port; link-local,
    /// cloud-metadata and (for a source whose URL is not loopback) loopback addresses are
    /// refused unless an entry names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Connector-specific parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_params: BTreeMap<String, serde_json::Value>,
    /// A JSON Schema every record of the source must match: inline, `builtin:NAME` or
    /// a `.json` file (`contracts.rs`). None (the default): no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<crate::SchemaRef>,
    /// `enforce` (violations go to the DLQ) or `observe` (counted, delivered); default
    /// `contracts.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_mode: Option<crate::SchemaMode>,
}

/// How a record's Kafka key is derived: exactly one of `pointer` or `geo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionKeyConfig {
    /// JSON pointer to the field whose value is the key, e.g. `/properties/station_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// A geohash cell of the record's coordinates, stable across restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<GeoKeyConfig>,
}

/// A geohash key from latitude/longitude fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoKeyConfig {
    /// JSON pointer to the latitude, e.g. `/latitude` or `/geometry/coordinates/1`.
    pub lat: String,
    /// JSON pointer to the longitude.
    pub lon: String,
    /// Geohash length, 1-12 (5 ≈ 4.9 km cells).
    #[serde(default = "default_geohash_precision")]
    pub precision: u8,
}

fn default_geohash_precision() -> u8 {
    5
}

impl SourceConfig {
    /// A source of the given type with every other key at its default.
    pub fn new(source_type: impl Into<String>) -> Self {
        Self {
            source_type: source_type.into(),
            enabled: true,
            topic: None,
            priority: Priority::default(),
            ingestion: IngestionConfig::default(),
            rate_limit_per_minute: default_rate_limit_per_minute(),
            timeout_seconds: default_timeout_seconds(),
            cache_ttl_seconds: default_cache_ttl_seconds(),
            partition_key: None,
            allowed_hosts: Vec::new(),
            custom_params: BTreeMap::new(),
            schema: None,
            schema_mode: None,
        }
    }
}

/// When and how a source is polled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestionConfig {
    /// Ingestion mode.
    #[serde(default)]
    pub mode: IngestionModeKind,
    /// `real_time` and `continuous_streaming`: seconds between polls.
    #[serde(default = "default_polling_interval_seconds")]
    pub polling_interval_seconds: f64,
    /// `batch`: seconds between scheduled runs (unless `cron` is set).
    #[serde(default = "default_schedule_interval_seconds")]
    pub schedule_interval_seconds: u64,
    /// `batch`: cron expression (5 or 6 fields) instead of the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// `batch`: records emitted per chunk.
    #[serde(default = "default_ingestion_batch_size")]
    pub batch_size: usize,
    /// `continuous_streaming`: records buffered before a flush.
    #[serde(default = "default_buffer_size")]
    pub buffer_size: usize,
    /// `continuous_streaming`: seconds between time-based buffer flushes.
    #[serde(default = "default_buffer_flush_interval_seconds")]
    pub buffer_flush_interval_seconds: f64,
    /// `real_time`: most records taken from one poll.
    #[serde(default = "default_max_records_per_poll")]
    pub max_records_per_poll: usize,
}

impl Default for IngestionConfig {
    fn default() -> Self {
        Self {
            mode: IngestionModeKind::default(),
            polling_interval_seconds: default_polling_interval_seconds(),
            schedule_interval_seconds: default_schedule_interval_seconds(),
            cron: None,
            batch_size: default_ingestion_batch_size(),
            buffer_size: default_buffer_size(),
            buffer_flush_interval_seconds: default_buffer_flush_interval_seconds(),
            max_records_per_poll: default_max_records_per_poll(),
        }
    }
}

/// Ingestion modes: the three built-in ones, or any other name, which a program using
/// the crates registers (`ingestion_modes::ModeRegistry`); `validate` checks the name
/// against the registered ones when the loader knows them
/// ([`crate::Loader::with_ingestion_modes`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestionModeKind {
    /// Scheduled full fetches emitted in chunks.
    Batch,
    /// Regular polling.
    #[default]
    RealTime,
    /// High-frequency polling through a local buffer.
    ContinuousStreaming,
    /// A mode registered under this name by a program using the crates.
    #[serde(untagged)]
    Custom(String),
}

impl IngestionModeKind {
    /// The name a config gives it (`real_time`, or a registered mode's name).
    pub fn name(&self) -> &str {
        match self {
            Self::Batch => "batch",
            Self::RealTime => "real_time",
            Self::ContinuousStreaming => "continuous_streaming",
            Self::Custom(name) => name,
        }
    }
}

/// The admin HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the admin API listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token required by the admin API (required off loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// A second bearer token that may only read (GET routes: streams, DLQ, config,
    /// metrics, health); changes need `admin_token`. Only together with `admin_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_token: Option<Secret>,
    /// Prefix of every metric name.
    #[serde(default = "default_metrics_namespace")]
    pub metrics_namespace: String,
    /// On SIGTERM: how long sources may finish and the queue may drain into Kafka.
    /// Whatever is not acknowledged by then is dead-lettered (reason `shutdown`) and the
    /// process exits a few seconds later, also while Kafka is down.
    #[serde(default = "default_shutdown_timeout_seconds")]
    pub shutdown_timeout_seconds: f64,
    /// A connection to the admin API must send its request headers within this long.
    #[serde(default = "default_header_read_timeout_seconds")]
    pub header_read_timeout_seconds: f64,
    /// Most connections to the admin API open at once. When all are taken, a new one
    /// takes the slot of the connection waiting longest for its request headers; when
    /// all are serving requests, 4 more may probe `/health` and `/ready` only.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_token: None,
            read_token: None,
            metrics_namespace: default_metrics_namespace(),
            shutdown_timeout_seconds: default_shutdown_timeout_seconds(),
            header_read_timeout_seconds: default_header_read_timeout_seconds(),
            max_connections: default_max_connections(),
        }
    }
}

/// A secret string: `Debug` and `Display` never show it; serialization does (for
/// `save_to_file`), so dumps meant for people go through [`crate::redacted`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn default_true() -> bool {
    true
}
fn default_queue_max_size() -> usize {
    10_000
}
fn default_bootstrap_servers() -> String {
    "localhost:9092".to_owned()
}
fn default_client_id() -> String {
    "stream-manager".to_owned()
}
fn default_kafka_batch_size() -> u32 {
    500
}
fn default_linger_ms() -> u32 {
    100
}
fn default_max_retries() -> u32 {
    3
}
fn default_retry_backoff_base() -> f64 {
    2.0
}
fn default_min_send_rate() -> f64 {
    1.0
}
fn default_max_send_rate() -> f64 {
    1000.0
}
fn default_target_consumer_lag() -> u64 {
    1000
}
fn default_critical_consumer_lag() -> u64 {
    5000
}
fn default_adjustment_factor() -> f64 {
    1.5
}
fn default_window_size_seconds() -> u64 {
    60
}
fn default_metric_sample_size() -> usize {
    100
}
fn default_max_backoff_level() -> u32 {
    5
}
fn default_recovery_checks() -> u32 {
    10
}
fn default_dlq_url() -> String {
    "sqlite://data/dlq.db".to_owned()
}
fn default_retry_base_delay_seconds() -> u64 {
    1
}
fn default_partitions() -> u32 {
    4
}
fn default_replication_factor() -> u16 {
    1
}
fn default_retention_ms() -> i64 {
    604_800_000
}
fn default_fallback_topic() -> String {
    "wildfire-default".to_owned()
}
fn default_rate_limit_per_minute() -> u32 {
    60
}
fn default_timeout_seconds() -> f64 {
    30.0
}
fn default_cache_ttl_seconds() -> u64 {
    0
}
fn default_polling_interval_seconds() -> f64 {
    30.0
}
fn default_schedule_interval_seconds() -> u64 {
    3600
}
fn default_ingestion_batch_size() -> usize {
    1000
}
fn default_buffer_size() -> usize {
    100
}
fn default_buffer_flush_interval_seconds() -> f64 {
    5.0
}
fn default_max_records_per_poll() -> usize {
    500
}
fn default_header_read_timeout_seconds() -> f64 {
    10.0
}
fn default_max_connections() -> usize {
    64
}
fn default_shutdown_timeout_seconds() -> f64 {
    30.0
}
fn default_retention_days() -> u32 {
    30
}
fn default_max_settled_rows() -> u64 {
    100_000
}
fn default_journal_path() -> String {
    "data/dlq-journal.jsonl".to_owned()
}
fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_metrics_namespace() -> String {
    "stream".to_owned()
}
