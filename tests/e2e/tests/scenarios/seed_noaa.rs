//! Scenario: the seed's own configuration files (issue #23), unchanged, against tansu.
//! The Quick Start file (`noaa_weather_ca` without parameters: California inferred from
//! the id) and the seed's fuller file (`state: CA`, `data_types: [temperature,
//! humidity]`) each run in their own `stream-server` against their own broker and their
//! own local NWS-shaped upstream of 150 Californian stations; only `STREAM__…`
//! overrides point the broker, the DLQ, the admin API and the source's `base_url` at
//! local ones. Within one sweep — ⌈150 ÷ 59⌉ = 3 polls at the seeds' 120 requests a
//! minute and 30 s interval, as `GET /streams/{id}` reports — every station's
//! observation arrives exactly once on `wildfire-weather-data` with temperature,
//! humidity, station, timestamp and geometry (and, under `data_types`, nothing else);
//! nothing is dead-lettered; the topics the files name (the source's and the default
//! fallback) did not exist before the server created them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::nws::{Nws, ALERTS, OTHER_FIELDS};
use e2e::{consume, header, json, Scene, Server, Storage, Tansu};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;
use test_support::kafka::Consumed;
use test_support::poll_until;

const SOURCE: &str = "noaa_weather_ca";
const TOPIC: &str = "wildfire-weather-data";
/// The routing fallback the seed files leave at its default: named, so created too.
const FALLBACK: &str = "wildfire-default";
const STATIONS: usize = 150;
/// The upstream lists stations 50 to a page (NWS: up to 500), so the list walk follows
/// its `pagination.next` links: 3 full pages and the empty one after.
const PAGE: usize = 50;
/// Both seed files: `rate_limit_per_minute: 120`, `polling_interval_seconds: 30`.
const RATE: u64 = 120;
const INTERVAL_S: u64 = 30;
/// What `data_types: [temperature, humidity]` keeps: the two, and what every record keeps.
const KEPT: &[&str] = &[
    "station",
    "stationId",
    "stationName",
    "timestamp",
    "elevation",
    "temperature",
    "relativeHumidity",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/stream-config/tests/fixtures")
        .join(name)
}

/// Topics on the broker → partitions.
async fn topics(bootstrap: &str) -> HashMap<String, usize> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("metadata client");
        let md = c
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("broker metadata");
        md.topics()
            .iter()
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect()
    })
    .await
    .expect("metadata task")
}

/// One seed file's run: its broker, upstream and server.
struct Run {
    label: &'static str,
    /// `data_types` given (the fuller file): observations carry only [`KEPT`].
    filtered: bool,
    tansu: Tansu,
    nws: Arc<Nws>,
    server: Server,
}

impl Run {
    async fn start(scene: &Scene, label: &'static str, file: &str, filtered: bool) -> Self {
        let tansu = scene.tansu(Storage::Memory).await;
        let before = topics(&tansu.bootstrap()).await;
        assert!(
            !before.contains_key(TOPIC) && !before.contains_key(FALLBACK),
            "{label}: topics exist before the server started: {before:?}"
        );
        let nws = Nws::new("CA", STATIONS, PAGE);
        let base = nws.serve().await;
        let dlq = format!("sqlite://{}/{label}-dlq.db", scene.dir().display());
        let bootstrap = tansu.bootstrap();
        let env = [
            ("STREAM__KAFKA__BOOTSTRAP_SERVERS", bootstrap.as_str()),
            ("STREAM__DLQ__URL", dlq.as_str()),
            (
                "STREAM__SOURCES__NOAA_WEATHER_CA__CUSTOM_PARAMS__BASE_URL",
                base.as_str(),
            ),
        ];
        let server = Server::start_file(scene, label, &fixture(file), &env).await;
        Self {
            label,
            filtered,
            tansu,
            nws,
            server,
        }
    }

