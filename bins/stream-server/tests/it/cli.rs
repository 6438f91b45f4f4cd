//! `validate` and `print-config` as an operator runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_stream-server"))
        .args(args)
        .current_dir(root)
        .envs(env.iter().copied())
        .output()
        .expect("stream-server runs")
}

#[test]
fn validate_accepts_the_example_config() {
    let out = server(&["validate", "config/stream_config.example.yaml"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// The seed's Quick Start file, as its README gives it, validates (it was refused:
/// `noaa_weather` needed `stations` or `state`).
#[test]
fn validate_accepts_the_seeds_quick_start_file() {
    let file = "crates/stream-config/tests/fixtures/seed_quick_start.yaml";
    let out = server(&["validate", file], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn validate_reports_every_error_with_lines_and_exits_1() {
    let file = "crates/stream-config/tests/fixtures/three_errors.yaml";
    let out = server(&["validate", file], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 configuration errors"), "{err}");
    assert!(
        err.contains(&format!(
            "{file}:8:7: `sources.sensors.ingestion.polling_intervall_seconds`: unknown key"
        )),
        "{err}"
    );
    assert!(
        err.contains("did you mean `polling_interval_seconds`?"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:9:5: `sources.sensors.rate_limit_per_minute`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:12:7: `routing.pattern_mappings[0].pattern`"
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn validate_of_a_missing_file_is_a_clear_error() {
    let out = server(&["validate", "config/nope.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config/nope.yaml: cannot read config file"),
        "{err}"
    );
}

#[test]
fn print_config_applies_overrides_and_redacts_secrets() {
    let out = server(
        &["print-config", "config/stream_config.example.yaml"],
        &[
            ("STREAM__KAFKA__LINGER_MS", "7"),
            ("STREAM__SERVER__ADMIN_TOKEN", "very-secret-token"),
            ("STREAM__DLQ__URL", "postgres://app:pg-secret@db/dlq"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("linger_ms: 7"), "{text}");
    assert!(text.contains("admin_token: '***'"), "{text}");
    assert!(text.contains("postgres://app:***@db/dlq"), "{text}");
    assert!(
        !text.contains("very-secret-token") && !text.contains("pg-secret"),
        "{text}"
    );
}

#[test]
fn every_command_takes_the_file_positionally_or_as_config() {
    let file = "config/stream_config.example.yaml";
    for args in [
        vec!["validate", file],
        vec!["validate", "--config", file],
        vec!["print-config", file],
        vec!["print-config", "--config", file],
    ] {
        let out = server(&args, &[]);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Both at once is ambiguous: a usage error naming the conflict.
    let out = server(&["validate", file, "--config", file], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `run FILE` reads that file (here an invalid one: the error names it).
    let bad = "crates/stream-config/tests/fixtures/three_errors.yaml";
    let out = server(&["run", bad], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(bad),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_warns_about_a_cache_that_slows_polling_but_accepts_it() {
    let dir = test_support::TempDir::new("cli-warn");
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "sources:\n  s:\n    source_type: synthetic\n    ingestion: { mode: real_time, polling_interval_seconds: 1 }\n    cache_ttl_seconds: 60\n",
    )
    .unwrap();
    let out = server(&["validate", file.to_str().unwrap()], &[]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: `sources.s.cache_ttl_seconds`"),
        "{err}"
    );
}

#[test]
fn file_sources_read_only_under_the_config_folder_and_data() {
    let dir = test_support::TempDir::new("cli-roots");
    std::fs::write(dir.path().join("inside.ndjson"), "{\"n\":1}\n").unwrap();
    let outside = test_support::TempDir::new("cli-roots-outside");
    std::fs::write(
        outside.path().join("secret.ndjson"),
        "{\"password\":\"hunter2\"}\n",
    )
    .unwrap();
    let config = |path: &std::path::Path| {
        format!(
            "sources:\n  f:\n    source_type: file\n    custom_params: {{ path: '{}' }}\n",
            path.display()
        )
    };
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, config(&dir.path().join("inside.ndjson"))).unwrap();
    let out = server(&["validate", file.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Outside (also through `..`): refused, naming the key, never showing the contents.
    let sneaky = dir
        .path()
        .join("..")
        .join(outside.path().file_name().unwrap())
        .join("secret.ndjson");
    std::fs::write(&file, config(&sneaky)).unwrap();
    let out = server(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sources.f.custom_params.path") && err.contains("outside the folders"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

/// The environment `config/seed.yaml` reads its keys and contact from.
const SEED_ENV: [(&str, &str); 4] = [
    ("NWS_CONTACT", "ops@example.org"),
    ("FIRMS_MAP_KEY", "0123456789abcdef0123456789abcdef"),
    ("AIRNOW_API_KEY", "00000000-0000-0000-0000-000000000000"),
    ("PURPLEAIR_API_KEY", "00000000-0000-0000-0000-000000000000"),
];

/// `config/seed.yaml`, the seed's configuration against the real public APIs, passes
/// `validate` (every source built) with its variables set, without a warning; without
/// one it fails naming the variable.
#[test]
fn validate_accepts_the_seed_config_with_its_keys_set() {
    let out = server(&["validate", "config/seed.yaml"], &SEED_ENV);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    assert!(!stderr.contains("warning"), "{stderr}");
    let out = server(&["validate", "config/seed.yaml"], &SEED_ENV[..3]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PURPLEAIR_API_KEY"), "{stderr}");
}

/// An `ingestion.mode` nobody registered is a validate error at its line, listing the
/// registered modes, with the closest as a hint.
#[test]
fn validate_refuses_an_unknown_ingestion_mode_listing_the_registered_ones() {
    let dir = test_support::TempDir::new("cli-mode");
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "sources:\n  s:\n    source_type: synthetic\n    ingestion: { mode: real_tme }\n",
    )
    .unwrap();
    let out = server(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("c.yaml:4:18: `sources.s.ingestion.mode`: unknown ingestion mode `real_tme`; registered: batch, continuous_streaming, real_time; did you mean `real_time`?"),
        "{err}"
    );
}
