//! The routing rules as given: the source of truth that runtime changes edit and that is
//! compiled again after each change. Deserializable, so another project can keep them in
//! its own configuration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every routing rule, uncompiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Rules on a record's content, first match wins.
    pub content_rules: Vec<ContentRule>,
    /// Source id → topic (a template is allowed).
    pub custom_mappings: BTreeMap<String, String>,
    /// Regexes on the source id → topic, first match wins.
    pub pattern_mappings: Vec<PatternMapping>,
    /// Where records go when nothing else matches (a plain topic name).
    pub fallback_topic: String,
    /// Source id → how its records' Kafka key is derived.
    pub keys: BTreeMap<String, PartitionKey>,
    /// Source id → connector type, so known sources skip the regexes and `{source_type}`
    /// renders for them.
    pub source_types: BTreeMap<String, String>,
    /// The order the strategies are tried in, each once; the fallback comes last.
    /// Default: the seed's — custom mappings, content rules, pattern mappings.
    pub order: Vec<Step>,
}

/// One routing strategy, as [`Rules::order`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The source id's custom mapping (or the source's own `topic`).
    CustomMappings,
    /// Rules on the record's content.
    ContentRules,
    /// Regexes on the source id.
    PatternMappings,
}

impl Step {
    /// The seed's order: custom mappings, content rules, pattern mappings.
    pub const SEED_ORDER: [Step; 3] = [
        Step::CustomMappings,
        Step::ContentRules,
        Step::PatternMappings,
    ];
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            content_rules: Vec::new(),
            custom_mappings: BTreeMap::new(),
            pattern_mappings: Vec::new(),
            fallback_topic: "wildfire-default".to_owned(),
            keys: BTreeMap::new(),
            source_types: BTreeMap::new(),
            order: Step::SEED_ORDER.to_vec(),
        }
    }
}

/// A rule on a record's content: `field` (a JSON pointer) `operator` `value` → `topic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRule {
    /// JSON pointer to the field, e.g. `/properties/severity`.
    pub field: String,
    /// Comparison to apply.
    pub operator: Operator,
    /// Value to compare with (a list for `in`, a regex for `matches`, unused for `exists`).
    #[serde(default)]
    pub value: Value,
    /// Destination topic; may be a template such as `alerts-{/properties/severity}`.
    pub topic: String,
}

/// Comparisons of content rules and predicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Member of a list.
    In,
    /// Greater than (numbers).
    Gt,
    /// Greater than or equal (numbers).
    Gte,
    /// Less than (numbers).
    Lt,
    /// Less than or equal (numbers).
    Lte,
    /// The field is present and not null.
    Exists,
    /// The field is a string matching a regex.
    Matches,
}

/// A regex on the source id → topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternMapping {
    /// Regex matched against the source id, e.g. `^sensor_\d+`.
    pub pattern: String,
    /// Destination topic (a template is allowed).
    pub topic: String,
}

/// How a record's Kafka key is derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PartitionKey {
    /// The value at a JSON pointer, e.g. `/properties/station_id`.
    Pointer(String),
    /// A geohash cell of the record's coordinates (JSON pointers), stable across restarts.
    Geo {
        /// Pointer to the latitude.
        lat: String,
        /// Pointer to the longitude.
        lon: String,
        /// Geohash length, 1-12 (5 ≈ 4.9 km cells).
        #[serde(default = "default_precision")]
        precision: u8,
    },
}

fn default_precision() -> u8 {
    5
}

/// Checks a Kafka topic name: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".to_owned());
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters; at most 249",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a valid topic name"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "invalid character `{c}` in topic name `{name}`; use letters, digits, `.`, `_` and `-`"
        )),
        None => Ok(()),
    }
}
