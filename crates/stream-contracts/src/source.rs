//! The source trait: fetch from a cursor → records, the next cursor, whether anything
//! changed, and the records that could not be decoded.

use std::fmt;

use async_trait::async_trait;

use crate::record::Record;

/// Where a source left off: opaque text the source understands (a timestamp, a token,
/// a file offset). Stored by a [`crate::CursorStore`] once its records are safe; what an
/// operator sees of it is `api_client::CursorSummary::summary`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor(pub String);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record that could not be decoded: dead-lettered with its reason and an excerpt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Why (e.g. `invalid JSON at line 3: expected value`).
    pub reason: String,
    /// The start of the offending text (at most 512 bytes).
    pub excerpt: String,
}

impl Rejected {
    /// A rejection with the excerpt cut to 512 bytes on a character boundary.
    pub fn new(reason: impl Into<String>, raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let mut end = text.len().min(512);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            reason: reason.into(),
            excerpt: text[..end].to_owned(),
        }
    }
}

/// The result of one fetch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetch {
    /// New records, each its JSON text.
    pub records: Vec<Record>,
    /// The cursor to commit once these records are safe (`None`: keep the old one).
    pub next_cursor: Option<Cursor>,
    /// False when the upstream had nothing new (304, cache hit, empty delta).
    pub changed: bool,
    /// Records that could not be decoded.
    pub rejected: Vec<Rejected>,
    /// Parts of the fetch that failed while others succeeded (a page of a walk, one
    /// endpoint of a multi-endpoint source), redacted. Their state was kept, so the next
    /// poll asks for them again; the records in hand are emitted all the same.
    pub failures: Vec<String>,
}

impl Fetch {
    /// "Nothing new", keeping the cursor.
    pub fn unchanged() -> Self {
        Self::default()
    }
}

/// Errors of a source (a fetch, a source's configuration) and of a cursor store
/// (`api_client::Error`).
/// Messages never contain secrets: upstream errors are redacted text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source's configuration is invalid; `path` names the key.
    #[error("invalid source configuration at `{path}`: {message}")]
    Config {
        /// Key path, e.g. `sources.firms.custom_params.days`.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The upstream could not be reached or kept failing.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// The upstream answered with an error status that retrying cannot fix.
    #[error("upstream answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Detail.
        message: String,
    },
    /// An outbound request the source may not make: a redirect or next-page link off
    /// its configured origin and `allowed_hosts`, or to the admin API, a link-local,
    /// cloud-metadata or (from a non-loopback source) loopback address. Retrying cannot
    /// change it.
    #[error("outbound request refused: {0}")]
    Refused(String),
    /// The response was larger than `max_response_bytes`.
    #[error(
        "response larger than {limit} bytes; raise `max_response_bytes` or narrow the request"
    )]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The whole body could not be decoded (records are rejected one by one otherwise).
    #[error("cannot decode response: {0}")]
    Decode(String),
    /// The circuit breaker is open after repeated failures.
    #[error("circuit breaker open after repeated failures; next probe in {retry_in_seconds} s")]
    BreakerOpen {
        /// Seconds until a probe is allowed.
        retry_in_seconds: u64,
    },
    /// A local resource (file) failed.
    #[error("{0}")]
    Io(String),
    /// A commit under a lease another worker has since superseded (or a store that
    /// cannot fence): nothing was written.
    #[error("cursor commit refused: {0}")]
    Fenced(String),
    /// A cursor store failed; the cause is the source.
    #[error("cursor store failed")]
    Cursor(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A cursor store's own error, wrapped.
    pub fn cursor(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Cursor(cause.into())
    }
}

/// Result with a source's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Records a fetch hands on while it is still under way ([`Source::fetch_streaming`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// New records.
    pub records: Vec<Record>,
    /// Records that could not be decoded.
    pub rejected: Vec<Rejected>,
}

impl Chunk {
    /// Records plus rejects.
    pub fn len(&self) -> usize {
        self.records.len() + self.rejected.len()
    }

    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a fetch hands its records on while it is under way: a bounded channel, so a
/// fetch whose records the pipeline cannot take yet waits in [`ChunkSender::send`] (and
/// an HTTP source stops reading its body meanwhile) instead of holding them.
///
/// One exists per poll in flight (at 10,000 sources, thousands at once while they wait
/// for the upstream), so it is flume's channel: a few hundred bytes where tokio's mpsc
/// allocates a block of 32 slots up front.
#[derive(Debug, Clone)]
pub struct ChunkSender(flume::Sender<Chunk>);

/// The receiving end of a [`ChunkSender`].
#[derive(Debug)]
pub struct ChunkReceiver(flume::Receiver<Chunk>);

impl ChunkSender {
    /// A sender and its receiver, holding at most `capacity` chunks between them.
    pub fn channel(capacity: usize) -> (Self, ChunkReceiver) {
        let (tx, rx) = flume::bounded(capacity.max(1));
        (Self(tx), ChunkReceiver(rx))
    }

