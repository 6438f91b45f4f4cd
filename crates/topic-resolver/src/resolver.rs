//! Resolution over an atomically swapped rule set.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::compile::{
    compile_rule, Condition, Fields, KeySpec, Part, Predicate, RuleSet, SourceRoute, Target,
};
use crate::rules::{ContentRule, PatternMapping, Rules, Step};

/// Errors of the resolver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule could not be compiled; `rule` is its configuration path.
    #[error("invalid routing rule `{rule}`: {message}")]
    InvalidRule {
        /// The rule's path, e.g. `routing.content_rules[2]`.
        rule: String,
        /// What is wrong.
        message: String,
    },
}

/// Result with the resolver's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which strategy answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// A content rule on the record.
    ContentRule,
    /// A custom mapping of the source id (or the source's own `topic`).
    CustomMapping,
    /// A regex on the source id.
    Pattern,
    /// Nothing matched.
    Fallback,
}

impl Strategy {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::ContentRule => "content_rule",
            Strategy::CustomMapping => "custom_mapping",
            Strategy::Pattern => "pattern",
            Strategy::Fallback => "fallback",
        }
    }
}

/// What the resolver sees of a record: its source, its type and its fields (read through
/// [`Fields`]), borrowed for one call.
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    /// The source that produced it.
    pub source_id: &'a str,
    /// The source's connector type.
    pub source_type: &'a str,
    /// The record's content (a parsed `Value`, or anything else that can read fields).
    pub value: &'a dyn Fields,
}

impl std::fmt::Debug for RecordView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordView")
            .field("source_id", &self.source_id)
            .field("source_type", &self.source_type)
            .finish_non_exhaustive()
    }
}

/// Where a record goes: the topic the producer must use, and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The topic. Static topics are shared, not allocated per record.
    pub topic: Arc<str>,
    /// The Kafka message key, when the source configures one and the record has it.
    pub key: Option<String>,
    /// The strategy that chose the topic.
    pub strategy: Strategy,
}

/// Resolves records to destinations. Cheap to share (`Arc<Resolver>`); updates swap a
/// whole compiled rule set, so resolution never waits for an update.
#[derive(Debug)]
pub struct Resolver {
    rules: ArcSwap<RuleSet>,
    writer: Mutex<()>,
}

impl Resolver {
    /// Compiles `rules`; the first invalid rule is reported by its path.
    pub fn new(rules: Rules) -> Result<Self> {
        Ok(Self {
            rules: ArcSwap::from_pointee(RuleSet::compile(rules)?),
            writer: Mutex::new(()),
        })
    }

    /// Checks that `rules` compile, without building a resolver.
    pub fn check(rules: &Rules) -> Result<()> {
        RuleSet::compile(rules.clone()).map(drop)
    }

