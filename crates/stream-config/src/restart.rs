//! Which keys take effect only at a restart, and which of them an update changes: a
//! runtime update (`PUT /config`, SIGHUP) that touches one is refused with the keys
//! named rather than silently ignored.

use crate::StreamConfig;

/// Sections read once, at start: a change to them is refused at run time (with the keys
/// named) rather than silently ignored (`cluster` too: the group is joined at start).
/// `throttling.consumer_groups` too: the lag probe is built at start.
/// Everything else applies live: sources, routing and priority rules, `enable_dlq`,
/// `metadata_in_payload`, the DLQ's retry policy, the queue's bounds and overflow
/// strategy, the throttle's rates, lag targets and backoff.
pub const RESTART_ONLY: &[&str] = &[
    "kafka",
    "throttling.consumer_groups",
    "dlq.url",
    "topics",
    "server",
    "file_roots",
    "cluster",
];

impl StreamConfig {
    /// The restart-only keys ([`RESTART_ONLY`]) whose values differ between `self` and
    /// `next`, as paths: what a runtime update may not change.
    pub fn restart_only_changes(&self, next: &StreamConfig) -> Vec<String> {
        let old = self;
        fn at<'v>(v: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
            path.split('.').try_fold(v, |v, k| v.get(k))
        }
        fn diff(
            path: String,
            a: Option<&serde_json::Value>,
            b: Option<&serde_json::Value>,
            out: &mut Vec<String>,
        ) {
            match (a, b) {
                (Some(serde_json::Value::Object(x)), Some(serde_json::Value::Object(y))) => {
                    let keys: std::collections::BTreeSet<&String> =
                        x.keys().chain(y.keys()).collect();
                    for k in keys {
                        diff(format!("{path}.{k}"), x.get(k), y.get(k), out);
                    }
                }
                (a, b) if a != b => out.push(path),
                _ => {}
            }
        }
        let (a, b) = (
            serde_json::to_value(old).unwrap_or_default(),
            serde_json::to_value(next).unwrap_or_default(),
        );
        let mut out = Vec::new();
        for key in RESTART_ONLY {
            diff((*key).to_owned(), at(&a, key), at(&b, key), &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_restart_only_keys_that_changed_are_named_by_their_path() {
        let old = StreamConfig::default();
        let mut next = old.clone();
        assert!(old.restart_only_changes(&next).is_empty());
        next.kafka.linger_ms += 1;
        next.throttling.max_send_rate += 1.0;
        next.throttling.consumer_groups = Some(vec!["readers".into()]);
        next.metadata_in_payload = !old.metadata_in_payload;
        assert_eq!(
            old.restart_only_changes(&next),
            ["kafka.linger_ms", "throttling.consumer_groups"]
        );
    }
}
