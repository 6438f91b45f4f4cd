//! The configuration mapped onto each component's own settings: the components do not
//! know the configuration crate, so every `from_config` lives here.

use stream_config::{Priority as ConfiguredPriority, StreamConfig, ThrottlingConfig};
use throttling::ThrottleSettings;
use topic_resolver::{ContentRule, PartitionKey, Rules};

/// The queue's priority for a configured one.
pub(crate) fn priority(p: ConfiguredPriority) -> queue::Priority {
    match p {
        ConfiguredPriority::Low => queue::Priority::Low,
        ConfiguredPriority::Normal => queue::Priority::Normal,
        ConfiguredPriority::High => queue::Priority::High,
        ConfiguredPriority::Critical => queue::Priority::Critical,
    }
}

/// The queue's bounds and overflow strategy.
pub(crate) fn queue_config(cfg: &StreamConfig) -> queue::QueueConfig {
    queue::QueueConfig {
        max_items: cfg.queue_max_size,
        max_bytes: cfg.queue_max_bytes,
        overflow: match cfg.queue_overflow_strategy {
            stream_config::OverflowStrategy::DropOldest => queue::OverflowStrategy::DropOldest,
            stream_config::OverflowStrategy::DropNewest => queue::OverflowStrategy::DropNewest,
            stream_config::OverflowStrategy::Block => queue::OverflowStrategy::Block,
        },
        scheduling: queue::Scheduling::Strict,
    }
}

/// The throttle's tuning from the `throttling` section.
pub(crate) fn throttle_settings(c: &ThrottlingConfig) -> ThrottleSettings {
    ThrottleSettings {
        enabled: c.enabled,
        min_rate: c.min_send_rate,
        max_rate: c.max_send_rate,
        target_lag: c.target_consumer_lag,
        critical_lag: c.critical_consumer_lag,
        factor: c.adjustment_factor,
        window: std::time::Duration::from_secs(c.window_size_seconds),
        max_samples: c.metric_sample_size,
        max_backoff_level: c.max_backoff_level,
        recovery_checks: c.recovery_checks,
        ..ThrottleSettings::default()
    }
}

/// The CRITICAL lane's throttle: `critical_share` of the send-rate bounds, not fed lag
/// (alerts flow even while the normal lane is slowed).
pub(crate) fn critical_throttle_settings(c: &ThrottlingConfig) -> ThrottleSettings {
    let mut s = throttle_settings(c);
    s.max_rate = c.max_send_rate * c.critical_share;
    s.min_rate = c.min_send_rate.min(s.max_rate);
    s
}

/// The routing section plus each source's own `topic` (a custom mapping that
/// `routing.custom_mappings` overrides) and `partition_key`.
pub(crate) fn routing_rules(cfg: &StreamConfig) -> Rules {
    let mut rules = Rules {
        content_rules: cfg
            .routing
            .content_rules
            .iter()
            .map(|r| ContentRule {
                field: r.field.clone(),
                operator: r.operator,
                value: r.value.clone(),
                topic: r.topic.clone(),
            })
            .collect(),
        pattern_mappings: cfg.routing.pattern_mappings.clone(),
        fallback_topic: cfg.routing.fallback_topic.clone(),
        order: cfg.routing.order.clone(),
        ..Rules::default()
    };
    for (id, src) in &cfg.sources {
        if let Some(topic) = &src.topic {
            rules.custom_mappings.insert(id.clone(), topic.clone());
        }
        // Validation guarantees exactly one of `pointer` and `geo`.
        let key = src
            .partition_key
            .as_ref()
            .and_then(|k| match (&k.pointer, &k.geo) {
                (Some(p), _) => Some(PartitionKey::Pointer(p.clone())),
                (None, Some(g)) => Some(PartitionKey::Geo {
                    lat: g.lat.clone(),
                    lon: g.lon.clone(),
                    precision: g.precision,
                }),
                (None, None) => None,
            });
        if let Some(key) = key {
            rules.keys.insert(id.clone(), key);
        }
        rules
            .source_types
            .insert(id.clone(), src.source_type.clone());
    }
    rules
        .custom_mappings
        .extend(cfg.routing.custom_mappings.clone());
    rules
}

/// A worker's settings from the `cluster` section (no `worker_id`: `worker-<pid>`).
pub(crate) fn cluster_settings(c: &stream_config::ClusterConfig) -> cluster::ClusterSettings {
    cluster::ClusterSettings {
        group_id: c.group_id.clone(),
        worker_id: if c.worker_id.is_empty() {
            cluster::default_worker_id()
        } else {
            c.worker_id.clone()
        },
        slots: c.slots,
        coordination_topic: c.coordination_topic(),
        state_topic: c.state_topic(),
        session_timeout: std::time::Duration::from_millis(c.session_timeout_ms),
        handover_timeout: std::time::Duration::from_secs(c.handover_timeout_seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_agree_with_the_components_own() {
        assert_eq!(
            throttle_settings(&ThrottlingConfig::default()),
            ThrottleSettings::default()
        );
        let rules = routing_rules(&StreamConfig::default());
        assert_eq!(rules.fallback_topic, Rules::default().fallback_topic);
        assert_eq!(
            priority(ConfiguredPriority::default()),
            queue::Priority::default()
        );
    }
}
