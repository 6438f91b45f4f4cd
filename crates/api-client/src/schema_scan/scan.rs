//! One pass over a record's JSON text against compiled checks. The grammar is read as
//! strictly as `serde_json` reads it (so `Valid` never passes text the full path would
//! refuse to parse): UTF-8, no control characters in strings, escapes checked (a
//! surrogate escape is `Unsure`), numbers by JSON's grammar, nesting at most
//! [`MAX_DEPTH`] (below `serde_json`'s 128), nothing after the value.

use std::borrow::Cow;

use super::{key_tag, ty, Checks, Node, Scalar, MAX_EXACT};

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

pub(crate) fn check(nodes: &[Node], text: &[u8]) -> Verdict {
    if std::str::from_utf8(text).is_err() {
        return Verdict::Unsure;
    }
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
                let tag = key_tag(&key);
                let found = c
                    .keys
                    .binary_search_by(|k| k.tag.cmp(&tag).then_with(|| k.name.as_bytes().cmp(&key)))
                    .ok();
                let node = match found.map(|f| &c.keys[f]) {
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
    /// (UTF-8: the whole text was checked, and quotes are char boundaries.)
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
        let mut escaped = false;
        let mut i = pos + 1;
        loop {
            // Straight to the next quote or backslash; what lies between may hold no
            // control character (both checks vectorised).
            let run = memchr::memchr2(b'"', b'\\', &self.s[i.min(self.s.len())..]).ok_or(UNSURE)?;
            if has_control(&self.s[i..i + run]) {
                return Err(UNSURE);
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
        if s[i] == b'-' {
            i += 1;
        }
        let int_start = i;
        match self.at(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while s.get(i).is_some_and(u8::is_ascii_digit) {
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
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == from {
                return Err(UNSURE);
            }
            digits += i - from;
        }
        let mut exp_digits = 0;
        if let Some(b'e' | b'E') = s.get(i) {
            integral = false;
            i += 1;
            if let Some(b'+' | b'-') = s.get(i) {
                i += 1;
            }
            let from = i;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            exp_digits = i - from;
            if exp_digits == 0 {
                return Err(UNSURE);
            }
        }
        // Within these, every number is finite to both parsers (`1e400` is an error to
        // `serde_json`).
        if exp_digits > 2 || digits > 200 {
            return Err(UNSURE);
        }
        let text = std::str::from_utf8(&s[pos..i]).map_err(|_| UNSURE)?;
        if let Some(types) = c.types {
            if types & ty::NUMBER == 0 && !integral {
                if types & ty::INTEGER == 0 {
                    return Err(INVALID);
                }
                let v: f64 = text.parse().map_err(|_| UNSURE)?;
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
            let n: i64 = match text.parse() {
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
            let v: f64 = text.parse().map_err(|_| UNSURE)?;
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

/// Whether `bytes` holds a byte below 0x20: the least byte of each 32, a reduction the
/// compiler vectorises (a short-circuiting `any` it does not; on a 2 KB string that
/// was most of a record's check).
fn has_control(bytes: &[u8]) -> bool {
    bytes
        .chunks(32)
        .any(|c| c.iter().fold(u8::MAX, |m, &b| m.min(b)) < 0x20)
}

/// `const`/`enum`: the value must be one of them.
fn allowed(c: &Checks, v: &Scalar) -> Result<(), Verdict> {
    match &c.one_of_values {
        Some(values) if !values.contains(v) => Err(INVALID),
        _ => Ok(()),
    }
}
