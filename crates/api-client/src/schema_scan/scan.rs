//! One pass over a record's JSON text against compiled checks. The grammar is read as
//! strictly as `serde_json` reads it (so `Valid` never passes text the full path would
//! refuse to parse): UTF-8, no control characters in strings, escapes checked (a
//! surrogate escape is `Unsure`), numbers by JSON's grammar, nesting at most
//! [`MAX_DEPTH`] (below `serde_json`'s 128), nothing after the value.

use std::borrow::Cow;

use super::bytes::{classify, exact_f64, Run};
use super::{ty, Checks, Node, Scalar, MAX_EXACT};

/// What the fast path says of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Passes the schema: `jsonschema` would say so too.
    Valid,
    /// Fails it (the full path gives the reasons).
    Invalid,
    /// Not decided here: the full path decides.
    Unsure,
}

/// Nesting beyond this is left to the full path.
const MAX_DEPTH: usize = 100;
/// `$ref` hops followed without reading anything (a cycle of references).
const MAX_HOPS: usize = 32;

/// `Ok(end)`: the value at a position passed and ends at `end`.
type Step = Result<usize, Verdict>;

/// UTF-8 is checked where it can fail: in strings, as each is read (the grammar admits
/// no other byte above 0x7F), not in a pass over the whole text first.
pub(crate) fn check(nodes: &[Node], text: &[u8]) -> Verdict {
    let sc = Scanner { nodes, s: text };
    let start = sc.ws(0);
    match sc.value(0, start, 0) {
        Ok(end) if sc.ws(end) == text.len() => Verdict::Valid,
        Ok(_) => Verdict::Unsure,
        Err(v) => v,
    }
}

struct Scanner<'a> {
    nodes: &'a [Node],
    s: &'a [u8],
}

const UNSURE: Verdict = Verdict::Unsure;
const INVALID: Verdict = Verdict::Invalid;

