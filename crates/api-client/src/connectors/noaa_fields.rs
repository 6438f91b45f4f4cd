//! `noaa_weather`'s `data_types`: the documented names of NWS observation fields, and
//! the filter that keeps only the chosen ones (plus the station, timestamp and geometry).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::Record;
use crate::{Cursor, Error, Fetch, PartStatus, Source};

/// `data_types` names → the NWS observation properties they keep (README, "NOAA weather").
pub(crate) const NAMES: &[(&str, &[&str])] = &[
    ("temperature", &["temperature"]),
    ("humidity", &["relativeHumidity"]),
    ("dewpoint", &["dewpoint"]),
    ("wind_speed", &["windSpeed"]),
    ("wind_direction", &["windDirection"]),
    ("wind_gust", &["windGust"]),
    ("pressure", &["barometricPressure"]),
    ("sea_level_pressure", &["seaLevelPressure"]),
    ("visibility", &["visibility"]),
    (
        "precipitation",
        &[
            "precipitationLastHour",
            "precipitationLast3Hours",
            "precipitationLast6Hours",
        ],
    ),
    ("heat_index", &["heatIndex"]),
    ("wind_chill", &["windChill"]),
    ("max_temperature_24h", &["maxTemperatureLast24Hours"]),
    ("min_temperature_24h", &["minTemperatureLast24Hours"]),
    ("text_description", &["textDescription"]),
    ("present_weather", &["presentWeather"]),
    ("cloud_layers", &["cloudLayers"]),
    ("raw_message", &["rawMessage"]),
];

/// Properties every observation record keeps, whatever `data_types` says.
pub(crate) const ALWAYS: &[&str] = &[
    "station",
    "stationId",
    "stationName",
    "timestamp",
    "elevation",
];

/// The observation properties a source keeps: `None` keeps every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields(Option<Vec<&'static str>>);

impl Fields {
    /// `data_types` of source `id`: each name must be in [`NAMES`]; empty keeps all.
    pub(crate) fn parse(id: &str, names: &[String]) -> Result<Self, Error> {
        if names.is_empty() {
            return Ok(Self(None));
        }
        let mut keep = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let Some((_, props)) = NAMES.iter().find(|(n, _)| *n == name.trim()) else {
                let known = NAMES.iter().map(|(n, _)| *n);
                let hint = stream_config::closest(name.trim(), known.clone())
                    .map(|best| format!("did you mean `{best}`? "))
                    .unwrap_or_default();
                return Err(Error::Config {
                    path: format!("sources.{id}.custom_params.data_types[{i}]"),
                    message: format!(
                        "unknown observation field `{name}`; {hint}known: {}",
                        known.collect::<Vec<_>>().join(", ")
                    ),
                });
            };
            for prop in props.iter().copied() {
                if !keep.contains(&prop) {
                    keep.push(prop);
                }
            }
        }
        Ok(Self(Some(keep)))
    }

    /// Every field is kept.
    pub(crate) fn all(&self) -> bool {
        self.0.is_none()
    }

    /// Drops the JSON-LD context and the properties not chosen; adds the station's name
    /// when the observation lacks it and it is known.
    pub(crate) fn apply(&self, obs: &mut Value, station_name: Option<&str>) {
        let Some(map) = obs.as_object_mut() else {
            return;
        };
        map.remove("@context");
        let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(keep) = &self.0 {
            props.retain(|k, _| ALWAYS.contains(&k.as_str()) || keep.contains(&k.as_str()));
        }
        if let Some(name) = station_name {
            props
                .entry("stationName")
                .or_insert_with(|| Value::String(name.to_owned()));
        }
    }
}

/// An explicit station's observations, filtered by `data_types` (the endpoint itself is
/// the plain GeoJSON client it wraps).
#[derive(Debug)]
pub(crate) struct Filtered {
    pub(crate) inner: Arc<dyn Source>,
    pub(crate) fields: Fields,
}

#[async_trait]
impl Source for Filtered {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, Error> {
        let mut f = self.inner.fetch(cursor).await?;
        for r in &mut f.records {
            let mut v = r.to_value();
            self.fields.apply(&mut v, None);
            *r = Record::from_value(&v);
        }
        Ok(f)
    }

    fn parts(&self) -> Vec<PartStatus> {
        self.inner.parts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_map_to_nws_properties_and_unknown_names_get_a_hint() {
        let f = Fields::parse("s", &["temperature".into(), "humidity".into()]).unwrap();
        assert_eq!(f, Fields(Some(vec!["temperature", "relativeHumidity"])));
        let mut obs = json!({"@context": [], "type": "Feature", "geometry": {"type": "Point"},
            "properties": {"station": "x", "timestamp": "t", "temperature": {"value": 1},
                "relativeHumidity": {"value": 2}, "windSpeed": {"value": 3}}});
        f.apply(&mut obs, Some("Sacramento"));
        assert_eq!(
            obs,
            json!({"type": "Feature", "geometry": {"type": "Point"},
                "properties": {"station": "x", "timestamp": "t", "temperature": {"value": 1},
                    "relativeHumidity": {"value": 2}, "stationName": "Sacramento"}})
        );
        assert!(Fields::parse("s", &[]).unwrap().all());
        let p = Fields::parse("s", &["precipitation".into()]).unwrap();
        assert_eq!(p.0.unwrap().len(), 3);
        let err = Fields::parse("s", &["temperature".into(), "humidty".into()]).unwrap_err();
        let Error::Config { path, message } = err else {
            panic!("a config error")
        };
        assert_eq!(path, "sources.s.custom_params.data_types[1]");
        assert!(message.contains("did you mean `humidity`?"), "{message}");
        let far = Fields::parse("s", &["zzzzzz".into()])
            .unwrap_err()
            .to_string();
        assert!(
            !far.contains("did you mean") && far.contains("known: temperature"),
            "{far}"
        );
    }
}
