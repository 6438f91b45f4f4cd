//! Where the throttle's lag comes from: the consumer groups of `throttling.consumer_groups`
//! (absent: discovered on the cluster; `[]`: none), and what health shows of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use stream_config::StreamConfig;
use throttling::LagProbe;

/// The lag behind the throttle, as health shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LagHealth {
    /// `discovered` (no `consumer_groups` key: every group with commits on the
    /// pipeline's topics), `listed` (the key's groups), `off` (`consumer_groups: []`) or
    /// `custom` (a probe given to the builder).
    pub mode: &'static str,
    /// The groups of the last reading, with their lag (the throttle sums them).
    pub watched_groups: BTreeMap<String, i64>,
    /// The last reading's failure, until a reading succeeds (the throttle stays as it
    /// was meanwhile).
    pub error: Option<String>,
}

/// The consumer groups of this service itself, never watched: cluster mode's worker
/// group and the state topic's reader.
pub(crate) fn own_groups(cfg: &StreamConfig) -> Vec<String> {
    vec![
        cfg.cluster.group_id.clone(),
        format!("{}.reader", cfg.cluster.state_topic()),
    ]
}

/// The probe for `cfg` (unless one is `given`) and its mode for health.
pub(crate) fn probe_for(
    cfg: &StreamConfig,
    given: Option<Arc<dyn LagProbe>>,
) -> (Option<Arc<dyn LagProbe>>, &'static str) {
    if let Some(p) = given {
        return (Some(p), "custom");
    }
    // Without groups only `max_send_rate` applies: throttling the drain on the queue's
    // own fill is a positive feedback loop (a backlog slows the drain, which grows the
    // backlog) — the broker-outage scenario left the rate at 1 record/s with 90 k queued.
    match &cfg.throttling.consumer_groups {
        Some(groups) if groups.is_empty() => (None, "off"),
        Some(groups) => (
            Some(Arc::new(producer::KafkaLagProbe::new(
                producer::client_config(&cfg.kafka),
                groups.clone(),
                cfg.static_topics(),
            ))),
            "listed",
        ),
        None => (
            Some(Arc::new(producer::KafkaLagProbe::discovering(
                producer::client_config(&cfg.kafka),
                cfg.static_topics(),
                own_groups(cfg),
            ))),
            "discovered",
        ),
    }
}

impl crate::StreamManager {
    /// Where the throttle's lag comes from and the groups it watches.
    pub fn lag_health(&self) -> LagHealth {
        let global = self.shared.throttle.global();
        LagHealth {
            mode: self.lag_mode,
            watched_groups: global.watched_groups(),
            error: global.probe_error(),
        }
    }
}
