//! Many small byte strings in shared chunks: each piece is a `Bytes` slice of a chunk, so
//! it costs no allocation of its own, and a chunk is freed with the last piece in it.
//! Chunks grow with what has been written (256 B, then about as much again as so far,
//! up to 64 KiB), so a writer that makes one small piece holds a few hundred bytes, not a
//! whole chunk — what a queue counts for a piece stays close to what it holds.
//!
//! Full-size chunks are reused across writers and threads. A writer done with one hands
//! it to the spares; the next writer that needs one takes a spare whose pieces have all
//! been dropped. Freed the ordinary way, a chunk goes back to the allocator arena of the
//! thread that wrote it, and glibc reuses an arena's memory only for that thread's
//! allocations: with records written on one tokio worker and dropped on another, each
//! worker's arena grew to hold most of a full queue (BENCHMARKS.md, issue #25).
//! [`release_spare_chunks`], called once a second (the stream manager does; a program
//! using this crate alone calls it now and then), gives the spares no piece uses any
//! more back to the allocator, beyond as many as writers took since the last call.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};

/// Shared chunks for a batch's byte strings (records' text, message ids).
#[derive(Debug, Default)]
pub struct Chunks {
    buf: BytesMut,
    /// Bytes handed out so far (sets the next chunk's size).
    written: usize,
    /// The last piece's length (the guess for a piece written through a writer).
    last: usize,
    /// Where `buf`'s chunk ends, when it is a full-size chunk that goes to the spares
    /// when this writer is done with it.
    full: Option<usize>,
}

/// Full-size chunks writers are done with. A spare still holding pieces costs the list a
/// handle, not memory: those pieces would hold the chunk anyway.
#[derive(Debug)]
struct Spares(Mutex<Pool>);

#[derive(Debug)]
struct Pool {
    /// Spares in the order writers were done with them, most of them still in use.
    retired: VecDeque<BytesMut>,
    /// Spares found free by [`Spares::release`], taken before any other.
    free: Vec<BytesMut>,
    /// Chunks handed to writers since the last release: how many free ones to keep.
    taken: usize,
}

/// The process's spares, shared by every writer.
static SPARES: Spares = Spares::new();

/// How many retired spares are tracked: a gibibyte of full chunks. Past it the oldest is
/// let go (freed with its last piece, as any chunk was before spares).
const TRACKED: usize = 16 * 1024;

/// Retired spares looked at for a free one (one piece kept for long pins its chunk; the
/// look-up moves it to the back instead of stopping at it).
const PROBE: usize = 4;

/// Free spares kept through a quiet second.
const RESERVE: usize = 4;

