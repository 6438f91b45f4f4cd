//! The fast accept path of data contracts: a JSON Schema compiled into checks that run
//! on the record's text in one pass, building nothing. It answers `Valid`, `Invalid` or
//! `Unsure`, and only `Valid` is acted on: any other answer (and every record of a schema
//! it cannot compile) goes through the full path — parse into a `serde_json::Value`,
//! `jsonschema`'s validator, its messages — so the outcome and the dead letter's details
//! are always `jsonschema`'s. What it supports it checks exactly as `jsonschema` 0.41
//! does; anything else (an unknown keyword, `format` where draft 7 asserts it, a number
//! too long to compare as both parsers would, a pattern on a string `regex` and ECMA
//! could read differently) makes that value `Unsure`. The differential tests in
//! `tests.rs` hold it to that.

mod bytes;
mod keys;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use keys::{Key, KeyTable};

use regex::Regex;
use serde_json::Value;

pub use scan::Verdict;

/// JSON types as a bit set (`type`).
pub(crate) mod ty {
    pub(crate) const NULL: u8 = 1;
    pub(crate) const BOOL: u8 = 2;
    pub(crate) const OBJECT: u8 = 4;
    pub(crate) const ARRAY: u8 = 8;
    pub(crate) const NUMBER: u8 = 16;
    pub(crate) const INTEGER: u8 = 32;
    pub(crate) const STRING: u8 = 64;
}

/// A scalar of `const` / `enum`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Str(Box<str>),
    /// An integer within ±2^53 (exact as f64 too).
    Int(i64),
}

/// One compiled (sub)schema.
#[derive(Debug)]
pub(crate) enum Node {
    /// `true` or `{}`: anything.
    Any,
    /// `false`: nothing.
    Never,
    /// Something this path does not check: every value is `Unsure`.
    Unsupported,
    /// Draft 7's `$ref`, whose siblings are ignored: the target's checks.
    Alias(usize),
    Checks(Box<Checks>),
}

/// The keywords of one schema object this path checks.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    /// Any keyword below that reads the value itself (not a subschema).
    pub has_own: bool,
    pub types: Option<u8>,
    /// Property and required names.
    pub keys: KeyTable,
    pub required_mask: u64,
    pub additional: Option<usize>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub prefix_items: Vec<usize>,
    pub items: Option<usize>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub pattern: Option<Pattern>,
    /// Draft 7 asserts `format`: a string is `Unsure`.
    pub format_unsure: bool,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: Option<f64>,
    pub exclusive_maximum: Option<f64>,
    /// `const` (one) or `enum` (several).
    pub one_of_values: Option<Vec<Scalar>>,
    pub reference: Option<usize>,
    pub all_of: Vec<usize>,
    pub any_of: Vec<usize>,
    pub one_of: Vec<usize>,
    pub not: Option<usize>,
    /// `if` / `then` / `else`.
    pub if_: Option<usize>,
    pub then: Option<usize>,
    pub else_: Option<usize>,
}

/// A `pattern`: `^` and plain text is a prefix test; anything else a `regex`.
#[derive(Debug)]
pub(crate) enum Pattern {
    Prefix(Box<str>),
    Regex(Regex),
}

impl Pattern {
    fn new(p: &str) -> Option<Self> {
        const META: &[char] = &[
            '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
        ];
        match p.strip_prefix('^') {
            Some(lit) if !lit.contains(META) => Some(Pattern::Prefix(lit.into())),
            _ => Regex::new(p).ok().map(Pattern::Regex),
        }
    }

    /// On printable ASCII (the caller's check).
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        match self {
            Pattern::Prefix(p) => text.starts_with(p.as_bytes()),
            Pattern::Regex(re) => std::str::from_utf8(text).is_ok_and(|t| re.is_match(t)),
        }
    }
}

