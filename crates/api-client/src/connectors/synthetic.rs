//! `synthetic`: realistic sensor readings, offline, at a configured rate and seed.

use std::sync::Mutex;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{Cursor, Error, Fetch, Source};
use crate::{Record, RecordWriter};

/// Parameters of the `synthetic` connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticParams {
    /// Records generated per second of time between fetches.
    #[serde(default = "default_rate")]
    pub records_per_second: f64,
    /// Most records in one fetch.
    #[serde(default = "default_max")]
    pub max_per_fetch: usize,
    /// Seed: the same seed gives the same readings.
    #[serde(default)]
    pub seed: u64,
    /// Number of stations.
    #[serde(default = "default_stations")]
    pub stations: u32,
    /// Share of readings that carry an alert (`alert_id`, `severity: critical`).
    #[serde(default = "default_alert_probability")]
    pub alert_probability: f64,
    /// Centre of the stations, `[latitude, longitude]`.
    #[serde(default = "default_centre")]
    pub centre: [f64; 2],
    /// Bytes of padding per record (`"pad"`), for benchmarks of larger records.
    #[serde(default)]
    pub pad_bytes: usize,
}

fn default_rate() -> f64 {
    10.0
}
fn default_max() -> usize {
    10_000
}
fn default_stations() -> u32 {
    25
}
fn default_alert_probability() -> f64 {
    0.01
}
fn default_centre() -> [f64; 2] {
    [38.58, -121.49]
}

impl SyntheticParams {
    /// Each number in its range (`sources.<id>.custom_params.<key>` on error).
    pub fn check(&self, id: &str) -> Result<(), Error> {
        let fail = |key: &str, message: String| Error::Config {
            path: format!("sources.{id}.custom_params.{key}"),
            message,
        };
        let rate = self.records_per_second;
        if !(rate.is_finite() && (0.0..=1e9).contains(&rate)) {
            return Err(fail(
                "records_per_second",
                format!("must be between 0 and 1e9, got {rate}"),
            ));
        }
        if !(1..=10_000_000).contains(&self.max_per_fetch) {
            return Err(fail(
                "max_per_fetch",
                format!("must be between 1 and 10000000, got {}", self.max_per_fetch),
            ));
        }
        if self.pad_bytes > 16 << 20 {
            return Err(fail(
                "pad_bytes",
                format!("must be at most 16 MiB (16777216), got {}", self.pad_bytes),
            ));
        }
        // One fetch builds max_per_fetch records of pad_bytes each, at once.
        if self.max_per_fetch.saturating_mul(self.pad_bytes) > 1 << 30 {
            return Err(fail(
                "pad_bytes",
                format!(
                    "max_per_fetch × pad_bytes is {} bytes a fetch; at most 1 GiB",
                    self.max_per_fetch.saturating_mul(self.pad_bytes)
                ),
            ));
        }
        let p = self.alert_probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(fail(
                "alert_probability",
                format!("must be between 0 and 1, got {p}"),
            ));
        }
        if !self.centre.iter().all(|c| c.is_finite()) {
            return Err(fail("centre", "must be two finite numbers".to_owned()));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct State {
    rng: StdRng,
    last: Option<Instant>,
    carry: f64,
}

/// Generates readings: station id, position, temperature, humidity, wind, PM2.5, and
/// occasionally an alert. The cursor is the sequence number of the last reading, so a
/// restart continues the numbering.
#[derive(Debug)]
pub struct SyntheticSource {
    params: SyntheticParams,
    state: Mutex<State>,
}

impl SyntheticSource {
    /// A generator with `params`.
    pub fn new(params: SyntheticParams) -> Self {
        Self {
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(params.seed),
                last: None,
                carry: 0.0,
            }),
            params,
        }
    }

    fn reading(&self, rng: &mut StdRng, seq: u64, now: &str, w: &mut RecordWriter) -> Record {
        let p = &self.params;
        let station = rng.random_range(0..p.stations.max(1));
        // Stations sit on a fixed grid around the centre (stable per station id).
        let lat = p.centre[0] + f64::from(station % 10) * 0.05 - 0.25;
        let lon = p.centre[1] + f64::from(station / 10) * 0.05 - 0.25;
        let temperature: f64 = 18.0 + rng.random_range(0.0..22.0);
        let humidity: f64 =
            (60.0 - (temperature - 18.0) * 2.0 + rng.random_range(-5.0..5.0)).clamp(3.0, 100.0);
        let wind_speed: f64 = rng.random_range(0.0..18.0);
        let wind_direction: u32 = rng.random_range(0..360);
        let pm25: f64 = rng.random_range(2.0..60.0);
        let alert = rng.random_bool(p.alert_probability.clamp(0.0, 1.0));
        let reading = Reading {
            station_id: Station(station),
            sequence: seq,
            timestamp: now,
            latitude: (lat * 1e5).round() / 1e5,
            longitude: (lon * 1e5).round() / 1e5,
            temperature_c: (temperature * 10.0).round() / 10.0,
            humidity_pct: (humidity * 10.0).round() / 10.0,
            wind_speed_ms: (wind_speed * 10.0).round() / 10.0,
            wind_direction_deg: wind_direction,
            pm25_ugm3: (pm25 * 10.0).round() / 10.0,
            alert_id: alert.then_some(AlertId(seq)),
            severity: alert.then_some("critical"),
            alert_type: alert.then_some("red_flag_warning"),
            pad: (p.pad_bytes > 0).then_some(Pad(p.pad_bytes)),
        };
        // A struct of numbers and plain text always serializes.
        w.serialize(&reading)
            .unwrap_or_else(|_| Record::from_value(&serde_json::Value::Null))
    }
}

/// One reading, written straight to JSON text (no tree, no allocation per field).
#[derive(Serialize)]
struct Reading<'a> {
    station_id: Station,
    sequence: u64,
    timestamp: &'a str,
    latitude: f64,
    longitude: f64,
    temperature_c: f64,
    humidity_pct: f64,
    wind_speed_ms: f64,
    wind_direction_deg: u32,
    pm25_ugm3: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_id: Option<AlertId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pad: Option<Pad>,
}

/// `sensor_007`.
struct Station(u32);

impl Serialize for Station {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("sensor_{:03}", self.0))
    }
}

/// `alert-42`.
struct AlertId(u64);

impl Serialize for AlertId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("alert-{}", self.0))
    }
}

/// `n` times `x`.
struct Pad(usize);

impl Serialize for Pad {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Xs(usize);
        impl std::fmt::Display for Xs {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                for _ in 0..self.0 {
                    f.write_str("x")?;
                }
                Ok(())
            }
        }
        s.collect_str(&Xs(self.0))
    }
}

#[async_trait]
impl Source for SyntheticSource {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, Error> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = s.last.map_or(1.0, |t| now.duration_since(t).as_secs_f64());
        s.last = Some(now);
        let want = self.params.records_per_second.max(0.0) * elapsed + s.carry;
        let n = (want.floor() as usize).min(self.params.max_per_fetch);
        s.carry = if n == self.params.max_per_fetch {
            0.0
        } else {
            want - want.floor()
        };
        let start: u64 = cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0);
        let now = crate::time::iso8601_now();
        let mut w = RecordWriter::default();
        let records: Vec<Record> = (1..=n as u64)
            .map(|i| self.reading(&mut s.rng, start + i, &now, &mut w))
            .collect();
        Ok(Fetch {
            changed: !records.is_empty(),
            next_cursor: Some(Cursor((start + n as u64).to_string())),
            records,
            ..Fetch::default()
        })
    }
}
