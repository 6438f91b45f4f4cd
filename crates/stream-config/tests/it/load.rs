//! Loading real files: the seed format, the example, errors with lines, JSON, overrides.

use stream_config::{
    Compression, Format, IngestionModeKind, Loader, OverflowStrategy, Priority, StreamConfig,
};

use crate::{fixture, repo_file, SOURCE_TYPES};

fn loader() -> Loader {
    Loader::new().with_source_types(SOURCE_TYPES.iter().copied())
}

#[test]
fn seed_format_loads_unchanged() {
    let cfg = loader()
        .load_file(fixture("seed.yaml"))
        .expect("seed config loads");
    assert_eq!(cfg.kafka.client_id, "wildfire-stream-manager");
    assert_eq!(cfg.kafka.compression_type, Compression::Gzip);
    assert_eq!(cfg.queue_overflow_strategy, OverflowStrategy::DropOldest);
    let src = &cfg.sources["noaa_weather_ca"];
    assert_eq!(src.source_type, "noaa_weather");
    assert_eq!(src.topic.as_deref(), Some("wildfire-weather-data"));
    assert_eq!(src.ingestion.mode, IngestionModeKind::ContinuousStreaming);
    assert_eq!(src.ingestion.polling_interval_seconds, 30.0);
    assert_eq!(src.ingestion.buffer_size, 100);
    assert_eq!(src.rate_limit_per_minute, 120);
    assert_eq!(
        src.custom_params["data_types"],
        serde_json::json!(["temperature", "humidity"])
    );
    // Keys the seed leaves out take their documented defaults.
    assert_eq!(src.priority, Priority::Normal);
    assert_eq!(src.ingestion.max_records_per_poll, 500);
    assert_eq!(cfg.dlq.url, "sqlite://data/dlq.db");
    assert_eq!(cfg.routing.fallback_topic, "wildfire-default");
    assert_eq!(cfg.server.metrics_namespace, "stream");
}

