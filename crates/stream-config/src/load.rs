//! Loading: text → interpolated text → tree → overrides → typed config → rules, with
//! every problem collected and placed at its line.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use serde_yaml::Value;

use crate::error::{Diagnostic, Diagnostics, Error, Result};
use crate::model::StreamConfig;
use crate::overrides::{apply_env_overrides, interpolate};
use crate::path::{KeyPath, Seg, SpanIndex};
use crate::validate::validate;

/// Text formats of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
}

impl Format {
    /// The format named by a file's extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Loads and validates configurations. It holds the environment to interpolate and
/// override from (given by the caller: this crate never reads the process environment)
/// and the set of known source types (filled by whoever owns the connector registry).
#[derive(Clone, Default)]
pub struct Loader {
    env: Vec<(String, String)>,
    source_types: Option<BTreeSet<String>>,
    ingestion_modes: Option<BTreeSet<String>>,
    builtin_schemas: Option<BTreeSet<String>>,
    /// The config file's folder (set while `load_file` runs): a schema file's root.
    config_dir: Option<std::path::PathBuf>,
}

/// The environment's values are often credentials (`${AIRNOW_API_KEY}`, a
/// `STREAM__KAFKA__...` password): only their names are shown.
impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Loader")
            .field("env", &names)
            .field("source_types", &self.source_types)
            .field("ingestion_modes", &self.ingestion_modes)
            .finish()
    }
}

/// The most passes of the error-collecting deserializer; each pass removes one bad key.
const MAX_PASSES: usize = 256;

impl Loader {
    /// A loader with no environment and no source-type check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Variables for `${VAR}` interpolation and `STREAM__…` overrides, e.g. `std::env::vars()`.
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env = vars.into_iter().collect();
        self
    }

    /// The source types a `source_type` may name; without it any name is accepted.
    pub fn with_source_types<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.source_types = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The ingestion modes an `ingestion.mode` may name (the built-in three and any a
    /// program registered); without it any name is accepted here and refused when the
    /// stream is built.
    pub fn with_ingestion_modes<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.ingestion_modes = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The names `builtin:NAME` schemas may use; without it any name is accepted here
    /// and refused when the manager compiles the contracts.
    pub fn with_builtin_schemas<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.builtin_schemas = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Every problem of `cfg` the semantic rules find.
    fn problems(&self, cfg: &StreamConfig) -> Vec<crate::validate::Problem> {
        let mut out = validate(cfg, self.source_types.as_ref());
        out.extend(crate::validate::ingestion_modes(
            cfg,
            self.ingestion_modes.as_ref(),
        ));
        let roots = crate::schema_roots(&cfg.file_roots, self.config_dir.as_deref());
        let mut c = crate::validate::Checker::default();
        crate::contracts::check(&mut c, cfg, &roots, self.builtin_schemas.as_ref());
        out.extend(c.into_problems());
        out
    }

    /// Reads, overrides and validates a `.yaml`, `.yml` or `.json` file.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<StreamConfig> {
        let path = path.as_ref();
        let format = Format::from_path(path).ok_or_else(|| Error::UnknownFormat {
            path: path.to_path_buf(),
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            action: "cannot read config file",
            source,
        })?;
        let mut loader = self.clone();
        loader.config_dir = path.parent().map(Path::to_path_buf);
        loader.load_str(&text, format, &path.display().to_string())
    }

    /// Loads configuration text; `origin` names it in errors (a file path or `<string>`).
    pub fn load_str(&self, text: &str, format: Format, origin: &str) -> Result<StreamConfig> {
        let lookup = |name: &str| {
            self.env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (expanded, mut problems) = interpolate(text, &lookup);
        let invalid = |items: Vec<Diagnostic>| {
            let mut d = Diagnostics {
                origin: origin.to_owned(),
                items,
            };
            d.sort();
            Error::Invalid(d)
        };
        let mut tree = match parse_tree(&expanded, format) {
            Ok(tree) => tree,
            Err(parse_error) => {
                problems.push(parse_error);
                return Err(invalid(problems));
            }
        };
        let (overridden, override_problems) = apply_env_overrides(&mut tree, &self.env);
        problems.extend(override_problems);
        let (config, mut found, pruned) = deserialize_all(tree);
        if let Some(cfg) = &config {
            for p in self.problems(cfg) {
                if pruned.iter().any(|bad| starts_with(&p.path, bad)) {
                    continue; // the value was bad and replaced by a default: reported already
                }
                found.push(Diagnostic {
                    path: p.path.to_string(),
                    location: None,
                    env_var: None,
                    message: p.message,
                    hint: p.hint,
                });
            }
        }
        if !found.is_empty() {
            // Positions are read only to report problems (indexing a 10,000-source file
            // costs several times its size): from the user's text, or, if `${…}` made it
            // unparseable, from the expanded text.
            let mut spans = SpanIndex::build(text);
            if spans.locate(&KeyPath::default()).is_none() && !text.trim().is_empty() {
                spans = SpanIndex::build(&expanded);
            }
            place(&mut found, &spans, &overridden);
        }
        drop(expanded);
        problems.extend(found);
        match config {
            Some(cfg) if problems.is_empty() => Ok(cfg),
            _ => Err(invalid(problems)),
        }
    }

    /// Validates a configuration built in code or received as an update.
    pub fn validate(&self, cfg: &StreamConfig, origin: &str) -> Result<()> {
        let items: Vec<Diagnostic> = self
            .problems(cfg)
            .into_iter()
            .map(|p| Diagnostic {
                path: p.path.to_string(),
                location: None,
                env_var: None,
                message: p.message,
                hint: p.hint,
            })
            .collect();
        if items.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(Diagnostics {
                origin: origin.to_owned(),
                items,
            }))
        }
    }
}

