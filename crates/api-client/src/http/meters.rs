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
    /// The configured URL's host (and port when given): `api_request_duration_seconds`'s
    /// label, so its series grow with the upstreams, not with the sources.
    host: String,
    latency: OnceLock<Histogram>,
    bytes: OnceLock<Counter>,
    breaker: OnceLock<Gauge>,
    /// `api_requests_total` by status (`None`: no response came), in the order first seen.
    requests: Mutex<Vec<(Option<u16>, Counter)>>,
}

impl Meters {
    pub(super) fn new(source: &str, url: &reqwest::Url) -> Self {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        Self {
            source: source.to_owned(),
            host,
            latency: OnceLock::new(),
            bytes: OnceLock::new(),
            breaker: OnceLock::new(),
            requests: Mutex::new(Vec::new()),
        }
    }

    fn counter<'a>(&'a self, cell: &'a OnceLock<Counter>, name: &'static str) -> &'a Counter {
        cell.get_or_init(|| metrics::counter!(name, "source" => self.source.clone()))
    }

    pub(super) fn latency(&self) -> &Histogram {
        self.latency
            .get_or_init(|| metrics::histogram!(m::LATENCY, "host" => self.host.clone()))
    }

    pub(super) fn bytes(&self) -> &Counter {
        self.counter(&self.bytes, m::BYTES)
    }

    /// `api_breaker_state{source}` to `state` (0 closed): created the first time the
    /// breaker leaves closed, so a source whose breaker never opened has no series.
    pub(super) fn breaker(&self, state: u8) {
        match self.breaker.get() {
            Some(g) => g.set(f64::from(state)),
            None if state != 0 => self
                .breaker
                .get_or_init(|| metrics::gauge!(m::BREAKER, "source" => self.source.clone()))
                .set(f64::from(state)),
            None => {}
        }
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
        let url = reqwest::Url::parse("https://user:secret@api.example:8443/v1?key=k").unwrap();
        let meters = Meters::new("src_1", &url);
        let other = Meters::new("src_2", &url);
        assert!(
            snapshots.snapshot().into_vec().is_empty(),
            "nothing counted yet"
        );
        meters.requests(Some(304)).increment(1);
        meters.requests(Some(304)).increment(1);
        meters.requests(None).increment(1);
        meters.breaker(2);
        meters.breaker(0);
        // A breaker that never opened has no series.
        other.breaker(0);
        meters.latency().record(0.5);
        other.latency().record(0.25);
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
        // Once open, the gauge stays and shows it closed again.
        assert_eq!(find(m::BREAKER, None), Some(&DebugValue::Gauge(0.0.into())));
        // One histogram for both sources of the host, labelled by host and port only
        // (never the user-info or the query).
        let latency: Vec<&Seen> = seen.iter().filter(|(n, _, _)| n == m::LATENCY).collect();
        assert_eq!(latency.len(), 1, "{seen:?}");
        assert_eq!(
            latency[0].1,
            [("host".to_owned(), "api.example:8443".to_owned())]
        );
        assert!(matches!(&latency[0].2, DebugValue::Histogram(v) if v.len() == 2));
        assert_eq!(seen.len(), 4, "{seen:?}");
    }
}
