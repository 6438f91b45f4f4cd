//! NOAA by state: the latest observation of every observation station of a state, swept
//! round-robin within the source's rate limit, and the state's active alerts.
//!
//! The station list comes from `{base}/stations?state=XX` (GeoJSON, paginated by its
//! `/pagination/next` link) and is refreshed every `stations_refresh_minutes`. Each poll
//! asks for the latest observation of as many stations as the poll's request budget
//! leaves (`rate_limit_per_minute × poll interval ÷ 60`, less the alerts request and any
//! station-list pages), in station-id order from where the last poll stopped; a sweep
//! ends at the last station (a poll never wraps into the next sweep), so a sweep takes
//! ⌈stations ÷ stations per poll⌉ polls. Everything remembered — the list, the position,
//! the newest observation emitted per station, the alerts' own fetch state — is in the
//! cursor (a [`MultiState`]: `alerts XX` as before, `stations XX` the sweep), so it
//! advances only when the records it guards have settled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::Url;
use serde::Serialize;
use serde_json::Value;

use super::noaa_fields::Fields;
use super::noaa_state::{valid_id, SweepState, MAX_STATIONS};
use super::MultiState;
use crate::http::HttpApiClient;
use crate::Record;
use crate::{Cursor, Error, Fetch, PartStatus, Rejected, Source};

/// Most requests one poll plans for (a year-long interval at the top rate stays sane).
pub(crate) const MAX_REQUESTS_PER_POLL: u64 = 10_000;
/// Most pages of one station-list walk (NWS pages hold up to 500 stations).
const MAX_LIST_PAGES: u32 = 50;
/// Observation requests in flight at once (the shared rate limiter paces them).
const IN_FLIGHT: usize = 4;
/// An observation timestamp later than now by more than this is not remembered (as an
/// HTTP source's default `max_cursor_skew_seconds`).
const MAX_SKEW_SECONDS: i64 = 300;

/// What `/streams/{id}` shows of a sweep (`Source::progress`).
#[derive(Debug, Clone, Default, Serialize)]
struct Progress {
    kind: &'static str,
    state: String,
    stations_known: usize,
    stations_fetched_this_sweep: usize,
    sweeps_completed: u64,
    last_sweep_seconds: Option<f64>,
    list_refreshed_at: Option<String>,
    requests_per_poll: u32,
    stations_per_poll: u32,
    polls_per_sweep: u64,
}

/// One station's answer.
enum Answer {
    New(Record, i64),
    Old,
    Missing,
    Rejected(Rejected),
    Failed(Error),
}

/// `state` without `stations`: every station of the state, swept round-robin.
#[derive(Debug)]
pub(crate) struct StateSweep {
    source_id: String,
    state: String,
    /// The state's active alerts (sharing the limiter), if enabled.
    alerts: Option<Arc<HttpApiClient>>,
    /// Station list and observations.
    obs: Arc<Observer>,
    /// Requests one poll may make: `rate_limit_per_minute × interval ÷ 60`.
    requests_per_poll: u32,
    refresh: Duration,
    progress: Mutex<Option<Progress>>,
    status: Mutex<PartStatus>,
}

