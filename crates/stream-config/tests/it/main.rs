//! Integration tests of stream-config, compiled as one binary.

mod cluster;
mod fuzz;
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