#[test]
fn example_config_loads_and_round_trips() {
    let cfg = loader()
        .load_file(repo_file("config/stream_config.example.yaml"))
        .expect("example config loads");
    assert_eq!(cfg.sources.len(), 3);
    assert_eq!(cfg.routing.content_rules.len(), 2);
    assert_eq!(
        cfg.throttling.consumer_groups,
        Some(vec!["wildfire-analytics".to_owned()])
    );
    // Serialize → load again → the same config, in both formats.
    let yaml = serde_yaml::to_string(&cfg).unwrap();
    let again = loader().load_str(&yaml, Format::Yaml, "<yaml>").unwrap();
    assert_eq!(again, cfg);
    let json = serde_json::to_string_pretty(&cfg).unwrap();
    let again = loader().load_str(&json, Format::Json, "<json>").unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn shipped_default_config_loads() {
    // The README's run command uses this file; it must exist and load.
    let cfg = loader()
        .load_file(repo_file("config/stream_config.yaml"))
        .expect("config/stream_config.yaml loads");
    assert!(
        cfg.kafka.is_embedded(),
        "the default runs on the embedded broker"
    );
    assert!(!cfg.sources.is_empty(), "the default has demo sources");
}

#[test]
fn misspelt_key_wrong_type_and_bad_regex_all_reported_with_lines() {
    let err = loader()
        .load_file(fixture("three_errors.yaml"))
        .unwrap_err();
    let d = err.diagnostics().expect("invalid config");
    assert_eq!(d.items.len(), 3, "{err}");
    let by_path = |p: &str| {
        d.items
            .iter()
            .find(|i| i.path == p)
            .unwrap_or_else(|| panic!("no error at {p}: {err}"))
    };
    let typo = by_path("sources.sensors.ingestion.polling_intervall_seconds");
    assert_eq!(typo.location.map(|l| (l.line, l.column)), Some((8, 7)));
    assert_eq!(typo.message, "unknown key `polling_intervall_seconds`");
    assert_eq!(
        typo.hint.as_deref(),
        Some("did you mean `polling_interval_seconds`?")
    );
    let ty = by_path("sources.sensors.rate_limit_per_minute");
    assert_eq!(ty.location.map(|l| l.line), Some(9));
    assert!(ty.message.contains("invalid type"), "{}", ty.message);
    let re = by_path("routing.pattern_mappings[0].pattern");
    assert_eq!(re.location.map(|l| l.line), Some(12));
    assert!(re.message.contains("invalid regex"), "{}", re.message);
    let text = err.to_string();
    assert!(
        text.contains("three_errors.yaml: 3 configuration errors"),
        "{text}"
    );
}

#[test]
fn semantic_rules_are_all_reported() {
    let yaml = "
kafka: { bootstrap_servers: 'nohost', batch_size: 0 }
throttling: { min_send_rate: 10, max_send_rate: 5, target_consumer_lag: 9, critical_consumer_lag: 9 }
dlq: { url: 'mysql://x/y' }
topics: { 'bad topic': {} }
routing:
  fallback_topic: 'a/b'
  content_rules:
    - { field: severity, operator: in, value: 3, topic: '{nope}' }
sources:
  s1:
    source_type: nasa_firmz
    ingestion: { cron: 'every day', polling_interval_seconds: 0 }
server: { listen: '0.0.0.0:8080' }
";
    let err = loader()
        .load_str(yaml, Format::Yaml, "rules.yaml")
        .unwrap_err();
    let d = err.diagnostics().unwrap();
    let paths: Vec<&str> = d.items.iter().map(|i| i.path.as_str()).collect();
    for expected in [
        "kafka.bootstrap_servers",
        "kafka.batch_size",
        "throttling.min_send_rate",
        "throttling.target_consumer_lag",
        "dlq.url",
        "topics.bad topic",
        "routing.fallback_topic",
        "routing.content_rules[0].field",
        "routing.content_rules[0].value",
        "routing.content_rules[0].topic",
        "sources.s1.source_type",
        "sources.s1.ingestion.cron",
        "sources.s1.ingestion.polling_interval_seconds",
        "server.admin_token",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {err}");
    }
    let typo = d
        .items
        .iter()
        .find(|i| i.path == "sources.s1.source_type")
        .unwrap();
    assert_eq!(typo.hint.as_deref(), Some("did you mean `nasa_firms`?"));
    assert!(d.items.iter().all(|i| i.location.is_some()), "{err}");
}

#[test]
fn json_errors_have_lines_too() {
    let json = "{\n  \"queue_max_size\": \"big\",\n  \"kafka\": {\n    \"lingerms\": 5\n  }\n}\n";
    let err = loader().load_str(json, Format::Json, "c.json").unwrap_err();
    let d = err.diagnostics().unwrap();
    assert_eq!(d.items.len(), 2, "{err}");
    assert_eq!(d.items[0].location.map(|l| l.line), Some(2));
    assert_eq!(d.items[1].location.map(|l| l.line), Some(4));
    assert_eq!(
        d.items[1].hint.as_deref(),
        Some("did you mean `linger_ms`?")
    );
}

#[test]
fn a_json_key_given_twice_is_refused_at_its_line_as_in_yaml() {
    // JSON is read straight into the YAML value tree, which refuses a repeated key
    // (serde_json's own tree kept the last one silently).
    let json = "{\n  \"queue_max_size\": 5,\n  \"queue_max_size\": 6\n}\n";
    let err = loader().load_str(json, Format::Json, "c.json").unwrap_err();
    let d = err.diagnostics().unwrap();
    assert_eq!(d.items.len(), 1, "{err}");
    assert!(d.items[0].message.contains("duplicate"), "{err}");
    assert_eq!(d.items[0].location.map(|l| l.line), Some(3), "{err}");
    let yaml = "queue_max_size: 5\nqueue_max_size: 6\n";
    assert!(loader().load_str(yaml, Format::Yaml, "c.yaml").is_err());
}

#[test]
fn syntax_errors_name_the_position() {
    let err = loader()
        .load_str("kafka:\n  client_id: [unclosed\n", Format::Yaml, "s.yaml")
        .unwrap_err();
    let d = err.diagnostics().unwrap();
    assert_eq!(d.items.len(), 1);
    assert!(d.items[0].message.starts_with("invalid YAML"), "{err}");
    assert!(d.items[0].location.is_some());
}

#[test]
fn missing_required_field_in_list_reported_once_at_the_right_index() {
    let yaml = "
routing:
  pattern_mappings:
    - { pattern: '^a', topic: [1] }
    - { pattern: '^b' }
    - { pattern: '^c', topic: ok-topic, extra: 1 }
";
    let err = loader().load_str(yaml, Format::Yaml, "l.yaml").unwrap_err();
    let d = err.diagnostics().unwrap();
    let paths: Vec<&str> = d.items.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "routing.pattern_mappings[0].topic",
            "routing.pattern_mappings[1]",
            "routing.pattern_mappings[2].extra",
        ],
        "{err}"
    );
}