impl StateSweep {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        source_id: &str,
        state: String,
        base: String,
        alerts: Option<Arc<HttpApiClient>>,
        http: Arc<HttpApiClient>,
        fields: Fields,
        requests_per_poll: u32,
        refresh: Duration,
    ) -> Self {
        let status = PartStatus {
            name: format!("{base}/stations/{{id}}/observations/latest (state {state})"),
            ..PartStatus::default()
        };
        let obs = Observer {
            state: state.clone(),
            base,
            http,
            fields,
            names: Mutex::new(HashMap::new()),
        };
        Self {
            source_id: source_id.to_owned(),
            state,
            alerts,
            obs: Arc::new(obs),
            requests_per_poll: requests_per_poll.max(1),
            refresh,
            progress: Mutex::new(None),
            status: Mutex::new(status),
        }
    }

    fn alerts_label(&self) -> String {
        format!("alerts {}", self.state)
    }

    fn sweep_label(&self) -> String {
        format!("stations {}", self.state)
    }

    fn note(&self, st: &SweepState, stations_per_poll: u32) {
        let known = st.stations.len();
        let per_poll = u64::from(stations_per_poll.max(1));
        let progress = Progress {
            kind: "noaa_state_sweep",
            state: self.state.clone(),
            stations_known: known,
            stations_fetched_this_sweep: st.pos,
            sweeps_completed: st.sweeps,
            last_sweep_seconds: st.last_sweep_ms.map(|ms| ms as f64 / 1000.0),
            list_refreshed_at: (st.listed_at > 0)
                .then(|| u64::try_from(st.listed_at).ok())
                .flatten()
                .map(|s| crate::time::iso8601(SystemTime::UNIX_EPOCH + Duration::from_secs(s))),
            requests_per_poll: self.requests_per_poll,
            stations_per_poll,
            polls_per_sweep: (known as u64).div_ceil(per_poll),
        };
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(progress);
    }

    fn note_failures(&self, failures: &[String]) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.last_status = self
            .obs
            .http
            .parts()
            .into_iter()
            .next()
            .and_then(|p| p.last_status);
        match failures.last() {
            Some(f) => {
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                status.last_error = Some(f.clone());
            }
            None => status.consecutive_failures = 0,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait]
