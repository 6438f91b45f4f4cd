//! Routing configuration compiled for fast resolution: regexes built, templates split,
//! static topics shared as `Arc<str>`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;

use crate::resolver::{Error, Result};
use crate::rules::{
    check_order, check_topic, check_topic_name, template_parts, ContentRule,
    Operator as RuleOperator, PartitionKey, Rules, Step, TemplatePart,
};

/// Where a strategy sends a record.
/// A JSON pointer split into unescaped tokens once, so lookups allocate nothing
/// (`serde_json::Value::pointer` allocates per token).
#[derive(Debug, Clone)]
pub(crate) struct Pointer(Vec<String>);

impl Pointer {
    fn parse(p: &str) -> Pointer {
        Pointer(
            p.split('/')
                .skip(1)
                .map(|t| t.replace("~1", "/").replace("~0", "~"))
                .collect(),
        )
    }

    /// The value at this pointer in a record, if any.
    pub(crate) fn get<'v>(&self, record: &'v dyn Fields) -> Option<Cow<'v, Value>> {
        record.field(&self.0)
    }
}

/// A record's content as rules and keys read it: the value at a JSON pointer, given as
/// its unescaped tokens. Implemented for a parsed [`Value`]; a caller that keeps records
/// as JSON text implements it by reading the text (and returns an owned value).
pub trait Fields {
    /// The value at the pointer `tokens` (`[]` is the whole record), if any.
    fn field(&self, tokens: &[String]) -> Option<Cow<'_, Value>>;
}

impl Fields for Value {
    fn field(&self, tokens: &[String]) -> Option<Cow<'_, Value>> {
        let mut v = self;
        for token in tokens {
            v = match v {
                Value::Object(map) => map.get(token.as_str())?,
                Value::Array(items) => {
                    if token.len() > 1 && token.starts_with('0') {
                        return None;
                    }
                    items.get(token.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(Cow::Borrowed(v))
    }
}

#[derive(Debug)]
pub(crate) enum Target {
    Static(Arc<str>),
    Template(Vec<Part>),
}

#[derive(Debug)]
pub(crate) enum Part {
    Literal(String),
    SourceId,
    SourceType,
    Pointer(Pointer),
}

#[derive(Debug)]
pub(crate) enum Condition {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Exists,
    Matches(Regex),
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) predicate: Predicate,
    pub(crate) target: Target,
}

#[derive(Debug)]
pub(crate) enum KeySpec {
    Pointer(Pointer),
    Geo {
        lat: Pointer,
        lon: Pointer,
        precision: u8,
    },
}

#[derive(Debug)]
pub(crate) struct RuleSet {
    pub(crate) raw: Rules,
    pub(crate) rules: Vec<Rule>,
    pub(crate) custom: HashMap<String, Target>,
    pub(crate) patterns: Vec<(Regex, Target)>,
    pub(crate) fallback: Arc<str>,
    pub(crate) keys: HashMap<String, KeySpec>,
    /// For every configured source: its id-only routing (custom mapping, first matching
    /// pattern), computed once so records of known sources skip the regexes.
    pub(crate) by_source: HashMap<String, SourceRoute>,
    /// The strategies in the order they are tried (each once).
    pub(crate) order: Vec<Step>,
}

/// The id-only part of routing for one known source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceRoute {
    pub(crate) has_custom: bool,
    pub(crate) first_pattern: Option<usize>,
}

fn invalid(rule: String, message: impl Into<String>) -> Error {
    Error::InvalidRule {
        rule,
        message: message.into(),
    }
}

fn target(rule: &str, topic: &str) -> Result<Target> {
    let bad = |m: String| invalid(rule.to_owned(), m);
    check_topic(topic, true).map_err(bad)?;
    if !topic.contains('{') {
        return Ok(Target::Static(Arc::from(topic)));
    }
    let parts = template_parts(topic)
        .map_err(bad)?
        .into_iter()
        .map(|p| match p {
            TemplatePart::Literal(l) => Part::Literal(l.to_owned()),
            TemplatePart::SourceId => Part::SourceId,
            TemplatePart::SourceType => Part::SourceType,
            TemplatePart::Pointer(p) => Part::Pointer(Pointer::parse(p)),
        })
        .collect();
    Ok(Target::Template(parts))
}

fn pointer(rule: &str, p: &str) -> Result<Pointer> {
    if p.is_empty() || p.starts_with('/') {
        Ok(Pointer::parse(p))
    } else {
        Err(invalid(
            rule.to_owned(),
            format!("`{p}` is not a JSON pointer (it must start with `/`)"),
        ))
    }
}

fn regex(rule: &str, pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| {
        let msg = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        invalid(rule.to_owned(), format!("invalid regex: {msg}"))
    })
}

fn number(rule: &str, op: &str, v: &Value) -> Result<f64> {
    v.as_f64().ok_or_else(|| {
        invalid(
            rule.to_owned(),
            format!("operator `{op}` needs a number value, got {v}"),
        )
    })
}

