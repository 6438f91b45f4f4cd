//! The seams between the stream manager's crates, as traits and plain data with no I/O:
//! what a source yields and how its progress is stored, what a producer sends and where
//! a record goes when it cannot be delivered.
//!
//! - A [`Source`] fetches from a [`Cursor`] → a [`Fetch`]: [`Record`]s (each its compact
//!   JSON text), the next cursor and the [`Rejected`] ones; [`PartStatus`] is one
//!   endpoint's health. A [`CursorStore`] keeps each source's cursor (as snapshots and
//!   deltas, [`StateChains`]) and fences commits by [`Lease`]. They fail with
//!   [`SourceError`].
//! - A [`Producer`] sends [`OutgoingRecord`]s and reports each one's [`Outcome`]; a
//!   [`DeadLetterStore`] keeps what could not be delivered ([`NewDeadLetter`] in,
//!   [`DeadLetter`] out, with its [`FailureReason`]). They fail with [`ProducerError`].
//!
//! Implementations live elsewhere: `api-client` (HTTP, file and synthetic sources),
//! `producer` (librdkafka, the state topic), `store` (SQLite and PostgreSQL). This crate
//! depends on no crate of the workspace and on nothing that does network or file I/O, so
//! a store or a test double builds without librdkafka or an HTTP client. The in-memory
//! stores ([`MemoryCursorStore`], [`MemoryDeadLetterStore`]) are here for the same reason.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stream_contracts::{Cursor, CursorStore, DeadLetterStore, DlqFilter, MemoryCursorStore,
//!     MemoryDeadLetterStore, NewDeadLetter, OutgoingRecord, FailureReason};
//!
//! let cursors = MemoryCursorStore::default();
//! cursors.commit("firms", &Cursor("2026-11-30T12:00:00Z".into())).await?;
//! assert_eq!(cursors.load("firms").await?, Some(Cursor("2026-11-30T12:00:00Z".into())));
//!
//! let dlq = MemoryDeadLetterStore::default();
//! let record = OutgoingRecord::new("wildfire-default", "firms", &b"{\"t\":21.5}"[..]);
//! let letter = NewDeadLetter { record, reason: FailureReason::Timeout, details: "timed out".into() };
//! dlq.insert(&[letter], std::time::Duration::from_secs(30)).await?;
//! assert_eq!(dlq.list(&DlqFilter::default(), 10, 0).await?.len(), 1);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```

mod chunks;
mod cursor;
mod dlq;
mod failure;
pub mod pointer;
mod producer;
mod record;
mod source;
mod state_chain;
pub mod state_delta;

pub use chunks::{release_spare_chunks, Chunks};
pub use cursor::{fenced_message, CursorStore, Lease, MemoryCursorStore};
pub use dlq::{
    headers_json, initial_status, now_ms, payload_json, DeadLetter, DeadLetterStore, DlqFilter,
    DlqStats, DlqStatus, MemoryDeadLetterStore, NewDeadLetter, Purge,
};
pub use failure::{DeliveryError, ErrorClass, FailureReason};
pub use pointer::pointer_tokens;
pub use producer::{
    Delivered, Error as ProducerError, HeaderName, KafkaHealth, Outcome, OutgoingRecord, Producer,
    ProducerStats, Result as ProducerResult,
};
pub use record::{compact_into, put_json_str, Record, RecordWriter};
pub use source::{
    Chunk, ChunkReceiver, ChunkSender, Cursor, Error as SourceError, Fetch, PartStatus, Rejected,
    Result as SourceResult, Source,
};
pub use state_chain::{StateChains, StateWrite, StoredState, MAX_DELTAS};
