//! A JSON text checked as it arrives: bytes are pushed in pieces of any size and checked
//! against JSON's grammar and UTF-8 (what `serde_json` accepts), and the values at
//! watched pointers are reported as byte ranges while the rest is still arriving. Only
//! the watched value in progress (and a key being read) is kept: a decoder holds one
//! record, never the body.

/// What a completed watched value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// An element of the array at the records' pointer (pointer 0).
    Element,
    /// The value at the records' pointer when it is not an array.
    Whole,
    /// The value at capture pointer `i` (1 and up).
    Capture(usize),
}

/// A completed watched value: `buf()[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) found: Found,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Whitespace outside strings within it (it needs compacting).
    pub(crate) spaced: bool,
}

/// Where and why the text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// Byte offset in the body.
    pub(crate) offset: u64,
    pub(crate) what: &'static str,
}

/// Deepest nesting accepted (the frame stack stays bounded).
const MAX_DEPTH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value must come (document start, after `:`, after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrFirst,
    /// After `{`: a key or `}`.
    ObjFirst,
    /// After `,` in an object: a key.
    Key,
    Colon,
    /// After a value in a container: `,` or the closing bracket.
    After,
    /// The root value is complete: whitespace only.
    Done,
    Str {
        key: bool,
    },
    Esc {
        key: bool,
    },
    Hex {
        key: bool,
        left: u8,
    },
    Num(Num),
    Lit {
        word: &'static [u8],
        i: u8,
    },
}

#[derive(Debug)]
struct Frame {
    array: bool,
    /// Elements begun so far (arrays).
    index: u64,
    /// The current member's key, read only when this container is on a watched path.
    key: Option<String>,
    /// Watched pointers whose tokens so far lead here.
    mask: u64,
    /// The array at the records' pointer: its elements are records.
    records: bool,
}

/// The push scanner. Feed bytes with [`JsonScan::feed`], take the completed spans, then
/// [`JsonScan::consume`] to let go of what is no longer needed.
#[derive(Debug)]
pub(crate) struct JsonScan {
    pointers: Vec<Vec<String>>,
    buf: Vec<u8>,
    /// Body offset of `buf[0]`.
    base: u64,
    pos: usize,
    /// UTF-8 checked up to here.
    utf8: usize,
    state: State,
    stack: Vec<Frame>,
    /// Watched values begun and not ended: (depth, what, body offset of the start,
    /// `spaces` then).
    open: Vec<(usize, Found, u64, u64)>,
    /// Whitespace bytes outside strings so far.
    spaces: u64,
    /// The key being read (body offset of its quote), when it is wanted.
    key_start: Option<u64>,
    /// Pointers already matched once (the first occurrence counts).
    matched: u64,
    spans: Vec<Span>,
    error: Option<ScanError>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

impl JsonScan {
    /// Watches `pointers` (tokens): the first is the records' pointer, the others are
    /// captured whole. At most 64.
    pub(crate) fn new(pointers: Vec<Vec<String>>) -> Self {
        debug_assert!(pointers.len() <= 64);
        Self {
            pointers,
            buf: Vec::new(),
            base: 0,
            pos: 0,
            utf8: 0,
            state: State::Value,
            stack: Vec::new(),
            open: Vec::new(),
            spaces: 0,
            key_start: None,
            matched: 0,
            spans: Vec::new(),
            error: None,
        }
    }

