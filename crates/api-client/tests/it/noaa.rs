//! `noaa_weather` by state against a local NWS-shaped upstream: a paginated station list
//! of 100+ stations, latest observations, alerts; the sweep's budget, rate limit,
//! `data_types`, only-new emission, failures and the cursor.

use api_client::CursorSummary as _;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use api_client::{Cursor, Fetch, Registry, Source};
use serde_json::{json, Value};
use stream_config::SourceConfig;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::fixture;

/// api.weather.gov in miniature. Station `S000`…: observations carry temperature,
/// humidity, wind, dew point and a description; their timestamp moves with `round` for
/// the even-numbered stations only.
#[derive(Clone, Default)]
struct Nws {
    stations: Arc<AtomicUsize>,
    page_size: usize,
    round: Arc<AtomicUsize>,
    failing: Arc<Mutex<HashSet<String>>>,
    missing: Arc<Mutex<HashSet<String>>>,
    future: Arc<Mutex<HashSet<String>>>,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Nws {
    fn new(stations: usize, page_size: usize) -> Self {
        Self {
            stations: Arc::new(AtomicUsize::new(stations)),
            page_size,
            ..Self::default()
        }
    }

    fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn observation(&self, id: &str, origin: &str) -> ResponseTemplate {
        let n: usize = id[1..].parse().unwrap_or(0);
        let round = if n % 2 == 0 {
            self.round.load(Ordering::SeqCst)
        } else {
            0
        };
        let mut at = format!("2026-12-01T{:02}:{:02}:00+00:00", round / 60, round % 60);
        if self.future.lock().unwrap().contains(id) {
            at = "2999-01-01T00:00:00+00:00".to_owned();
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "@context": ["https://geojson.org/geojson-ld/geojson-context.jsonld"],
            "id": format!("{origin}/stations/{id}/observations/{at}"),
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-120.0 - n as f64 / 100.0, 36.0]},
            "properties": {
                "station": format!("{origin}/stations/{id}"),
                "stationId": id,
                "timestamp": at,
                "textDescription": "Clear",
                "temperature": {"unitCode": "wmoUnit:degC", "value": 10.0 + n as f64 / 10.0},
                "relativeHumidity": {"unitCode": "wmoUnit:percent", "value": 30.0},
                "dewpoint": {"unitCode": "wmoUnit:degC", "value": 1.0},
                "windSpeed": {"unitCode": "wmoUnit:km_h-1", "value": 12.0}
            }
        }))
    }

    fn station_page(&self, url: &wiremock::http::Url, origin: &str) -> ResponseTemplate {
        let page: usize = url
            .query_pairs()
            .find(|(k, _)| k == "cursor")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let total = self.stations.load(Ordering::SeqCst);
        let features: Vec<Value> = (page * self.page_size
            ..((page + 1) * self.page_size).min(total))
            .map(|n| {
                let id = format!("S{n:03}");
                json!({"id": format!("{origin}/stations/{id}"), "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [-120.0, 36.0]},
                    "properties": {"stationIdentifier": id, "name": format!("Station {n}")}})
            })
            .collect();
        let next = format!("{origin}/stations?state=CA&cursor={}", page + 1);
        // Like NWS, every page links a next one; the page after the last is empty.
        ResponseTemplate::new(200).set_body_json(json!({
            "type": "FeatureCollection", "features": features,
            "pagination": {"next": next}
        }))
    }
}

