//! A local api.weather.gov for the NOAA scenarios: one state's observation stations
//! (`/stations?state=XX`, paginated by `pagination.next` links up to an empty page, as
//! NWS does), each station's latest observation (`/stations/{id}/observations/latest`,
//! every NWS observation property filled in), and the state's active alerts
//! (`/alerts/active?area=XX`). Like NWS, it refuses a request without a User-Agent
//! (403). Every request is logged for assertions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Observation properties the upstream sends besides the station, its timestamp,
/// `temperature` and `relativeHumidity`: what a `data_types: [temperature, humidity]`
/// filter must drop.
pub const OTHER_FIELDS: &[&str] = &[
    "@id",
    "@type",
    "rawMessage",
    "textDescription",
    "icon",
    "presentWeather",
    "dewpoint",
    "windDirection",
    "windSpeed",
    "windGust",
    "barometricPressure",
    "seaLevelPressure",
    "visibility",
    "maxTemperatureLast24Hours",
    "minTemperatureLast24Hours",
    "precipitationLastHour",
    "precipitationLast3Hours",
    "precipitationLast6Hours",
    "windChill",
    "heatIndex",
    "cloudLayers",
];

/// How many active alerts the upstream serves for its state.
pub const ALERTS: usize = 2;

/// The upstream: `stations` stations of `state`, listed `page_size` to a page.
#[derive(Debug)]
pub struct Nws {
    state: String,
    stations: usize,
    page_size: usize,
    log: Mutex<Vec<(Instant, String)>>,
}

impl Nws {
    /// An upstream for `state` (two letters) with `stations` stations.
    pub fn new(state: &str, stations: usize, page_size: usize) -> Arc<Self> {
        Arc::new(Self {
            state: state.to_owned(),
            stations,
            page_size: page_size.max(1),
            log: Mutex::new(Vec::new()),
        })
    }

    /// Serves it on a free loopback port; its base URL (`http://127.0.0.1:<port>`).
    pub async fn serve(self: &Arc<Self>) -> String {
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(self.clone());
        format!("http://{}", crate::serve(app).await)
    }

    /// Station `n`'s id (`CA000`, `CA001`, …).
    pub fn station_id(&self, n: usize) -> String {
        format!("{}{n:03}", self.state)
    }

    /// Every station id, in list order.
    pub fn station_ids(&self) -> Vec<String> {
        (0..self.stations).map(|n| self.station_id(n)).collect()
    }

    /// Station `n`'s name in the station list (observations do not carry it).
    pub fn station_name(&self, n: usize) -> String {
        format!("Station {n} ({})", self.state)
    }

    /// Every request so far: when, and its path with the query.
    pub fn requests(&self) -> Vec<(Instant, String)> {
        self.log.lock().unwrap().clone()
    }

