//! Data contracts: the JSON Schemas of a configuration (each source's `schema`, each
//! topic's under `contracts.topics`), compiled once, and a record checked against its
//! source's then its topic's; a failure names the failing JSON pointers and the
//! validator's messages. What to do with a failing record (dead-letter it, or count it
//! and deliver it: `SchemaMode`) is the caller's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::schema_scan::{ScanSchema, Verdict};
use serde_json::Value;
use stream_config::{SchemaMode, SchemaRef, SchemaSource, StreamConfig};

/// At most this many failing pointers are kept in a dead letter's details.
const MAX_ERRORS: usize = 5;
/// Each validator message is cut to this many characters.
const MAX_MESSAGE: usize = 200;
/// One compiled schema and the name it is counted under.
struct Schema {
    label: Arc<str>,
    validator: jsonschema::Validator,
    /// The same schema on the record's text (`None`: it uses what that path cannot
    /// follow, and every record is parsed).
    fast: Option<ScanSchema>,
}

/// Every schema of one configuration, compiled.
#[derive(Default)]
pub struct Contracts {
    sources: HashMap<String, Arc<Schema>>,
    topics: HashMap<String, Arc<Schema>>,
    modes: HashMap<String, SchemaMode>,
    default_mode: SchemaMode,
    /// Where schema files may be read (the builder's `file_roots`; none: anywhere).
    roots: Option<Vec<PathBuf>>,
}

impl std::fmt::Debug for Contracts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contracts")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A record that failed a schema.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The schema's label (`builtin:NAME`, the file's name, `inline:<key>`).
    pub schema: Arc<str>,
    /// `schema <label>: <pointer>: <message>; …`
    pub details: String,
}

fn compile_ref(
    owner: &str,
    schema: &SchemaRef,
    roots: Option<&[PathBuf]>,
) -> std::result::Result<Arc<Schema>, String> {
    let doc = match schema.source() {
        SchemaSource::Builtin(name) => {
            let text = crate::builtin_schema(name).ok_or_else(|| {
                let known: Vec<&str> = crate::builtin_schemas().map(|(n, _)| n).collect();
                format!(
                    "unknown built-in schema `{name}` (known: {})",
                    known.join(", ")
                )
            })?;
            serde_json::from_str(text).map_err(|e| format!("built-in schema `{name}`: {e}"))?
        }
        SchemaSource::File(p) => stream_config::read_schema_file(p, roots.unwrap_or_default())?,
        SchemaSource::Inline(m) => Value::Object(m.clone()),
    };
    let validator = stream_config::compile_schema(&doc)?;
    Ok(Arc::new(Schema {
        label: schema.label(owner).into(),
        validator,
        fast: ScanSchema::compile(&doc),
    }))
}

impl Contracts {
    /// Compiles every schema of `cfg` (files read under `roots` when given); every
    /// failing one is named in the error (`; `-separated), and nothing is kept.
    pub fn compile(cfg: &StreamConfig, roots: Option<&[PathBuf]>) -> Result<Self, String> {
        let mut out = Contracts {
            default_mode: cfg.contracts.mode,
            roots: roots.map(<[PathBuf]>::to_vec),
            ..Contracts::default()
        };
        let mut errors = Vec::new();
        for (topic, schema) in &cfg.contracts.topics {
            let owner = format!("contracts.topics.{topic}");
            match compile_ref(&owner, schema, roots) {
                Ok(s) => drop(out.topics.insert(topic.clone(), s)),
                Err(e) => errors.push(format!("{owner}: {e}")),
            }
        }
        for (id, src) in &cfg.sources {
            if let Some(mode) = src.schema_mode {
                out.modes.insert(id.clone(), mode);
            }
            if let Some(schema) = &src.schema {
                let owner = format!("sources.{id}.schema");
                match compile_ref(&format!("sources.{id}"), schema, roots) {
                    Ok(s) => drop(out.sources.insert(id.clone(), s)),
                    Err(e) => errors.push(format!("{owner}: {e}")),
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors.join("; "))
        }
    }

    /// Compiles `cfg`'s schemas with the same roots as this set (for a reload).
    pub fn recompile(&self, cfg: &StreamConfig) -> Result<Self, String> {
        Self::compile(cfg, self.roots.as_deref())
    }

    /// No schema at all: the record path parses nothing.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.topics.is_empty()
    }

    /// The mode of `source`'s records.
    pub fn mode(&self, source: &str) -> SchemaMode {
        self.modes.get(source).copied().unwrap_or(self.default_mode)
    }