impl Spares {
    const fn new() -> Self {
        Self(Mutex::new(Pool {
            retired: VecDeque::new(),
            free: Vec::new(),
            taken: 0,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `done` to the spares (when there is one) and returns an empty full-size
    /// chunk: a free spare, or a new one.
    fn swap(&self, done: Option<BytesMut>) -> BytesMut {
        let mut pool = self.lock();
        pool.taken += 1;
        let mut found = pool.free.pop();
        for _ in 0..PROBE.min(pool.retired.len()) {
            if found.is_some() {
                break;
            }
            let Some(mut c) = pool.retired.pop_front() else {
                break;
            };
            if c.try_reclaim(Chunks::MAX) {
                found = Some(c);
            } else {
                pool.retired.push_back(c);
            }
        }
        if let Some(done) = done {
            pool.retire(done);
        }
        drop(pool);
        found.unwrap_or_else(|| BytesMut::with_capacity(Chunks::MAX))
    }

    fn retire(&self, done: BytesMut) {
        self.lock().retire(done);
    }

    /// See [`Pool::release`].
    fn release(&self) -> (usize, usize) {
        self.lock().release()
    }
}

impl Pool {
    /// Moves the retired spares no piece uses any more to the free ones, and keeps as
    /// many free ones as writers took since the last release (at least [`RESERVE`]): the
    /// rest goes back to the allocator. How many spares are left, retired and free.
    fn release(&mut self) -> (usize, usize) {
        let Self {
            retired,
            free,
            taken,
        } = self;
        retired.retain_mut(|c| {
            if c.try_reclaim(Chunks::MAX) {
                free.push(std::mem::take(c));
                false
            } else {
                true // pieces still use it
            }
        });
        free.truncate((*taken).max(RESERVE));
        *taken = 0;
        (retired.len(), free.len())
    }

    fn retire(&mut self, done: BytesMut) {
        if self.retired.len() >= TRACKED {
            self.retired.pop_front();
        }
        self.retired.push_back(done);
    }
}

/// Gives back to the allocator the spare chunks no piece uses any more, beyond what
/// writers took in the last call's time (at least a few): a spare becomes free when its
/// last record settles, which may be long after the last writer looked. Cheap (one
/// atomic read per spare); the stream manager calls it once a second.
pub fn release_spare_chunks() {
    SPARES.release();
}

impl Chunks {
    const MIN: usize = 256;
    const MAX: usize = 64 * 1024;

    /// Room for at least `n` more bytes in the piece being written.
    fn room(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() >= n {
            return;
        }
        let chunk = self.written.clamp(Self::MIN, Self::MAX);
        if chunk == Self::MAX && n <= Self::MAX && self.buf.is_empty() {
            let done = self.take_full();
            self.buf = SPARES.swap(done);
            self.full = Some(self.buf.as_ptr() as usize + self.buf.capacity());
        } else {
            self.buf.reserve(n.max(chunk));
            self.full = None;
        }
    }

    /// `buf`, when it is still the full-size chunk it started as and holds no piece half
    /// written. A piece that outgrew the chunk grew it (in place or elsewhere), so its
    /// end moved; the spares take full-size chunks only.
    fn take_full(&mut self) -> Option<BytesMut> {
        let end = self.full.take()?;
        let at = self.buf.as_ptr() as usize + self.buf.capacity();
        (at == end && self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }

    /// `bytes` as a shared piece.
    pub fn copy(&mut self, bytes: &[u8]) -> Bytes {
        self.room(bytes.len());
        self.buf.extend_from_slice(bytes);
        self.take()
    }

    /// The buffer to append the next piece to, with room for `n` bytes (it grows past
    /// that if needed); [`Chunks::take`] ends the piece.
    pub fn buf(&mut self, n: usize) -> &mut BytesMut {
        self.room(n);
        &mut self.buf
    }

    /// A writer appending to the next piece, with room for about as much as the last
    /// piece took; [`Chunks::take`] ends the piece.
    pub fn writer(&mut self) -> impl std::io::Write + '_ {
        let guess = self.last + self.last / 8 + 16;
        self.buf(guess).writer()
    }

    /// The piece written since the last `take`/`copy`.
    pub fn take(&mut self) -> Bytes {
        let piece = self.buf.split().freeze();
        self.written += piece.len();
        self.last = piece.len();
        piece
    }

    /// Forgets a piece half written (one that failed to serialize).
    pub fn discard(&mut self) {
        self.buf.clear();
    }
}

impl Drop for Chunks {
    /// The last full-size chunk goes to the spares too.
    fn drop(&mut self) {
        if let Some(done) = self.take_full() {
            SPARES.retire(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_share_chunks_that_grow_with_what_was_written() {
        let mut c = Chunks::default();
        let a = c.copy(b"first");
        std::io::Write::write_all(&mut c.writer(), b"half").unwrap();
        c.discard();
        std::io::Write::write_all(&mut c.writer(), b"{\"x\":1}").unwrap();
        let b = c.take();
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"{\"x\":1}"[..]));
        // a and b share one chunk: no allocation of their own.
        assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, a.len());
        // One small piece holds a small chunk, not 64 KiB.
        assert!(c.buf.capacity() < 2 * Chunks::MIN, "{}", c.buf.capacity());
        let big = vec![7u8; 3 * Chunks::MAX];
        assert_eq!(c.copy(&big).len(), big.len());
        // After that, chunks are as large as allowed.
        c.copy(b"x");
        assert!(c.buf.capacity() >= Chunks::MAX - 1, "{}", c.buf.capacity());
    }
    #[test]
    fn a_spare_is_taken_again_only_once_its_pieces_are_gone() {
        let spares = Spares::new();
        let mut a = spares.swap(None);
        let a_at = a.as_ptr() as usize;
        a.extend_from_slice(&[1; 1000]);
        let piece = a.split().freeze();
        // Done with `a` while its piece is still queued: the next chunk is another one.
        let mut b = spares.swap(Some(a));
        assert_ne!(b.as_ptr() as usize, a_at);
        b.extend_from_slice(&[2; Chunks::MAX]);
        assert_eq!(&piece[..], &[1; 1000][..]);
        // Once the piece is gone, `a` is the next writer's, whole.
        drop(piece);
        let c = spares.swap(None);
        assert_eq!((c.as_ptr() as usize, c.capacity()), (a_at, Chunks::MAX));
    }

    #[test]
    fn a_spare_pinned_by_one_piece_is_passed_over_not_waited_for() {
        let spares = Spares::new();
        let mut pinned = spares.swap(None);
        pinned.extend_from_slice(b"kept for long");
        let piece = pinned.split().freeze();
        spares.retire(pinned);
        let free = spares.swap(None);
        let free_at = free.as_ptr() as usize;
        spares.retire(free);
        // The pinned spare is first in line; the free one behind it is found.
        assert_eq!(spares.swap(None).as_ptr() as usize, free_at);
        assert_eq!(&piece[..], b"kept for long");
    }

    #[test]
    fn release_frees_what_no_piece_uses_beyond_a_reserve_and_keeps_the_rest() {
        let spares = Spares::new();
        for _ in 0..RESERVE + 3 {
            spares.retire(BytesMut::with_capacity(Chunks::MAX));
        }
        let mut used = BytesMut::with_capacity(Chunks::MAX);
        used.extend_from_slice(b"queued");
        let piece = used.split().freeze();
        spares.retire(used);
        assert_eq!(spares.release(), (1, RESERVE));
        drop(piece);
        assert_eq!(spares.release(), (0, RESERVE));
        // A busy second keeps as many free spares as writers took in it; a quiet one
        // lets them go.
        let taken: Vec<_> = (0..RESERVE + 6).map(|_| spares.swap(None)).collect();
        taken.into_iter().for_each(|c| spares.retire(c));
        assert_eq!(spares.release(), (0, RESERVE + 6));
        assert_eq!(spares.release(), (0, RESERVE));
    }

    #[test]
    fn a_chunk_a_piece_outgrew_is_not_a_spare() {
        let mut c = Chunks::default();
        c.copy(&vec![0u8; 2 * Chunks::MAX]);
        let _x = c.copy(b"x"); // a full-size chunk now, shared with this piece
        assert!(c.full.is_some());
        // Half a piece written: not a spare (its bytes would never be reclaimed).
        c.buf(10).extend_from_slice(b"half");
        assert!(c.take_full().is_none());
        c.discard();
        c.full = Some(c.buf.as_ptr() as usize + c.buf.capacity());
        let big = vec![b'a'; 3 * Chunks::MAX];
        std::io::Write::write_all(&mut c.writer(), &big).unwrap();
        assert_eq!(c.take().len(), big.len());
        assert!(c.take_full().is_none());
    }

    #[test]
    fn writers_on_many_threads_share_chunks_and_never_touch_a_live_piece() {
        let kept: Vec<(u8, Bytes)> = std::thread::scope(|s| {
            let writers: Vec<_> = (0..4u8)
                .map(|w| {
                    s.spawn(move || {
                        let mut kept = Vec::new();
                        for round in 0..8u8 {
                            let mut c = Chunks::default();
                            let fill = w.wrapping_mul(31).wrapping_add(round);
                            for i in 0..200 {
                                let piece = c.copy(&[fill; 1500]);
                                if i % 50 == 0 {
                                    kept.push((fill, piece));
                                }
                            }
                            release_spare_chunks();
                        }
                        kept
                    })
                })
                .collect();
            writers
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(kept.len(), 4 * 8 * 4);
        for (fill, piece) in kept {
            assert!(
                piece.iter().all(|b| *b == fill),
                "a live piece was written over"
            );
        }
    }
}