    /// The bytes held; spans index into them.
    pub(crate) fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes of the body seen so far.
    pub(crate) fn seen(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Spans completed since the last [`JsonScan::consume`].
    pub(crate) fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Stops watching an open capture (a decoder that no longer needs it); it is never
    /// reported.
    pub(crate) fn abandon(&mut self, capture: usize) {
        self.open.retain(|o| o.1 != Found::Capture(capture));
        self.matched |= 1 << capture;
    }

    /// How many bytes the oldest open capture holds (0 without one).
    pub(crate) fn open_capture_bytes(&self, capture: usize) -> u64 {
        self.open
            .iter()
            .find(|o| o.1 == Found::Capture(capture))
            .map_or(0, |o| self.seen() - o.2)
    }

    /// Scans `bytes`. The spans completed are in [`JsonScan::spans`] (also after an
    /// error: those before it).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), ScanError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(bytes);
        let (limit, bad) = match std::str::from_utf8(&self.buf[self.utf8..]) {
            Ok(_) => (self.buf.len(), false),
            Err(e) => (self.utf8 + e.valid_up_to(), e.error_len().is_some()),
        };
        self.utf8 = limit;
        let scanned = self.scan(limit);
        let result = match scanned {
            Err(e) => Err(e),
            Ok(()) if bad => Err(self.err(limit, "invalid UTF-8")),
            Ok(()) => Ok(()),
        };
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    /// The body ended: the root value must be complete.
    pub(crate) fn finish(&mut self) -> Result<(), ScanError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = if self.utf8 < self.buf.len() {
            Err(self.err(self.utf8, "invalid UTF-8 (cut short)"))
        } else {
            if let State::Num(Num::Zero | Num::Int | Num::Frac | Num::ExpDigits) = self.state {
                self.value_end(self.pos);
            }
            match self.state {
                State::Done => Ok(()),
                _ if self.seen() == 0 => Err(self.err(0, "empty body")),
                _ => Err(self.err(self.buf.len(), "the body ends inside the JSON value")),
            }
        };
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    /// Forgets the spans reported and the bytes no open value needs.
    pub(crate) fn consume(&mut self) {
        self.spans.clear();
        let keep = self
            .open
            .iter()
            .map(|o| o.2)
            .chain(self.key_start)
            .min()
            .map_or(self.pos, |at| (at - self.base) as usize)
            .min(self.pos);
        if keep > 0 {
            self.buf.drain(..keep);
            self.base += keep as u64;
            self.pos -= keep;
            self.utf8 -= keep;
        }
    }

    fn err(&self, at: usize, what: &'static str) -> ScanError {
        ScanError {
            offset: self.base + at as u64,
            what,
        }
    }

    fn scan(&mut self, limit: usize) -> Result<(), ScanError> {
        let mut i = self.pos;
        while i < limit {
            let b = self.buf[i];
            match self.state {
                State::Str { key } => {
                    let mut j = i;
                    while j < limit {
                        let c = self.buf[j];
                        if c == b'"' || c == b'\\' || c < 0x20 {
                            break;
                        }
                        j += 1;
                    }
                    if j == limit {
                        i = j;
                        break;
                    }
                    match self.buf[j] {
                        b'"' => {
                            i = j + 1;
                            self.string_end(key, i);
                        }
                        b'\\' => {
                            self.state = State::Esc { key };
                            i = j + 1;
                        }
                        _ => {
                            self.pos = j;
                            return Err(self.err(j, "control character in a string"));
                        }
                    }
                    continue;
                }
                State::Esc { key } => {
                    self.state = match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                            State::Str { key }
                        }
                        b'u' => State::Hex { key, left: 4 },
                        _ => return Err(self.err(i, "invalid escape")),
                    };
                }
                State::Hex { key, left } => {
                    if !b.is_ascii_hexdigit() {
                        return Err(self.err(i, "invalid \\u escape"));
                    }
                    self.state = match left {
                        1 => State::Str { key },
                        n => State::Hex { key, left: n - 1 },
                    };
                }
                State::Num(n) => {
                    let digit = b.is_ascii_digit();
                    let next = match (n, b) {
                        (Num::Minus, b'0') => Num::Zero,
                        (Num::Minus, b'1'..=b'9') => Num::Int,
                        (Num::Zero | Num::Int, b'.') => Num::Dot,
                        (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
                        (Num::Int, _) if digit => Num::Int,
                        (Num::Dot | Num::Frac, _) if digit => Num::Frac,
                        (Num::Exp, b'+' | b'-') => Num::ExpSign,
                        (Num::Exp | Num::ExpSign | Num::ExpDigits, _) if digit => Num::ExpDigits,
                        (Num::Zero | Num::Int | Num::Frac | Num::ExpDigits, _) => {
                            // The number ended before this byte, which is scanned next.
                            self.value_end(i);
                            continue;
                        }
                        _ => return Err(self.err(i, "invalid number")),
                    };
                    self.state = State::Num(next);
                    i += 1;
                    if matches!(next, Num::Int | Num::Frac | Num::ExpDigits) {
                        while i < limit && self.buf[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                    continue;
                }
                State::Lit { word, i: k } => {
                    if b != word[k as usize] {
                        return Err(self.err(i, "invalid literal"));
                    }
                    if k as usize + 1 == word.len() {
                        self.value_end(i + 1);
                    } else {
                        self.state = State::Lit { word, i: k + 1 };
                    }
                }
                _ if is_ws(b) => self.spaces += 1,
                State::ArrFirst if b == b']' => self.close(i)?,
                State::Value | State::ArrFirst => {
                    let next = match b {
                        b'{' => State::ObjFirst,
                        b'[' => State::ArrFirst,
                        b'"' => State::Str { key: false },
                        b'-' => State::Num(Num::Minus),
                        b'0' => State::Num(Num::Zero),
                        b'1'..=b'9' => State::Num(Num::Int),
                        b't' => State::Lit {
                            word: b"true",
                            i: 1,
                        },
                        b'f' => State::Lit {
                            word: b"false",
                            i: 1,
                        },
                        b'n' => State::Lit {
                            word: b"null",
                            i: 1,
                        },
                        _ => return Err(self.err(i, "expected a value")),
                    };
                    self.begin_value(i, b)?;
                    self.state = next;
                }
                State::ObjFirst | State::Key => {
                    if b == b'"' {
                        if self.stack.last().is_some_and(|f| f.mask != 0) {
                            self.key_start = Some(self.base + i as u64);
                        }
                        self.state = State::Str { key: true };
                    } else if b == b'}' && self.state == State::ObjFirst {
                        self.close(i)?;
                    } else {
                        return Err(self.err(i, "expected a key"));
                    }
                }
                State::Colon => {
                    if b != b':' {
                        return Err(self.err(i, "expected `:`"));
                    }
                    self.state = State::Value;
                }
                State::After => {
                    let array = self.stack.last().is_some_and(|f| f.array);
                    match b {
                        b',' if array => self.state = State::Value,
                        b',' => self.state = State::Key,
                        b']' if array => self.close(i)?,
                        b'}' if !array => self.close(i)?,
                        _ => return Err(self.err(i, "expected `,` or a closing bracket")),
                    }
                }
                State::Done => return Err(self.err(i, "trailing characters after the JSON value")),
            }
            i += 1;
        }
        self.pos = i;
        Ok(())
    }

    /// A value starts at `buf[i]` (its first byte `b`).
    fn begin_value(&mut self, i: usize, b: u8) -> Result<(), ScanError> {
        let at = self.base + i as u64;
        let depth = self.stack.len();
        let (mut exact, mut deeper) = (0u64, 0u64);
        match self.stack.last_mut() {
            None => {
                for (n, p) in self.pointers.iter().enumerate() {
                    if p.is_empty() {
                        exact |= 1 << n;
                    } else {
                        deeper |= 1 << n;
                    }
                }
            }
            Some(f) => {
                let index = f.index;
                f.index += 1;
                if f.records {
                    self.open.push((depth, Found::Element, at, self.spaces));
                }
                let mut mask = f.mask;
                while mask != 0 {
                    let n = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let p = &self.pointers[n];
                    let token = &p[depth - 1];
                    let hit = if f.array {
                        token.parse::<u64>().is_ok_and(|t| t == index)
                    } else {
                        f.key.as_deref() == Some(token.as_str())
                    };
                    if hit && p.len() == depth {
                        exact |= 1 << n;
                    } else if hit {
                        deeper |= 1 << n;
                    }
                }
            }
        }
        exact &= !self.matched;
        self.matched |= exact;
        let mut records = false;
        let mut e = exact;
        while e != 0 {
            let n = e.trailing_zeros() as usize;
            e &= e - 1;
            match n {
                0 if b == b'[' => records = true,
                0 => self.open.push((depth, Found::Whole, at, self.spaces)),
                n => self.open.push((depth, Found::Capture(n), at, self.spaces)),
            }
        }
        if b == b'{' || b == b'[' {
            if depth >= MAX_DEPTH {
                return Err(self.err(i, "nested deeper than 1024 levels"));
            }
            self.stack.push(Frame {
                array: b == b'[',
                index: 0,
                key: None,
                mask: deeper & !self.matched,
                records,
            });
        }
        Ok(())
    }

    /// A string ended just before `end`.
    fn string_end(&mut self, key: bool, end: usize) {
        if !key {
            self.value_end(end);
            return;
        }
        self.state = State::Colon;
        if let Some(start) = self.key_start.take() {
            let text = &self.buf[(start - self.base) as usize..end];
            let name = serde_json::from_slice::<String>(text).ok();
            if let Some(f) = self.stack.last_mut() {
                f.key = name;
            }
        }
    }

    /// The container open at the top closes with `buf[i]`.
    fn close(&mut self, i: usize) -> Result<(), ScanError> {
        self.stack.pop();
        self.value_end(i + 1);
        Ok(())
    }

    /// A value ended just before `buf[end]`.
    fn value_end(&mut self, end: usize) {
        let depth = self.stack.len();
        while let Some(&(d, found, start, spaces)) = self.open.last() {
            if d != depth {
                break;
            }
            self.open.pop();
            self.spans.push(Span {
                found,
                start: (start - self.base) as usize,
                end,
                spaced: self.spaces != spaces,
            });
        }
        self.state = if self.stack.is_empty() {
            State::Done
        } else {
            State::After
        };
    }
}
