//! Hand-written `Debug` of the configuration sections that hold secrets in plain strings
//! (`kafka.librdkafka_options`, `dlq.url`, a source's `custom_params`): shown as their
//! redacted tree, the same as `print-config` shows them, so a `{:?}` in a log line or a
//! panic message never carries a credential.

use std::fmt;

use serde::Serialize;

use crate::model::{DlqConfig, KafkaConfig, SourceConfig};
use crate::redact::redact_tree;

fn redacted_debug(f: &mut fmt::Formatter<'_>, name: &str, value: &impl Serialize) -> fmt::Result {
    let mut tree = serde_yaml::to_value(value).unwrap_or(serde_yaml::Value::Null);
    redact_tree(&mut tree);
    write!(f, "{name} ")?;
    fmt::Debug::fmt(&tree, f)
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted_debug(f, "KafkaConfig", self)
    }
}

impl fmt::Debug for DlqConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted_debug(f, "DlqConfig", self)
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted_debug(f, "SourceConfig", self)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{SourceConfig, StreamConfig};

    #[test]
    fn debug_of_a_config_shows_no_secret() {
        let mut cfg = StreamConfig::default();
        cfg.kafka
            .librdkafka_options
            .insert("sasl.password".into(), "rd-secret-1".into());
        cfg.dlq.url = "postgres://app:pg-secret-2@db/dlq".into();
        let mut src = SourceConfig::new("http_json");
        src.custom_params.insert(
            "headers".into(),
            serde_json::json!({"Cookie": "ck-secret-3", "Accept": "text/csv"}),
        );
        src.custom_params
            .insert("url".into(), "https://tok-secret-4@h.example/x".into());
        cfg.sources.insert("web".into(), src);
        let text = format!("{cfg:?}");
        for n in 1..=4 {
            assert!(!text.contains(&format!("secret-{n}")), "{text}");
        }
        assert!(
            text.contains("text/csv") && text.contains("sasl.password"),
            "{text}"
        );
    }
}
