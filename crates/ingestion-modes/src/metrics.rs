//! Metric names of the ingestion modes (the server adds its namespace prefix), and their
//! help text.

pub(crate) const POLLS: &str = "ingestion_polls_total";
pub(crate) const EMPTY_POLLS: &str = "ingestion_empty_polls_total";
pub(crate) const RECORDS: &str = "ingestion_records_total";
pub(crate) const ERRORS: &str = "ingestion_errors_total";
pub(crate) const MISSED_TICKS: &str = "ingestion_missed_ticks_total";
pub(crate) const BUFFER_RECORDS: &str = "ingestion_buffer_records";
pub(crate) const PANICS: &str = "ingestion_source_panics_total";

/// Registers the help text of every ingestion metric with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_counter!(POLLS, Unit::Count, "Polls of a source, by source and mode.");
    describe_counter!(
        EMPTY_POLLS,
        Unit::Count,
        "Polls that returned no record, by source and mode."
    );
    describe_counter!(
        RECORDS,
        Unit::Count,
        "Records emitted by polls, by source and mode."
    );
    describe_counter!(ERRORS, Unit::Count, "Failed polls, by source.");
    describe_counter!(
        MISSED_TICKS,
        Unit::Count,
        "Schedule ticks skipped because a poll was still running, by source."
    );
    describe_gauge!(
        BUFFER_RECORDS,
        Unit::Count,
        "Records held in a streaming source's buffer, by source."
    );
    describe_counter!(
        PANICS,
        Unit::Count,
        "Polls whose source panicked (the stream shows it failing and polls again after a backoff), by source."
    );
}
