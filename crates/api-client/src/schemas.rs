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

/// `noaa_weather`: a source of that type emits observations and alerts alike, so its
/// one-line schema is either, told apart by `properties.event` (alerts have one).
fn noaa_weather() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let part = |name: &str| {
            let text = builtin_schema(name).unwrap_or("{}");
            serde_json::from_str::<serde_json::Value>(text).unwrap_or_default()
        };
        serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "noaa_weather record: an NWS observation or alert",
            "if": {
                "required": ["properties"],
                "properties": { "properties": { "required": ["event"] } }
            },
            "then": part("noaa_alert"),
            "else": part("noaa_observation")
        })
        .to_string()
    })
}

/// The text of built-in schema `name`.
pub fn builtin_schema(name: &str) -> Option<&'static str> {
    if name == "noaa_weather" {
        return Some(noaa_weather());
    }
    BUILTIN
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, text)| *text)
}

/// The names of the built-in schemas, with the connector whose records each describes.
pub fn builtin_schemas() -> impl Iterator<Item = (&'static str, &'static str)> {
    std::iter::once(("noaa_weather", "noaa_weather"))
        .chain(BUILTIN.iter().map(|(n, c, _)| (*n, *c)))
}
