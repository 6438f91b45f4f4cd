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
pub(crate) const WATCHED_GROUPS: &str = "throttle_watched_groups";
pub(crate) const GROUP_LAG: &str = "throttle_group_lag";
/// The seed's name: rate changes since start, as a gauge.
pub(crate) const SEED_RATE_ADJUSTMENTS: &str = "throttle_rate_adjustments";

/// Registers the help text of every throttling metric with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_gauge!(
        STATE,
        "Throttle state by scope: 0 normal, 1 moderate, 2 critical."
    );
    describe_gauge!(
        BACKOFF_LEVEL,
        Unit::Count,
        "Exponential backoff level in the critical state, by scope."
    );
    describe_gauge!(
        WATCHED_GROUPS,
        Unit::Count,
        "Consumer groups whose lag the last reading summed, by scope."
    );
    describe_gauge!(
        GROUP_LAG,
        Unit::Count,
        "Consumer lag of one watched group at the last reading (the first 20 groups by name), by scope and group."
    );
    describe_gauge!(RATE, "Allowed send rate in records per second, by scope.");
    describe_gauge!(
        LAG_AVG,
        Unit::Count,
        "Average consumer lag in the window, by scope."
    );
    describe_gauge!(
        LAG_P95,
        Unit::Count,
        "95th percentile consumer lag in the window, by scope."
    );
    describe_counter!(
        THROTTLES,
        Unit::Count,
        "Checks that delayed sending, by scope."
    );
    describe_counter!(
        RATE_INCREASES,
        Unit::Count,
        "Send rate increases (recovery steps), by scope."
    );
    describe_counter!(
        RATE_DECREASES,
        Unit::Count,
        "Send rate decreases under lag, by scope."
    );
    describe_gauge!(
        SEED_RATE_ADJUSTMENTS,
        Unit::Count,
        "Send rate changes since start, up and down (the seed's `throttle_rate_adjustments`), by scope."
    );
}
