//! Typed, validated configuration for the stream manager.
//!
//! Load a YAML or JSON file with [`Loader`]: `${VAR}` / `${VAR:-default}` are
//! interpolated, `STREAM__SECTION__KEY=value` environment overrides are applied, unknown
//! keys are rejected with a suggestion, and validation reports *every* problem at once
//! with its key path and line. [`redacted`] dumps it without secrets; [`save`] writes it
//! back atomically.
//!
//! ```
//! use stream_config::{Format, Loader};
//!
//! let yaml = "
//! kafka:
//!   bootstrap_servers: ${KAFKA:-localhost:9092}
//! sources:
//!   quakes:
//!     source_type: usgs_earthquakes
//!     ingestion: { mode: real_time, polling_interval_seconds: 60 }
//! ";
//! let loader = Loader::new().with_env([("STREAM__KAFKA__CLIENT_ID".to_string(), "demo".to_string())]);
//! let config = loader.load_str(yaml, Format::Yaml, "<example>").unwrap();
//! assert_eq!(config.kafka.bootstrap_servers, "localhost:9092");
//! assert_eq!(config.kafka.client_id, "demo");
//! assert_eq!(config.sources["quakes"].rate_limit_per_minute, 60);
//!
//! let err = loader
//!     .load_str("queue_max_sise: 5\nthrottling: { min_send_rate: x }\n", Format::Yaml, "bad.yaml")
//!     .unwrap_err();
//! let problems = &err.diagnostics().unwrap().items;
//! assert_eq!(problems.len(), 2);
//! assert_eq!(problems[0].hint.as_deref(), Some("did you mean `queue_max_size`?"));
//! assert_eq!(problems[1].path, "throttling.min_send_rate");
//! ```

mod cluster;
mod contracts;
mod debug;
mod error;
mod hosts;
mod load;
mod model;
mod overrides;
mod path;
mod ranges;
mod redact;
mod restart;
mod roots;
mod save;
mod security;
mod validate;

pub use cluster::ClusterConfig;
pub use contracts::{
    compile_schema, read_schema_file, schema_roots, ContractsConfig, SchemaMode, SchemaRef,
    SchemaSource, MAX_SCHEMA_FILE_BYTES,
};
pub use error::{Diagnostic, Diagnostics, Error, Location, Result};
pub use hosts::HostPattern;
pub use load::{Format, Loader};
pub use model::{
    Acks, CleanupPolicy, Compression, ContentRule, DlqConfig, GeoKeyConfig, IngestionConfig,
    IngestionModeKind, KafkaConfig, OverflowStrategy, PartitionKeyConfig, PatternMapping, Priority,
    PriorityRule, RoutingConfig, RoutingStep, RuleOperator, Secret, ServerConfig, SourceConfig,
    StreamConfig, ThrottlingConfig, TopicConfig,
};
pub use ranges::{seconds, MAX_SECONDS};
pub use redact::{
    has_private_key, hide_values, is_secret_key, is_secret_name, may_hold_secret, redact_url,
    redacted, redacted_yaml, REDACTED,
};
pub use restart::RESTART_ONLY;
pub use roots::resolve_under_roots;
pub use save::{save, save_json_text};
pub use security::{
    KafkaSecurity, OidcConfig, SaslConfig, SaslMechanism, SecurityProtocol, TlsConfig,
};
pub use validate::warnings;

/// The candidate closest to `name` (for "did you mean"), if any is close enough
/// (normalized Damerau-Levenshtein similarity ≥ 0.6). Connectors use it for their own
/// parameter values (`noaa_weather`'s `data_types`).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(name, c), c))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
