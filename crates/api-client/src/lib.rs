//! Sources of records: HTTP APIs polled politely and robustly, files, and a generator.
//!
//! [`Source`] is the seam: fetch from a [`Cursor`] → records, the next cursor, whether
//! anything changed, and the records that could not be decoded. [`HttpApiClient`]
//! implements it on reqwest with a per-source rate limit (governor), timeouts, retries
//! with backoff that honour `Retry-After`, a circuit breaker, conditional requests
//! (ETag / Last-Modified), a short response cache that never re-emits records,
//! authentication (basic, bearer, API key, OAuth2 client credentials), response size
//! and page limits, decoders (JSON, GeoJSON, CSV, NDJSON, fields+data) and pagination.
//! [`Registry`] builds sources by `source_type`; [`CursorTracker`] commits a cursor only
//! once every record of its fetch is safe.
//!
//! A record is a [`Record`]: its compact JSON text, serialized once where it enters (a
//! decoder copies it out of the body, or writes it), shared from there to Kafka; fields
//! are read from the text ([`Record::pointer`]) without building a tree.
//!
//! ```
//! # async fn demo() -> Result<(), api_client::Error> {
//! use api_client::{Registry, Source, SourceSpec};
//!
//! let spec = SourceSpec::new("synthetic").param("records_per_second", 5).param("seed", 7);
//! let source = Registry::builtin().build("sensors", spec)?;
//! let fetch = source.fetch(None).await?;
//! assert_eq!(fetch.records.len(), 5); // the first fetch covers one second
//! // Each record is its JSON text, serialized once; fields are read from the text.
//! let station = fetch.records[0].pointer("/station_id").unwrap();
//! assert!(station.as_str().unwrap().starts_with("sensor_"));
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(demo()).unwrap();
//! ```

mod breaker;
mod clock;
mod connectors;
mod contracts;
mod decode;
mod dedup;
mod event_time;
mod freshness;
#[cfg(test)]
mod fuzz;
mod http;
mod metrics;
pub mod schema_scan;
mod schemas;
mod source_spec;
mod time;
mod tracker;

pub use breaker::BreakerState;
pub use connectors::{params, Registry, SyntheticParams, SyntheticSource};
pub use contracts::{Contracts, Violation};
pub use decode::{Decoded, Decoder, StreamDecoder, HAND_ON_BYTES, HAND_ON_RECORDS};
pub use dedup::DedupSpec;
pub use event_time::{rfc3339, EventTime, TimeFormat, EVENT_TIME_KEY};
pub use freshness::{Freshness, FreshnessView};
pub use http::limits::HttpLimits;
pub use http::{
    Auth, ClientOptions, HttpApiClient, HttpSpec, Incremental, KeyLocation, Method, Pagination,
};
pub use metrics::describe_metrics;
pub use schemas::{builtin_schema, builtin_schemas};
pub use source_spec::SourceSpec;
pub use tracker::{CursorTracker, FetchSeq};

/// What an operator sees of a [`Cursor`] (`/streams/{id}`, logs).
pub trait CursorSummary {
    /// For an HTTP source's fetch state, its incremental value (and where an interrupted
    /// walk resumes) without the validators and dedup window it also carries; each
    /// part's for a multi-endpoint source; the NOAA sweep's position; otherwise the
    /// cursor itself.
    fn summary(&self) -> String;
}

impl CursorSummary for Cursor {
    fn summary(&self) -> String {
        http::cursor_summary(self)
    }
}

// The seams moved to `stream-contracts`; their old paths keep working.
pub use stream_contracts::{
    fenced_message, pointer_tokens, release_spare_chunks, Chunk, ChunkReceiver, ChunkSender,
    Chunks, Cursor, CursorStore, Fetch, Lease, MemoryCursorStore, PartStatus, Record, RecordWriter,
    Rejected, Source, SourceError as Error, SourceResult as Result, StateChains, StateWrite,
    StoredState, MAX_DELTAS,
};
