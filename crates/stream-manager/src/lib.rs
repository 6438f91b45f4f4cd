//! The composed pipeline: sources → ingestion modes → queue → throttling →
//! topic-resolver → producer → Kafka, with the DLQ beside the producer.
//!
//! [`StreamManager`] is a thin façade: each component comes in through its trait (a
//! `Producer`, a `DeadLetterStore`, a `CursorStore`, a `LagProbe`, a source `Registry`)
//! and can be replaced; [`Builder`] fills what is not given from the configuration.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stream_manager::StreamManager;
//! let config = stream_config::Loader::new().load_file("config/stream_config.yaml")?;
//! let manager = StreamManager::builder(config).start().await?;
//! println!("{:?}", manager.health().await);
//! manager.shutdown(std::time::Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```

mod builder;
mod contracts;
mod convert;
mod dlq;
mod health;
mod kafka;
mod lag;
mod manager;
mod page;
mod reload;
pub use reload::CONFIG_UPDATES;
mod streams;
mod summary;
mod workers;
mod workload;

pub use crate::builder::Builder;
pub use crate::contracts::builtin_schemas;
pub use crate::dlq::ReplayOutcome;
pub use crate::health::{
    DlqHealth, Health, MetricsSnapshot, ProducerHealth, QueueHealth, QueueMetrics, StreamsHealth,
    ThrottleMetrics,
};
pub use crate::kafka::{
    check_sources, ingestion_modes, prepare_kafka, source_types, KafkaHandle, MissingTopic,
    MissingTopics, TopicCreator,
};
pub use crate::lag::LagHealth;
pub use crate::manager::{ShutdownReport, StreamManager};
pub use crate::page::{StreamPage, StreamQuery};
pub use crate::streams::{StreamInfo, StreamStatus};
pub use crate::summary::{
    ApiClientsComponent, ApiSummary, Components, DlqComponent, ProducerComponent, ProducerSummary,
    QueueComponent, QueueSummary, StreamSummary, StreamsComponent, Summary, ThrottlingComponent,
    ThrottlingSummary,
};
pub use cluster::{ClusterView, MemberView};
pub use producer::{DeadLetter, DlqFilter, DlqStats, DlqStatus, Purge};
pub use record_path::{LastViolation, Throughput, WorkerHealth, SLOTS as THROUGHPUT_SECONDS};

/// `source_freshness_seconds{source}`: each source's freshness (`api_client::Freshness`),
/// published before each scrape, one series per configured source with a freshness.
const SOURCE_FRESHNESS: &str = "source_freshness_seconds";

/// Registers the help text of every component's metrics with the installed recorder
/// (call once, after installing it, so `/metrics` carries `# HELP` for each).
pub fn describe_metrics() {
    api_client::describe_metrics();
    ingestion_modes::describe_metrics();
    queue::describe_metrics();
    throttling::describe_metrics();
    topic_resolver::describe_metrics();
    producer::describe_metrics();
    record_path::describe_metrics();
    metrics::describe_gauge!(
        SOURCE_FRESHNESS,
        metrics::Unit::Seconds,
        "Age of each source's newest record: from the records' own event time where the connector knows it, else since the last successful fetch; refreshed at each scrape."
    );
    metrics::describe_counter!(
        reload::CONFIG_UPDATES,
        metrics::Unit::Count,
        "Runtime configuration updates (PUT /config, SIGHUP) by outcome: applied, refused (nothing changed), needs_restart."
    );
}

/// Errors of the manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] stream_config::Error),
    /// A component could not be built or reached; the cause is the source.
    #[error("{component} failed")]
    Component {
        /// Which component (`routing`, `producer`, `source sensors_1`, …).
        component: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database (dead letters, source state) could not be opened.
    #[error("cannot open the store (dlq.url)")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The producer or the dead-letter store failed.
    #[error(transparent)]
    Producer(#[from] producer::Error),
    /// No dead letter has this id.
    #[error("no dead letter {0}")]
    UnknownDeadLetter(i64),
    /// The change touches keys read only at start; nothing was changed.
    #[error("these keys take effect only at a restart: {}; restart the service to apply them (nothing was changed)", keys.join(", "))]
    NeedsRestart {
        /// The changed keys, as paths.
        keys: Vec<String>,
    },
    /// No stream has this id.
    #[error("no stream `{0}`")]
    UnknownStream(String),
    /// The operation does not fit the stream's state.
    #[error("stream `{id}` is {status:?}; {what}")]
    State {
        /// The stream.
        id: String,
        /// Its state.
        status: StreamStatus,
        /// What cannot be done.
        what: &'static str,
    },
}

/// Result with the manager's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn component<E>(component: impl Into<String>) -> impl FnOnce(E) -> Error
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |e| Error::Component {
        component: component.into(),
        source: e.into(),
    }
}