fn parse_tree(text: &str, format: Format) -> std::result::Result<Value, Diagnostic> {
    match format {
        Format::Yaml => serde_yaml::from_str::<Value>(text).map_err(|e| {
            let location = e.location().map(|l| crate::Location {
                line: l.line(),
                column: l.column(),
            });
            Diagnostic::new(
                "",
                format!("invalid YAML: {}", strip_position(&e.to_string())),
            )
            .with_hint("fix the syntax at that position")
            .at(location)
        }),
        // Straight into the YAML value tree: never two trees of a large file at once.
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| {
            Diagnostic::new(
                "",
                format!("invalid JSON: {}", strip_position(&e.to_string())),
            )
            .with_hint("fix the syntax at that position")
            .at(Some(crate::Location {
                line: e.line(),
                column: e.column(),
            }))
        }),
    }
    .map(|v| {
        if v.is_null() {
            Value::Mapping(Default::default())
        } else {
            v
        }
    })
}

/// serde_yaml and serde_json append " at line X column Y"; the position is reported apart.
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn starts_with(path: &KeyPath, prefix: &KeyPath) -> bool {
    path.0.len() >= prefix.0.len() && path.0[..prefix.0.len()] == prefix.0[..]
}

/// Deserializes, and on each error records it, removes the offending key (so its default
/// applies) and tries again: all type errors and unknown keys come out of one load.
/// Returns the config (when the pruned tree deserializes), the problems, and the paths
/// that were pruned.
fn deserialize_all(mut tree: Value) -> (Option<StreamConfig>, Vec<Diagnostic>, Vec<KeyPath>) {
    let mut problems = Vec::new();
    let mut pruned: Vec<KeyPath> = Vec::new();
    let mut reported: HashSet<KeyPath> = HashSet::new();
    // Sequence elements removed so far, in the coordinates of the tree at removal time.
    let mut removed: Vec<(KeyPath, usize)> = Vec::new();
    for _ in 0..MAX_PASSES {
        // From the tree by reference: no copy of it per pass.
        let err = match serde_path_to_error::deserialize::<_, StreamConfig>(&tree) {
            Ok(cfg) => return (Some(cfg), problems, pruned),
            Err(err) => err,
        };
        let mut path = KeyPath::from_serde(err.path());
        let message = err.into_inner().to_string();
        let (mut message, hint) = explain(&message);
        if crate::redact::may_hold_secret(path.0.iter().filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })) {
            // A bad value under a key that may hold a credential is not echoed.
            message = crate::redact::hide_values(&message);
        }
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
            .map(str::to_owned);
        let unknown = message.starts_with("unknown key `");
        if unknown {
            // Make sure the path ends at the unknown key itself.
            if let Some(key) = message.split('`').nth(1) {
                if path.0.last() != Some(&Seg::Key(key.to_owned())) {
                    path = path.key(key);
                }
            }
        }
        let original = to_original(&path, &removed);
        // A required key removed earlier for its bad value: already reported.
        let already = missing
            .as_ref()
            .is_some_and(|field| reported.contains(&original.key(field)));
        if !already {
            let mut d = Diagnostic::new(original.to_string(), message);
            d.hint = hint;
            problems.push(d);
        }
        reported.insert(original.clone());
        pruned.push(original);
        // Remove the bad node: a bad or unknown key, or the whole entry missing a field.
        match remove(&mut tree, &path) {
            Some(Some(index)) => removed.push((path.parent(), index)),
            Some(None) => {}
            None => return (None, problems, pruned),
        }
    }
    (None, problems, pruned)
}

