//! Metric names of the throttle (the server adds its namespace prefix). Label `scope` is
//! `global` or a source id.

pub(crate) const STATE: &str = "throttle_state";
pub(crate) const BACKOFF_LEVEL: &str = "throttle_backoff_level";
pub(crate) const RATE: &str = "throttle_send_rate";
pub(crate) const LAG_AVG: &str = "throttle_lag_avg";
pub(crate) const LAG_P95: &str = "throttle_lag_p95";
pub(crate) const THROTTLES: &str = "throttle_throttles_total";
pub(crate) const RATE_INCREASES: &str = "throttle_rate_increases_total";
pub(crate) const RATE_DECREASES: &str = "throttle_rate_decreases_total";