/// A key's length and first seven bytes as one integer (the whole key when it is
/// shorter than eight bytes).
#[inline]
pub(crate) fn key_tag(name: &[u8]) -> u64 {
    let len = name.len().min(255) as u64;
    let head = match name.first_chunk::<8>() {
        Some(eight) => u64::from_be_bytes(*eight) & !0xFF,
        None => {
            let mut t = [0u8; 8];
            t[..name.len()].copy_from_slice(name);
            u64::from_be_bytes(t)
        }
    };
    head | len
}

/// A schema compiled for the fast path.
#[derive(Debug)]
pub struct ScanSchema {
    nodes: Vec<Node>,
}

/// Keywords that only annotate: no effect on validity.
const ANNOTATIONS: &[&str] = &[
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
];

/// Numbers beyond this magnitude are not compared here (f64 and `jsonschema`'s integer
/// comparisons may differ).
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

struct Compiler<'a> {
    /// The schema resource local `$ref`s resolve in: the whole schema, or an embedded
    /// one (a subschema with its own `$id`), and that `$id`.
    base: &'a Value,
    base_id: String,
    draft7: bool,
    nodes: Vec<Node>,
    refs: HashMap<String, usize>,
}

impl ScanSchema {
    /// Compiles `schema` (already accepted by `jsonschema`); `None` when a feature this
    /// path cannot follow is used anywhere (`$id` below the root, anchors, dynamic or
    /// remote references): then every record takes the full path.
    pub fn compile(schema: &Value) -> Option<Self> {
        let draft7 = schema
            .get("$schema")
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("draft-07"));
        let base_id = schema.get("$id").and_then(Value::as_str).unwrap_or("");
        let mut c = Compiler {
            base: schema,
            base_id: base_id.to_owned(),
            draft7,
            nodes: vec![Node::Unsupported],
            refs: HashMap::new(),
        };
        c.refs.insert(format!("{base_id}#"), 0);
        let root = c.node(schema, true)?;
        c.nodes[0] = root;
        Some(ScanSchema { nodes: c.nodes })
    }

    /// Checks one record's JSON text.
    pub fn check(&self, text: &[u8]) -> Verdict {
        scan::check(&self.nodes, text)
    }
}

impl<'a> Compiler<'a> {
    fn push(&mut self, v: &'a Value) -> Option<usize> {
        let node = self.node(v, false)?;
        self.nodes.push(node);
        Some(self.nodes.len() - 1)
    }

    fn push_all(&mut self, v: &'a Value) -> Option<Vec<usize>> {
        match v {
            Value::Array(items) if !items.is_empty() => {
                items.iter().map(|s| self.push(s)).collect()
            }
            _ => Some(vec![self.unsupported()]),
        }
    }

    fn unsupported(&mut self) -> usize {
        self.nodes.push(Node::Unsupported);
        self.nodes.len() - 1
    }

    /// The node a local `$ref` names in the current resource (compiled once; cycles
    /// allowed). A pointer that enters an embedded resource is not followed.
    fn reference(&mut self, r: &str) -> Option<usize> {
        let key = format!("{}{r}", self.base_id);
        if let Some(&i) = self.refs.get(&key) {
            return Some(i);
        }
        let pointer = r.strip_prefix('#')?;
        if pointer.contains('%') || !pointer.starts_with('/') {
            return None;
        }
        let mut target = self.base;
        for token in pointer[1..].split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            target = match target {
                Value::Object(m) => m.get(&token)?,
                Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
            if target.get("$id").is_some() {
                return None;
            }
        }
        self.nodes.push(Node::Unsupported);
        let i = self.nodes.len() - 1;
        self.refs.insert(key, i);
        let node = self.node(target, false)?;
        self.nodes[i] = node;
        Some(i)
    }

    /// `None`: the whole schema is out of reach of this path. A subschema with an
    /// `$id` is a resource of its own while its keywords compile.
    fn node(&mut self, v: &'a Value, is_root: bool) -> Option<Node> {
        let id = v.get("$id").filter(|_| !is_root);
        if let Some(id) = id {
            let dialect = v.get("$schema").and_then(Value::as_str);
            if self.draft7 || dialect.is_some_and(|d| d.contains("draft-07")) {
                return None;
            }
            let saved = (self.base, std::mem::take(&mut self.base_id));
            self.base = v;
            self.base_id = id.as_str()?.to_owned();
            let node = self.keywords(v, true);
            (self.base, self.base_id) = saved;
            return node;
        }
        self.keywords(v, is_root)
    }

