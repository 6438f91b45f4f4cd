//! `SourceSpec`: what a connector is built from — its own parameters and the few generic
//! settings a source's client takes, typed. Connectors never see the configuration
//! model; a `stream_config::SourceConfig` converts into a spec (`From`), and a program
//! without a configuration file builds one directly.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;
use stream_config::{IngestionModeKind, SourceConfig};

/// A source as its connector sees it.
///
/// ```
/// use api_client::{Registry, SourceSpec};
///
/// let spec = SourceSpec::new("synthetic")
///     .param("records_per_second", 5)
///     .param("seed", 7);
/// let source = Registry::builtin().build("sensors", spec).unwrap();
/// # let _ = source;
/// ```
#[derive(Clone, PartialEq)]
pub struct SourceSpec {
    /// The connector's name (`http_json`, `noaa_weather`, a registered one …).
    pub source_type: String,
    /// The connector's own parameters (`custom_params` in the configuration), checked
    /// by the connector when it is built ([`crate::params`]).
    pub params: BTreeMap<String, Value>,
    /// Requests a minute the source's client may make (its rate limiter).
    pub rate_limit_per_minute: u32,
    /// How long one request may take.
    pub timeout: Duration,
    /// How long an answer is reused instead of asked again (zero: never).
    pub cache_ttl: Duration,
    /// Hosts besides the configured origin that redirects and next-page links may reach.
    pub allowed_hosts: Vec<String>,
    /// Seconds between polls (a `cron` schedule counts as a minute): the span a poll's
    /// request budget covers.
    pub poll_interval_seconds: f64,
}

impl SourceSpec {
    /// A source of type `source_type` with no parameters and the configuration's
    /// defaults for everything else.
    pub fn new(source_type: impl Into<String>) -> Self {
        Self::from(&SourceConfig::new(source_type))
    }

    /// This spec with parameter `key` set to `value`.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }
}

impl From<&SourceConfig> for SourceSpec {
    fn from(cfg: &SourceConfig) -> Self {
        let i = &cfg.ingestion;
        let poll_interval_seconds = match i.mode {
            IngestionModeKind::Batch if i.cron.is_some() => 60.0,
            IngestionModeKind::Batch => i.schedule_interval_seconds as f64,
            _ => i.polling_interval_seconds,
        };
        Self {
            source_type: cfg.source_type.clone(),
            params: cfg.custom_params.clone(),
            rate_limit_per_minute: cfg.rate_limit_per_minute,
            timeout: stream_config::seconds(cfg.timeout_seconds.max(0.001)),
            cache_ttl: stream_config::seconds(cfg.cache_ttl_seconds as f64),
            allowed_hosts: cfg.allowed_hosts.clone(),
            poll_interval_seconds,
        }
    }
}

impl From<SourceConfig> for SourceSpec {
    fn from(cfg: SourceConfig) -> Self {
        Self::from(&cfg)
    }
}

impl From<&SourceSpec> for SourceSpec {
    fn from(spec: &SourceSpec) -> Self {
        spec.clone()
    }
}

/// Parameters may hold credentials (an API key, a token, a password in a URL): only
/// their names are shown.
impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceSpec")
            .field("source_type", &self.source_type)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("poll_interval_seconds", &self.poll_interval_seconds)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_parameters_and_shows_none_of_their_values() {
        let spec = SourceSpec::new("http_json")
            .param("url", "https://user:url-secret-1@api.example/x")
            .param(
                "auth",
                serde_json::json!({"type": "bearer", "token": "tok-secret-2"}),
            );
        let text = format!("{spec:?}");
        assert!(
            text.contains("\"url\"") && text.contains("\"auth\""),
            "{text}"
        );
        for secret in ["url-secret-1", "tok-secret-2", "api.example"] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
    }

    #[test]
    fn a_configuration_becomes_the_spec_its_connector_needs() {
        let mut cfg = SourceConfig::new("noaa_weather");
        cfg.rate_limit_per_minute = 120;
        cfg.timeout_seconds = 2.5;
        cfg.cache_ttl_seconds = 30;
        cfg.allowed_hosts = vec!["*.weather.gov".into()];
        cfg.custom_params.insert("state".into(), "CA".into());
        cfg.ingestion.polling_interval_seconds = 45.0;
        let spec = SourceSpec::from(&cfg);
        assert_eq!(spec.source_type, "noaa_weather");
        assert_eq!(spec.params["state"], "CA");
        assert_eq!(spec.rate_limit_per_minute, 120);
        assert_eq!(spec.timeout, Duration::from_millis(2_500));
        assert_eq!(spec.cache_ttl, Duration::from_secs(30));
        assert_eq!(spec.allowed_hosts, ["*.weather.gov"]);
        assert_eq!(spec.poll_interval_seconds, 45.0);

        cfg.ingestion.mode = IngestionModeKind::Batch;
        cfg.ingestion.schedule_interval_seconds = 600;
        assert_eq!(SourceSpec::from(&cfg).poll_interval_seconds, 600.0);
        cfg.ingestion.cron = Some("0 * * * *".into());
        assert_eq!(SourceSpec::from(&cfg).poll_interval_seconds, 60.0);
    }
}