#[test]
fn interpolation_and_env_overrides() {
    let yaml = "
kafka:
  bootstrap_servers: ${BROKERS:-localhost:9092}
  batch_size: ${BATCH}
server:
  admin_token: \"${TOKEN}\"
sources:
  quakes: { source_type: usgs_earthquakes }
";
    let env = [
        ("BATCH", "250"),
        ("TOKEN", "s3cr3t-value"),
        ("STREAM__SOURCES__QUAKES__PRIORITY", "critical"),
        ("KAFKA_COMPRESSION_TYPE", "zstd"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let cfg: StreamConfig = loader()
        .with_env(env)
        .load_str(yaml, Format::Yaml, "i.yaml")
        .unwrap();
    assert_eq!(cfg.kafka.bootstrap_servers, "localhost:9092");
    assert_eq!(cfg.kafka.batch_size, 250);
    assert_eq!(cfg.kafka.compression_type, Compression::Zstd);
    assert_eq!(cfg.sources["quakes"].priority, Priority::Critical);
    assert_eq!(
        cfg.server.admin_token.as_ref().unwrap().expose(),
        "s3cr3t-value"
    );
    let dump = stream_config::redacted_yaml(&cfg);
    assert!(!dump.contains("s3cr3t-value"), "{dump}");
}

#[test]
fn missing_variable_and_bad_override_are_errors_naming_them() {
    let env = [("STREAM__KAFKA__BATCH_SIZE", "many")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    let err = loader()
        .with_env(env)
        .load_str(
            "server:\n  admin_token: ${ADMIN_TOKEN}\n",
            Format::Yaml,
            "e.yaml",
        )
        .unwrap_err();
    let d = err.diagnostics().unwrap();
    assert_eq!(d.items.len(), 2, "{err}");
    assert!(
        d.items[0].message.contains("`ADMIN_TOKEN` is not set"),
        "{err}"
    );
    assert_eq!(d.items[0].location.map(|l| l.line), Some(2));
    assert_eq!(d.items[1].path, "kafka.batch_size");
    assert_eq!(
        d.items[1].env_var.as_deref(),
        Some("STREAM__KAFKA__BATCH_SIZE")
    );
}

#[test]
fn unknown_extension_is_a_clear_error() {
    let err = loader().load_file("config/whatever.toml").unwrap_err();
    assert!(err.to_string().contains("name the file `*.yaml`"), "{err}");
}

#[test]
fn a_send_rate_no_throttle_can_pace_is_a_validation_error() {
    let err = loader()
        .load_str(
            "throttling:\n  max_send_rate: 1e10\n",
            Format::Yaml,
            "rate.yaml",
        )
        .unwrap_err();
    let d = err.diagnostics().expect("a validation error, not a panic");
    let item = d
        .items
        .iter()
        .find(|i| i.path == "throttling.max_send_rate")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(item.location.map(|l| l.line), Some(2), "{err}");
    assert!(item.hint.as_deref().unwrap_or("").contains("1e9"), "{err}");
}

#[test]
fn a_cache_longer_than_the_polling_interval_is_a_warning_naming_the_key() {
    let cfg = loader()
        .load_str(
            "sources:\n  fast:\n    source_type: http_json\n    ingestion: { mode: real_time, polling_interval_seconds: 1 }\n    cache_ttl_seconds: 60\n  ok:\n    source_type: http_json\n    ingestion: { mode: real_time, polling_interval_seconds: 120 }\n    cache_ttl_seconds: 60\n  default:\n    source_type: http_json\n    ingestion: { mode: real_time, polling_interval_seconds: 1 }\n",
            Format::Yaml,
            "cache.yaml",
        )
        .expect("valid: a warning, not an error");
    assert_eq!(
        cfg.sources["default"].cache_ttl_seconds, 0,
        "no cache by default"
    );
    let warnings = stream_config::warnings(&cfg);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].path, "sources.fast.cache_ttl_seconds");
    assert!(
        warnings[0].message.contains("once per 60 s"),
        "{}",
        warnings[0]
    );
    // NWS: a User-Agent with a contact, or a warning until there is one.
    let cfg = loader()
        .load_str(
            "sources:\n  nws:\n    source_type: noaa_weather\n  nws_ok:\n    source_type: noaa_weather\n    custom_params: { user_agent: 'pipeline (ops@example.org)' }\n",
            Format::Yaml,
            "nws.yaml",
        )
        .unwrap();
    let warnings = stream_config::warnings(&cfg);
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["sources.nws.custom_params.user_agent"],
        "{warnings:?}"
    );
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    // "Billion laughs": nine levels of nine aliases each expand to 9^9 strings.
    let mut yaml = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let err = loader()
        .load_str(&yaml, Format::Yaml, "bomb.yaml")
        .unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // serde_yaml 0.9 stops alias expansion at its repetition limit (also for PUT bodies).
    let d = err.diagnostics().expect("a configuration error");
    assert!(
        d.items[0].message.contains("repetition limit"),
        "{:?}",
        d.items
    );
}

