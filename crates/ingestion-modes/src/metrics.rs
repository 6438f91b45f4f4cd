//! Metric names of the ingestion modes (the server adds its namespace prefix), and their
//! help text.

pub(crate) const POLLS: &str = "ingestion_polls_total";
pub(crate) const EMPTY_POLLS: &str = "ingestion_empty_polls_total";
pub(crate) const RECORDS: &str = "ingestion_records_total";
pub(crate) const ERRORS: &str = "ingestion_errors_total";
pub(crate) const MISSED_TICKS: &str = "ingestion_missed_ticks_total";
pub(crate) const BUFFER_RECORDS: &str = "ingestion_buffer_records";
pub(crate) const PANICS: &str = "ingestion_source_panics_total";
pub(crate) const LATENESS: &str = "ingestion_poll_lateness_seconds";

/// Registers the help text of every ingestion metric with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
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
    describe_histogram!(
        LATENESS,
        Unit::Seconds,
        "How long after its scheduled time a poll started (every source of the worker together: no source label, so the series count stays one at any number of sources)."
    );
}
