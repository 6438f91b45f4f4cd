//! JSON Schemas of the records the built-in connectors emit, shipped in the binary
//! (`crates/api-client/schemas/*.json`) and named in a config as `schema: builtin:NAME`.
//! `tests/it/schemas.rs` feeds each connector's recorded sample through its schema.

/// Every built-in schema: name, the connector that emits such records, the schema text.
const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "noaa_observation",
        "noaa_weather",
        include_str!("../schemas/noaa_observation.json"),
    ),
    (
        "noaa_alert",
        "noaa_weather",
        include_str!("../schemas/noaa_alert.json"),
    ),
    (
        "firms_row",
        "nasa_firms",
        include_str!("../schemas/firms_row.json"),
    ),
    (
        "usgs_feature",
        "usgs_earthquakes",
        include_str!("../schemas/usgs_feature.json"),
    ),
    (
        "airnow_observation",
        "airnow",
        include_str!("../schemas/airnow_observation.json"),
    ),
    (
        "purpleair_row",
        "purpleair",
        include_str!("../schemas/purpleair_row.json"),
    ),
];

/// The text of built-in schema `name`.
pub fn builtin_schema(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, text)| *text)
}

/// The names of the built-in schemas, with the connector whose records each describes.
pub fn builtin_schemas() -> impl Iterator<Item = (&'static str, &'static str)> {
    BUILTIN.iter().map(|(n, c, _)| (*n, *c))
}
