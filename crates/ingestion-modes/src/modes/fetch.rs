//! One poll of a source: the fetch, its panic caught, its records taken chunk by chunk
//! as the source hands them on (each added to its fetch in the cursor tracker first) and
//! emitted while the body is still arriving, so a large body passes in bounded memory.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use api_client::{Chunk, ChunkSender, FetchSeq};

use super::{ModeContext, Polled};
use crate::metrics as m;

/// What a poll emits of its records while the fetch is under way.
#[derive(Debug, Clone, Copy)]
pub(super) enum Flush {
    /// Nothing: the caller takes them all at the end ([`ModeContext::poll`]).
    Never,
    /// Every whole chunk as soon as it is complete (batch, real-time).
    WholeChunks,
    /// Everything held, once it reaches this many (continuous streaming's buffer).
    All(usize),
}

impl ModeContext {
    /// False once another worker has claimed the source. A source shared by workers is
    /// fetched only while this worker's claim is the newest: once another worker has
    /// claimed it, polling here would only fetch what the new owner fetches too. (The
    /// commit fence is what guarantees it; this stops the polling a fetch and a delivery
    /// sooner.) A store that cannot answer does not stop the fetch. A superseded claim
    /// never becomes the newest again (epochs only grow), so once fenced the store is
    /// not asked again.
    pub(super) async fn may_fetch(&self) -> bool {
        if self.fenced.load(Ordering::Relaxed) {
            return false;
        }
        if let Err(api_client::Error::Fenced(why)) = self.tracker.check_lease().await {
            self.fenced.store(true, Ordering::Relaxed);
            tracing::warn!(source = %self.source_id, %why, "claimed by another worker: no more fetches here");
            self.sink.fenced(&self.source_id, &why).await;
            return false;
        }
        true
    }

