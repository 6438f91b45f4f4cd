//! Connectors for public environmental APIs, each an `HttpApiClient` with the API's
//! URL shape, decoder and de-duplication. Base URLs are parameters so tests (and
//! mirrors) can point them elsewhere.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::noaa::StateSweep;
use super::noaa_fields::{Fields, Filtered};
use super::{params, Context, MultiSource};
use crate::decode::Decoder;
use crate::dedup::DedupSpec;
use crate::http::{Auth, HttpApiClient, HttpSpec, Incremental, KeyLocation, Pagination};
use crate::{Error, Source, SourceSpec};

fn client(
    id: &str,
    cfg: &SourceSpec,
    ctx: &Context,
    spec: HttpSpec,
) -> Result<HttpApiClient, Error> {
    HttpApiClient::new(spec, ctx.options(id, cfg))
}

fn dedup(keys: &[&str]) -> Option<DedupSpec> {
    Some(DedupSpec {
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        window: 100_000,
    })
}

fn bad(id: &str, key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        path: format!("sources.{id}.custom_params.{key}"),
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoaaParams {
    #[serde(default = "noaa_base")]
    base_url: String,
    /// Station ids whose latest observation is fetched at every poll.
    #[serde(default)]
    stations: Vec<String>,
    /// State or area code: its active alerts; without `stations`, also every
    /// observation station of the state, swept round-robin (`noaa.rs`).
    #[serde(default)]
    state: Option<String>,
    #[serde(default = "yes")]
    alerts: bool,
    /// With `state` and no `stations`: sweep the state's stations (false: alerts only,
    /// as before #23).
    #[serde(default = "yes")]
    observations: bool,
    /// Minutes between refreshes of a swept state's station list, 5-10080.
    #[serde(default = "noaa_refresh_minutes")]
    stations_refresh_minutes: u32,
    /// With `state` and `stations`: also emit the state's station list as records (a
    /// sweep lists the stations itself and ignores it).
    #[serde(default)]
    list_stations: bool,
    /// Observation fields kept, by the README's name table (`temperature`, `humidity`,
    /// …); empty keeps every field.
    #[serde(default)]
    data_types: Vec<String>,
    #[serde(default = "noaa_agent")]
    user_agent: String,
}

fn noaa_refresh_minutes() -> u32 {
    360
}
fn noaa_base() -> String {
    "https://api.weather.gov".to_owned()
}
fn noaa_agent() -> String {
    // api.weather.gov asks for a contact; `validate` warns until one is set.
    "stream-manager (wildfire data pipeline; contact: set custom_params.user_agent)".to_owned()
}
fn yes() -> bool {
    true
}

/// The US state or territory a source id ends in (`noaa_weather_ca` → `CA`), if any.
fn state_of_id(id: &str) -> Option<String> {
    const AREAS: &[&str] = &[
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
        "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ",
        "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT",
        "VA", "WA", "WV", "WI", "WY", "DC", "PR", "VI", "GU", "AS", "MP",
    ];
    let last = id.rsplit(['_', '-', '.']).next()?.to_ascii_uppercase();
    (id.len() > last.len() && AREAS.contains(&last.as_str())).then_some(last)
}

/// api.weather.gov: latest observations of stations, active alerts of an area, and
/// optionally the (paginated) station list of a state. GeoJSON; User-Agent required.
/// `state` without `stations`: the state's alerts and every observation station of the
/// state, swept round-robin within the rate limit (`noaa.rs`). Without `stations` and
/// `state` (the seed's Quick Start): the state the source id ends in (`noaa_weather_ca`
/// → CA), else the whole country's alerts, with a warning that says which.
pub(super) fn noaa_weather(
    id: &str,
    cfg: &SourceSpec,
    ctx: &Context,
) -> Result<Arc<dyn Source>, Error> {
    let mut p: NoaaParams = params(id, cfg)?;
    let fields = Fields::parse(id, &p.data_types)?;
    if !(5..=10_080).contains(&p.stations_refresh_minutes) {
        let got = p.stations_refresh_minutes;
        let message = format!("must be 5-10080 (minutes), got {got}");
        return Err(bad(id, "stations_refresh_minutes", message));
    }
    p.state = p.state.map(|s| s.trim().to_ascii_uppercase());
    if p.stations.is_empty() && p.state.is_none() {
        // The seed's Quick Start names neither (`noaa_weather_ca` with no parameters):
        // the state its id ends in (`_ca` → CA), else the whole country's alerts.
        p.state = state_of_id(id);
        match &p.state {
            Some(state) => tracing::warn!(
                source = id,
                state = %state,
                "noaa_weather without `stations` or `state`: polling the active alerts and every observation station of {state}, taken from the source id; set `state` to say so"
            ),
            None => tracing::warn!(
                source = id,
                "noaa_weather without `stations` or `state`: polling the active alerts of the whole country; set `state` (or `stations`) to narrow it"
            ),
        }
    }
    let base = p.base_url.trim_end_matches('/');
    let geo = |url: String, dedup_keys: &[&str]| HttpSpec {
        decoder: Decoder::Geojson,
        user_agent: Some(p.user_agent.clone()),
        headers: [("Accept".to_owned(), "application/geo+json".to_owned())].into(),
        dedup: dedup(dedup_keys),
        ..HttpSpec::get(url)
    };
    let alerts_of = |state: &str| {
        let mut spec = geo(
            format!("{base}/alerts/active"),
            &["/id", "/properties/sent"],
        );
        spec.query.insert("area".into(), state.to_owned());
        spec
    };
    if let (true, true, Some(state)) = (p.stations.is_empty(), p.observations, &p.state) {
        let alerts = match p.alerts {
            true => Some(Arc::new(client(id, cfg, ctx, alerts_of(state))?)),
            false => None,
        };
        let mut http = client(id, cfg, ctx, geo(format!("{base}/stations"), &[]))?;
        if let Some(a) = &alerts {
            http = http.share_rate_limit(a);
        }
        let refresh = Duration::from_secs(u64::from(p.stations_refresh_minutes) * 60);
        let per_poll = super::noaa::requests_per_poll(cfg);
        return Ok(Arc::new(StateSweep::new(
            id,
            state.clone(),
            base.to_owned(),
            alerts,
            Arc::new(http),
            fields,
            per_poll,
            refresh,
        )));
    }
    let mut specs: Vec<(String, HttpSpec)> = Vec::new();
    for station in &p.stations {
        let spec = geo(
            format!("{base}/stations/{station}/observations/latest"),
            &["/properties/station", "/properties/timestamp"],
        );
        specs.push((format!("station {station}"), spec));
    }
    if p.stations.is_empty() && p.state.is_none() && p.alerts {
        let spec = geo(
            format!("{base}/alerts/active"),
            &["/id", "/properties/sent"],
        );
        specs.push(("alerts US".to_owned(), spec));
    }
    if let Some(state) = &p.state {
        if p.alerts {
            specs.push((format!("alerts {state}"), alerts_of(state)));
        }
        if p.list_stations {
            let mut spec = geo(format!("{base}/stations"), &["/id"]);
            spec.query.insert("state".into(), state.clone());
            spec.pagination = Pagination::NextLink {
                pointer: "/pagination/next".into(),
            };
            specs.push((format!("stations {state}"), spec));
        }
    }
    if specs.is_empty() {
        return Err(bad(
            id,
            "stations",
            "give `stations` (ids) and/or `state` (alerts; observations too without `stations`)",
        ));
    }
    // One rate limit for the whole source, as `rate_limit_per_minute` says.
    let mut parts: Vec<(String, Arc<dyn Source>)> = Vec::new();
    let mut first: Option<Arc<HttpApiClient>> = None;
    for (label, spec) in specs {
        let mut c = client(id, cfg, ctx, spec)?;
        if let Some(f) = &first {
            c = c.share_rate_limit(f);
        }
        let c = Arc::new(c);
        first.get_or_insert_with(|| c.clone());
        let part: Arc<dyn Source> = match label.starts_with("station ") && !fields.all() {
            true => Arc::new(Filtered {
                inner: c,
                fields: fields.clone(),
            }),
            false => c,
        };
        parts.push((label, part));
    }
    Ok(Arc::new(MultiSource::new(parts)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FirmsParams {
    #[serde(default = "firms_base")]
    base_url: String,
    map_key: String,
    #[serde(default = "firms_source")]
    source: String,
    /// `[west, south, east, north]`, or omitted for the whole world.
    #[serde(default)]
    area: Option<[f64; 4]>,
    #[serde(default = "one")]
    days: u8,
}

fn firms_base() -> String {
    "https://firms.modaps.eosdis.nasa.gov".to_owned()
}
fn firms_source() -> String {
    "VIIRS_SNPP_NRT".to_owned()
}
fn one() -> u8 {
    1
}

/// NASA FIRMS area CSV API, de-duplicated by detection identity (latitude, longitude,
/// acquisition date and time, satellite): FIRMS returns overlapping day windows.
pub(super) fn nasa_firms(
    id: &str,
    cfg: &SourceSpec,
    ctx: &Context,
) -> Result<Arc<dyn Source>, Error> {
    let p: FirmsParams = params(id, cfg)?;
    if p.map_key.trim().is_empty() {
        return Err(bad(
            id,
            "map_key",
            "the FIRMS MAP_KEY is empty; set it, e.g. `map_key: ${FIRMS_MAP_KEY}`",
        ));
    }
    if !(1..=10).contains(&p.days) {
        return Err(bad(id, "days", format!("must be 1-10, got {}", p.days)));
    }
    let area = match p.area {
        Some([w, s, e, n]) => {
            if !(w < e
                && s < n
                && (-180.0..=180.0).contains(&w)
                && (-180.0..=180.0).contains(&e)
                && (-90.0..=90.0).contains(&s)
                && (-90.0..=90.0).contains(&n))
            {
                return Err(bad(
                    id,
                    "area",
                    "expected [west, south, east, north] with west < east and south < north",
                ));
            }
            format!("{w},{s},{e},{n}")
        }
        None => "world".to_owned(),
    };
    let url = format!(
        "{}/api/area/csv/{}/{}/{}/{}",
        p.base_url.trim_end_matches('/'),
        p.map_key,
        p.source,
        area,
        p.days
    );
    let spec = HttpSpec {
        decoder: Decoder::Csv,
        dedup: dedup(&[
            "/latitude",
            "/longitude",
            "/acq_date",
            "/acq_time",
            "/satellite",
        ]),
        ..HttpSpec::get(url)
    };
    Ok(Arc::new(client(id, cfg, ctx, spec)?.with_secret(p.map_key)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsgsParams {
    #[serde(default = "usgs_base")]
    base_url: String,
    /// Summary feed, e.g. `all_hour`, `2.5_day`, `significant_week`.
    #[serde(default = "usgs_feed")]
    feed: String,
}

fn usgs_base() -> String {
    "https://earthquake.usgs.gov".to_owned()
}
fn usgs_feed() -> String {
    "all_hour".to_owned()
}

/// USGS GeoJSON summary feeds; an event is new again when USGS updates it.
pub(super) fn usgs_earthquakes(
    id: &str,
    cfg: &SourceSpec,
    ctx: &Context,
) -> Result<Arc<dyn Source>, Error> {
    let p: UsgsParams = params(id, cfg)?;
    let ok = regex::Regex::new(r"^(all|significant|4\.5|2\.5|1\.0)_(hour|day|week|month)$")
        .expect("static regex");
    if !ok.is_match(&p.feed) {
        return Err(bad(
            id,
            "feed",
            format!(
                "`{}` is not a USGS summary feed such as `all_hour` or `2.5_day`",
                p.feed
            ),
        ));
    }
    let spec = HttpSpec {
        decoder: Decoder::Geojson,
        dedup: dedup(&["/id", "/properties/updated"]),
        ..HttpSpec::get(format!(
            "{}/earthquakes/feed/v1.0/summary/{}.geojson",
            p.base_url.trim_end_matches('/'),
            p.feed
        ))
    };
    Ok(Arc::new(client(id, cfg, ctx, spec)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AirNowParams {
    #[serde(default = "airnow_base")]
    base_url: String,
    api_key: String,
    latitude: f64,
    longitude: f64,
    #[serde(default = "airnow_distance")]
    distance_miles: u32,
}

fn airnow_base() -> String {
    "https://www.airnowapi.org".to_owned()
}
fn airnow_distance() -> u32 {
    25
}

/// AirNow current observations by location (a JSON array).
pub(super) fn airnow(id: &str, cfg: &SourceSpec, ctx: &Context) -> Result<Arc<dyn Source>, Error> {
    let p: AirNowParams = params(id, cfg)?;
    let mut spec = HttpSpec {
        dedup: dedup(&[
            "/DateObserved",
            "/HourObserved",
            "/ParameterName",
            "/ReportingArea",
        ]),
        auth: Some(Auth::ApiKey {
            name: "API_KEY".into(),
            value: p.api_key,
            location: KeyLocation::Query,
        }),
        ..HttpSpec::get(format!(
            "{}/aq/observation/latLong/current/",
            p.base_url.trim_end_matches('/')
        ))
    };
    spec.query
        .insert("format".into(), "application/json".into());
    spec.query.insert("latitude".into(), p.latitude.to_string());
    spec.query
        .insert("longitude".into(), p.longitude.to_string());
    spec.query
        .insert("distance".into(), p.distance_miles.to_string());
    Ok(Arc::new(client(id, cfg, ctx, spec)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurpleAirParams {
    #[serde(default = "purpleair_base")]
    base_url: String,
    api_key: String,
    #[serde(default = "purpleair_fields")]
    fields: String,
    /// `[nwlng, nwlat, selng, selat]`.
    #[serde(default)]
    bounding_box: Option<[f64; 4]>,
}

fn purpleair_base() -> String {
    "https://api.purpleair.com".to_owned()
}
fn purpleair_fields() -> String {
    "name,latitude,longitude,last_seen,pm2.5,humidity,temperature".to_owned()
}

/// PurpleAir sensors: `fields` + `data` arrays, each row turned into an object that
/// also carries the answer's `time_stamp`. PurpleAir bills per data point, so a poll asks
/// only for the sensors modified since the last settled one: `modified_since` is the
/// newest `time_stamp` of records handed over (the incremental cursor, committed only
/// when they settle); the first poll, with no cursor, asks for every sensor.
pub(super) fn purpleair(
    id: &str,
    cfg: &SourceSpec,
    ctx: &Context,
) -> Result<Arc<dyn Source>, Error> {
    let p: PurpleAirParams = params(id, cfg)?;
    let mut spec = HttpSpec {
        decoder: Decoder::FieldsData {
            fields: "/fields".into(),
            data: "/data".into(),
            stamp: Some("/time_stamp".into()),
        },
        incremental: Some(Incremental {
            param: "modified_since".into(),
            field: "/time_stamp".into(),
            initial: None,
        }),
        auth: Some(Auth::ApiKey {
            name: "X-API-Key".into(),
            value: p.api_key,
            location: KeyLocation::Header,
        }),
        dedup: dedup(&["/sensor_index", "/last_seen"]),
        ..HttpSpec::get(format!("{}/v1/sensors", p.base_url.trim_end_matches('/')))
    };
    spec.query.insert("fields".into(), p.fields);
    if let Some([a, b, c, d]) = p.bounding_box {
        for (k, v) in [("nwlng", a), ("nwlat", b), ("selng", c), ("selat", d)] {
            spec.query.insert(k.into(), v.to_string());
        }
    }
    Ok(Arc::new(client(id, cfg, ctx, spec)?))
}
