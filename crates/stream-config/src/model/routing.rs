//! The `routing` section: mappings, content rules, patterns, priority rules, order.

use super::*;

/// How records are routed to topics. Strategies apply in `order` — by default the
/// seed's: custom mappings (a source's own `topic` counts as one), content rules,
/// pattern mappings — then the fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Source id → topic.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_mappings: BTreeMap<String, String>,
    /// Rules on record content, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_rules: Vec<ContentRule>,
    /// Regexes on the source id, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pattern_mappings: Vec<PatternMapping>,
    /// Topic used when nothing else matches.
    #[serde(default = "default_fallback_topic")]
    pub fallback_topic: String,
    /// The order the strategies are tried in, each listed once (the fallback comes
    /// last). Default: the seed's, `[custom_mappings, content_rules, pattern_mappings]`;
    /// `[content_rules, custom_mappings, pattern_mappings]` lets a content rule (say,
    /// severe alerts) override a source's own topic.
    #[serde(default = "default_routing_order")]
    pub order: Vec<RoutingStep>,
    /// Rules that raise (or set) a record's queue priority by its content, first match
    /// wins, e.g. records with an `alert_id` → `critical`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_rules: Vec<PriorityRule>,
}

/// A rule on a record's content that sets its priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRule {
    /// JSON pointer to the field.
    pub field: String,
    /// Comparison to apply.
    pub operator: RuleOperator,
    /// Value to compare with (unused for `exists`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    /// The priority of matching records.
    pub priority: Priority,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            custom_mappings: BTreeMap::new(),
            content_rules: Vec::new(),
            pattern_mappings: Vec::new(),
            fallback_topic: default_fallback_topic(),
            order: default_routing_order(),
            priority_rules: Vec::new(),
        }
    }
}

/// One routing strategy, as `routing.order` lists them: the resolver's own steps.
pub use topic_resolver::Step as RoutingStep;

fn default_routing_order() -> Vec<RoutingStep> {
    RoutingStep::SEED_ORDER.to_vec()
}

/// A rule on a record's content: `field` (a JSON pointer) `operator` `value` → `topic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRule {
    /// JSON pointer to the field, e.g. `/properties/severity`.
    pub field: String,
    /// Comparison to apply.
    pub operator: RuleOperator,
    /// Value to compare with (a list for `in`, a regex for `matches`, unused for `exists`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    /// Destination topic; may be a template such as `alerts-{/properties/severity}`.
    pub topic: String,
}

// One definition with the resolver that acts on them (the config's names kept).
pub use topic_resolver::{Operator as RuleOperator, PatternMapping};
