//! Integration tests of stream-config, compiled as one binary.

mod cluster;
mod contracts;
mod debug;
mod dedup;
mod fuzz;
mod lag_groups;
mod load;
mod save;
mod security;

use std::path::PathBuf;

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub(crate) fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

pub(crate) const SOURCE_TYPES: &[&str] = &[
    "http_json",
    "noaa_weather",
    "nasa_firms",
    "usgs_earthquakes",
    "airnow",
    "purpleair",
    "synthetic",
    "file",
];

/// The problems of a configuration that must not load (source types known, `env` set),
/// as `(path, line, message and hint)`.
pub(crate) fn problems_with(
    yaml: &str,
    env: &[(&str, &str)],
) -> Vec<(String, Option<usize>, String)> {
    let err = stream_config::Loader::new()
        .with_source_types(SOURCE_TYPES.iter().copied())
        .with_env(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .load_str(yaml, stream_config::Format::Yaml, "test.yaml")
        .expect_err("must not load");
    let d = err.diagnostics().expect("diagnostics");
    d.items
        .iter()
        .map(|i| {
            (
                i.path.clone(),
                i.location.map(|l| l.line),
                format!("{} {}", i.message, i.hint.as_deref().unwrap_or("")),
            )
        })
        .collect()
}
