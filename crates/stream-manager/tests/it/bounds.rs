//! Nothing a configuration says can panic the process. Every number of a config that
//! holds every numeric key (`custom_params` of an HTTP, a built-in HTTP connector's
//! generic limits and a synthetic source included)
//! is set, one at a time and then several at random, to 0, negatives, tiny, huge,
//! `1e20`, `.inf`, `.nan` and type limits. Loading, validating and building the sources
//! (what `stream-server validate` does) never panics; whatever that accepts is started
//! as a pipeline and applied as a runtime update (what SIGHUP and `PUT /config` do),
//! and no thread of the process panics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_yaml::Value;
use stream_config::{Format, Loader, StreamConfig};
use stream_manager::StreamManager;

/// Every numeric key of the model, at an ordinary value. The cluster section is
/// enabled (so its ranges are checked) only by `validate_never_panics`.
const BASE: &str = r#"
kafka:
  bootstrap_servers: "${BOOTSTRAP}"
  batch_size: 500
  linger_ms: 5
  max_retries: 3
  retry_backoff_base: 2.0
  message_timeout_ms: 30000
throttling:
  min_send_rate: 1.0
  max_send_rate: 100000.0
  target_consumer_lag: 1000
  critical_consumer_lag: 5000
  adjustment_factor: 1.5
  window_size_seconds: 60
  metric_sample_size: 100
  max_backoff_level: 5
  recovery_checks: 10
  critical_share: 0.2
queue_max_size: 10000
queue_max_bytes: 67108864
dlq:
  url: "${DLQ_URL}"
  max_retries: 3
  retry_base_delay_seconds: 1
  retention_days: 7
  max_settled_rows: 100000
topics:
  readings: { partitions: 1, replication_factor: 1, retention_ms: 86400000 }
routing: { fallback_topic: readings }
server:
  shutdown_timeout_seconds: 5.0
  header_read_timeout_seconds: 5.0
  max_connections: 64
cluster:
  enabled: false
  slots: 64
  session_timeout_ms: 10000
  handover_timeout_seconds: 10
sources:
  http:
    source_type: http_json
    rate_limit_per_minute: 600
    timeout_seconds: 1.0
    cache_ttl_seconds: 0
    partition_key: { geo: { lat: /lat, lon: /lon, precision: 5 } }
    ingestion: { mode: real_time, polling_interval_seconds: 0.2, max_records_per_poll: 100 }
    custom_params:
      url: "http://127.0.0.1:9/refused"
      max_response_bytes: 1000000
      max_pages: 3
      max_retries: 1
      retry_base_seconds: 0.1
      max_retry_after_seconds: 5.0
      breaker_threshold: 5
      breaker_cooldown_seconds: 1.0
      pagination: { type: offset, limit: 10 }
  quakes:
    source_type: usgs_earthquakes
    ingestion: { mode: real_time, polling_interval_seconds: 0.2 }
    custom_params:
      base_url: "http://127.0.0.1:9"
      max_response_bytes: 1000000
      max_retries: 1
      breaker_cooldown_seconds: 1.0
      max_cursor_skew_seconds: 300
  synth:
    source_type: synthetic
    ingestion:
      mode: continuous_streaming
      polling_interval_seconds: 0.2
      buffer_size: 100
      buffer_flush_interval_seconds: 0.5
    custom_params:
      records_per_second: 100.0
      max_per_fetch: 100
      seed: 1
      stations: 5
      alert_probability: 0.1
      pad_bytes: 0
  batch:
    source_type: synthetic
    ingestion: { mode: batch, schedule_interval_seconds: 1, batch_size: 50 }
"#;

/// The values every numeric key is tried at.
fn extremes() -> Vec<Value> {
    let f = |v: f64| Value::Number(v.into());
    vec![
        Value::Number(0.into()),
        Value::Number((-1).into()),
        f(-0.5),
        f(1e-300),
        f(0.5),
        f(1e20),
        f(f64::INFINITY),
        f(f64::NEG_INFINITY),
        f(f64::NAN),
        f(f64::MAX),
        Value::Number(u64::MAX.into()),
        Value::Number(i64::MIN.into()),
        Value::Number(u64::from(u32::MAX).into()),
        Value::Number(2_147_483_648_u64.into()),
        // The upper ends of the ranges: accepted, so run and reloaded at their limit.
        f(0.001),
        Value::Number(3_600.into()),
        Value::Number(86_400.into()),
        Value::Number(604_800.into()),
        Value::Number(31_536_000.into()),
        Value::Number(100_000.into()),
        Value::Number(1_000_000.into()),
        Value::Number(6_000_000.into()),
        f(1e9),
        Value::Number(1_000_000_000_000_u64.into()),
        Value::Number(1_000_000_000_000_000_u64.into()),
    ]
}