    /// The first schema `text` fails, of its source's then its topic's; `None` when it
    /// passes both (or neither exists: then nothing is parsed).
    pub fn check_text(&self, source: &str, topic: &str, text: &[u8]) -> Option<Violation> {
        let src = self.sources.get(source);
        let top = self.topics.get(topic);
        if src.is_none() && top.is_none() {
            return None;
        }
        // The fast path on the text; only what it cannot pass is parsed.
        let passes = |s: &Arc<Schema>| {
            s.fast
                .as_ref()
                .is_some_and(|f| f.check(text) == Verdict::Valid)
        };
        if [src, top].into_iter().flatten().all(passes) {
            return None;
        }
        match serde_json::from_slice::<Value>(text) {
            Ok(value) => self.check_value(source, topic, &value),
            Err(e) => {
                let schema = src.or(top).map(|s| s.label.clone()).unwrap_or_default();
                let details = format!("schema {schema}: the record is not JSON: {e}");
                Some(Violation { schema, details })
            }
        }
    }

    /// As `check_text`, for a parsed record.
    pub fn check_value(&self, source: &str, topic: &str, value: &Value) -> Option<Violation> {
        let schemas = [self.sources.get(source), self.topics.get(topic)];
        schemas.into_iter().flatten().find_map(|s| s.check(value))
    }
}

impl Schema {
    fn check(&self, value: &Value) -> Option<Violation> {
        if self.validator.is_valid(value) {
            return None;
        }
        let mut details = format!("schema {}:", self.label);
        let mut errors = self.validator.iter_errors(value);
        for (i, e) in errors.by_ref().take(MAX_ERRORS).enumerate() {
            let pointer = e.instance_path().as_str().to_owned();
            let mut message = e.masked().to_string();
            if message.len() > MAX_MESSAGE {
                let cut = (0..=MAX_MESSAGE)
                    .rev()
                    .find(|i| message.is_char_boundary(*i))
                    .unwrap_or(0);
                message.truncate(cut);
                message.push('…');
            }
            let sep = if i == 0 { " " } else { "; " };
            let pointer = if pointer.is_empty() { "/" } else { &pointer };
            details.push_str(&format!("{sep}{pointer}: {message}"));
        }
        if errors.next().is_some() {
            details.push_str("; …");
        }
        Some(Violation {
            schema: self.label.clone(),
            details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contracts(yaml: &str) -> Result<Contracts, String> {
        let cfg = stream_config::Loader::new()
            .with_source_types(["synthetic"])
            .load_str(yaml, stream_config::Format::Yaml, "<test>")
            .map_err(|e| e.to_string())?;
        Contracts::compile(&cfg, None)
    }

    #[test]
    fn a_record_is_checked_against_its_sources_then_its_topics_schema() {
        let c = contracts(
            "sources:\n  s1:\n    source_type: synthetic\n    schema_mode: observe\n    schema: { type: object, required: [id], properties: { id: { type: integer } } }\ncontracts:\n  topics:\n    hot: { type: object, properties: { temp: { type: number } } }\n",
        )
        .expect("compiles");
        assert!(!c.is_empty());
        assert_eq!(c.mode("s1"), SchemaMode::Observe);
        assert_eq!(c.mode("other"), SchemaMode::Enforce, "the default mode");
        assert!(c.check_text("s1", "cold", br#"{"id": 1}"#).is_none());
        let v = c
            .check_text("s1", "cold", br#"{"id": "x"}"#)
            .expect("fails");
        assert_eq!(&*v.schema, "inline:sources.s1");
        assert!(
            v.details.starts_with("schema inline:sources.s1: /id: "),
            "{}",
            v.details
        );
        // The source's schema passes, the topic's does not.
        let v = c.check_text("s1", "hot", br#"{"id": 1, "temp": "warm"}"#);
        assert!(v.expect("fails").details.contains("/temp: "));
        // Neither schema applies: nothing is parsed, not even broken JSON.
        assert!(c.check_text("s2", "cold", b"not json").is_none());
        let v = c.check_text("s2", "hot", b"not json").expect("not JSON");
        assert!(
            v.details.contains("the record is not JSON"),
            "{}",
            v.details
        );
    }

    #[test]
    fn nothing_is_kept_when_a_schema_does_not_compile() {
        let e =
            contracts("sources:\n  s1:\n    source_type: synthetic\n    schema: 'builtin:nope'\n")
                .expect_err("refused");
        assert!(e.contains("nope"), "{e}");
    }
}