    /// The stations whose latest observation was asked for, in request order.
    pub fn observations_requested(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|(_, p)| {
                p.strip_prefix("/stations/")?
                    .strip_suffix("/observations/latest")
                    .map(str::to_owned)
            })
            .collect()
    }

    fn station_number(&self, id: &str) -> Option<usize> {
        let n: usize = id.strip_prefix(self.state.as_str())?.parse().ok()?;
        (n < self.stations && self.station_id(n) == id).then_some(n)
    }

    fn station_page(&self, q: &HashMap<String, String>, origin: &str) -> Value {
        let in_state = q.get("state") == Some(&self.state);
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(500);
        let size = limit.clamp(1, self.page_size);
        let page: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
        let total = if in_state { self.stations } else { 0 };
        let features: Vec<Value> = (page.saturating_mul(size)..total.min((page + 1) * size))
            .map(|n| {
                let id = self.station_id(n);
                json!({
                    "id": format!("{origin}/stations/{id}"),
                    "type": "Feature",
                    "geometry": { "type": "Point", "coordinates": coordinates(n) },
                    "properties": {
                        "@id": format!("{origin}/stations/{id}"),
                        "@type": "wx:ObservationStation",
                        "stationIdentifier": id,
                        "name": self.station_name(n),
                        "timeZone": "America/Los_Angeles",
                        "elevation": { "unitCode": "wmoUnit:m", "value": n as f64 * 10.0 },
                    },
                })
            })
            .collect();
        let state = q.get("state").map_or("", String::as_str);
        // Like NWS: every page links a next one; the page after the last is empty.
        json!({
            "type": "FeatureCollection",
            "features": features,
            "observationStations": [],
            "pagination": {
                "next": format!("{origin}/stations?state={state}&limit={limit}&cursor={}", page + 1)
            },
        })
    }

    fn observation(&self, n: usize, origin: &str) -> Value {
        let id = self.station_id(n);
        // A fixed past time per station: each sweep of an unchanged upstream finds
        // nothing new after the first.
        let minute = n % 1440;
        let at = format!("2025-07-01T{:02}:{:02}:00+00:00", minute / 60, minute % 60);
        let q = |unit: &str, value: f64| json!({ "unitCode": unit, "value": value, "qualityControl": "V" });
        json!({
            "@context": ["https://geojson.org/geojson-ld/geojson-context.jsonld", { "@version": "1.1" }],
            "id": format!("{origin}/stations/{id}/observations/{at}"),
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": coordinates(n) },
            "properties": {
                "@id": format!("{origin}/stations/{id}/observations/{at}"),
                "@type": "wx:ObservationStation",
                "elevation": { "unitCode": "wmoUnit:m", "value": n as f64 * 10.0 },
                "station": format!("{origin}/stations/{id}"),
                "stationId": id,
                "timestamp": at,
                "rawMessage": format!("METAR {id} 011853Z 27010KT 10SM CLR"),
                "textDescription": "Clear",
                "icon": null,
                "presentWeather": [],
                "temperature": q("wmoUnit:degC", 10.0 + n as f64 / 10.0),
                "dewpoint": q("wmoUnit:degC", 2.0),
                "windDirection": q("wmoUnit:degree_(angle)", 270.0),
                "windSpeed": q("wmoUnit:km_h-1", 18.5),
                "windGust": q("wmoUnit:km_h-1", 30.0),
                "barometricPressure": q("wmoUnit:Pa", 101_320.0),
                "seaLevelPressure": q("wmoUnit:Pa", 101_330.0),
                "visibility": q("wmoUnit:m", 16_090.0),
                "maxTemperatureLast24Hours": q("wmoUnit:degC", 31.0),
                "minTemperatureLast24Hours": q("wmoUnit:degC", 12.0),
                "precipitationLastHour": q("wmoUnit:mm", 0.0),
                "precipitationLast3Hours": q("wmoUnit:mm", 0.0),
                "precipitationLast6Hours": q("wmoUnit:mm", 0.0),
                "relativeHumidity": q("wmoUnit:percent", 15.0 + (n % 70) as f64),
                "windChill": q("wmoUnit:degC", 9.0),
                "heatIndex": q("wmoUnit:degC", 11.0),
                "cloudLayers": [],
            },
        })
    }

    fn alerts(&self, q: &HashMap<String, String>, origin: &str) -> Value {
        let in_state = q.get("area") == Some(&self.state);
        let features: Vec<Value> = (0..if in_state { ALERTS } else { 0 })
            .map(|i| {
                let id = format!("urn:oid:2.49.0.1.840.0.e2e-{}-{i}", self.state);
                json!({
                    "id": format!("{origin}/alerts/{id}"),
                    "type": "Feature",
                    "geometry": null,
                    "properties": {
                        "id": id,
                        "areaDesc": format!("Zone {i}, {}", self.state),
                        "sent": "2025-07-01T18:00:00+00:00",
                        "status": "Actual",
                        "event": "Red Flag Warning",
                        "severity": "Severe",
                        "headline": "Red Flag Warning: gusty winds and low humidity",
                    },
                })
            })
            .collect();
        json!({ "type": "FeatureCollection", "features": features, "title": "Current watches, warnings, and advisories" })
    }
}

fn coordinates(n: usize) -> Value {
    json!([
        -124.0 + (n % 50) as f64 * 0.16,
        32.6 + (n / 50) as f64 * 1.5
    ])
}

async fn answer(
    State(nws): State<Arc<Nws>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let shown = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    nws.log.lock().unwrap().push((Instant::now(), shown));
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin = format!("http://{host}");
    // api.weather.gov refuses requests without a User-Agent.
    if !headers.contains_key("user-agent") {
        let body = json!({ "title": "Forbidden", "detail": "a User-Agent is required" });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let geo = [("content-type", "application/geo+json")];
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match segments[..] {
        ["stations"] => (geo, Json(nws.station_page(&q, &origin))).into_response(),
        ["stations", id, "observations", "latest"] => match nws.station_number(id) {
            Some(n) => (geo, Json(nws.observation(n, &origin))).into_response(),
            None => (StatusCode::NOT_FOUND, Json(json!({ "title": "Not Found" }))).into_response(),
        },
        ["alerts", "active"] => (geo, Json(nws.alerts(&q, &origin))).into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({ "title": "Not Found" }))).into_response(),
    }
}