    /// Hands `chunk` on; waits while the receiver is full. Fails when the receiver is
    /// gone (the stream stopped): the fetch should end.
    pub async fn send(&self, chunk: Chunk) -> Result<(), Error> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.0
            .send_async(chunk)
            .await
            .map_err(|_| Error::Io("the stream stopped while the fetch was under way".into()))
    }
}

impl ChunkReceiver {
    /// The next chunk; `None` once every sender is gone and nothing is left.
    pub async fn recv(&mut self) -> Option<Chunk> {
        self.0.recv_async().await.ok()
    }

    /// A chunk that is already there, without waiting.
    pub fn try_recv(&mut self) -> Option<Chunk> {
        self.0.try_recv().ok()
    }
}

/// Something that yields records: an HTTP API, a file, a generator.
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug {
    /// Fetches what is new since `cursor`.
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, Error>;

    /// Fetches what is new since `cursor`, handing records on through `out` while the
    /// fetch is under way (a large body in bounded memory); the [`Fetch`] returned holds
    /// the records not handed on yet, and its `next_cursor` guards all of them, handed
    /// on or not: it is committed only once every one is settled. When the fetch fails
    /// (`Err`) the records already handed on are settled all the same (delivered or
    /// dead-lettered) and no state advances, so the next poll asks again. The default
    /// hands nothing on: it is [`Source::fetch`].
    async fn fetch_streaming(
        &self,
        cursor: Option<&Cursor>,
        out: &ChunkSender,
    ) -> Result<Fetch, Error> {
        let _ = out;
        self.fetch(cursor).await
    }

    /// The health of each upstream endpoint this source polls (none for a source that
    /// polls nothing remote).
    fn parts(&self) -> Vec<PartStatus> {
        Vec::new()
    }

    /// Where a long-running piece of work stands, as a JSON object for `/streams/{id}`
    /// (`noaa_weather`'s state sweep: stations known, fetched this sweep, sweeps done,
    /// the last sweep's duration). None (the default) for sources without such work.
    fn progress(&self) -> Option<serde_json::Value> {
        None
    }
}

/// The health of one upstream endpoint of a source, as its last poll left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartStatus {
    /// The endpoint: its URL with every configured secret replaced by `***`.
    pub name: String,
    /// The last answer: an HTTP status (`200`, `304`, `503`), `cached`, or what went
    /// wrong before any answer (`timed out`, `request failed`, `breaker open`).
    pub last_status: Option<String>,
    /// Polls in a row that failed (0 after a success).
    pub consecutive_failures: u32,
    /// The last failure, redacted.
    pub last_error: Option<String>,
    /// Answers since the source was built: every HTTP answer, every request that got
    /// none (timed out, failed), and every poll the response cache answered. Requests
    /// the source refused to send (`refused`, `breaker open`) are not counted.
    pub requests: u64,
    /// Of `requests`, those that failed: no answer, or a status other than 2xx and 304.
    pub failed_requests: u64,
    /// Of `requests`, polls the response cache answered (`cache_ttl_seconds`).
    pub cache_hits: u64,
}

impl PartStatus {
    /// Records `status` (an HTTP status, `cached`, or what went wrong) as the last one,
    /// and counts it.
    pub fn note(&mut self, status: &str) {
        match status {
            "refused" | "breaker open" => {}
            "cached" => {
                self.requests += 1;
                self.cache_hits += 1;
            }
            other => {
                self.requests += 1;
                let ok = other
                    .parse::<u16>()
                    .is_ok_and(|c| (200..300).contains(&c) || c == 304);
                if !ok {
                    self.failed_requests += 1;
                }
            }
        }
        self.last_status = Some(status.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::PartStatus;

    #[test]
    fn a_part_counts_answers_failures_and_cache_hits_but_not_requests_never_sent() {
        let mut part = PartStatus::default();
        for status in [
            "200",
            "304",
            "cached",
            "503",
            "404",
            "timed out",
            "request failed",
            "refused",
            "breaker open",
        ] {
            part.note(status);
        }
        assert_eq!(
            (part.requests, part.failed_requests, part.cache_hits),
            (7, 4, 1),
            "{part:?}"
        );
        assert_eq!(part.last_status.as_deref(), Some("breaker open"));
    }
}