    /// Replaces every rule; on error nothing changes.
    pub fn reload(&self, rules: Rules) -> Result<()> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.rules.store(Arc::new(RuleSet::compile(rules)?));
        Ok(())
    }

    /// Applies `change` to a copy of the rules, compiles it, and swaps it in.
    fn edit<T>(&self, change: impl FnOnce(&mut Rules) -> T) -> Result<T> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut raw = self.rules.load().raw.clone();
        let out = change(&mut raw);
        self.rules.store(Arc::new(RuleSet::compile(raw)?));
        Ok(out)
    }

    /// Routes `source_id` to `topic` (a template is allowed).
    pub fn add_custom_mapping(&self, source_id: &str, topic: &str) -> Result<()> {
        self.edit(|r| {
            r.custom_mappings
                .insert(source_id.to_owned(), topic.to_owned());
        })
    }

    /// Removes the custom mapping of `source_id`; true if there was one.
    pub fn remove_custom_mapping(&self, source_id: &str) -> Result<bool> {
        self.edit(|r| r.custom_mappings.remove(source_id).is_some())
    }

    /// Appends a source-id pattern (checked after the existing ones).
    pub fn add_pattern_mapping(&self, pattern: &str, topic: &str) -> Result<()> {
        self.edit(|r| {
            r.pattern_mappings.push(PatternMapping {
                pattern: pattern.to_owned(),
                topic: topic.to_owned(),
            })
        })
    }

    /// Removes every pattern mapping with this exact pattern; true if any was removed.
    pub fn remove_pattern_mapping(&self, pattern: &str) -> Result<bool> {
        self.edit(|r| {
            let before = r.pattern_mappings.len();
            r.pattern_mappings.retain(|m| m.pattern != pattern);
            r.pattern_mappings.len() != before
        })
    }

    /// Appends a content rule (checked after the existing ones).
    pub fn add_content_rule(&self, rule: ContentRule) -> Result<()> {
        let n = self.rules.load().raw.content_rules.len();
        compile_rule(&format!("routing.content_rules[{n}]"), &rule)?;
        self.edit(|r| r.content_rules.push(rule))
    }

    /// Removes the content rule at `index`; returns it.
    pub fn remove_content_rule(&self, index: usize) -> Result<Option<ContentRule>> {
        self.edit(|r| (index < r.content_rules.len()).then(|| r.content_rules.remove(index)))
    }

    /// Changes the fallback topic.
    pub fn set_fallback_topic(&self, topic: &str) -> Result<()> {
        self.edit(|r| r.fallback_topic = topic.to_owned())
    }

    /// The content rules in force, in order.
    pub fn content_rules(&self) -> Vec<ContentRule> {
        self.rules.load().raw.content_rules.clone()
    }

    /// Where `record` goes.
    pub fn resolve(&self, record: &RecordView<'_>) -> Destination {
        let rules = self.rules.load();
        let (topic, strategy) = route(&rules, record);
        Destination {
            topic,
            key: key(&rules, record),
            strategy,
        }
    }

    /// Counts a batch of resolutions into metrics: by strategy, and by topic
    /// (`resolver_resolutions_total{strategy}`, `resolver_records_total{topic}`).
    /// Call it once per batch, not per record.
    pub fn record_metrics<'a>(&self, destinations: impl IntoIterator<Item = &'a Destination>) {
        let mut tally = Tally::default();
        for d in destinations {
            tally.add(&d.topic, d.strategy);
        }
        tally.publish();
    }
}

/// A batch's resolutions counted as they happen, published once (see
/// [`Resolver::record_metrics`]): no allocation per record.
#[derive(Debug, Default)]
pub struct Tally {
    by_strategy: [u64; 4],
    by_topic: Vec<(Arc<str>, u64)>,
}

impl Tally {
    /// Counts one record resolved to `topic` by `strategy`.
    pub fn add(&mut self, topic: &Arc<str>, strategy: Strategy) {
        self.by_strategy[strategy as usize] += 1;
        match self
            .by_topic
            .iter_mut()
            .find(|(t, _)| Arc::ptr_eq(t, topic) || t == topic)
        {
            Some((_, n)) => *n += 1,
            None => self.by_topic.push((topic.clone(), 1)),
        }
    }

    /// Publishes the counts and starts over.
    pub fn publish(&mut self) {
        let by_strategy = std::mem::take(&mut self.by_strategy);
        for (s, n) in [
            Strategy::ContentRule,
            Strategy::CustomMapping,
            Strategy::Pattern,
            Strategy::Fallback,
        ]
        .into_iter()
        .zip(by_strategy)
        {
            if n > 0 {
                metrics::counter!(crate::metrics::RESOLUTIONS, "strategy" => s.as_str())
                    .increment(n);
            }
        }
        for (topic, n) in self.by_topic.drain(..) {
            metrics::counter!(crate::metrics::RECORDS, "topic" => topic.to_string()).increment(n);
        }
    }
}

fn route(rules: &RuleSet, record: &RecordView<'_>) -> (Arc<str>, Strategy) {
    // Known sources carry their id-only routing precomputed (looked up once).
    let known = rules.by_source.get(record.source_id);
    for step in &rules.order {
        let found = match step {
            Step::CustomMappings => custom_mapping(rules, known, record),
            Step::ContentRules => content_rule(rules, record),
            Step::PatternMappings => pattern(rules, known, record),
        };
        if let Some(found) = found {
            return found;
        }
    }
    (rules.fallback.clone(), Strategy::Fallback)
}