#[test]
fn a_read_only_token_needs_an_admin_token() {
    let err = loader()
        .load_str("server: { read_token: r-1 }\n", Format::Yaml, "s.yaml")
        .unwrap_err();
    let d = err.diagnostics().expect("a validation error");
    assert!(
        d.items.iter().any(|i| i.path == "server.read_token"),
        "{err}"
    );
    assert!(!err.to_string().contains("r-1"), "{err}");
}

/// The values of the report that panicked the process (in `validate`, or at `run`):
/// each is a validation error with its key, line and range.
#[test]
fn huge_durations_and_counts_are_validation_errors_with_their_range() {
    let err = loader()
        .load_str(
            "server:\n  max_connections: 18446744073709551615\n  shutdown_timeout_seconds: .inf\nkafka:\n  retry_backoff_base: 10\n  max_retries: 200\nsources:\n  s:\n    source_type: http_json\n    timeout_seconds: 1.0e20\n    ingestion: { polling_interval_seconds: 1.0e20 }\n",
            Format::Yaml,
            "huge.yaml",
        )
        .unwrap_err();
    let d = err.diagnostics().expect("validation errors, not a panic");
    for (path, line) in [
        ("server.max_connections", 2),
        ("server.shutdown_timeout_seconds", 3),
        ("kafka.max_retries", 6),
        ("sources.s.timeout_seconds", 10),
        ("sources.s.ingestion.polling_interval_seconds", 11),
    ] {
        let item = d
            .items
            .iter()
            .find(|i| i.path == path)
            .unwrap_or_else(|| panic!("{path} missing from {err}"));
        assert_eq!(item.location.map(|l| l.line), Some(line), "{path}: {err}");
        assert!(item.message.starts_with("must be between"), "{path}: {err}");
        assert!(item.hint.is_some(), "{path}: {err}");
    }
}

#[test]
fn routing_order_defaults_to_the_seeds_and_lists_each_strategy_once() {
    use stream_config::RoutingStep::*;
    let cfg = loader().load_str("{}", Format::Yaml, "order.yaml").unwrap();
    assert_eq!(
        cfg.routing.order,
        vec![CustomMappings, ContentRules, PatternMappings]
    );
    let err = loader()
        .load_str(
            "routing:\n  order: [content_rules, content_rules, pattern_mappings]\n",
            Format::Yaml,
            "order.yaml",
        )
        .unwrap_err();
    let d = err.diagnostics().expect("a validation error");
    let item = d
        .items
        .iter()
        .find(|i| i.path == "routing.order")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(item.location.map(|l| l.line), Some(2), "{err}");
}

#[test]
fn a_connector_parameter_is_overridden_by_path_even_where_the_file_names_none() {
    // How the real-broker suite points the seed's files, unchanged, at a local upstream.
    let url = "http://127.0.0.1:41234";
    let env = || {
        [
            (
                "STREAM__SOURCES__NOAA_WEATHER_CA__CUSTOM_PARAMS__BASE_URL",
                url,
            ),
            ("STREAM__DLQ__URL", "sqlite:///tmp/x/dlq.db"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    };
    // The fuller file has `custom_params`: the key joins the ones it names.
    let seed = loader()
        .with_env(env())
        .load_file(fixture("seed.yaml"))
        .unwrap();
    let params = &seed.sources["noaa_weather_ca"].custom_params;
    assert_eq!(params["base_url"], serde_json::json!(url));
    assert_eq!(params["state"], serde_json::json!("CA"));
    assert_eq!(
        params["data_types"],
        serde_json::json!(["temperature", "humidity"])
    );
    assert_eq!(seed.dlq.url, "sqlite:///tmp/x/dlq.db");
    // The Quick Start file has none: the override creates the map with just that key.
    let quick = loader()
        .with_env(env())
        .load_file(fixture("seed_quick_start.yaml"))
        .unwrap();
    let params = &quick.sources["noaa_weather_ca"].custom_params;
    assert_eq!(params.len(), 1, "{params:?}");
    assert_eq!(params["base_url"], serde_json::json!(url));
}
