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

/// One piece of a topic template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplatePart<'a> {
    Literal(&'a str),
    SourceId,
    SourceType,
    /// A JSON pointer, with its leading `/`.
    Pointer(&'a str),
}

/// Splits a topic template such as `alerts-{/properties/severity}` into its parts:
/// literal text, `{source_id}`, `{source_type}`, `{/json/pointer}`.
pub(crate) fn template_parts(topic: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = topic;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Literal(&rest[..open]));
        }
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("invalid topic template `{topic}`: unclosed `{{`"))?;
        parts.push(match &rest[open + 1..close] {
            "source_id" => TemplatePart::SourceId,
            "source_type" => TemplatePart::SourceType,
            p if p.starts_with('/') => TemplatePart::Pointer(p),
            other => {
                return Err(format!(
                    "invalid topic template `{topic}`: `{{{other}}}` is not `{{source_id}}`, `{{source_type}}` or a JSON pointer like `{{/properties/severity}}`"
                ))
            }
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest));
    }
    Ok(parts)
}

/// Checks a topic name, or with `allow_template` a template (see [`Rules`]): its
/// placeholders well formed and its literal text, each placeholder standing for one
/// valid character, a valid name. The one check of topic names and templates: the
/// resolver compiles rules with it and the configuration's validation calls it.
pub fn check_topic(topic: &str, allow_template: bool) -> Result<(), String> {
    if !topic.contains('{') {
        return check_topic_name(topic);
    }
    if !allow_template {
        return Err(format!(
            "invalid topic name `{topic}`: templates are not allowed here"
        ));
    }
    let shape: String = template_parts(topic)?
        .iter()
        .map(|p| match p {
            TemplatePart::Literal(l) => l,
            _ => "x",
        })
        .collect();
    check_topic_name(&shape).map_err(|m| format!("in template `{topic}`: {m}"))
}

/// Each routing step listed exactly once (what `Rules::order` must be).
pub fn check_order(order: &[Step]) -> Result<(), String> {
    let once =
        order.len() == Step::SEED_ORDER.len() && Step::SEED_ORDER.iter().all(|s| order.contains(s));
    if once {
        Ok(())
    } else {
        Err("list each of custom_mappings, content_rules and pattern_mappings once".to_owned())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_templates_are_checked_by_one_rule() {
        assert_eq!(check_topic("alerts.high", false), Ok(()));
        assert_eq!(check_topic("alerts-{/properties/severity}", true), Ok(()));
        assert_eq!(check_topic("{source_type}.{source_id}", true), Ok(()));
        let refused = |t: &str, template: bool| check_topic(t, template).unwrap_err();
        assert!(refused("a-{source_id}", false).contains("templates are not allowed here"));
        assert!(refused("a-{source_id", true).contains("unclosed `{`"));
        assert!(refused("a-{sourceid}", true).contains("is not `{source_id}`"));
        assert!(refused("bad topic-{source_id}", true)
            .contains("in template `bad topic-{source_id}`: invalid character ` `"));
        assert!(refused(&"x".repeat(250), false).contains("250 characters"));
        // A placeholder stands for one character: 248 + 1 fit, 249 + 1 do not.
        assert_eq!(
            check_topic(&format!("{}{{source_id}}", "x".repeat(248)), true),
            Ok(())
        );
        assert!(refused(&format!("{}{{source_id}}", "x".repeat(249)), true).contains("at most 249"));
        assert!(refused("..", false).contains("not a valid topic name"));
        assert!(refused("", false).contains("empty"));
    }

    #[test]
    fn the_order_lists_each_step_once() {
        use Step::*;
        assert_eq!(check_order(&Step::SEED_ORDER), Ok(()));
        assert_eq!(
            check_order(&[PatternMappings, CustomMappings, ContentRules]),
            Ok(())
        );
        assert!(check_order(&[CustomMappings, ContentRules]).is_err());
        assert!(check_order(&[CustomMappings, ContentRules, ContentRules]).is_err());
        assert!(
            check_order(&[CustomMappings, ContentRules, PatternMappings, ContentRules]).is_err()
        );
    }
}
