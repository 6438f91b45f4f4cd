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

/// One source's handles to its labelled series, each looked up in the recorder on its
/// first use and kept: a poll then counts without building label strings or searching
/// the registry (at 10,000 sources that lookup was ≈ 9 % of the CPU). A series still
/// appears only once something is counted in it, as with the `counter!` macros.
#[derive(Debug)]
pub(crate) struct SourceMeters {
    source: std::sync::Arc<str>,
    mode: String,
    polls: OnceLock<Counter>,
    empty_polls: OnceLock<Counter>,
    records: OnceLock<Counter>,
    errors: OnceLock<Counter>,
    missed_ticks: OnceLock<Counter>,
    buffer_records: OnceLock<Gauge>,
    /// The worker's one lateness series (no label), kept here like the others.
    lateness: OnceLock<Histogram>,
}

use metrics::{Counter, Gauge, Histogram};
use std::sync::OnceLock;

impl SourceMeters {
    pub(crate) fn new(source: std::sync::Arc<str>, mode: String) -> Self {
        Self {
            source,
            mode,
            polls: OnceLock::new(),
            empty_polls: OnceLock::new(),
            records: OnceLock::new(),
            errors: OnceLock::new(),
            missed_ticks: OnceLock::new(),
            buffer_records: OnceLock::new(),
            lateness: OnceLock::new(),
        }
    }

    fn by_mode<'a>(&'a self, cell: &'a OnceLock<Counter>, name: &'static str) -> &'a Counter {
        cell.get_or_init(|| {
            metrics::counter!(name, "source" => self.source.to_string(), "mode" => self.mode.clone())
        })
    }

    fn by_source<'a>(&'a self, cell: &'a OnceLock<Counter>, name: &'static str) -> &'a Counter {
        cell.get_or_init(|| metrics::counter!(name, "source" => self.source.to_string()))
    }

    pub(crate) fn polls(&self) -> &Counter {
        self.by_mode(&self.polls, POLLS)
    }

    pub(crate) fn empty_polls(&self) -> &Counter {
        self.by_mode(&self.empty_polls, EMPTY_POLLS)
    }

    pub(crate) fn records(&self) -> &Counter {
        self.by_mode(&self.records, RECORDS)
    }

    pub(crate) fn errors(&self) -> &Counter {
        self.by_source(&self.errors, ERRORS)
    }

    pub(crate) fn missed_ticks(&self) -> &Counter {
        self.by_source(&self.missed_ticks, MISSED_TICKS)
    }

    /// `ingestion_buffer_records{source}` to `n`: created by the first value of a source
    /// that buffers (continuous streaming); an empty buffer of a source that never held
    /// one creates no series.
    pub(crate) fn buffer_records(&self, n: usize) {
        match self.buffer_records.get() {
            Some(g) => g.set(n as f64),
            None if n > 0 => self
                .buffer_records
                .get_or_init(
                    || metrics::gauge!(BUFFER_RECORDS, "source" => self.source.to_string()),
                )
                .set(n as f64),
            None => {}
        }
    }

    pub(crate) fn lateness(&self) -> &Histogram {
        self.lateness.get_or_init(|| metrics::histogram!(LATENESS))
    }
}
