//! Reliable Kafka delivery with a dead-letter queue. The only crate that knows rdkafka.
//!
//! - [`Producer`] sends records and reports each one's outcome from Kafka's delivery
//!   report; [`KafkaProducer`] implements it on librdkafka with classified errors,
//!   per-record retries with backoff, backpressure on a full local queue, and a
//!   low-latency path for CRITICAL records.
//! - [`DeadLetterStore`] keeps what could not be delivered: [`MemoryDeadLetterStore`]
//!   here, SQLite or PostgreSQL in the `store` crate; [`retry_due`] and [`replay`] send
//!   dead letters again.
//! - [`Delivery`] joins the two: every record handed to it is acknowledged by Kafka or
//!   lands in the DLQ with its reason; [`run_dlq_worker`] and [`run_dlq_retention`]
//!   keep its DLQ (buffer flushed, due rows retried, rows done with removed).
//! - [`ensure_topics`] creates configured topics, [`TopicCreator`] before records go to
//!   them (retrying refused ones, kept in [`MissingTopics`]); [`KafkaLagProbe`] reads consumer lag
//!   for the throttling crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use producer::{Delivery, KafkaProducer, MemoryDeadLetterStore, OutgoingRecord};
//! use stream_config::StreamConfig;
//!
//! let cfg = StreamConfig::default();
//! let kafka = KafkaProducer::new(&cfg.kafka)?;
//! let dlq = MemoryDeadLetterStore::default();
//! let delivery = Delivery::new(std::sync::Arc::new(kafka), std::sync::Arc::new(dlq));
//! let report = delivery
//!     .deliver(vec![OutgoingRecord::new("wildfire-default", "demo", &b"{\"t\":21.5}"[..])])
//!     .await;
//! assert_eq!(report.delivered + report.dead_lettered, 1);
//! # Ok(()) }
//! ```

mod admin;
mod classify;
mod delivery;
mod embedded;
mod group;
mod isolate;
mod journal;
mod kafka;
mod lag;
mod list_groups;
mod metrics;
mod null;
mod oidc;
mod security;
mod state_log;
mod state_store;
mod state_view;
mod topics;
mod upkeep;

pub use admin::{ensure_topics, TopicOutcome};
pub use classify::{classify, classify_code};
pub use delivery::{replay, retry_due, Delivery, DeliveryReport};
pub use embedded::EmbeddedBroker;
pub use group::{GroupEvent, GroupMember, GroupSettings};
pub use kafka::{client_config, KafkaProducer, ProducerSettings, StatsContext};
pub use lag::{KafkaLagProbe, DISCOVERY_REFRESH};
pub use metrics::{describe_metrics, publish_in_flight};
pub use null::NullProducer;
/// librdkafka's client properties, as [`client_config`] builds them and
/// [`GroupMember::join`] and [`StateLog::open`] take them.
pub use rdkafka::config::ClientConfig;
pub use state_log::{Claimed, StateChain, StateLog, STATE_CHUNK_BYTES};
pub use state_store::TopicStore;
pub use topics::{MissingTopic, MissingTopics, TopicCreator};
pub use upkeep::{run_dlq_retention, run_dlq_worker, DlqUpkeep, DLQ_PASS_EVERY, RETENTION_EVERY};

// The seams moved to `stream-contracts`; their old paths keep working. `FailureReason`
// is defined in `crates/stream-contracts/src/failure.rs`.
pub use stream_contracts::{
    headers_json, initial_status, payload_json, DeadLetter, DeadLetterStore, Delivered,
    DeliveryError, DlqFilter, DlqStats, DlqStatus, ErrorClass, FailureReason, HeaderName,
    KafkaHealth, MemoryDeadLetterStore, NewDeadLetter, Outcome, OutgoingRecord, Producer,
    ProducerError as Error, ProducerResult as Result, ProducerStats, Purge,
};
