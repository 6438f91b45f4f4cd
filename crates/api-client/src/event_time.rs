//! A record's own event time, for a source's freshness: where each built-in connector
//! keeps it (NWS `timestamp`/`sent`, USGS `updated`/`time`, FIRMS `acq_date` +
//! `acq_time`, PurpleAir `last_seen`, AirNow `DateObserved` + `HourObserved`), or where
//! `custom_params.event_time` says (`{pointer, format}`, any connector). Read from the
//! record's text by a scan that builds nothing; the newest of a batch is kept.

use crate::SourceSpec;
use chrono::{FixedOffset, NaiveDate, TimeZone};
use serde::Deserialize;

use crate::{Error, Record};
use stream_contracts::pointer::{locate, pointer_tokens};

/// The `custom_params` key that sets a source's event time.
pub const EVENT_TIME_KEY: &str = "event_time";

/// How a timestamp field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// RFC 3339 text (`2026-03-01T12:00:00Z`; ISO-8601 without a zone reads as UTC).
    Rfc3339,
    /// Milliseconds since the epoch (a number or numeric text).
    EpochMs,
    /// Seconds since the epoch (a number or numeric text).
    EpochS,
}

/// `custom_params.event_time`: where a record keeps its event time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventTimeParams {
    /// JSON pointer to the field (`/properties/updated`).
    pointer: String,
    /// How it is written (default `rfc3339`).
    #[serde(default = "default_format")]
    format: TimeFormat,
}

fn default_format() -> TimeFormat {
    TimeFormat::Rfc3339
}

/// One way to read the event time; the first of a source's rules that finds one wins.
#[derive(Debug, Clone)]
enum Rule {
    /// One field in one format.
    Field(Vec<String>, TimeFormat),
    /// FIRMS: a UTC date (`2026-03-01`) and an `HHMM` time (`0130` or `130`).
    DateHhmm(Vec<String>, Vec<String>),
    /// AirNow: a local date (`2026-03-01 `), an hour and the zone's abbreviation.
    DateHourZone(Vec<String>, Vec<String>, Vec<String>),
}

/// Where a source's records keep their event time.
#[derive(Debug, Clone)]
pub struct EventTime {
    rules: Vec<Rule>,
}

fn tokens(pointer: &str) -> Vec<String> {
    pointer_tokens(pointer).unwrap_or_default()
}

impl EventTime {
    /// The event time of source `id`: `custom_params.event_time` when given, else the
    /// connector's own (none for `http_json`, `synthetic`, `file`). A malformed
    /// `event_time` is a configuration error naming the key.
    pub fn for_source(id: &str, spec: &SourceSpec) -> Result<Option<Self>, Error> {
        if let Some(v) = spec.params.get(EVENT_TIME_KEY) {
            let path = format!("sources.{id}.custom_params.{EVENT_TIME_KEY}");
            let p: EventTimeParams =
                serde_json::from_value(v.clone()).map_err(|e| Error::Config {
                    path: path.clone(),
                    message: format!(
                        "{e}; expected {{pointer: \"/field\", format: rfc3339 | epoch_ms | epoch_s}}"
                    ),
                })?;
            let tokens = pointer_tokens(&p.pointer).ok_or_else(|| Error::Config {
                path: format!("{path}.pointer"),
                message: format!("`{}` is not a JSON pointer (it starts with `/`)", p.pointer),
            })?;
            return Ok(Some(Self {
                rules: vec![Rule::Field(tokens, p.format)],
            }));
        }
        Ok(Self::builtin(&spec.source_type))
    }

    /// A built-in connector's event time.
    pub fn builtin(source_type: &str) -> Option<Self> {
        let field = |p: &str, f| Rule::Field(tokens(p), f);
        let rules = match source_type {
            // Observations, then alerts.
            "noaa_weather" => vec![
                field("/properties/timestamp", TimeFormat::Rfc3339),
                field("/properties/sent", TimeFormat::Rfc3339),
            ],
            "usgs_earthquakes" => vec![
                field("/properties/updated", TimeFormat::EpochMs),
                field("/properties/time", TimeFormat::EpochMs),
            ],
            "nasa_firms" => vec![Rule::DateHhmm(tokens("/acq_date"), tokens("/acq_time"))],
            "purpleair" => vec![field("/last_seen", TimeFormat::EpochS)],
            "airnow" => vec![Rule::DateHourZone(
                tokens("/DateObserved"),
                tokens("/HourObserved"),
                tokens("/LocalTimeZone"),
            )],
            _ => return None,
        };
        Some(Self { rules })
    }

    /// The record's event time, ms since the epoch, if it has one.
    pub fn of(&self, record: &Record) -> Option<i64> {
        let json = record.as_bytes();
        self.rules.iter().find_map(|rule| match rule {
            Rule::Field(t, format) => parse(locate(json, t)?, *format),
            Rule::DateHhmm(date, time) => {
                let date = text(locate(json, date)?)?;
                let hhmm: u32 = text(locate(json, time)?)?.trim().parse().ok()?;
                let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
                let t = date.and_hms_opt(hhmm / 100, hhmm % 100, 0)?;
                Some(t.and_utc().timestamp_millis())
            }
            Rule::DateHourZone(date, hour, zone) => {
                let date = NaiveDate::parse_from_str(text(locate(json, date)?)?.trim(), "%Y-%m-%d")
                    .ok()?;
                let hour: u32 = text(locate(json, hour)?)?.trim().parse().ok()?;
                let offset = locate(json, zone)
                    .and_then(text)
                    .map_or(0, |z| zone_offset_hours(z.trim()));
                let local = date.and_hms_opt(hour, 0, 0)?;
                let tz = FixedOffset::east_opt(offset * 3600)?;
                Some(tz.from_local_datetime(&local).single()?.timestamp_millis())
            }
        })
    }