fn content_rule(rules: &RuleSet, record: &RecordView<'_>) -> Option<(Arc<str>, Strategy)> {
    rules
        .rules
        .iter()
        .filter(|rule| matches(&rule.predicate, record.value))
        .find_map(|rule| render(&rule.target, record))
        .map(|topic| (topic, Strategy::ContentRule))
}

fn custom_mapping(
    rules: &RuleSet,
    known: Option<&SourceRoute>,
    record: &RecordView<'_>,
) -> Option<(Arc<str>, Strategy)> {
    if known.is_some_and(|r| !r.has_custom) {
        return None;
    }
    let target = rules.custom.get(record.source_id)?;
    render(target, record).map(|topic| (topic, Strategy::CustomMapping))
}

fn pattern(
    rules: &RuleSet,
    known: Option<&SourceRoute>,
    record: &RecordView<'_>,
) -> Option<(Arc<str>, Strategy)> {
    // A known source starts at its first matching pattern (already matched); others
    // are matched here.
    let (start, known) = match known {
        Some(r) => (r.first_pattern?, true),
        None => (0, false),
    };
    rules
        .patterns
        .iter()
        .enumerate()
        .skip(start)
        .filter(|(i, (re, _))| (known && *i == start) || re.is_match(record.source_id))
        .find_map(|(_, (_, target))| render(target, record))
        .map(|topic| (topic, Strategy::Pattern))
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

pub(crate) fn matches(p: &Predicate, value: &dyn Fields) -> bool {
    let Some(field) = p.field.get(value) else {
        return false;
    };
    let field = field.as_ref();
    let num = || field.as_f64();
    match &p.condition {
        Condition::Exists => !field.is_null(),
        Condition::Eq(v) => json_eq(field, v),
        Condition::Ne(v) => !json_eq(field, v),
        Condition::In(vs) => vs.iter().any(|v| json_eq(field, v)),
        Condition::Gt(x) => num().is_some_and(|n| n > *x),
        Condition::Gte(x) => num().is_some_and(|n| n >= *x),
        Condition::Lt(x) => num().is_some_and(|n| n < *x),
        Condition::Lte(x) => num().is_some_and(|n| n <= *x),
        Condition::Matches(re) => field.as_str().is_some_and(|s| re.is_match(s)),
    }
}

/// A field's value as text for templates and keys: strings, numbers and booleans. A
/// value read from a record's text comes owned, and its string is moved, not copied.
fn scalar_text(v: Cow<'_, Value>) -> Option<String> {
    match v {
        Cow::Owned(Value::String(s)) => Some(s),
        v => match v.as_ref() {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        },
    }
}

/// Renders a target; `None` when a template field is missing or empty, or the result is
/// not a usable topic name.
fn render(target: &Target, record: &RecordView<'_>) -> Option<Arc<str>> {
    let parts = match target {
        Target::Static(topic) => return Some(topic.clone()),
        Target::Template(parts) => parts,
    };
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal(s) => out.push_str(s),
            Part::SourceId | Part::SourceType | Part::Pointer(_) => {
                let text = match part {
                    Part::SourceId => record.source_id.to_owned(),
                    Part::SourceType => record.source_type.to_owned(),
                    Part::Pointer(p) => scalar_text(p.get(record.value)?)?,
                    Part::Literal(_) => unreachable!("handled above"),
                };
                if text.is_empty() {
                    return None;
                }
                out.extend(text.chars().map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '_'
                    }
                }));
            }
        }
    }
    out.truncate(249);
    (out != "." && out != ".." && !out.is_empty()).then(|| Arc::from(out))
}

fn key(rules: &RuleSet, record: &RecordView<'_>) -> Option<String> {
    match rules.keys.get(record.source_id)? {
        KeySpec::Pointer(p) => scalar_text(p.get(record.value)?),
        KeySpec::Geo {
            lat,
            lon,
            precision,
        } => {
            let lat = as_coord(lat.get(record.value)?.as_ref())?;
            let lon = as_coord(lon.get(record.value)?.as_ref())?;
            crate::geohash(lat, lon, *precision)
        }
    }
}

fn as_coord(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}
