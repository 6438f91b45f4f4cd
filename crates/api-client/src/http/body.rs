//! A page's body read piece by piece into its decoder, and the records handed on while
//! it is still arriving (through the fetch's `ChunkSender`, which waits while the
//! pipeline is full: the body is not read meanwhile), after the dedup window and with
//! the incremental cursor moved along; what a fetch does when a page fails.

use std::time::Duration;

use reqwest::Url;

use super::paging;
use super::state::FetchState;
use super::HttpApiClient;
use crate::decode::{Decoded, StreamDecoder};
use crate::metrics as m;
use crate::{Chunk, ChunkSender, Error, Fetch};

/// A fetch's records on their way out: handed on through `out` while bodies arrive, or
/// kept in `fetch` (without `out`, as [`crate::Source::fetch`] returns them).
#[derive(Debug)]
pub(super) struct Handing<'a> {
    pub(super) out: Option<&'a ChunkSender>,
    pub(super) fetch: Fetch,
    /// Records and rejects decoded so far (before the dedup window).
    pub(super) decoded: usize,
    /// Records and rejects kept (after the dedup window).
    pub(super) kept: usize,
    /// Records decoded on the current page (offset pagination counts them).
    pub(super) page_len: usize,
}

impl<'a> Handing<'a> {
    pub(super) fn new(out: Option<&'a ChunkSender>) -> Self {
        Self {
            out,
            fetch: Fetch::default(),
            decoded: 0,
            kept: 0,
            page_len: 0,
        }
    }
}

