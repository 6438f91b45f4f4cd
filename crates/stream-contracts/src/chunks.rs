//! Many small byte strings in shared chunks: each piece is a `Bytes` slice of a chunk, so
//! it costs no allocation of its own, and a chunk is freed with the last piece in it.
//! Chunks grow with what has been written (256 B, then about as much again as so far,
//! up to 64 KiB), so a writer that makes one small piece holds a few hundred bytes, not a
//! whole chunk — what a queue counts for a piece stays close to what it holds.

use bytes::{BufMut, Bytes, BytesMut};

/// Shared chunks for a batch's byte strings (records' text, message ids).
#[derive(Debug, Default)]
pub struct Chunks {
    buf: BytesMut,
    /// Bytes handed out so far (sets the next chunk's size).
    written: usize,
    /// The last piece's length (the guess for a piece written through a writer).
    last: usize,
}

impl Chunks {
    const MIN: usize = 256;
    const MAX: usize = 64 * 1024;

    /// Room for at least `n` more bytes in the piece being written.
    fn room(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            let chunk = self.written.clamp(Self::MIN, Self::MAX);
            self.buf.reserve(n.max(chunk));
        }
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
}