    /// One schema's keywords (`is_root`: of a resource, where `$schema`/`$id` may be).
    fn keywords(&mut self, v: &'a Value, is_root: bool) -> Option<Node> {
        let map = match v {
            Value::Bool(true) => return Some(Node::Any),
            Value::Bool(false) => return Some(Node::Never),
            Value::Object(m) => m,
            _ => return Some(Node::Unsupported),
        };
        for k in ["$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef"] {
            if map.contains_key(k) {
                return None;
            }
        }
        if self.draft7 {
            if let Some(r) = map.get("$ref") {
                return Some(Node::Alias(self.reference(r.as_str()?)?));
            }
        }
        let mut c = Checks::default();
        let mut required: Vec<&str> = Vec::new();
        let mut props: Vec<(&str, usize)> = Vec::new();
        for (k, v) in map {
            let ok = match k.as_str() {
                "$schema" | "$id" if is_root => true,
                k if ANNOTATIONS.contains(&k) => true,
                "format" => {
                    c.format_unsure = self.draft7;
                    true
                }
                "type" => {
                    c.types = types(v);
                    c.types.is_some()
                }
                "properties" => match v {
                    Value::Object(m) => {
                        for (name, s) in m {
                            let i = self.push(s)?;
                            props.push((name, i));
                        }
                        true
                    }
                    _ => false,
                },
                "required" => match v {
                    Value::Array(names) if names.len() <= 64 => {
                        for n in names {
                            required.push(n.as_str()?);
                        }
                        true
                    }
                    _ => false,
                },
                "additionalProperties" => {
                    c.additional = Some(self.push(v)?);
                    true
                }
                "minProperties" => set_u64(&mut c.min_properties, v),
                "maxProperties" => set_u64(&mut c.max_properties, v),
                "prefixItems" if !self.draft7 => match v {
                    Value::Array(items) => {
                        for s in items {
                            c.prefix_items.push(self.push(s)?);
                        }
                        true
                    }
                    _ => false,
                },
                "items" => match v {
                    Value::Array(items) if self.draft7 => {
                        for s in items {
                            c.prefix_items.push(self.push(s)?);
                        }
                        // Without `additionalItems`, draft 7 allows anything after.
                        if !map.contains_key("additionalItems") {
                            c.items = Some(self.push(&Value::Bool(true))?);
                        }
                        true
                    }
                    Value::Array(_) => false,
                    v => {
                        c.items = Some(self.push(v)?);
                        true
                    }
                },
                "additionalItems" if self.draft7 => match map.get("items") {
                    Some(Value::Array(_)) => {
                        c.items = Some(self.push(v)?);
                        true
                    }
                    // Ignored when `items` is one schema (or absent).
                    _ => true,
                },
                "minItems" => set_u64(&mut c.min_items, v),
                "maxItems" => set_u64(&mut c.max_items, v),
                "minLength" => set_u64(&mut c.min_length, v),
                "maxLength" => set_u64(&mut c.max_length, v),
                "pattern" => match v.as_str().map(Pattern::new) {
                    Some(Some(p)) => {
                        c.pattern = Some(p);
                        true
                    }
                    _ => false,
                },
                "minimum" => set_f64(&mut c.minimum, v),
                "maximum" => set_f64(&mut c.maximum, v),
                "exclusiveMinimum" => set_f64(&mut c.exclusive_minimum, v),
                "exclusiveMaximum" => set_f64(&mut c.exclusive_maximum, v),
                "const" => match scalar(v) {
                    Some(s) if c.one_of_values.is_none() => {
                        c.one_of_values = Some(vec![s]);
                        true
                    }
                    _ => false,
                },
                "enum" => match v {
                    Value::Array(vals) if !map.contains_key("const") => {
                        let vals: Option<Vec<Scalar>> = vals.iter().map(scalar).collect();
                        c.one_of_values = vals;
                        c.one_of_values.is_some()
                    }
                    _ => false,
                },
                "$ref" => match v.as_str().and_then(|r| self.reference(r)) {
                    Some(i) => {
                        c.reference = Some(i);
                        true
                    }
                    None => return None,
                },
                "allOf" => {
                    c.all_of = self.push_all(v)?;
                    true
                }
                "anyOf" => {
                    c.any_of = self.push_all(v)?;
                    true
                }
                "oneOf" => {
                    c.one_of = self.push_all(v)?;
                    true
                }
                "not" => {
                    c.not = Some(self.push(v)?);
                    true
                }
                "if" => {
                    c.if_ = Some(self.push(v)?);
                    true
                }
                "then" => {
                    c.then = Some(self.push(v)?);
                    true
                }
                "else" => {
                    c.else_ = Some(self.push(v)?);
                    true
                }
                _ => false,
            };
            if !ok {
                return Some(Node::Unsupported);
            }
        }
        let mut keys: Vec<Key> = props
            .into_iter()
            .map(|(name, i)| Key {
                tag: 0,
                name: name.into(),
                node: Some(i),
                required_bit: 0,
            })
            .collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        for (bit, name) in required.iter().enumerate() {
            let bit = 1u64 << bit;
            c.required_mask |= bit;
            match keys.binary_search_by(|k| (*k.name).cmp(name)) {
                Ok(i) => keys[i].required_bit |= bit,
                Err(i) => keys.insert(
                    i,
                    Key {
                        tag: 0,
                        name: (*name).into(),
                        node: None,
                        required_bit: bit,
                    },
                ),
            }
        }
        c.keys = KeyTable::new(keys);
        c.has_own = c.types.is_some()
            || !c.keys.is_empty()
            || c.additional.is_some()
            || c.min_properties.is_some()
            || c.max_properties.is_some()
            || !c.prefix_items.is_empty()
            || c.items.is_some()
            || c.min_items.is_some()
            || c.max_items.is_some()
            || c.min_length.is_some()
            || c.max_length.is_some()
            || c.pattern.is_some()
            || c.format_unsure
            || c.minimum.is_some()
            || c.maximum.is_some()
            || c.exclusive_minimum.is_some()
            || c.exclusive_maximum.is_some()
            || c.one_of_values.is_some();
        let only_ref = c.all_of.is_empty()
            && c.any_of.is_empty()
            && c.one_of.is_empty()
            && c.not.is_none()
            && c.if_.is_none();
        match c.reference {
            // `{"$ref": …}` alone (the usual shape): the target's checks, read once.
            Some(r) if !c.has_own && only_ref => Some(Node::Alias(r)),
            _ => Some(Node::Checks(Box::new(c))),
        }
    }
}

