//! One HTTP source's handles to its labelled series, each looked up in the recorder on
//! its first use and kept: a poll then counts without building label strings or
//! searching the registry (at 10,000 sources that lookup was ≈ 9 % of the CPU). A
//! series still appears only once something is counted in it, as with the macros.

use std::sync::{Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram};

use crate::metrics as m;

#[derive(Debug)]
pub(super) struct Meters {
    source: String,
    latency: OnceLock<Histogram>,
    not_modified: OnceLock<Counter>,
    bytes: OnceLock<Counter>,
    records: OnceLock<Counter>,
    breaker: OnceLock<Gauge>,
    /// `api_requests_total` by status (`None`: no response came), in the order first seen.
    requests: Mutex<Vec<(Option<u16>, Counter)>>,
}

impl Meters {
    pub(super) fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            latency: OnceLock::new(),
            not_modified: OnceLock::new(),
            bytes: OnceLock::new(),
            records: OnceLock::new(),
            breaker: OnceLock::new(),
            requests: Mutex::new(Vec::new()),
        }
    }

    fn counter<'a>(&'a self, cell: &'a OnceLock<Counter>, name: &'static str) -> &'a Counter {
        cell.get_or_init(|| metrics::counter!(name, "source" => self.source.clone()))
    }

    pub(super) fn latency(&self) -> &Histogram {
        self.latency
            .get_or_init(|| metrics::histogram!(m::LATENCY, "source" => self.source.clone()))
    }

    pub(super) fn not_modified(&self) -> &Counter {
        self.counter(&self.not_modified, m::NOT_MODIFIED)
    }

    pub(super) fn bytes(&self) -> &Counter {
        self.counter(&self.bytes, m::BYTES)
    }

    pub(super) fn records(&self) -> &Counter {
        self.counter(&self.records, m::RECORDS)
    }

    pub(super) fn breaker(&self) -> &Gauge {
        self.breaker
            .get_or_init(|| metrics::gauge!(m::BREAKER, "source" => self.source.clone()))
    }

    /// `api_requests_total{source, status}`; `status` `None` is `error`.
    pub(super) fn requests(&self, status: Option<u16>) -> Counter {
        let mut seen = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = seen.iter().find(|(s, _)| *s == status) {
            return c.clone();
        }
        let label = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        let c = metrics::counter!(m::REQUESTS, "source" => self.source.clone(), "status" => label);
        seen.push((status, c.clone()));
        c
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    /// A series: name, labels, value.
    type Seen = (String, Vec<(String, String)>, DebugValue);

    #[test]
    fn series_appear_on_first_count_with_the_macros_names_and_labels() {
        let recorder = DebuggingRecorder::new();
        let snapshots = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let meters = Meters::new("src_1");
        assert!(
            snapshots.snapshot().into_vec().is_empty(),
            "nothing counted yet"
        );
        meters.requests(Some(304)).increment(1);
        meters.requests(Some(304)).increment(1);
        meters.requests(None).increment(1);
        meters.not_modified().increment(2);
        let seen: Vec<Seen> = snapshots
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(k, _, _, v)| {
                let key = k.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                (key.name().to_owned(), labels, v)
            })
            .collect();
        let find = |name: &str, status: Option<&str>| {
            seen.iter()
                .find(|(n, l, _)| {
                    n == name
                        && l.iter().any(|(k, v)| k == "source" && v == "src_1")
                        && status.is_none_or(|s| l.iter().any(|(k, v)| k == "status" && v == s))
                })
                .map(|(_, _, v)| v)
        };
        assert_eq!(
            find(m::REQUESTS, Some("304")),
            Some(&DebugValue::Counter(2))
        );
        assert_eq!(
            find(m::REQUESTS, Some("error")),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(find(m::NOT_MODIFIED, None), Some(&DebugValue::Counter(2)));
        assert_eq!(seen.len(), 3, "{seen:?}");
    }
}
