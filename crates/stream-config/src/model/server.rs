//! The `server` section (admin API) and `Secret`.

use super::*;

/// The admin HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the admin API listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token required by the admin API (required off loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// A second bearer token that may only read (GET routes: streams, DLQ, config,
    /// metrics, health); changes need `admin_token`. Only together with `admin_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_token: Option<Secret>,
    /// Prefix of every metric name.
    #[serde(default = "default_metrics_namespace")]
    pub metrics_namespace: String,
    /// On SIGTERM: how long sources may finish and the queue may drain into Kafka.
    /// Whatever is not acknowledged by then is dead-lettered (reason `shutdown`) and the
    /// process exits a few seconds later, also while Kafka is down.
    #[serde(default = "default_shutdown_timeout_seconds")]
    pub shutdown_timeout_seconds: f64,
    /// A connection to the admin API must send its request headers within this long.
    #[serde(default = "default_header_read_timeout_seconds")]
    pub header_read_timeout_seconds: f64,
    /// Most connections to the admin API open at once. When all are taken, a new one
    /// takes the slot of the connection waiting longest for its request headers; when
    /// all are serving requests, 4 more may probe `/health` and `/ready` only.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_token: None,
            read_token: None,
            metrics_namespace: default_metrics_namespace(),
            shutdown_timeout_seconds: default_shutdown_timeout_seconds(),
            header_read_timeout_seconds: default_header_read_timeout_seconds(),
            max_connections: default_max_connections(),
        }
    }
}

/// A secret string: `Debug` and `Display` never show it; serialization does (for
/// `save_to_file`), so dumps meant for people go through [`crate::redacted`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