    /// The newest event time of a batch (one field scan per record).
    pub fn newest<'a>(&self, records: impl IntoIterator<Item = &'a Record>) -> Option<i64> {
        records.into_iter().filter_map(|r| self.of(r)).max()
    }
}

/// `t` as RFC 3339 in UTC with milliseconds (`2026-03-01T12:00:00.000Z`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    crate::time::iso8601(t)
}

/// A JSON string's text without its quotes (escape-free strings only: timestamps have
/// none), or a bare number's text.
fn text(raw: &[u8]) -> Option<&str> {
    let raw = match raw {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => inner,
        [b'"', ..] => return None,
        other => other,
    };
    std::str::from_utf8(raw).ok()
}

fn parse(raw: &[u8], format: TimeFormat) -> Option<i64> {
    let s = text(raw)?;
    match format {
        TimeFormat::Rfc3339 => crate::time::timestamp(s)
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).timestamp_millis()),
        TimeFormat::EpochMs => number(s).map(|n| n as i64),
        TimeFormat::EpochS => number(s).map(|n| (n * 1000.0) as i64),
    }
}

/// A finite number within ±10^15 (ms or s since the epoch; `as i64` saturates anyway).
fn number(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && n.abs() < 1e15)
}

/// US zone abbreviations AirNow writes, as hours east of UTC; unknown: UTC.
fn zone_offset_hours(zone: &str) -> i32 {
    match zone {
        "EST" | "CDT" => -5,
        "EDT" | "AST" => -4,
        "CST" => -6,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        "AKST" => -9,
        "AKDT" => -8,
        "HST" => -10,
        "SST" => -11,
        "CHST" => 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: serde_json::Value) -> Record {
        Record::from_value(&v)
    }

    #[test]
    fn builtin_connectors_read_their_own_fields() {
        let nws = EventTime::builtin("noaa_weather").unwrap();
        let r = rec(json!({"properties": {"timestamp": "2026-03-01T12:00:00+00:00"}}));
        assert_eq!(nws.of(&r), Some(1_772_366_400_000));
        let alert = rec(json!({"properties": {"sent": "2026-03-01T12:00:00Z"}}));
        assert_eq!(nws.of(&alert), Some(1_772_366_400_000));

        let usgs = EventTime::builtin("usgs_earthquakes").unwrap();
        let r = rec(json!({"properties": {"time": 1_000, "updated": 5_000}}));
        assert_eq!(usgs.of(&r), Some(5_000));

        let firms = EventTime::builtin("nasa_firms").unwrap();
        let r = rec(json!({"acq_date": "2026-03-01", "acq_time": "0130"}));
        assert_eq!(firms.of(&r), Some(1_772_328_600_000));
        let r = rec(json!({"acq_date": "2026-03-01", "acq_time": 130}));
        assert_eq!(firms.of(&r), Some(1_772_328_600_000));

        let pa = EventTime::builtin("purpleair").unwrap();
        assert_eq!(
            pa.of(&rec(json!({"last_seen": 1_772_366_400}))),
            Some(1_772_366_400_000)
        );

        let airnow = EventTime::builtin("airnow").unwrap();
        let r =
            rec(json!({"DateObserved": "2026-03-01 ", "HourObserved": 4, "LocalTimeZone": "PST"}));
        assert_eq!(airnow.of(&r), Some(1_772_366_400_000));

        assert!(EventTime::builtin("http_json").is_none());
        assert!(EventTime::builtin("synthetic").is_none());
    }

    #[test]
    fn configured_pointer_and_format_and_newest_of_a_batch() {
        let mut cfg = SourceSpec::new("http_json");
        cfg.params.insert(
            EVENT_TIME_KEY.into(),
            json!({"pointer": "/at", "format": "epoch_s"}),
        );
        let et = EventTime::for_source("s", &cfg).unwrap().unwrap();
        let batch = [
            rec(json!({"at": 10})),
            rec(json!({"at": "30"})),
            rec(json!({"other": 99})),
            rec(json!({"at": "not a number"})),
        ];
        assert_eq!(et.newest(&batch), Some(30_000));
        assert_eq!(et.newest(&batch[2..]), None);

        cfg.params
            .insert(EVENT_TIME_KEY.into(), json!({"pointer": "at"}));
        let e = EventTime::for_source("s", &cfg).unwrap_err().to_string();
        assert!(
            e.contains("sources.s.custom_params.event_time.pointer"),
            "{e}"
        );
        cfg.params.insert(
            EVENT_TIME_KEY.into(),
            json!({"pointer": "/at", "format": "iso"}),
        );
        let e = EventTime::for_source("s", &cfg).unwrap_err().to_string();
        assert!(e.contains("sources.s.custom_params.event_time"), "{e}");
    }
}
