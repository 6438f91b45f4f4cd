//! `docs/connectors.md` cannot drift: every key each built-in connector accepts is in
//! its section (and nothing else is), and every YAML example loads, validates and builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use api_client::{Error, HttpLimits, Registry};
use stream_config::{Format, Loader, SourceConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference() -> String {
    std::fs::read_to_string(repo().join("docs/connectors.md")).expect("docs/connectors.md")
}

/// The keys `source_type` accepts in `custom_params`, as its parameter struct lists
/// them when refusing an unknown one (serde names every expected field).
fn accepted(source_type: &str) -> BTreeSet<String> {
    let mut cfg = SourceConfig::new(source_type);
    // Sorts first, so it is the first key the struct sees.
    cfg.custom_params
        .insert("__probe__".into(), serde_json::json!(1));
    let message = match Registry::builtin().build("probe", &cfg) {
        Err(Error::Config { message, .. }) => message,
        other => panic!("{source_type}: the probe key was not refused: {other:?}"),
    };
    let expected = message
        .split_once("expected ")
        .unwrap_or_else(|| panic!("{source_type}: {message}"))
        .1;
    let mut keys: BTreeSet<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!keys.is_empty(), "{source_type}: {message}");
    let http = [
        "noaa_weather",
        "nasa_firms",
        "usgs_earthquakes",
        "airnow",
        "purpleair",
    ];
    if http.contains(&source_type) {
        // Taken off by the registry before the connector's own struct sees the rest.
        keys.extend(HttpLimits::KEYS.iter().map(|k| (*k).to_owned()));
    }
    keys
}

/// The sections of the reference by heading (`## \`name\``, or the heading's text).
fn sections(doc: &str) -> BTreeMap<String, String> {
    doc.split("\n## ")
        .skip(1)
        .map(|s| {
            let (title, body) = s.split_once('\n').unwrap_or((s, ""));
            (title.trim().trim_matches('`').to_owned(), body.to_owned())
        })
        .collect()
}

/// The keys a section's tables document: each row's first cell, in backticks.
fn documented(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect()
}

#[test]
fn every_key_each_connector_accepts_is_in_the_reference_and_nothing_else() {
    let doc = reference();
    let sections = sections(&doc);
    let limits = documented(&sections["Generic HTTP limits"]);
    assert_eq!(
        limits,
        HttpLimits::KEYS.iter().map(|k| (*k).to_owned()).collect(),
        "the generic limits table"
    );
    let names = Registry::builtin().names();
    assert_eq!(names.len(), 8, "{names:?}");
    for name in names {
        let section = sections
            .get(&name)
            .unwrap_or_else(|| panic!("docs/connectors.md has no section `## \\`{name}\\``"));
        let mut listed = documented(section);
        if name != "synthetic" && name != "file" {
            listed.extend(limits.iter().cloned());
        }
        let keys = accepted(&name);
        let missing: Vec<_> = keys.difference(&listed).collect();
        let stale: Vec<_> = listed.difference(&keys).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{name}: accepted but not documented {missing:?}; documented but not accepted {stale:?}"
        );
        assert!(
            section.contains("```yaml"),
            "{name}: the section has no example"
        );
    }
}

#[test]
fn every_example_of_the_reference_loads_validates_and_builds() {
    let doc = reference();
    let registry = Registry::builtin();
    let env = [
        "FIRMS_MAP_KEY",
        "AIRNOW_API_KEY",
        "PURPLEAIR_API_KEY",
        "SENSORS_TOKEN",
    ]
    .map(|k| (k.to_owned(), "test-value".to_owned()));
    let loader = Loader::new()
        .with_env(env)
        .with_source_types(registry.names());
    let examples: Vec<&str> = doc
        .split("```yaml\n")
        .skip(1)
        .map(|s| s.split_once("```").expect("closed").0)
        .collect();
    assert!(examples.len() >= 9, "{}", examples.len());
    let mut types = BTreeSet::new();
    for (i, yaml) in examples.iter().enumerate() {
        let cfg = loader
            .load_str(yaml, Format::Yaml, &format!("example {i}"))
            .unwrap_or_else(|e| panic!("example {i} does not load:\n{yaml}\n{e}"));
        for (id, src) in &cfg.sources {
            let mut src = src.clone();
            if let Some(path) = src.custom_params.get_mut("path") {
                // Relative to the repository (tests run in the crate's folder).
                *path = serde_json::json!(repo().join(path.as_str().unwrap()));
            }
            registry
                .build(id, &src)
                .unwrap_or_else(|e| panic!("example {i} ({id}) does not build: {e}"));
            types.insert(src.source_type.clone());
        }
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        registry.names(),
        "an example for every connector"
    );
}