impl Source for StateSweep {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, Error> {
        let mut parts = cursor
            .and_then(|c| serde_json::from_str::<MultiState>(&c.0).ok())
            .map(|m| m.parts)
            .unwrap_or_default();
        let before = parts.clone();
        let (alerts_label, sweep_label) = (self.alerts_label(), self.sweep_label());
        let mut st = SweepState::decode(parts.get(&sweep_label));
        let mut fetch = Fetch::default();
        let (mut answered, mut errors) = (0u32, Vec::<Error>::new());
        let mut requests = 0u32;
        if let Some(alerts) = &self.alerts {
            requests = requests.saturating_add(1);
            let from = parts.get(&alerts_label).cloned().map(Cursor);
            match alerts.fetch(from.as_ref()).await {
                Ok(f) => {
                    answered += 1;
                    fetch.records.extend(f.records);
                    fetch.rejected.extend(f.rejected);
                    let label = &alerts_label;
                    fetch
                        .failures
                        .extend(f.failures.iter().map(|m| format!("{label}: {m}")));
                    if let Some(c) = f.next_cursor {
                        parts.insert(alerts_label.clone(), c.0);
                    }
                }
                Err(e) => {
                    fetch.failures.push(format!("{alerts_label}: {e}"));
                    errors.push(e);
                }
            }
        }
        let now = now_ms() / 1000;
        let refresh = i64::try_from(self.refresh.as_secs()).unwrap_or(i64::MAX);
        let age = now.saturating_sub(st.listed_at);
        if st.stations.is_empty() || !(0..refresh).contains(&age) {
            match self.obs.list(&mut requests).await {
                Ok(ids) => {
                    answered += 1;
                    if ids.is_empty() {
                        tracing::warn!(state = %self.state, "the station list of {} is empty: no observations to sweep", self.state);
                    }
                    st.relist(ids, now);
                }
                Err(e) => {
                    fetch
                        .failures
                        .push(format!("station list of {}: {e}", self.state));
                    errors.push(e);
                }
            }
        }
        let per_poll = self.requests_per_poll.saturating_sub(requests).max(1);
        if st.pos == 0 && !st.stations.is_empty() {
            st.sweep_started_ms = now_ms();
        }
        let end = st
            .pos
            .saturating_add(per_poll as usize)
            .min(st.stations.len());
        let mut failures_this_poll = Vec::new();
        'sweep: while st.pos < end {
            let chunk_end = st.pos.saturating_add(IN_FLIGHT).min(end);
            let mut tasks = tokio::task::JoinSet::new();
            for i in st.pos..chunk_end {
                let (id, seen) = st.stations[i].clone();
                let obs = self.obs.clone();
                tasks.spawn(async move { (i, obs.observation(&id, seen).await) });
            }
            let mut answers: Vec<(usize, Answer)> = Vec::with_capacity(IN_FLIGHT);
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(a) => answers.push(a),
                    Err(e) => errors.push(Error::Io(format!("an observation task died: {e}"))),
                }
            }
            answers.sort_by_key(|(i, _)| *i);
            let mut chunk_failed = 0;
            for (i, answer) in answers {
                let id = &st.stations[i].0;
                match answer {
                    Answer::New(record, at) => {
                        answered += 1;
                        fetch.records.push(record);
                        if at <= now.saturating_add(MAX_SKEW_SECONDS) {
                            st.stations[i].1 = at;
                        } else {
                            // Delivered, but not remembered: one far-future timestamp
                            // must not hide the station's later observations.
                            let source = self.source_id.clone();
                            metrics::counter!(crate::metrics::CURSOR_IGNORED, "source" => source)
                                .increment(1);
                            tracing::warn!(station = %id, timestamp = at, "an observation from the future; its record is kept, the station's last timestamp is not moved");
                        }
                    }
                    Answer::Old | Answer::Missing => answered += 1,
                    Answer::Rejected(r) => {
                        answered += 1;
                        fetch.rejected.push(r);
                    }
                    Answer::Failed(e) => {
                        chunk_failed += 1;
                        failures_this_poll.push(format!("station {id}: {e}"));
                        errors.push(e);
                    }
                }
            }
            let chunk_len = chunk_end - st.pos;
            st.pos = chunk_end;
            if chunk_failed == chunk_len {
                // A whole chunk failed past its retries: the upstream is struggling, so
                // the rest of this poll's stations wait for the next poll.
                break 'sweep;
            }
        }
        fetch.failures.extend(failures_this_poll);
        if answered == 0 {
            if let Some(e) = errors.pop() {
                self.note_failures(&fetch.failures);
                return Err(e);
            }
        }
        if !st.stations.is_empty() && st.pos >= st.stations.len() {
            st.sweeps = st.sweeps.saturating_add(1);
            st.last_sweep_ms = Some(now_ms().saturating_sub(st.sweep_started_ms).max(0));
            st.pos = 0;
        }
        self.note(&st, per_poll);
        self.note_failures(&fetch.failures);
        if let Ok(text) = serde_json::to_string(&st) {
            parts.insert(sweep_label.clone(), text);
        }
        parts.retain(|label, _| *label == alerts_label || *label == sweep_label);
        if parts != before {
            fetch.next_cursor = serde_json::to_string(&MultiState { parts })
                .ok()
                .map(Cursor);
        }
        fetch.changed = !fetch.records.is_empty() || !fetch.rejected.is_empty();
        Ok(fetch)
    }

    fn parts(&self) -> Vec<PartStatus> {
        let mut parts = self.alerts.as_ref().map(|a| a.parts()).unwrap_or_default();
        parts.push(
            self.status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        );
        parts
    }

    fn progress(&self) -> Option<Value> {
        let p = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        serde_json::to_value(p).ok()
    }
}

/// The station list and observations of one state (shared with the spawned requests).
#[derive(Debug)]
struct Observer {
    state: String,
    base: String,
    /// Its own URL is `{base}/stations`; it shares the source's rate limiter.
    http: Arc<HttpApiClient>,
    fields: Fields,
    /// Station names from the last list (not persisted: the cursor stays compact).
    names: Mutex<HashMap<String, String>>,
}

