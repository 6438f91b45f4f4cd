//! Metric names of the resolver (the server adds its namespace prefix), and their help
//! text.

pub(crate) const RESOLUTIONS: &str = "resolver_resolutions_total";
pub(crate) const RECORDS: &str = "resolver_records_total";

/// Registers the help text of every resolver metric with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, Unit};
    describe_counter!(
        RESOLUTIONS,
        Unit::Count,
        "Records resolved, by the strategy that chose the topic."
    );
    describe_counter!(
        RECORDS,
        Unit::Count,
        "Records routed, by destination topic."
    );
}