    /// One fetch, open in the cursor tracker as `seq`: each chunk the source hands on is
    /// added to the fetch and to `held` (emitted as `flush` says). `Ok(Some(cursor))`:
    /// the fetch ended, `cursor` guards its records; `Ok(None)`: it failed; `Err`: the
    /// sink is gone.
    pub(super) async fn fetch_once(
        &self,
        seq: FetchSeq,
        held: &mut Polled,
        flush: Flush,
        chunk_size: usize,
    ) -> Result<Option<Option<api_client::Cursor>>, crate::Error> {
        self.stats.polls.fetch_add(1, Ordering::Relaxed);
        self.meters.polls().increment(1);
        let from = self.tracker.fetch_from();
        // One chunk in the channel: while the sink waits, the source waits too (and an
        // HTTP source stops reading its body).
        let (out, mut chunks) = ChunkSender::channel(1);
        // Polled in this task (not a task spawned per poll), a panic caught: a panicking
        // connector fails this poll (visible, retried with backoff) instead of ending
        // the stream; what it handed on before is settled, and the fetch state stays
        // where it was. (Dropped if this poll is cancelled: a stopped stream makes no
        // more requests.)
        let mut fetching = Caught(Some(self.source.fetch_streaming(from.as_ref(), &out)));
        let mut count = 0usize;
        let outcome = loop {
            tokio::select! {
                biased;
                // (`out` lives here, so the channel stays open: every chunk comes.)
                Some(chunk) = chunks.recv() => {
                    count += chunk.len();
                    self.take(seq, chunk, held);
                    self.emit_held(held, flush, chunk_size, true).await?;
                }
                outcome = &mut fetching => break outcome,
            }
        };
        // A chunk handed on just before the fetch ended.
        while let Some(chunk) = chunks.try_recv() {
            count += chunk.len();
            self.take(seq, chunk, held);
            self.emit_held(held, flush, chunk_size, true).await?;
        }
        let fetch = match outcome {
            Ok(Ok(f)) => {
                self.consecutive_panics.store(0, Ordering::Relaxed);
                f
            }
            Ok(Err(e)) => {
                self.consecutive_panics.store(0, Ordering::Relaxed);
                self.failed(&e);
                return Ok(None);
            }
            Err(panic) => {
                let n = self.consecutive_panics.fetch_add(1, Ordering::Relaxed) + 1;
                self.failed(&api_client::Error::Io(format!(
                    "the source panicked: {panic}; polling again after a backoff"
                )));
                metrics::counter!(m::PANICS, "source" => self.source_id.to_string()).increment(1);
                // 1 s, 2 s, 4 s … 60 s: a connector that panics on every poll does not spin.
                let backoff = Duration::from_secs(1 << (n - 1).min(6)).min(Duration::from_secs(60));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.cancel.cancelled() => {}
                }
                return Ok(None);
            }
        };
        *self
            .stats
            .last_success
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(std::time::SystemTime::now());
        if !fetch.failures.is_empty() {
            // Part of the fetch failed (a page, an endpoint, a body cut short): its
            // records are emitted as usual and the failed part is asked for again next
            // poll; the stream shows it as failing meanwhile.
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            self.meters.errors().increment(1);
            let message = fetch.failures.join("; ");
            tracing::warn!(source = %self.source_id, failures = %message, "part of a fetch failed");
            *self
                .stats
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some((message, std::time::SystemTime::now()));
        }
        let rest = Chunk {
            records: fetch.records,
            rejected: fetch.rejected,
        };
        count += rest.len();
        // Taken, not emitted: the caller emits it once the fetch has ended in the
        // tracker, outside the stop's grace, so a fetch that ended is never abandoned.
        self.take(seq, rest, held);
        if count == 0 {
            self.stats.empty_polls.fetch_add(1, Ordering::Relaxed);
            self.meters.empty_polls().increment(1);
        }
        Ok(Some(fetch.next_cursor))
    }

    /// A chunk of fetch `seq` joins `held` (added to the fetch first, so none of its
    /// records can settle before it is counted).
    fn take(&self, seq: FetchSeq, chunk: Chunk, held: &mut Polled) {
        if chunk.is_empty() {
            return;
        }
        self.tracker.add(seq, chunk.len());
        self.stats
            .records
            .fetch_add(chunk.records.len() as u64, Ordering::Relaxed);
        self.stats
            .rejected
            .fetch_add(chunk.rejected.len() as u64, Ordering::Relaxed);
        self.meters.records().increment(chunk.records.len() as u64);
        held.0.extend(chunk.records.into_iter().map(|r| (seq, r)));
        held.1.extend(chunk.rejected.into_iter().map(|r| (seq, r)));
    }

    /// Emits what `flush` says of `held` (every reject with the first chunk);
    /// `fetching`: the fetch is still under way ([`crate::Sink::emit_while_fetching`]).
    pub(super) async fn emit_held(
        &self,
        held: &mut Polled,
        flush: Flush,
        chunk_size: usize,
        fetching: bool,
    ) -> Result<(), crate::Error> {
        let chunk_size = chunk_size.max(1);
        let n = match flush {
            Flush::Never => return Ok(()),
            Flush::WholeChunks => held.0.len() / chunk_size * chunk_size,
            Flush::All(at) if held.0.len() + held.1.len() >= at => held.0.len(),
            Flush::All(_) => return Ok(()),
        };
        if n == 0 && held.1.is_empty() {
            return Ok(());
        }
        let records: Vec<_> = held.0.drain(..n).collect();
        let rejected = std::mem::take(&mut held.1);
        self.emit_chunks(records, rejected, chunk_size, fetching)
            .await
    }
}

type Fetching<'a> =
    Pin<Box<dyn Future<Output = Result<api_client::Fetch, api_client::Error>> + Send + 'a>>;

/// A fetch whose panic is caught: `Err` holds the panic's message. The fetch is dropped
/// once it has ended or panicked, as a task's future is.
struct Caught<'a>(Option<Fetching<'a>>);

impl Future for Caught<'_> {
    type Output = Result<Result<api_client::Fetch, api_client::Error>, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fetch) = self.0.as_mut() else {
            return Poll::Pending; // (never polled again once ended)
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| fetch.as_mut().poll(cx)));
        let ended = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => Ok(result),
            Err(payload) => Err(super::panic_text(payload.as_ref())),
        };
        self.0 = None;
        Poll::Ready(ended)
    }
}