/// Random multi-key cases: `FUZZ_CASES` (`cargo xtask fuzz`), or 300.
fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The paths of every number in `v`.
fn numeric_paths(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Number(_) => out.push(path.clone()),
        Value::Mapping(m) => {
            for (k, child) in m {
                if let Some(k) = k.as_str() {
                    path.push(k.to_owned());
                    numeric_paths(child, path, out);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn set(v: &mut Value, path: &[String], to: Value) {
    let mut at = v;
    for k in path {
        at = at.get_mut(k.as_str()).expect("a path of the base config");
    }
    *at = to;
}

fn base() -> Value {
    serde_yaml::from_str(BASE).unwrap()
}

fn loader(bootstrap: &str, dir: &std::path::Path) -> Loader {
    Loader::new().with_env([
        ("BOOTSTRAP".to_owned(), bootstrap.to_owned()),
        (
            "DLQ_URL".to_owned(),
            format!("sqlite://{}/dlq.db", dir.display()),
        ),
    ])
}

/// Loads and validates `doc` and builds its sources, as `stream-server validate` does:
/// the config when all of that accepts it. Panics only if one of them panics.
fn validate(loader: &Loader, doc: &Value) -> Option<StreamConfig> {
    let text = serde_yaml::to_string(doc).unwrap();
    let cfg = loader.load_str(&text, Format::Yaml, "<bounds>").ok()?;
    stream_manager::check_sources(&cfg, None)
        .is_empty()
        .then_some(cfg)
}

/// The name of the threads of the test's own runtime.
const RUNTIME_THREADS: &str = "bounds-pipeline";

/// Counts the panics from now on of the test's runtime, of the test's own thread and of
/// threads Rust did not start (librdkafka's, which run its callbacks): not of other
/// tests' threads, which `cargo test` runs in the same process, one of them panicking on
/// purpose (under nextest each test is its own process anyway).
fn count_panics() -> Arc<AtomicUsize> {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let test = std::thread::current().name().map(str::to_owned);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let name = std::thread::current().name().map(str::to_owned);
        if name.is_none() || name == test || name.as_deref() == Some(RUNTIME_THREADS) {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    panics
}

/// Each value at each key, one at a time, and then several keys at once: validating
/// never panics (the cluster section enabled, so its ranges count too).
#[test]
fn validate_never_panics() {
    let dir = test_support::TempDir::new("bounds");
    let loader = loader("127.0.0.1:9092", dir.path());
    let mut doc = base();
    set(
        &mut doc,
        &["cluster".into(), "enabled".into()],
        Value::Bool(true),
    );
    let mut paths = Vec::new();
    numeric_paths(&doc, &mut Vec::new(), &mut paths);
    assert!(paths.len() >= 50, "every numeric key: {}", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        for value in extremes() {
            let mut d = doc.clone();
            set(&mut d, path, value.clone());
            let outcome = std::panic::catch_unwind(|| validate(&loader, &d).is_some());
            if outcome.is_err() {
                failures.push(format!("{} = {value:?}", path.join(".")));
            }
        }
    }
    assert!(failures.is_empty(), "validate panicked at: {failures:#?}");

    let strategy = proptest::collection::vec((0..paths.len(), 0..extremes().len()), 1..8);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |picks| {
            let mut d = doc.clone();
            for (p, v) in &picks {
                set(&mut d, &paths[*p], extremes()[*v].clone());
            }
            let outcome = std::panic::catch_unwind(|| validate(&loader, &d).is_some());
            prop_assert!(outcome.is_ok(), "validate panicked");
            Ok(())
        })
        .unwrap();
}

/// Whatever validation accepts, a pipeline runs with it and takes it as an update
/// (SIGHUP, `PUT /config`), and nothing panics, in any thread.
#[test]
fn whatever_validate_accepts_runs_and_reloads_without_panicking() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(RUNTIME_THREADS)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_and_reload_every_accepted_extreme());
    // ~100 pipelines were dropped: librdkafka's clients close on blocking threads, which
    // may wait out their message timeout; the test has seen what it needed to see.
    rt.shutdown_timeout(Duration::from_secs(1));
}

async fn run_and_reload_every_accepted_extreme() {
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic("readings", 1, 1).unwrap();
    let dir = test_support::TempDir::new("bounds-run");
    let loader = loader(&mock.bootstrap_servers(), dir.path());
    let doc = base();
    let mut paths = Vec::new();
    numeric_paths(&doc, &mut Vec::new(), &mut paths);
    // Of each key, the smallest and the largest value validation accepts: where a
    // conversion would overflow or an allocation grow, it is at one of these ends.
    let mut accepted = Vec::new();
    let mut refused = 0;
    for path in &paths {
        let mut ok: Vec<(f64, Value, StreamConfig)> = Vec::new();
        for value in extremes() {
            let mut d = doc.clone();
            set(&mut d, path, value.clone());
            match validate(&loader, &d) {
                Some(cfg) => ok.push((value.as_f64().unwrap_or(0.0), value, cfg)),
                None => refused += 1,
            }
        }
        ok.sort_by(|a, b| a.0.total_cmp(&b.0));
        let ends = match ok.len() {
            0 => vec![],
            1 => vec![ok.remove(0)],
            n => vec![ok.remove(n - 1), ok.remove(0)],
        };
        for (_, value, cfg) in ends {
            accepted.push((format!("{} = {value:?}", path.join(".")), cfg));
        }
    }
    assert!(refused > 0 && !accepted.is_empty());
    let base_cfg = validate(&loader, &doc).expect("the base config is valid");
    let panics = count_panics();
    let running = StreamManager::builder(base_cfg.clone())
        .start()
        .await
        .expect("the base config runs");
    for (what, cfg) in &accepted {
        // As an update of the running pipeline: applied, or refused with an error
        // (restart-only keys), never a panic.
        let _ = running.apply_config(cfg.clone()).await;
        let _ = running.apply_config(base_cfg.clone()).await;
        assert_eq!(panics.load(Ordering::SeqCst), 0, "a panic reloading {what}");
    }
    running.shutdown(Duration::from_secs(2)).await;
    // As the configuration a pipeline starts with: four at a time, each with a DLQ of
    // its own.
    let mut running = tokio::task::JoinSet::new();
    for (i, (what, mut cfg)) in accepted.into_iter().enumerate() {
        if running.len() == 4 {
            running.join_next().await.unwrap().unwrap();
        }
        cfg.dlq.url = format!("sqlite://{}/dlq-{i}.db", dir.path().display());
        running.spawn(async move {
            let manager = StreamManager::builder(cfg)
                .start()
                .await
                .unwrap_or_else(|e| panic!("{what}: accepted but does not start: {e}"));
            tokio::time::sleep(Duration::from_millis(30)).await;
            manager.shutdown(Duration::from_secs(2)).await;
        });
    }
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0);
}

/// A panic while an update is checked (here a library user's connector that panics
/// when it is built) refuses that update with an error; the running configuration and
/// its streams go on, and later updates still apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_checking_an_update_refuses_it_and_the_old_config_runs_on() {
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic("readings", 1, 1).unwrap();
    let dir = test_support::TempDir::new("bounds-reload");
    let yaml = "
kafka: { bootstrap_servers: \"${BOOTSTRAP}\" }
dlq: { url: \"${DLQ_URL}\" }
routing: { fallback_topic: readings }
sources:
  steady:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.05 }
    custom_params: { records_per_second: 200 }
";
    let cfg = loader(&mock.bootstrap_servers(), dir.path())
        .load_str(yaml, Format::Yaml, "<reload>")
        .unwrap();
    let mut registry = api_client::Registry::builtin();
    registry.register("fragile", |_, cfg| {
        let limit = cfg.params["limit"].as_f64().unwrap_or(1.0);
        // A conversion no range of ours knows about.
        let _ = Duration::from_secs_f64(limit);
        Err(api_client::Error::Config {
            path: "unused".into(),
            message: "never built".into(),
        })
    });
    let m = StreamManager::builder(cfg.clone())
        .registry(registry)
        .start()
        .await
        .unwrap();
    test_support::poll_until(Duration::from_secs(20), "steady delivers", async || {
        m.stream("steady").await.unwrap().records_processed > 0
    })
    .await;

    let mut next = cfg.clone();
    let mut fragile = stream_config::SourceConfig::new("fragile");
    fragile
        .custom_params
        .insert("limit".into(), serde_json::json!(1e20));
    next.sources.insert("fragile".into(), fragile);
    let err = m
        .apply_config(next)
        .await
        .expect_err("the panic refuses the update");
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(text.contains("panicked"), "{text}");
    assert!(m.stream("fragile").await.is_err(), "nothing of it applied");

    // The old configuration runs on.
    let before = m.stream("steady").await.unwrap().records_processed;
    test_support::poll_until(
        Duration::from_secs(20),
        "steady keeps delivering",
        async || m.stream("steady").await.unwrap().records_processed > before,
    )
    .await;
    // And a good update still applies (the reload lock was released).
    let mut good = cfg.clone();
    good.sources
        .get_mut("steady")
        .unwrap()
        .ingestion
        .polling_interval_seconds = 0.1;
    assert_eq!(
        m.apply_config(good).await.unwrap(),
        vec!["steady".to_owned()]
    );
    m.shutdown(Duration::from_secs(5)).await;
}