impl Respond for Nws {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().to_owned();
        let shown = match req.url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        self.log.lock().unwrap().push((Instant::now(), shown));
        let host = req
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin = format!("http://{host}");
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments[..] {
            ["alerts", "active"] => {
                ResponseTemplate::new(200).set_body_string(fixture("noaa_alerts.json"))
            }
            ["stations"] => self.station_page(&req.url, &origin),
            ["stations", id, "observations", "latest"] => {
                if self.missing.lock().unwrap().contains(id) {
                    ResponseTemplate::new(404).set_body_string("{\"title\":\"Not Found\"}")
                } else if self.failing.lock().unwrap().contains(id) {
                    ResponseTemplate::new(500)
                } else {
                    self.observation(id, &origin)
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

async fn serve(nws: &Nws) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(nws.clone())
        .mount(&server)
        .await;
    server
}

fn config(server: &MockServer, rate: u32, interval: f64, params: Value) -> SourceConfig {
    let mut cfg = SourceConfig::new("noaa_weather");
    cfg.rate_limit_per_minute = rate;
    cfg.ingestion.polling_interval_seconds = interval;
    let mut p = json!({"base_url": server.uri(), "state": "CA",
        "user_agent": "wildfire-test (ops@example.org)"});
    p.as_object_mut()
        .unwrap()
        .extend(params.as_object().unwrap().clone());
    cfg.custom_params = p
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    cfg
}

fn observations(f: &Fetch) -> Vec<Value> {
    f.records
        .iter()
        .map(|r| r.to_value())
        .filter(|v| v["properties"]["event"].is_null())
        .collect()
}

fn observed_stations(requests: &[String]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|p| p.strip_suffix("/observations/latest"))
        .filter_map(|p| p.strip_prefix("/stations/"))
        .map(str::to_owned)
        .collect()
}

/// Polls until a sweep completes; (fetches, requests made) of each poll.
async fn sweep(
    s: &dyn Source,
    nws: &Nws,
    cursor: &mut Option<Cursor>,
) -> Vec<(Fetch, Vec<String>)> {
    let mut polls = Vec::new();
    loop {
        let before = nws.requests().len();
        let f = s.fetch(cursor.as_ref()).await.expect("poll");
        if f.next_cursor.is_some() {
            cursor.clone_from(&f.next_cursor);
        }
        let made = nws.requests()[before..].to_vec();
        polls.push((f, made));
        let p = s.progress().expect("a sweep shows its progress");
        if p["stations_fetched_this_sweep"] == json!(0) {
            return polls;
        }
        assert!(polls.len() < 20, "the sweep never ends: {p}");
    }
}

#[tokio::test]
async fn noaa_state_sweep_covers_every_station_in_ceil_polls_within_the_rate_limit() {
    const STATIONS: usize = 105;
    let nws = Nws::new(STATIONS, 50);
    let server = serve(&nws).await;
    // 1,200 requests a minute (20/s, bursts of 120) polled every 1.5 s: 30 requests a
    // poll; the alerts request leaves 29 for stations: ⌈105 ÷ 29⌉ = 4 polls a sweep.
    let cfg = config(
        &server,
        1200,
        1.5,
        json!({"data_types": ["temperature", "humidity"]}),
    );
    let s = Registry::builtin().build("noaa_weather_ca", &cfg).unwrap();
    let started = Instant::now();
    let mut cursor = None;

    let first = sweep(&*s, &nws, &mut cursor).await;
    // Poll 1 also walks the list (4 pages: 50, 50, 5, an empty one): 25 stations.
    assert_eq!(first.len(), 4, "25 + 29 + 29 + 22 stations");
    let made: Vec<String> = first.iter().flat_map(|(_, r)| r.clone()).collect();
    let list_pages = made.iter().filter(|p| p.starts_with("/stations?")).count();
    assert_eq!(list_pages, 4);
    let mut seen = observed_stations(&made);
    assert_eq!(seen.len(), STATIONS, "each station asked once");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), STATIONS, "every station asked");
    for (f, r) in &first {
        assert!(
            r.len() <= 30,
            "a poll stays within its budget: {} requests",
            r.len()
        );
        assert!(f.failures.is_empty(), "{:?}", f.failures);
    }
    let obs: Vec<Value> = first.iter().flat_map(|(f, _)| observations(f)).collect();
    assert_eq!(obs.len(), STATIONS);
    for o in &obs {
        let props = o["properties"].as_object().unwrap();
        let keys: HashSet<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            HashSet::from([
                "station",
                "stationId",
                "stationName",
                "timestamp",
                "temperature",
                "relativeHumidity"
            ]),
            "data_types keep temperature and humidity, and the station and time: {o}"
        );
        assert_eq!(o["geometry"]["type"], json!("Point"));
        assert!(o.get("@context").is_none());
    }
    assert_eq!(obs[0]["properties"]["stationName"], json!("Station 0"));
    let alerts = first.iter().map(|(f, _)| f.records.len()).sum::<usize>() - STATIONS;
    assert_eq!(alerts, 2, "the state's alerts, once");

    let p = s.progress().unwrap();
    assert_eq!(p["stations_known"], json!(STATIONS));
    assert_eq!(p["sweeps_completed"], json!(1));
    assert_eq!(p["stations_per_poll"], json!(29));
    assert_eq!(p["polls_per_sweep"], json!(4));
    assert_eq!(p["requests_per_poll"], json!(30));
    assert!(p["last_sweep_seconds"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["list_refreshed_at"].is_string(), "{p}");

    // The even stations report anew; the odd ones still have the same observation.
    nws.round.store(1, Ordering::SeqCst);
    let second = sweep(&*s, &nws, &mut cursor).await;
    assert_eq!(second.len(), 4, "⌈105 ÷ 29⌉ polls");
    let made: Vec<String> = second.iter().flat_map(|(_, r)| r.clone()).collect();
    assert!(
        !made.iter().any(|p| p.starts_with("/stations?")),
        "the list is fresh"
    );
    assert_eq!(observed_stations(&made).len(), STATIONS);
    let obs: Vec<Value> = second.iter().flat_map(|(f, _)| observations(f)).collect();
    assert_eq!(obs.len(), STATIONS.div_ceil(2), "only new observations");
    assert!(obs.iter().all(|o| {
        let id = o["properties"]["stationId"].as_str().unwrap();
        id[1..].parse::<usize>().unwrap() % 2 == 0
    }));
    assert_eq!(s.progress().unwrap()["sweeps_completed"], json!(2));

    // The rate limit: 20 requests a second after a burst of 120, shared by every
    // request of the source (alerts, list pages, observations).
    let log = nws.log.lock().unwrap().clone();
    let total = log.len();
    assert_eq!(total, 4 + 4 + STATIONS + 4 + STATIONS);
    let elapsed = started.elapsed().as_secs_f64();
    let least = (total - 120) as f64 / 20.0;
    assert!(
        elapsed >= least * 0.95,
        "{total} requests took {elapsed:.2} s, at least {least:.2} s expected"
    );
    // (Arrival times, not grant times: up to 4 requests in flight may bunch a little.)
    for (i, (ti, _)) in log.iter().enumerate() {
        for (j, (tj, _)) in log.iter().enumerate().skip(i) {
            let allowed = 120.0 + 20.0 * tj.duration_since(*ti).as_secs_f64() + 5.0;
            assert!(
                ((j - i + 1) as f64) <= allowed,
                "requests {i}..={j} came too fast"
            );
        }
    }
}

