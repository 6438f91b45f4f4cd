//! A source: its type, priority, ingestion schedule, limits and `custom_params`.

use super::*;

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
