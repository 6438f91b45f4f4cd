//! Data contracts in the configuration: JSON Schemas (draft 2020-12 or draft 7) per
//! source (`sources.<id>.schema`) and per topic (`contracts.topics`), inline, from a file
//! under the allowed roots, or one of the connectors' built-in schemas (`builtin:NAME`).
//!
//! This crate only checks them: `validate` reads and compiles every schema once to report
//! a bad one at its key and line. The validators that check records are compiled and kept
//! by the manager (`stream-manager`'s `contracts.rs`), with [`compile_schema`] and
//! [`read_schema_file`] so both apply the same rules.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::path::KeyPath;
use crate::validate::Checker;

/// The largest schema file read (1 MiB): a schema is a few kilobytes; anything near this
/// is a mistake, refused rather than read into memory.
pub const MAX_SCHEMA_FILE_BYTES: u64 = 1 << 20;

/// `$schema` values accepted (absent means draft 2020-12).
const DRAFTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft-07/schema",
];

/// Where a schema comes from. In YAML: a mapping is the schema itself (inline); a string
/// is `builtin:NAME` (a connector's shipped schema) or the path of a `.json` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SchemaRef {
    /// `builtin:NAME` or a file path.
    Named(String),
    /// The schema, written in the configuration.
    Inline(serde_json::Map<String, Value>),
}

/// A [`SchemaRef`] taken apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SchemaSource<'a> {
    /// A connector's built-in schema, by name.
    Builtin(&'a str),
    /// A JSON file (relative paths from the working directory, like `file` sources).
    File(&'a Path),
    /// Written in the configuration.
    Inline(&'a serde_json::Map<String, Value>),
}

impl SchemaRef {
    /// What it names.
    pub fn source(&self) -> SchemaSource<'_> {
        match self {
            SchemaRef::Named(s) => match s.strip_prefix("builtin:") {
                Some(name) => SchemaSource::Builtin(name.trim()),
                None => SchemaSource::File(Path::new(s)),
            },
            SchemaRef::Inline(m) => SchemaSource::Inline(m),
        }
    }

    /// A short, bounded name for metrics and dead letters: `builtin:NAME`, the file's
    /// name, or `inline` with `owner` (the key it is configured at).
    pub fn label(&self, owner: &str) -> String {
        match self.source() {
            SchemaSource::Builtin(name) => format!("builtin:{name}"),
            SchemaSource::File(p) => p
                .file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into()),
            SchemaSource::Inline(_) => format!("inline:{owner}"),
        }
    }
}

/// What a violation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaMode {
    /// The record goes to the DLQ (`schema_violation`), never to its topic.
    #[default]
    Enforce,
    /// The record is delivered; the violation is counted, logged (sampled) and shown.
    Observe,
}

/// Schemas by topic, and the default mode.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractsConfig {
    /// A schema for every record routed to the topic, by topic name (whatever its
    /// source; a source's own `schema` is checked too).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topics: BTreeMap<String, SchemaRef>,
    /// The mode of sources that set no `schema_mode` (default `enforce`).
    #[serde(default)]
    pub mode: SchemaMode,
}

impl ContractsConfig {
    /// The defaults: no topic schema, `enforce` (left out of dumps).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// Compiles a schema: draft 2020-12 (also when `$schema` is absent) or draft 7. Remote
/// `$ref`s are not fetched (an error); a panic inside the validator library is an error.
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !schema.is_object() {
        return Err("a schema must be a JSON object".to_owned());
    }
    if let Some(draft) = schema.get("$schema") {
        let known = draft
            .as_str()
            .map(|d| d.trim_end_matches('#'))
            .is_some_and(|d| DRAFTS.contains(&d));
        if !known {
            return Err(format!(
                "`$schema` {draft} is not draft 2020-12 or draft 7 (use `{}` or `{}#`)",
                DRAFTS[0], DRAFTS[1]
            ));
        }
    }
    std::panic::catch_unwind(|| jsonschema::validator_for(schema))
        .map_err(|_| "the schema library panicked compiling it".to_owned())?
        .map_err(|e| format!("invalid schema: {}", e.masked()))
}

/// Reads a schema file: it must lie under one of `roots` (after resolving `..` and
/// links; no check when `roots` is empty), be at most [`MAX_SCHEMA_FILE_BYTES`] and be
/// JSON (serde_json's recursion limit applies).
pub fn read_schema_file(path: &Path, roots: &[PathBuf]) -> Result<Value, String> {
    let real = if roots.is_empty() {
        std::fs::canonicalize(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
    } else {
        crate::resolve_under_roots(path, roots, "schemas may be read from")?
    };
    let file =
        std::fs::File::open(&real).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut text = Vec::new();
    file.take(MAX_SCHEMA_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if text.len() as u64 > MAX_SCHEMA_FILE_BYTES {
        return Err(format!(
            "`{}` is larger than {MAX_SCHEMA_FILE_BYTES} bytes",
            path.display()
        ));
    }
    serde_json::from_slice(&text).map_err(|e| format!("`{}` is not JSON: {e}", path.display()))
}

/// The folders schema files may be read from: `file_roots`, else `dir` (the config
/// file's folder, or `.`) and `data/` — the folders `file` sources may read.
pub fn schema_roots(file_roots: &[String], dir: Option<&Path>) -> Vec<PathBuf> {
    if !file_roots.is_empty() {
        return file_roots.iter().map(PathBuf::from).collect();
    }
    let dir = dir
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    vec![dir, PathBuf::from("data")]
}

/// Checks one schema reference at `path`: a known built-in name (when `builtins` is
/// given), a readable file under `roots`, and a schema that compiles.
pub(crate) fn check_ref(
    c: &mut Checker,
    path: KeyPath,
    schema: &SchemaRef,
    roots: &[PathBuf],
    builtins: Option<&BTreeSet<String>>,
) {
    let doc = match schema.source() {
        SchemaSource::Builtin(name) => {
            if let Some(known) = builtins.filter(|k| !k.contains(name)) {
                let hint = match crate::closest(name, known.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `builtin:{best}`?"),
                    None => format!(
                        "built-in schemas: {}",
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                };
                c.fail(path, format!("unknown built-in schema `{name}`"), hint);
            }
            return;
        }
        SchemaSource::File(p) => match read_schema_file(p, roots) {
            Ok(doc) => doc,
            Err(why) => {
                c.fail(
                    path,
                    why,
                    "a schema is inline (a mapping), `builtin:NAME` or the path of a .json file",
                );
                return;
            }
        },
        SchemaSource::Inline(m) => Value::Object(m.clone()),
    };
    if let Err(why) = compile_schema(&doc) {
        c.fail(path, why, "");
    }
}

/// Every schema of `cfg`: `contracts.topics.*` and `sources.*.schema`.
pub(crate) fn check(
    c: &mut Checker,
    cfg: &crate::StreamConfig,
    roots: &[PathBuf],
    builtins: Option<&BTreeSet<String>>,
) {
    let root = KeyPath::default();
    for (topic, schema) in &cfg.contracts.topics {
        let p = root.key("contracts").key("topics").key(topic);
        if let Err(why) = topic_resolver::check_topic(topic, false) {
            c.fail(p.clone(), why, "a topic schema names a literal topic");
        }
        check_ref(c, p, schema, roots, builtins);
    }
    for (id, src) in &cfg.sources {
        if let Some(schema) = &src.schema {
            check_ref(
                c,
                root.key("sources").key(id).key("schema"),
                schema,
                roots,
                builtins,
            );
        }
    }
}