/// Maps a path in the pruned tree back to the user's tree, undoing element removals.
fn to_original(path: &KeyPath, removed: &[(KeyPath, usize)]) -> KeyPath {
    let mut p = path.clone();
    for (seq, index) in removed.iter().rev() {
        let n = seq.0.len();
        if p.0.len() > n && p.0[..n] == seq.0[..] {
            if let Seg::Index(i) = &mut p.0[n] {
                if *i >= *index {
                    *i += 1;
                }
            }
        }
    }
    p
}

/// Removes the node at `path`. `None`: nothing removable (the root, or not found);
/// `Some(Some(i))`: a sequence element at index `i` was removed; `Some(None)`: a map key.
fn remove(tree: &mut Value, path: &KeyPath) -> Option<Option<usize>> {
    let (last, parents) = path.0.split_last()?;
    let mut node = tree;
    for seg in parents {
        node = match (seg, node) {
            (Seg::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str())?,
            (Seg::Index(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    match (last, node) {
        (Seg::Key(k), Value::Mapping(m)) => m.remove(k.as_str()).map(|_| None),
        (Seg::Index(i), Value::Sequence(s)) if *i < s.len() => {
            s.remove(*i);
            Some(Some(*i))
        }
        _ => None,
    }
}

/// Rewrites serde's messages in the configuration's words, with a suggestion.
fn explain(message: &str) -> (String, Option<String>) {
    for (prefix, noun) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let Some((name, tail)) = rest.split_once('`') else {
                break;
            };
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let hint = match crate::closest(name, expected.iter().copied()) {
                Some(best) => Some(format!("did you mean `{best}`?")),
                None if expected.is_empty() => None,
                None => Some(format!("expected one of {}", quote_list(&expected))),
            };
            return (format!("unknown {noun} `{name}`"), hint);
        }
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return (
            format!("missing field {field}"),
            Some(format!("add the required key {field}")),
        );
    }
    (plain_types(message), None)
}

/// serde names Rust types ("expected u32"); say what a config author writes instead.
fn plain_types(message: &str) -> String {
    let mut out = message.to_owned();
    for (rust, plain) in [
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number >= 0"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected usize", "expected a whole number >= 0"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        if out.ends_with(rust) {
            out.truncate(out.len() - rust.len());
            out.push_str(plain);
        }
    }
    out
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gives each problem its line and column, or the variable that set its value.
fn place(items: &mut [Diagnostic], spans: &SpanIndex, overridden: &HashMap<KeyPath, String>) {
    for d in items {
        let path = parse_display_path(&d.path);
        if let Some((_, var)) = overridden
            .iter()
            .filter(|(p, _)| starts_with(&path, p))
            .max_by_key(|(p, _)| p.0.len())
        {
            d.env_var = Some(var.clone());
            continue;
        }
        d.location = spans.locate(&path);
    }
}

/// Parses a displayed path (`a.b[2].c`) back into segments.
fn parse_display_path(s: &str) -> KeyPath {
    let mut segs = Vec::new();
    for part in s.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                segs.push(Seg::Key(rest[..open].to_owned()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    segs.push(Seg::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else {
            segs.push(Seg::Key(rest.to_owned()));
        }
    }
    KeyPath(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_paths_round_trip() {
        let p = KeyPath::default()
            .key("routing")
            .key("content_rules")
            .index(2)
            .key("topic");
        assert_eq!(parse_display_path(&p.to_string()), p);
    }

    #[test]
    fn removed_elements_shift_later_paths_back() {
        let seq = KeyPath::default().key("list");
        let removed = vec![(seq.clone(), 1), (seq.clone(), 1)];
        // After removing original [1] then original [2], current [1] is original [3].
        assert_eq!(to_original(&seq.index(1), &removed), seq.index(3));
        assert_eq!(to_original(&seq.index(0), &removed), seq.index(0));
    }
}