impl HttpApiClient {
    /// Reads a 2xx body whole (at most `max_response_bytes`).
    pub(super) async fn read_body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, Error> {
        let limit = self.spec.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(Error::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.next_piece(&mut resp).await? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(Error::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        self.meters.bytes().increment(body.len() as u64);
        Ok(body)
    }

    async fn next_piece(
        &self,
        resp: &mut reqwest::Response,
    ) -> Result<Option<bytes::Bytes>, Error> {
        resp.chunk().await.map_err(|e| {
            Error::Unavailable(self.redact(&format!("reading body: {}", e.without_url())))
        })
    }

    /// Reads a page's body into `decoder` as it arrives, handing records on whenever
    /// enough are decoded, so memory holds a chunk of records, not the body. On an
    /// error (the body cut short, malformed, over `max_response_bytes`), the chunks
    /// already handed on stay handed on; the records decoded since are dropped with the
    /// failed body.
    pub(super) async fn read_page(
        &self,
        mut resp: reqwest::Response,
        decoder: &mut StreamDecoder,
        state: &mut FetchState,
        h: &mut Handing<'_>,
    ) -> Result<(), Error> {
        let limit = self.spec.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(Error::TooLarge { limit });
        }
        let mut read = 0u64;
        let result = loop {
            let piece = match self.next_piece(&mut resp).await {
                Ok(Some(p)) => p,
                Ok(None) => break decoder.finish(),
                Err(e) => break Err(e),
            };
            read += piece.len() as u64;
            if read > limit {
                break Err(Error::TooLarge { limit });
            }
            if let Err(e) = decoder.feed(&piece) {
                break Err(e);
            }
            if decoder.ready() {
                self.hand_on(decoder.take(), state, h).await?;
            }
        };
        self.meters.bytes().increment(read);
        // A body that failed keeps what it had not handed on yet: as a body read whole
        // did, it fails with them (the next poll asks again), so a small malformed body
        // still sends nothing, and only the full chunks of a large one have gone out.
        if result.is_ok() {
            self.hand_on(decoder.take(), state, h).await?;
        }
        result
    }

    /// Hands `decoded` on: through the dedup window, the incremental cursor moved to
    /// its newest value, then out (or into the fetch).
    async fn hand_on(
        &self,
        decoded: Decoded,
        state: &mut FetchState,
        h: &mut Handing<'_>,
    ) -> Result<(), Error> {
        h.page_len += decoded.records.len();
        h.decoded += decoded.records.len() + decoded.rejected.len();
        let mut records = decoded.records;
        if let Some(spec) = &self.spec.dedup {
            let before = records.len();
            records = state.seen.filter(spec, records);
            let dropped = before - records.len();
            if dropped > 0 {
                metrics::counter!(m::DEDUP_DROPPED, "source" => self.opts.source_id.clone())
                    .increment(dropped as u64);
            }
        }
        self.advance_cursor(state, &records);
        h.kept += records.len() + decoded.rejected.len();
        match h.out {
            Some(out) => {
                out.send(Chunk {
                    records,
                    rejected: decoded.rejected,
                })
                .await
            }
            None => {
                h.fetch.records.extend(records);
                h.fetch.rejected.extend(decoded.rejected);
                Ok(())
            }
        }
    }

    /// Moves the incremental cursor to the newest value among `records`, passing over
    /// timestamps beyond now + `max_cursor_skew_seconds` (counted and warned about).
    fn advance_cursor(&self, state: &mut FetchState, records: &[crate::Record]) {
        let latest =
            std::time::SystemTime::now() + Duration::from_secs(self.spec.max_cursor_skew_seconds);
        let old = state.cursor.clone().map(crate::Cursor);
        let newest = paging::newest_cursor(
            self.spec.incremental.as_ref(),
            records,
            old.as_ref(),
            latest,
        );
        if let Some(first) = newest.ignored.first() {
            metrics::counter!(m::CURSOR_IGNORED, "source" => self.opts.source_id.clone())
                .increment(newest.ignored.len() as u64);
            tracing::warn!(
                source = %self.opts.source_id,
                values = newest.ignored.len(),
                example = %first,
                max_cursor_skew_seconds = self.spec.max_cursor_skew_seconds,
                "incremental values beyond now + max_cursor_skew_seconds are not taken as the cursor (their records are kept); check the upstream's clock or data"
            );
        }
        if let Some(c) = newest.cursor {
            state.cursor = Some(c.0);
        }
    }

    /// Page `page` (not the first) failed past its retries: what is in hand is kept, and
    /// the walk resumes at `url` next time.
    pub(super) fn interrupted(
        &self,
        fetch: &mut Fetch,
        state: &mut FetchState,
        url: &Url,
        page: u32,
        e: &Error,
    ) {
        metrics::counter!(m::PAGE_FAILURES, "source" => self.opts.source_id.clone()).increment(1);
        tracing::warn!(
            source = %self.opts.source_id,
            page = page + 1,
            error = e as &dyn std::error::Error,
            "a page failed; the pages before it are emitted and the next poll resumes at it"
        );
        fetch
            .failures
            .push(self.redact(&format!("page {} of the walk: {e}", page + 1)));
        if matches!(e, Error::Refused(_)) {
            // Resuming there would be refused at every poll: start over, unconditionally.
            state.validators = None;
        } else {
            state.resume = Some(url.to_string());
        }
    }

    /// The first page's body failed after records of it were handed on: they are
    /// settled as usual, but the fetch state stays where it was (the next poll asks
    /// again from there), except that the dedup window remembers them, so a source
    /// with dedup does not send them twice.
    pub(super) fn cut_short(
        &self,
        fetch: &mut Fetch,
        state: &mut FetchState,
        old: &FetchState,
        e: &Error,
    ) {
        metrics::counter!(m::PAGE_FAILURES, "source" => self.opts.source_id.clone()).increment(1);
        tracing::warn!(
            source = %self.opts.source_id,
            error = e as &dyn std::error::Error,
            "a body failed half way; the chunks handed on before it settle, the rest is dropped and the next poll asks again"
        );
        fetch
            .failures
            .push(self.redact(&format!("the body failed half way: {e}")));
        let seen = std::mem::take(&mut state.seen);
        *state = FetchState {
            seen,
            ..old.clone()
        };
    }
}
