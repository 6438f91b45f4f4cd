//! One authoritative answer per record: which topic, and which key.
//!
//! Strategies apply in this order, first answer wins:
//! 1. **content rules** on the record (`field` JSON pointer, operator, value), in declared order;
//! 2. **custom mappings** by source id (a source's own `topic` counts as one;
//!    `routing.custom_mappings` wins over it);
//! 3. **patterns**: regexes on the source id, in declared order;
//! 4. the **fallback** topic.
//!
//! A topic may be a template (`wildfire-{source_type}`, `alerts-{/properties/severity}`);
//! the rendered value is sanitised into a valid Kafka topic name, and an empty or missing
//! field makes that strategy fall through to the next.
//!
//! ```
//! use serde_json::json;
//! use topic_resolver::{ContentRule, Operator, PatternMapping, RecordView, Resolver, Rules, Strategy};
//!
//! let resolver = Resolver::new(Rules {
//!     content_rules: vec![ContentRule {
//!         field: "/severity".into(),
//!         operator: Operator::Eq,
//!         value: json!("critical"),
//!         topic: "alerts-{source_type}".into(),
//!     }],
//!     pattern_mappings: vec![PatternMapping {
//!         pattern: r"^sensor_\d+".into(),
//!         topic: "wildfire-iot-sensors".into(),
//!     }],
//!     ..Rules::default()
//! })
//! .unwrap();
//!
//! let reading = json!({"severity": "low", "temp": 31.5});
//! let d = resolver.resolve(&RecordView { source_id: "sensor_17", source_type: "synthetic", value: &reading });
//! assert_eq!((&*d.topic, d.strategy), ("wildfire-iot-sensors", Strategy::Pattern));
//!
//! let alert = json!({"severity": "critical"});
//! let d = resolver.resolve(&RecordView { source_id: "sensor_17", source_type: "synthetic", value: &alert });
//! assert_eq!((&*d.topic, d.strategy), ("alerts-synthetic", Strategy::ContentRule));
//! ```

mod compile;
mod geohash;
mod metrics;
mod resolver;
mod rules;

pub use compile::{Fields, Predicate};
pub use geohash::geohash;
pub use metrics::describe_metrics;
pub use resolver::{Destination, Error, RecordView, Resolver, Result, Strategy, Tally};
pub use rules::{
    check_order, check_topic, check_topic_name, ContentRule, Operator, PartitionKey,
    PatternMapping, Rules, Step,
};