impl Observer {
    /// Walks the station list; `requests` counts its pages.
    async fn list(&self, requests: &mut u32) -> Result<Vec<String>, Error> {
        let mut url = Url::parse(&format!("{}/stations", self.base))
            .map_err(|e| Error::Io(format!("station list URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("state", &self.state)
            .append_pair("limit", "500");
        let mut ids = Vec::new();
        let mut names = HashMap::new();
        for _ in 0..MAX_LIST_PAGES {
            *requests = requests.saturating_add(1);
            let (_, _, body) = self.http.get_page(&url, None).await?;
            let page: Value = serde_json::from_slice(&body)
                .map_err(|e| Error::Decode(format!("station list: {e}")))?;
            let features = page["features"].as_array().map_or(&[][..], |f| &f[..]);
            for f in features {
                let id = f["properties"]["stationIdentifier"]
                    .as_str()
                    .or_else(|| f["id"].as_str().and_then(|u| u.rsplit('/').next()));
                let Some(id) = id.filter(|id| valid_id(id)) else {
                    continue;
                };
                if let Some(name) = f["properties"]["name"].as_str() {
                    names.insert(id.to_owned(), name.to_owned());
                }
                ids.push(id.to_owned());
            }
            let next = page
                .pointer("/pagination/next")
                .and_then(Value::as_str)
                .and_then(|n| Url::parse(n).ok());
            match next {
                Some(n) if !features.is_empty() && n != url && ids.len() < MAX_STATIONS => url = n,
                _ => break,
            }
        }
        ids.sort();
        ids.dedup();
        ids.truncate(MAX_STATIONS);
        *self.names.lock().unwrap_or_else(|e| e.into_inner()) = names;
        Ok(ids)
    }

    /// The latest observation of `station`, if newer than `seen`.
    async fn observation(&self, station: &str, seen: i64) -> Answer {
        let url = match Url::parse(&format!(
            "{}/stations/{station}/observations/latest",
            self.base
        )) {
            Ok(u) => u,
            Err(e) => return Answer::Failed(Error::Io(format!("observation URL: {e}"))),
        };
        let body = match self.http.get_page(&url, None).await {
            Ok((_, _, body)) => body,
            // No observations at this station (NWS lists many that report nothing).
            Err(Error::Status { status: 404, .. }) => return Answer::Missing,
            Err(e) => return Answer::Failed(e),
        };
        let mut obs: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return Answer::Rejected(Rejected::new(format!("{station}: {e}"), &body)),
        };
        let at = obs["properties"]["timestamp"]
            .as_str()
            .and_then(crate::time::timestamp)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        let Some(at) = at else {
            let why = format!("{station}: observation without a valid properties.timestamp");
            return Answer::Rejected(Rejected::new(why, &body));
        };
        if at <= seen {
            return Answer::Old;
        }
        let name = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(station)
            .cloned();
        self.fields.apply(&mut obs, name.as_deref());
        Answer::New(Record::from_value(&obs), at)
    }
}

/// Requests one poll of `spec` may make: `rate_limit_per_minute × interval ÷ 60`, at least
/// 1 (a `cron` batch schedule counts as one minute).
pub(crate) fn requests_per_poll(spec: &crate::SourceSpec) -> u32 {
    let n = f64::from(spec.rate_limit_per_minute) * spec.poll_interval_seconds / 60.0;
    let n = if n.is_finite() { n.floor() as u64 } else { 1 };
    u32::try_from(n.clamp(1, MAX_REQUESTS_PER_POLL)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_rate_and_the_interval() {
        let mut spec = crate::SourceSpec::new("noaa_weather");
        spec.rate_limit_per_minute = 120;
        spec.poll_interval_seconds = 30.0;
        assert_eq!(requests_per_poll(&spec), 60);
        spec.poll_interval_seconds = 0.001;
        assert_eq!(requests_per_poll(&spec), 1);
        spec.poll_interval_seconds = f64::INFINITY;
        assert_eq!(requests_per_poll(&spec), 1);
        spec.poll_interval_seconds = 1e300;
        assert_eq!(u64::from(requests_per_poll(&spec)), MAX_REQUESTS_PER_POLL);
    }
}
