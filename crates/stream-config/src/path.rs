//! Key paths (`sources.noaa.ingestion.mode`, `routing.content_rules[2].topic`) and the
//! index from a path to its line and column in the source text.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::error::Location;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A key path into the configuration tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct KeyPath(pub(crate) Vec<Seg>);

impl KeyPath {
    pub(crate) fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    pub(crate) fn index(&self, index: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }

    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment;
        KeyPath(
            path.iter()
                .filter_map(|s| match s {
                    Segment::Seq { index } => Some(Seg::Index(*index)),
                    Segment::Map { key } => Some(Seg::Key(key.clone())),
                    Segment::Enum { .. } | Segment::Unknown => None,
                    // `Segment` is non-exhaustive upstream.
                    #[allow(unreachable_patterns)]
                    _ => None,
                })
                .collect(),
        )
    }

    pub(crate) fn parent(&self) -> KeyPath {
        let mut segs = self.0.clone();
        segs.pop();
        KeyPath(segs)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// Where each key path starts in the source text (the key for map entries, the item for
/// sequence elements).
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    spans: HashMap<KeyPath, Location>,
}

impl SpanIndex {
    /// Indexes YAML (and so JSON) text. Text that does not parse yields an empty index:
    /// the parse error itself is reported elsewhere.
    pub(crate) fn build(text: &str) -> SpanIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return SpanIndex::default();
        }
        SpanIndex {
            spans: builder.spans,
        }
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub(crate) fn locate(&self, path: &KeyPath) -> Option<Location> {
        let mut p = path.clone();
        loop {
            if let Some(loc) = self.spans.get(&p) {
                return Some(*loc);
            }
            p.0.pop()?;
        }
    }
}

#[derive(Debug)]
enum Frame {
    Map {
        path: KeyPath,
        key: Option<(String, Marker)>,
    },
    Seq {
        path: KeyPath,
        next: usize,
    },
    /// A complex (non-scalar) mapping key: ignored, depth counted.
    ComplexKey(usize),
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    spans: HashMap<KeyPath, Location>,
}

fn location(mark: Marker) -> Location {
    Location {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

impl Builder {
    /// Called for every node in value position: returns the node's path and records it.
    fn enter_value(&mut self, mark: Marker) -> Option<KeyPath> {
        match self.stack.last_mut() {
            None => Some(KeyPath::default()),
            Some(Frame::Map { path, key }) => {
                let (k, key_mark) = key.take()?;
                let p = path.key(&k);
                self.spans.insert(p.clone(), location(key_mark));
                Some(p)
            }
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                self.spans.insert(p.clone(), location(mark));
                Some(p)
            }
            Some(Frame::ComplexKey(_)) => None,
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if let Some(Frame::ComplexKey(depth)) = self.stack.last_mut() {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => *depth += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    *depth -= 1;
                    if *depth == 0 {
                        self.stack.pop();
                        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                            *key = Some(("?".to_owned(), mark));
                        }
                    }
                }
                _ => {}
            }
            return;
        }
        match ev {
            Event::Scalar(value, ..) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some((value, mark));
                    }
                } else {
                    self.enter_value(mark);
                }
            }
            Event::Alias(_) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(("*".to_owned(), mark));
                    }
                } else {
                    self.enter_value(mark);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if self.expecting_key() {
                    self.stack.push(Frame::ComplexKey(1));
                    return;
                }
                let path = self.enter_value(mark).unwrap_or_default();
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map { path, key: None },
                    _ => Frame::Seq { path, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> KeyPath {
        KeyPath(
            s.iter()
                .map(|p| match p.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key((*p).to_owned()),
                })
                .collect(),
        )
    }

    #[test]
    fn yaml_positions_are_one_based_and_point_at_keys() {
        let text = "a:\n  b: 1\n  list:\n    - x: 2\n    - y\nc: 3\n";
        let idx = SpanIndex::build(text);
        assert_eq!(
            idx.locate(&path(&["a"])),
            Some(Location { line: 1, column: 1 })
        );
        assert_eq!(
            idx.locate(&path(&["a", "b"])),
            Some(Location { line: 2, column: 3 })
        );
        assert_eq!(
            idx.locate(&path(&["a", "list", "0", "x"])),
            Some(Location { line: 4, column: 7 })
        );
        assert_eq!(
            idx.locate(&path(&["a", "list", "1"])).map(|l| l.line),
            Some(5)
        );
        assert_eq!(
            idx.locate(&path(&["c"])),
            Some(Location { line: 6, column: 1 })
        );
        // Missing leaf: nearest ancestor.
        assert_eq!(idx.locate(&path(&["a", "zzz"])).map(|l| l.line), Some(1));
    }

    #[test]
    fn json_positions() {
        let text = "{\n  \"kafka\": {\n    \"batch_size\": \"x\"\n  }\n}\n";
        let idx = SpanIndex::build(text);
        assert_eq!(
            idx.locate(&path(&["kafka", "batch_size"])),
            Some(Location { line: 3, column: 5 })
        );
    }

    #[test]
    fn display_uses_dots_and_brackets() {
        assert_eq!(
            path(&["routing", "content_rules", "2", "topic"]).to_string(),
            "routing.content_rules[2].topic"
        );
    }
}