fn types(v: &Value) -> Option<u8> {
    let one = |s: &Value| match s.as_str()? {
        "null" => Some(ty::NULL),
        "boolean" => Some(ty::BOOL),
        "object" => Some(ty::OBJECT),
        "array" => Some(ty::ARRAY),
        "number" => Some(ty::NUMBER | ty::INTEGER),
        "integer" => Some(ty::INTEGER),
        "string" => Some(ty::STRING),
        _ => None,
    };
    match v {
        Value::Array(list) => list.iter().try_fold(0, |acc, s| Some(acc | one(s)?)),
        v => one(v),
    }
}

fn set_u64(slot: &mut Option<u64>, v: &Value) -> bool {
    *slot = v.as_u64();
    slot.is_some()
}

fn set_f64(slot: &mut Option<f64>, v: &Value) -> bool {
    *slot = v.as_f64().filter(|f| f.abs() < MAX_EXACT);
    slot.is_some()
}

fn scalar(v: &Value) -> Option<Scalar> {
    match v {
        Value::Null => Some(Scalar::Null),
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::String(s) => Some(Scalar::Str(s.as_str().into())),
        Value::Number(n) => n
            .as_i64()
            .filter(|i| (*i as f64).abs() < MAX_EXACT)
            .map(Scalar::Int),
        _ => None,
    }
}