impl Scanner<'_> {
    fn at(&self, i: usize) -> Result<u8, Verdict> {
        self.s.get(i).copied().ok_or(UNSURE)
    }

    fn ws(&self, mut i: usize) -> usize {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(i) {
            i += 1;
        }
        i
    }

    fn value(&self, mut node: usize, pos: usize, depth: usize) -> Step {
        for _ in 0..MAX_HOPS {
            match &self.nodes[node] {
                Node::Any => return self.skip(pos, depth),
                Node::Never => return Err(INVALID),
                Node::Unsupported => return Err(UNSURE),
                Node::Alias(to) => node = *to,
                Node::Checks(c) => return self.checks(c, pos, depth),
            }
        }
        Err(UNSURE)
    }

    fn checks(&self, c: &Checks, pos: usize, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(UNSURE);
        }
        // The value is read once by its own keywords, or (a node of subschemas only)
        // by the first subschema that passes it; never again just to find its end.
        let mut end = if c.has_own {
            Some(self.own(c, pos, depth)?)
        } else {
            None
        };
        if let Some(r) = c.reference {
            end.get_or_insert(self.value(r, pos, depth)?);
        }
        for &a in &c.all_of {
            end.get_or_insert(self.value(a, pos, depth)?);
        }
        if !c.any_of.is_empty() {
            let mut verdict = INVALID;
            for &a in &c.any_of {
                match self.value(a, pos, depth) {
                    Ok(e) => {
                        end.get_or_insert(e);
                        verdict = Verdict::Valid;
                        break;
                    }
                    Err(UNSURE) => verdict = UNSURE,
                    Err(_) => {}
                }
            }
            if verdict != Verdict::Valid {
                return Err(verdict);
            }
        }
        if !c.one_of.is_empty() {
            let mut passed = 0;
            for &a in &c.one_of {
                match self.value(a, pos, depth) {
                    Ok(e) => {
                        end.get_or_insert(e);
                        passed += 1;
                    }
                    Err(UNSURE) => return Err(UNSURE),
                    Err(_) => {}
                }
            }
            if passed != 1 {
                return Err(INVALID);
            }
        }
        if let Some(n) = c.not {
            match self.value(n, pos, depth) {
                Ok(_) => return Err(INVALID),
                Err(UNSURE) => return Err(UNSURE),
                Err(_) => {}
            }
        }
        if let Some(cond) = c.if_ {
            let branch = match self.value(cond, pos, depth) {
                Ok(e) => {
                    end.get_or_insert(e);
                    c.then
                }
                Err(UNSURE) => return Err(UNSURE),
                Err(_) => c.else_,
            };
            if let Some(b) = branch {
                end.get_or_insert(self.value(b, pos, depth)?);
            }
        }
        match end {
            Some(e) => Ok(e),
            None => self.skip(pos, depth),
        }
    }

    /// The node's own keywords (not its subschemas) on the value at `pos`.
    fn own(&self, c: &Checks, pos: usize, depth: usize) -> Step {
        let allows = |t: u8| c.types.is_none_or(|m| m & t != 0);
        Ok(match self.at(pos)? {
            b'{' if allows(ty::OBJECT) && c.one_of_values.is_none() => {
                self.object(c, pos, depth)?
            }
            b'[' if allows(ty::ARRAY) && c.one_of_values.is_none() => self.array(c, pos, depth)?,
            b'"' if allows(ty::STRING) => self.string(c, pos)?,
            b't' | b'f' if allows(ty::BOOL) => {
                let (b, end) = self.literal(pos)?;
                allowed(c, &Scalar::Bool(b))?;
                end
            }
            b'n' if allows(ty::NULL) => {
                let (_, end) = self.literal(pos)?;
                allowed(c, &Scalar::Null)?;
                end
            }
            b'-' | b'0'..=b'9' => self.number(c, pos)?,
            b'{' | b'[' | b'"' | b't' | b'f' | b'n' => return Err(INVALID),
            _ => return Err(UNSURE),
        })
    }

    fn object(&self, c: &Checks, pos: usize, depth: usize) -> Step {
        let count_keys = c.min_properties.is_some() || c.max_properties.is_some();
        let mut names: Vec<Cow<'_, [u8]>> = Vec::new();
        let mut seen = 0u64;
        let mut failed: Vec<Cow<'_, [u8]>> = Vec::new();
        let mut i = self.ws(pos + 1);
        if self.at(i)? != b'}' {
            loop {
                if self.at(i)? != b'"' {
                    return Err(UNSURE);
                }
                let (kend, escaped) = self.string_span(i)?;
                let key = self.text(i, kend, escaped)?;
                i = self.ws(kend);
                if self.at(i)? != b':' {
                    return Err(UNSURE);
                }
                i = self.ws(i + 1);
                let node = match c.keys.find(&key) {
                    Some(k) => {
                        seen |= k.required_bit;
                        k.node.or(c.additional)
                    }
                    None => c.additional,
                };
                // A key may come again, and `serde_json` keeps the last: a failing
                // value decides only once the object ends without its key again.
                if failed.contains(&key) {
                    return Err(UNSURE);
                }
                let at = i;
                i = match node.map(|n| self.value(n, at, depth + 1)) {
                    None => self.skip(at, depth + 1)?,
                    Some(Ok(end)) => end,
                    Some(Err(INVALID)) => {
                        failed.push(key.clone());
                        self.skip(at, depth + 1)?
                    }
                    Some(Err(v)) => return Err(v),
                };
                if count_keys {
                    names.push(key);
                }
                i = self.ws(i);
                match self.at(i)? {
                    b',' => i = self.ws(i + 1),
                    b'}' => break,
                    _ => return Err(UNSURE),
                }
            }
        }
        if seen & c.required_mask != c.required_mask || !failed.is_empty() {
            return Err(INVALID);
        }
        if count_keys {
            names.sort_unstable();
            names.dedup();
            let n = names.len() as u64;
            if c.min_properties.is_some_and(|m| n < m) || c.max_properties.is_some_and(|m| n > m) {
                return Err(INVALID);
            }
        }
        Ok(i + 1)
    }

    fn array(&self, c: &Checks, pos: usize, depth: usize) -> Step {
        let mut n = 0u64;
        let mut i = self.ws(pos + 1);
        if self.at(i)? != b']' {
            loop {
                let node = c.prefix_items.get(n as usize).copied().or(c.items);
                i = match node {
                    Some(node) => self.value(node, i, depth + 1)?,
                    None => self.skip(i, depth + 1)?,
                };
                n += 1;
                i = self.ws(i);
                match self.at(i)? {
                    b',' => i = self.ws(i + 1),
                    b']' => break,
                    _ => return Err(UNSURE),
                }
            }
        }
        if c.min_items.is_some_and(|m| n < m) || c.max_items.is_some_and(|m| n > m) {
            return Err(INVALID);
        }
        Ok(i + 1)
    }

    fn string(&self, c: &Checks, pos: usize) -> Step {
        let (end, escaped) = self.string_span(pos)?;
        let needs_text = c.min_length.is_some()
            || c.max_length.is_some()
            || c.pattern.is_some()
            || c.one_of_values.is_some();
        if c.format_unsure {
            return Err(UNSURE);
        }
        if !needs_text {
            return Ok(end);
        }
        let text = self.text(pos, end, escaped)?;
        if c.min_length.is_some() || c.max_length.is_some() {
            // Characters: the bytes that do not continue one.
            let n = text.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64;
            if c.min_length.is_some_and(|m| n < m) || c.max_length.is_some_and(|m| n > m) {
                return Err(INVALID);
            }
        }
        if let Some(p) = &c.pattern {
            // ECMA and `regex` agree on printable ASCII; anything else is left over.
            if !text.iter().all(|b| (0x20..0x7f).contains(b)) {
                return Err(UNSURE);
            }
            if !p.is_match(&text) {
                return Err(INVALID);
            }
        }
        if let Some(values) = &c.one_of_values {
            let text: &[u8] = &text;
            if !values
                .iter()
                .any(|v| matches!(v, Scalar::Str(s) if s.as_bytes() == text))
            {
                return Err(INVALID);
            }
        }
        Ok(end)
    }

    /// A string's content (unescaped when it has escapes).
    /// (UTF-8: `string_span` checked it, and quotes are char boundaries.)
    fn text(&self, pos: usize, end: usize, escaped: bool) -> Result<Cow<'_, [u8]>, Verdict> {
        let raw = &self.s[pos..end];
        if escaped {
            serde_json::from_slice::<String>(raw)
                .map(|s| Cow::Owned(s.into_bytes()))
                .map_err(|_| UNSURE)
        } else {
            Ok(Cow::Borrowed(&raw[1..raw.len() - 1]))
        }
    }

    /// The end of the string at `pos` (after its closing quote) and whether it has
    /// escapes.
    fn string_span(&self, pos: usize) -> Result<(usize, bool), Verdict> {
        // Most strings (keys, codes, timestamps) are short and plain: byte by byte,
        // cheaper than setting up the vectorised searches. Anything else (an escape, a
        // byte that is not printable ASCII, a long string) takes the general loop.
        let from = pos + 1;
        let head = &self.s[from.min(self.s.len())..(from + 32).min(self.s.len())];
        if let Some(n) = head.iter().position(|&b| !PLAIN[usize::from(b)]) {
            if head[n] == b'"' {
                return Ok((from + n + 1, false));
            }
        }
        self.string_span_general(pos)
    }

    fn string_span_general(&self, pos: usize) -> Result<(usize, bool), Verdict> {
        let mut escaped = false;
        let mut i = pos + 1;
        loop {
            // Straight to the next quote or backslash; what lies between may hold no
            // control character and must be UTF-8 (a run between two ASCII bytes is
            // UTF-8 whenever the whole string is; both checks vectorised).
            let run = memchr::memchr2(b'"', b'\\', &self.s[i.min(self.s.len())..]).ok_or(UNSURE)?;
            let content = &self.s[i..i + run];
            match classify(content) {
                Run::Ascii => {}
                Run::Control => return Err(UNSURE),
                Run::Wide => {
                    if std::str::from_utf8(content).is_err() {
                        return Err(UNSURE);
                    }
                }
            }
            i += run;
            match self.at(i)? {
                b'"' => return Ok((i + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    match self.at(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            let hex = self.s.get(i + 2..i + 6).ok_or(UNSURE)?;
                            let hex = std::str::from_utf8(hex).map_err(|_| UNSURE)?;
                            let code = u16::from_str_radix(hex, 16).map_err(|_| UNSURE)?;
                            if (0xD800..0xE000).contains(&code) || hex.starts_with('+') {
                                return Err(UNSURE);
                            }
                            i += 6;
                        }
                        _ => return Err(UNSURE),
                    }
                }
                0..0x20 => return Err(UNSURE),
                _ => i += 1,
            }
        }
    }

    fn literal(&self, pos: usize) -> Result<(bool, usize), Verdict> {
        let rest = &self.s[pos..];
        for (word, b) in [(&b"true"[..], true), (b"false", false), (b"null", false)] {
            if rest.starts_with(word) {
                return Ok((b, pos + word.len()));
            }
        }
        Err(UNSURE)
    }

    fn number(&self, c: &Checks, pos: usize) -> Step {
        let s = self.s;
        let mut i = pos;
        let negative = s[i] == b'-';
        i += usize::from(negative);
        // The digits as one integer (exact while there are at most 15 of them) and the
        // power of ten it is scaled by, read as the grammar is checked.
        let mut mantissa = 0u64;
        let mut scale = 0i32;
        let mut digit =
            |b: u8| mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        let int_start = i;
        match self.at(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while let Some(&b @ b'0'..=b'9') = s.get(i) {
                    digit(b);
                    i += 1;
                }
            }
            _ => return Err(UNSURE),
        }
        let mut digits = i - int_start;
        let mut integral = true;
        if s.get(i) == Some(&b'.') {
            integral = false;
            i += 1;
            let from = i;
            while let Some(&b @ b'0'..=b'9') = s.get(i) {
                digit(b);
                i += 1;
            }
            if i == from {
                return Err(UNSURE);
            }
            digits += i - from;
            scale -= (i - from).min(1000) as i32;
        }
        let mut exp_digits = 0;
        if let Some(b'e' | b'E') = s.get(i) {
            integral = false;
            i += 1;
            let minus = s.get(i) == Some(&b'-');
            if let Some(b'+' | b'-') = s.get(i) {
                i += 1;
            }
            let from = i;
            let mut exp = 0i32;
            while let Some(&b @ b'0'..=b'9') = s.get(i) {
                exp = exp.saturating_mul(10).saturating_add(i32::from(b - b'0'));
                i += 1;
            }
            exp_digits = i - from;
            if exp_digits == 0 {
                return Err(UNSURE);
            }
            scale = scale.saturating_add(if minus { -exp } else { exp });
        }
        // Within these, every number is finite to both parsers (`1e400` is an error to
        // `serde_json`).
        if exp_digits > 2 || digits > 200 {
            return Err(UNSURE);
        }
        // Read as text only where a check needs it (numbers are ASCII).
        let text = || std::str::from_utf8(&s[pos..i]).map_err(|_| UNSURE);
        if let Some(types) = c.types {
            if types & ty::NUMBER == 0 && !integral {
                if types & ty::INTEGER == 0 {
                    return Err(INVALID);
                }
                let v: f64 = text()?.parse().map_err(|_| UNSURE)?;
                return Err(if v.fract() != 0.0 { INVALID } else { UNSURE });
            }
            if types & (ty::NUMBER | ty::INTEGER) == 0 {
                return Err(INVALID);
            }
        }
        if let Some(values) = &c.one_of_values {
            let has_int = values.iter().any(|v| matches!(v, Scalar::Int(_)));
            if !has_int {
                return Err(INVALID);
            }
            // `1.0` equals `1` to JSON Schema: only integer text is compared here.
            let n: i64 = match text()?.parse() {
                Ok(n) if integral && digits <= 15 => n,
                _ => return Err(UNSURE),
            };
            allowed(c, &Scalar::Int(n))?;
        }
        let bounded = c.minimum.is_some()
            || c.maximum.is_some()
            || c.exclusive_minimum.is_some()
            || c.exclusive_maximum.is_some();
        if bounded {
            // Both parsers round these alike: at most 15 significant digits, a small
            // exponent.
            if digits > 15 || exp_digits > 2 {
                return Err(UNSURE);
            }
            let v = match exact_f64(negative, mantissa, scale) {
                Some(v) => v,
                None => text()?.parse().map_err(|_| UNSURE)?,
            };
            if v.is_nan() || v.abs() >= MAX_EXACT {
                return Err(UNSURE);
            }
            let fails = c.minimum.is_some_and(|m| v < m)
                || c.maximum.is_some_and(|m| v > m)
                || c.exclusive_minimum.is_some_and(|m| v <= m)
                || c.exclusive_maximum.is_some_and(|m| v >= m);
            if fails {
                return Err(INVALID);
            }
        }
        Ok(i)
    }

    /// Reads one value without checks (the grammar still holds).
    fn skip(&self, pos: usize, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(UNSURE);
        }
        match self.at(pos)? {
            b'"' => self.string_span(pos).map(|(end, _)| end),
            b'{' => {
                let mut i = self.ws(pos + 1);
                if self.at(i)? == b'}' {
                    return Ok(i + 1);
                }
                loop {
                    if self.at(i)? != b'"' {
                        return Err(UNSURE);
                    }
                    i = self.ws(self.string_span(i)?.0);
                    if self.at(i)? != b':' {
                        return Err(UNSURE);
                    }
                    i = self.ws(self.skip(self.ws(i + 1), depth + 1)?);
                    match self.at(i)? {
                        b',' => i = self.ws(i + 1),
                        b'}' => return Ok(i + 1),
                        _ => return Err(UNSURE),
                    }
                }
            }
            b'[' => {
                let mut i = self.ws(pos + 1);
                if self.at(i)? == b']' {
                    return Ok(i + 1);
                }
                loop {
                    i = self.ws(self.skip(i, depth + 1)?);
                    match self.at(i)? {
                        b',' => i = self.ws(i + 1),
                        b']' => return Ok(i + 1),
                        _ => return Err(UNSURE),
                    }
                }
            }
            b't' | b'f' | b'n' => self.literal(pos).map(|(_, end)| end),
            b'-' | b'0'..=b'9' => self.number(&Checks::default(), pos),
            _ => Err(UNSURE),
        }
    }
}

/// Bytes a string holds as they are: printable ASCII but the quote and the backslash.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// `const`/`enum`: the value must be one of them.
fn allowed(c: &Checks, v: &Scalar) -> Result<(), Verdict> {
    match &c.one_of_values {
        Some(values) if !values.contains(v) => Err(INVALID),
        _ => Ok(()),
    }
}