fn compile_condition(name: &str, operator: RuleOperator, value: &Value) -> Result<Condition> {
    Ok(match operator {
        RuleOperator::Eq => Condition::Eq(value.clone()),
        RuleOperator::Ne => Condition::Ne(value.clone()),
        RuleOperator::In => match value {
            Value::Array(items) => Condition::In(items.clone()),
            other => {
                return Err(invalid(
                    name.to_owned(),
                    format!("operator `in` needs a list value, got {other}"),
                ))
            }
        },
        RuleOperator::Gt => Condition::Gt(number(name, "gt", value)?),
        RuleOperator::Gte => Condition::Gte(number(name, "gte", value)?),
        RuleOperator::Lt => Condition::Lt(number(name, "lt", value)?),
        RuleOperator::Lte => Condition::Lte(number(name, "lte", value)?),
        RuleOperator::Exists => Condition::Exists,
        RuleOperator::Matches => match value.as_str() {
            Some(re) => Condition::Matches(regex(name, re)?),
            None => {
                return Err(invalid(
                    name.to_owned(),
                    "operator `matches` needs a regex string value",
                ))
            }
        },
    })
}

pub(crate) fn compile_rule(name: &str, r: &ContentRule) -> Result<Rule> {
    Ok(Rule {
        predicate: Predicate {
            field: pointer(name, &r.field)?,
            condition: compile_condition(name, r.operator, &r.value)?,
        },
        target: target(name, &r.topic)?,
    })
}

/// A compiled test on a record's content (`field` operator `value`), as content rules
/// use; for other rule kinds such as priority rules.
#[derive(Debug)]
pub struct Predicate {
    pub(crate) field: Pointer,
    pub(crate) condition: Condition,
}

impl Predicate {
    /// Compiles a test; `name` identifies it in errors (e.g. `routing.priority_rules[0]`).
    pub fn new(
        name: &str,
        field: &str,
        operator: RuleOperator,
        value: &Value,
    ) -> Result<Predicate> {
        Ok(Predicate {
            field: pointer(name, field)?,
            condition: compile_condition(name, operator, value)?,
        })
    }

    /// True when `record` passes the test (a missing field never does).
    pub fn matches(&self, record: &dyn Fields) -> bool {
        crate::resolver::matches(self, record)
    }
}

impl RuleSet {
    /// Compiles every rule; the first invalid one is reported by its config path.
    pub(crate) fn compile(raw: Rules) -> Result<RuleSet> {
        let rules = raw
            .content_rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_rule(&format!("routing.content_rules[{i}]"), r))
            .collect::<Result<Vec<_>>>()?;
        let custom = raw
            .custom_mappings
            .iter()
            .map(|(source, topic)| {
                Ok((
                    source.clone(),
                    target(&format!("routing.custom_mappings.{source}"), topic)?,
                ))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        let patterns = raw
            .pattern_mappings
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let name = format!("routing.pattern_mappings[{i}]");
                Ok((regex(&name, &m.pattern)?, target(&name, &m.topic)?))
            })
            .collect::<Result<Vec<_>>>()?;
        check_topic_name(&raw.fallback_topic)
            .map_err(|m| invalid("routing.fallback_topic".to_owned(), m))?;
        check_order(&raw.order).map_err(|m| invalid("routing.order".to_owned(), m))?;
        let keys = raw
            .keys
            .iter()
            .map(|(source, k)| {
                let name = format!("sources.{source}.partition_key");
                let spec = match k {
                    PartitionKey::Pointer(p) => KeySpec::Pointer(pointer(&name, p)?),
                    PartitionKey::Geo {
                        lat,
                        lon,
                        precision,
                    } => KeySpec::Geo {
                        lat: pointer(&name, lat)?,
                        lon: pointer(&name, lon)?,
                        precision: (*precision).clamp(1, 12),
                    },
                };
                Ok((source.clone(), spec))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        let by_source = raw
            .source_types
            .keys()
            .chain(raw.custom_mappings.keys())
            .map(|id| {
                let route = SourceRoute {
                    has_custom: custom.contains_key(id),
                    first_pattern: patterns.iter().position(|(re, _)| re.is_match(id)),
                };
                (id.clone(), route)
            })
            .collect();
        Ok(RuleSet {
            order: raw.order.clone(),
            by_source,
            fallback: Arc::from(raw.fallback_topic.as_str()),
            rules,
            custom,
            patterns,
            keys,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Pointer;
    use serde_json::json;

    #[test]
    fn pointer_agrees_with_serde_json() {
        let doc = json!({"a/b": 1, "m~n": 2, "arr": [10, {"x": 11}], "": 3, "o": {"p": null}});
        for p in [
            "", "/a~1b", "/m~0n", "/arr/0", "/arr/1/x", "/arr/01", "/arr/9", "/arr/-", "/", "/o/p",
            "/o/p/q", "/nope",
        ] {
            assert_eq!(
                Pointer::parse(p).get(&doc).as_deref(),
                doc.pointer(p),
                "pointer {p:?}"
            );
        }
    }
}