    /// Polls `GET /streams/{id}` until the first sweep completes; the stream as then
    /// shown, the time since `t0`, the observations asked for by then, and the
    /// sweep's position after each poll before the last.
    async fn first_sweep(&self, t0: Instant) -> (Value, Duration, Vec<String>, Vec<u64>) {
        let path = format!("/streams/{SOURCE}");
        let deadline = Duration::from_secs(INTERVAL_S * 6);
        let mut positions = Vec::new();
        loop {
            let (status, stream) = self.server.get(&path).await;
            assert_eq!(status, 200, "{}: {stream}", self.label);
            let p = &stream["progress"];
            if p["sweeps_completed"].as_u64() >= Some(1) {
                let asked = self.nws.observations_requested();
                return (stream, t0.elapsed(), asked, positions);
            }
            if let Some(pos) = p["stations_fetched_this_sweep"].as_u64() {
                if pos > 0 && positions.last() != Some(&pos) {
                    positions.push(pos);
                }
            }
            assert!(
                t0.elapsed() < deadline,
                "{}: no sweep completed within {deadline:?}: {stream}\n{}",
                self.label,
                self.server.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Checks every record consumed; the observations' count.
    fn check_records(&self, records: &[Consumed]) -> usize {
        let label = self.label;
        let mut stations: HashMap<String, usize> = HashMap::new();
        let mut alerts: HashMap<String, usize> = HashMap::new();
        for c in records {
            assert_eq!(c.topic, TOPIC);
            assert_eq!(header(c, "source_id"), Some(SOURCE));
            assert_eq!(header(c, "source_type"), Some("noaa_weather"));
            let v = json(c);
            let props = v["properties"].as_object().expect("properties");
            if let Some(event) = props.get("event") {
                assert_eq!(event, "Red Flag Warning", "{label}: {v}");
                let id = props["id"].as_str().expect("alert id").to_owned();
                *alerts.entry(id).or_default() += 1;
                continue;
            }
            let id = props["stationId"].as_str().expect("stationId").to_owned();
            let n = self
                .nws
                .station_ids()
                .iter()
                .position(|s| *s == id)
                .unwrap_or_else(|| panic!("{label}: a record of unknown station {id}"));
            let temp = props["temperature"]["value"].as_f64();
            assert_eq!(
                temp,
                Some(10.0 + n as f64 / 10.0),
                "{label} {id} temperature"
            );
            let rh = props["relativeHumidity"]["value"].as_f64();
            assert_eq!(rh, Some(15.0 + (n % 70) as f64), "{label} {id} humidity");
            assert!(
                props["station"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!("/stations/{id}"))),
                "{label}: {v}"
            );
            assert!(props["timestamp"].is_string(), "{label}: {v}");
            assert_eq!(
                props["stationName"].as_str(),
                Some(self.nws.station_name(n).as_str()),
                "{label}: the name comes from the station list"
            );
            assert_eq!(v["geometry"]["type"], "Point", "{label}: {v}");
            assert_eq!(
                v["geometry"]["coordinates"].as_array().map(Vec::len),
                Some(2)
            );
            assert!(v.get("@context").is_none(), "{label}: {v}");
            if self.filtered {
                let extra: Vec<&String> = props
                    .keys()
                    .filter(|k| !KEPT.contains(&k.as_str()))
                    .collect();
                assert!(
                    extra.is_empty(),
                    "{label}: data_types let through {extra:?}"
                );
            } else {
                // No `data_types`: every field is kept.
                let lost: Vec<&&str> = OTHER_FIELDS
                    .iter()
                    .filter(|f| !props.contains_key(**f))
                    .collect();
                assert!(
                    lost.is_empty(),
                    "{label}: fields dropped without data_types: {lost:?}"
                );
            }
            *stations.entry(id).or_default() += 1;
        }
        let missing: Vec<String> = self
            .nws
            .station_ids()
            .into_iter()
            .filter(|s| !stations.contains_key(s))
            .collect();
        assert!(
            missing.is_empty(),
            "{label}: {} of {STATIONS} stations missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        let twice: Vec<_> = stations.iter().filter(|(_, c)| **c > 1).collect();
        assert!(
            twice.is_empty(),
            "{label}: stations delivered twice: {twice:?}"
        );
        assert_eq!(
            alerts.len(),
            ALERTS,
            "{label}: the state's alerts: {alerts:?}"
        );
        assert!(alerts.values().all(|&c| c == 1), "{label}: {alerts:?}");
        stations.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_noaa_sweep() {
    let scene = Scene::new("seed_noaa_sweep");
    let t0 = Instant::now();
    let quick = Run::start(&scene, "quick_start", "seed_quick_start.yaml", false).await;
    let seed = Run::start(&scene, "seed", "seed.yaml", true).await;
    for run in [&quick, &seed] {
        poll_until(Duration::from_secs(30), "/ready", || async {
            run.server.get("/ready").await.0 == 200
        })
        .await;
    }

    let (q, s) = tokio::join!(quick.first_sweep(t0), seed.first_sweep(t0));
    // The Quick Start names no state: the server says what it inferred.
    let inferred = "every observation station of CA, taken from the source id";
    assert!(quick.server.log_tail(usize::MAX).contains(inferred));
    assert!(!seed.server.log_tail(usize::MAX).contains(inferred));
    let mut figures = Vec::new();
    for (run, (stream, at, asked, positions)) in [(&quick, q), (&seed, s)] {
        let label = run.label;
        let p = &stream["progress"];
        // The budget: ⌊120 × 30 ÷ 60⌋ = 60 requests a poll, one of them the alerts.
        let requests_per_poll = RATE * INTERVAL_S / 60;
        let per_poll = requests_per_poll - 1;
        let polls_per_sweep = (STATIONS as u64).div_ceil(per_poll);
        assert_eq!(p["state"], "CA", "{label}: {p}");
        assert_eq!(p["stations_known"], STATIONS, "{label}: {p}");
        assert_eq!(p["requests_per_poll"], requests_per_poll, "{label}: {p}");
        assert_eq!(p["stations_per_poll"], per_poll, "{label}: {p}");
        assert_eq!(p["polls_per_sweep"], polls_per_sweep, "{label}: {p}");
        assert_eq!(
            stream["polls"].as_u64(),
            Some(polls_per_sweep),
            "{label}: the first sweep took ⌈{STATIONS} ÷ {per_poll}⌉ polls: {stream}"
        );
        // Stations per poll: the first poll's budget also pays for the list's pages.
        let list_pages = (STATIONS / PAGE + 1) as u64;
        let mut per_polls = vec![per_poll - list_pages];
        while per_polls.iter().sum::<u64>() < STATIONS as u64 {
            let left = STATIONS as u64 - per_polls.iter().sum::<u64>();
            per_polls.push(left.min(per_poll));
        }
        let mut seen = positions.clone();
        seen.push(STATIONS as u64);
        let swept: Vec<u64> = seen
            .iter()
            .scan(0, |done, &pos| Some(pos - std::mem::replace(done, pos)))
            .collect();
        assert_eq!(swept, per_polls, "{label}: stations swept by each poll");
        let sweep_s = p["last_sweep_seconds"].as_f64().expect("sweep duration");
        assert!(
            sweep_s < (polls_per_sweep * INTERVAL_S) as f64,
            "{label}: the sweep took {sweep_s} s"
        );
        // Each station asked once (four at a time, so in any order within a chunk); the
        // list walked with the state.
        let mut asked = asked;
        asked.sort();
        assert_eq!(
            asked,
            run.nws.station_ids(),
            "{label}: observations asked for"
        );
        let requests = run.nws.requests();
        let lists: Vec<&String> = requests
            .iter()
            .map(|(_, p)| p)
            .filter(|p| p.starts_with("/stations?"))
            .collect();
        assert_eq!(lists.len(), STATIONS / PAGE + 1, "{label}: {lists:?}");
        assert!(lists.iter().all(|p| p.contains("state=CA")), "{lists:?}");
        assert!(requests
            .iter()
            .filter(|(_, p)| p.starts_with("/alerts"))
            .all(|(_, p)| p == "/alerts/active?area=CA"));
        figures.push((label, swept, sweep_s, at, requests.len()));
    }

    // Every station once (and the state's two alerts), nothing else, nothing dead-lettered.
    let mut delivered = Vec::new();
    for run in [&quick, &seed] {
        let label = run.label;
        let expected = STATIONS + ALERTS;
        let path = format!("/streams/{SOURCE}");
        poll_until(Duration::from_secs(60), "records acknowledged", || async {
            run.server.get(&path).await.1["records_processed"].as_u64() >= Some(expected as u64)
        })
        .await;
        let records = consume(
            &run.tansu.bootstrap(),
            &[TOPIC],
            expected,
            Duration::from_secs(60),
        )
        .await;
        let observations = run.check_records(&records);
        assert_eq!(records.len(), expected, "{label}: nothing else arrived");
        let (_, stream) = run.server.get(&path).await;
        assert_eq!(stream["records_processed"], expected, "{label}: {stream}");
        assert_eq!(stream["records_dead_lettered"], 0, "{label}: {stream}");
        assert_eq!(stream["errors"], 0, "{label}: {stream}");
        let (_, dlq) = run.server.get("/dlq/stats").await;
        assert_eq!(dlq["total"], 0, "{label}: dead letters: {dlq}");
        // Created by the server (tansu creates none), with the documented 4 partitions.
        let after = topics(&run.tansu.bootstrap()).await;
        assert_eq!(after.get(TOPIC), Some(&4), "{label}: {after:?}");
        assert_eq!(after.get(FALLBACK), Some(&4), "{label}: {after:?}");
        delivered.push((observations, records.len()));
    }
    for ((label, swept, sweep_s, at, requests), (observations, records)) in
        figures.iter().zip(&delivered)
    {
        println!(
            "seed_noaa_sweep[{label}]: {STATIONS} stations swept in {} polls ({swept:?} \
             stations; {} requests a poll) in {sweep_s:.1} s (sweep seen complete {:.1} s \
             after start, {requests} upstream requests); {observations} observations + \
             {ALERTS} alerts = {records} records delivered once each; 0 dead-lettered",
            swept.len(),
            RATE * INTERVAL_S / 60,
            at.as_secs_f64(),
        );
    }
    let (mut quick, mut seed) = (quick, seed);
    assert_eq!(quick.server.sigterm(Duration::from_secs(60)).await, Some(0));
    assert_eq!(seed.server.sigterm(Duration::from_secs(60)).await, Some(0));
}