#[tokio::test]
async fn noaa_state_sweep_resumes_from_its_cursor_retries_failures_and_refreshes_the_list() {
    let nws = Nws::new(30, 10);
    nws.failing.lock().unwrap().insert("S003".into());
    nws.missing.lock().unwrap().insert("S005".into());
    nws.future.lock().unwrap().insert("S001".into());
    let server = serve(&nws).await;
    // 600 a minute polled every second: 10 requests a poll.
    let cfg = config(&server, 600, 1.0, json!({}));
    let a = Registry::builtin().build("noaa", &cfg).unwrap();

    // Poll 1: alerts, 4 list pages, stations S000-S004; S003 fails.
    let p1 = a.fetch(None).await.unwrap();
    assert_eq!(observations(&p1).len(), 4);
    assert_eq!(p1.records.len(), 6, "4 observations and 2 alerts");
    assert_eq!(p1.failures.len(), 1, "{:?}", p1.failures);
    assert!(p1.failures[0].contains("station S003"), "{:?}", p1.failures);
    // Poll 2: S005-S013; S005 has no observations (404), which is no failure.
    let p2 = a.fetch(p1.next_cursor.as_ref()).await.unwrap();
    assert!(p2.failures.is_empty(), "{:?}", p2.failures);
    assert_eq!(observations(&p2).len(), 8);
    let c2 = p2.next_cursor.clone().unwrap();
    assert_eq!(c2.summary(), "stations CA: station 14 of 30, 0 sweeps done");

    // A new instance (a restart) from the committed cursor goes on at S014, without
    // listing again or emitting the alerts again.
    let b = Registry::builtin().build("noaa", &cfg).unwrap();
    let before = nws.requests().len();
    let p3 = b.fetch(Some(&c2)).await.unwrap();
    let made = nws.requests()[before..].to_vec();
    assert!(
        !made.iter().any(|p| p.starts_with("/stations?")),
        "{made:?}"
    );
    let stations = observed_stations(&made);
    assert_eq!(stations.first().map(String::as_str), Some("S014"));
    assert_eq!(stations.len(), 9);
    assert_eq!(
        p3.records.len(),
        9,
        "observations only: the alerts were seen"
    );
    let p4 = b.fetch(p3.next_cursor.as_ref()).await.unwrap();
    assert_eq!(observations(&p4).len(), 7, "S023-S029 end the sweep");
    assert_eq!(b.progress().unwrap()["sweeps_completed"], json!(1));

    // Next sweep: S003 answers again and its observation is not lost; S001's clock is
    // right again and its year-2999 observation (delivered) did not hide this one; the
    // others have nothing new.
    nws.failing.lock().unwrap().clear();
    nws.future.lock().unwrap().clear();
    let p5 = b.fetch(p4.next_cursor.as_ref()).await.unwrap();
    let obs = observations(&p5);
    let ids: Vec<&str> = obs
        .iter()
        .map(|o| o["properties"]["stationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["S001", "S003"], "{obs:?}");
    assert_eq!(
        obs[1]["properties"]["windSpeed"]["value"],
        json!(12.0),
        "no data_types: every field"
    );

    // A list older than `stations_refresh_minutes` is fetched again; a new station joins.
    nws.stations.store(31, Ordering::SeqCst);
    let mut state: Value = serde_json::from_str(&p5.next_cursor.clone().unwrap().0).unwrap();
    let sweep_text = state["parts"]["stations CA"].as_str().unwrap().to_owned();
    let mut sweep_state: Value = serde_json::from_str(&sweep_text).unwrap();
    sweep_state["listed_at"] = json!(1);
    state["parts"]["stations CA"] = json!(sweep_state.to_string());
    let before = nws.requests().len();
    b.fetch(Some(&Cursor(state.to_string()))).await.unwrap();
    let made = nws.requests()[before..].to_vec();
    assert!(made.iter().any(|p| p.starts_with("/stations?")), "{made:?}");
    let p = b.progress().unwrap();
    assert_eq!(p["stations_known"], json!(31));
    // S009 was next: the sweep goes on there; the list's 5 pages and the alerts leave 4.
    assert_eq!(
        p["stations_fetched_this_sweep"],
        json!(9 + 4),
        "the position is kept"
    );
}

#[tokio::test]
async fn noaa_data_types_unknown_name_is_a_config_error_with_did_you_mean() {
    let server = MockServer::start().await;
    let cfg = config(
        &server,
        60,
        30.0,
        json!({"data_types": ["temperature", "humidty"]}),
    );
    let err = Registry::builtin().build("noaa_ca", &cfg).unwrap_err();
    let api_client::Error::Config { path, message } = err else {
        panic!("a config error")
    };
    assert_eq!(path, "sources.noaa_ca.custom_params.data_types[1]");
    assert!(message.contains("did you mean `humidity`?"), "{message}");
    let cfg = config(&server, 60, 30.0, json!({"stations_refresh_minutes": 1}));
    let err = Registry::builtin()
        .build("noaa_ca", &cfg)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("custom_params.stations_refresh_minutes") && err.contains("5-10080"),
        "{err}"
    );
}
