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

mod kafka;
mod routing;
mod server;
mod source;
mod throttling;

pub use kafka::*;
pub use routing::*;
pub use server::*;
pub use source::*;
pub use throttling::*;

fn yes() -> bool {
    true
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
