//! The service as a process: embedded broker, admin API, auth, errors, metrics, SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    // Dropped after the process is killed (fields drop in order after `drop`).
    pub(crate) dir: test_support::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) const TOKEN: &str = "test-admin-token-42";
pub(crate) const READ_TOKEN: &str = "test-read-token-7";

pub(crate) fn start_server() -> Server {
    start_server_with(50, "")
}

/// A server with one synthetic source emitting `records_per_second`, and `extra` YAML
/// appended to its configuration.
pub(crate) fn start_server_with(records_per_second: u32, extra: &str) -> Server {
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-it");
    let config = format!(
        "kafka: {{ bootstrap_servers: embedded, linger_ms: 5 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
  gen:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.2 }}
    custom_params: {{ records_per_second: {records_per_second} }}
server: {{ listen: '127.0.0.1:{port}', admin_token: '${{ADMIN_TOKEN}}', read_token: '${{READ_TOKEN}}', metrics_namespace: wildfire }}
{extra}",
        dir = dir.path().display()
    );
    start_server_config(dir, port, &config)
}

/// A server run with `config` (written into `dir`), listening on `port`.
pub(crate) fn start_server_config(dir: test_support::TempDir, port: u16, config: &str) -> Server {
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_stream-server"))
        .args(["run", "--config"])
        .arg(&path)
        .env("ADMIN_TOKEN", TOKEN)
        .env("READ_TOKEN", READ_TOKEN)
        // In the server's environment but not named by its config file.
        .env("OTHER_SECRET", "very-secret-env-value")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

pub(crate) async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client.request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match body {
        Some((ct, b)) => req = req.header("content-type", ct).body(b.to_owned()),
        None if method != reqwest::Method::GET => {
            req = req.header("content-type", "application/json").body("{}")
        }
        None => {}
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `promtool check metrics` (Debian's `prometheus` package; `cargo xtask test` installs
/// it) reports nothing but the seed's `_count` name: names, types, HELP text, units.
pub(crate) fn promtool_accepts(text: &str) {
    use std::io::Write as _;
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed (apt-get install prometheus; cargo xtask test installs it): {e}"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The one lint allowed: the seed's `producer_retry_count` keeps its name (dashboards
    // of seed users read it), and promtool reserves `_count` for histograms.
    let allowed = |l: &str| {
        l.contains("producer_retry_count non-histogram and non-summary metrics should not have \"_count\" suffix")
    };
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty() && !allowed(l))
        .collect();
    assert!(
        problems.is_empty() && (out.status.success() || report.lines().any(allowed)),
        "promtool check metrics:\n{report}"
    );
}

/// A YAML document as JSON text (the admin API takes JSON only).
pub(crate) fn as_json(yaml: &str) -> String {
    let v: serde_json::Value = serde_yaml::from_str(yaml).expect("test YAML");
    serde_json::to_string(&v).unwrap()
}

/// Parses Prometheus text format strictly enough to catch malformed output.
pub(crate) fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let name_re = |n: &str| {
        n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(
                rest.starts_with("TYPE ") || rest.starts_with("HELP "),
                "bad comment line: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name_re(name), "bad metric name in: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "bad labels: {line}"
                );
            }
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        out.push((series.to_owned(), v));
    }
    // Every metric family carries help text (`promtool check metrics` wants it).
    let families = |prefix: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    let (typed, helped) = (families("# TYPE "), families("# HELP "));
    assert!(!typed.is_empty(), "no metric families");
    let missing: Vec<_> = typed.difference(&helped).collect();
    assert!(missing.is_empty(), "metrics without HELP: {missing:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_end_to_end() {
    use reqwest::Method;
    let s = start_server();
    let b = &s.base;
    // Open routes.
    assert_eq!(
        call(Method::GET, &format!("{b}/health"), None, None)
            .await
            .0,
        200
    );
    // Wait for data to flow.
    let start = Instant::now();
    loop {
        let (code, body) = call(Method::GET, &format!("{b}/streams/gen"), Some(TOKEN), None).await;
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["records_processed"].as_u64().unwrap() > 20 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no records delivered: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, body) = call(Method::GET, &format!("{b}/ready"), None, None).await;
    assert_eq!(code, 200, "{body}");
    // Without the token: the verdict only (no health details, which name brokers).
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], true);
    assert!(v.get("health").is_none(), "{body}");
    let (_, body) = call(Method::GET, &format!("{b}/ready"), Some(TOKEN), None).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["health"]["producer"]["kafka_connected"]
            .as_bool()
            .unwrap(),
        "{body}"
    );

    // Auth on everything but health, ready, metrics.
    assert_eq!(
        call(Method::GET, &format!("{b}/streams"), None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(Method::GET, &format!("{b}/streams"), Some("wrong"), None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(Method::GET, &format!("{b}/config"), None, None)
            .await
            .0,
        401
    );
    // The read-only token reads, and cannot change anything.
    assert_eq!(
        call(Method::GET, &format!("{b}/streams"), Some(READ_TOKEN), None)
            .await
            .0,
        200
    );
    let (code, body) = call(
        Method::POST,
        &format!("{b}/streams/gen/pause"),
        Some(READ_TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = call(Method::GET, &format!("{b}/config"), Some(READ_TOKEN), None).await;
    assert_eq!(code, 200);
    assert!(
        !body.contains(TOKEN) && !body.contains(READ_TOKEN),
        "{body}"
    );
    let (code, body) = call(Method::GET, &format!("{b}/config"), Some(TOKEN), None).await;
    assert_eq!(code, 200);
    assert!(
        !body.contains(TOKEN),
        "the token never appears in the config dump"
    );

    // 404 and 400, always JSON.
    let (code, body) = call(Method::GET, &format!("{b}/streams/nope"), Some(TOKEN), None).await;
    assert_eq!(code, 404);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    assert_eq!(
        call(
            Method::POST,
            &format!("{b}/streams/gen/fly"),
            Some(TOKEN),
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(
            Method::GET,
            &format!("{b}/dlq?status=bogus"),
            Some(TOKEN),
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(Method::GET, &format!("{b}/nowhere"), Some(TOKEN), None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            Method::POST,
            &format!("{b}/dlq/999999/replay"),
            Some(TOKEN),
            None
        )
        .await
        .0,
        404
    );

    // Stream control.
    let (code, body) = call(
        Method::POST,
        &format!("{b}/streams/gen/pause"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "paused"
    );
    assert_eq!(
        call(
            Method::POST,
            &format!("{b}/streams/gen/pause"),
            Some(TOKEN),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            Method::POST,
            &format!("{b}/streams/gen/resume"),
            Some(TOKEN),
            None
        )
        .await
        .0,
        200
    );

    // A bad update: 422 with every error, nothing changed.
    let bad = "queue_max_size: 0\nsources: { x: { source_type: nope } }\n";
    // YAML is not accepted on the API (no cross-site form posts, no YAML parsing).
    let (code, body) = call(
        Method::PUT,
        &format!("{b}/config"),
        Some(TOKEN),
        Some(("application/yaml", bad)),
    )
    .await;
    assert_eq!(code, 415, "{body}");
    // Bodies are bounded (1 MiB).
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let (code, _) = call(
        Method::PUT,
        &format!("{b}/config"),
        Some(TOKEN),
        Some(("application/json", &huge)),
    )
    .await;
    assert_eq!(code, 413);
    let (code, body) = call(
        Method::PUT,
        &format!("{b}/config"),
        Some(TOKEN),
        Some(("application/json", &as_json(bad))),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let paths: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"queue_max_size") && paths.contains(&"sources.x.source_type"),
        "{paths:?}"
    );
    let (_, streams) = call(Method::GET, &format!("{b}/streams"), Some(TOKEN), None).await;
    assert!(!streams.contains("\"x\""));

    // A change to a key read only at start is refused, naming the key.
    let path = s.dir.path().join("config.yaml");
    let file = std::fs::read_to_string(&path).unwrap();
    let restart = file.replace("linger_ms: 5", "linger_ms: 9");
    let (code, body) = call(
        Method::PUT,
        &format!("{b}/config"),
        Some(TOKEN),
        Some(("application/json", &as_json(&restart))),
    )
    .await;
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("kafka.linger_ms"), "{body}");

    // A body may not read the server's environment beyond what the file already names.
    let probing = file.replace(
        "server:",
        "  gen9:\n    source_type: synthetic\n    topic: \"t-${OTHER_SECRET}\"\nserver:",
    );
    let (code, body) = call(
        Method::PUT,
        &format!("{b}/config"),
        Some(TOKEN),
        Some(("application/json", &as_json(&probing))),
    )
    .await;
    assert!(code == 400 || code == 422, "{code} {body}");
    assert!(
        body.contains("OTHER_SECRET"),
        "the error names the variable: {body}"
    );
    assert!(!body.contains("very-secret-env-value"), "{body}");

    // A good update applies and is written to the config file (as sent: the token
    // stays a `${ADMIN_TOKEN}` reference), so a reload or restart keeps it.
    let added = file.replace(
        "server:",
        "  gen3:\n    source_type: synthetic\n    ingestion: { mode: real_time, polling_interval_seconds: 0.5 }\nserver:",
    );
    let (code, body) = call(
        Method::PUT,
        &format!("{b}/config"),
        Some(TOKEN),
        Some(("application/json", &as_json(&added))),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["persisted"], true, "{body}");
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert!(on_disk.contains("\"gen3\""), "{on_disk}");
    assert!(
        on_disk.contains("${ADMIN_TOKEN}") && !on_disk.contains(TOKEN),
        "{on_disk}"
    );

    // DLQ endpoints answer.
    let (code, body) = call(Method::GET, &format!("{b}/dlq/stats"), Some(TOKEN), None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        call(Method::GET, &format!("{b}/dlq?limit=5"), Some(TOKEN), None)
            .await
            .0,
        200
    );
    // Purge needs a rule; with one it answers how many rows went.
    let (code, body) = call(
        Method::POST,
        &format!("{b}/dlq/purge"),
        Some(TOKEN),
        Some(("application/json", "{}")),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = call(
        Method::POST,
        &format!("{b}/dlq/purge"),
        Some(TOKEN),
        Some((
            "application/json",
            r#"{"older_than_days": 30, "keep_newest": 1000}"#,
        )),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        serde_json::from_str::<Value>(&body).unwrap()["deleted"].is_u64(),
        "{body}"
    );

    // Metrics: valid Prometheus text, with the configured namespace.
    let (code, text) = call(Method::GET, &format!("{b}/metrics"), None, None).await;
    assert_eq!(code, 200);
    promtool_accepts(&text);
    let series = parse_prometheus(&text);
    let sent = series
        .iter()
        .find(|(n, _)| n == "wildfire_producer_sent_total")
        .map(|(_, v)| *v);
    assert!(sent.unwrap_or(0.0) > 0.0, "{text}");
    assert!(
        series
            .iter()
            .any(|(n, _)| n.starts_with("wildfire_pipeline_e2e_latency_seconds_bucket")),
        "e2e histogram"
    );
    assert!(
        series.iter().all(|(n, _)| n.starts_with("wildfire_")),
        "every metric carries the namespace"
    );
    // The seed's nine names, beside the project's own.
    for name in [
        "wildfire_producer_total_sent",
        "wildfire_producer_total_failed",
        "wildfire_producer_retry_count",
        "wildfire_queue_size",
        "wildfire_queue_utilization_percent",
        "wildfire_queue_dropped",
        "wildfire_throttle_state",
        "wildfire_throttle_backoff_level",
        "wildfire_throttle_rate_adjustments",
    ] {
        assert!(
            series
                .iter()
                .any(|(n, _)| n == name || n.starts_with(&format!("{name}{{"))),
            "{name} missing from {text}"
        );
    }
    // The seed's `queue_size` is the total: a series without the `priority` label.
    assert!(
        series.iter().any(|(n, _)| n == "wildfire_queue_size"),
        "{text}"
    );
    let total_sent = series
        .iter()
        .find(|(n, _)| n == "wildfire_producer_total_sent")
        .map(|(_, v)| *v);
    assert!(total_sent.unwrap_or(0.0) > 0.0, "{text}");
    // Every record is counted by the routing step that chose its topic, and by topic.
    for prefix in [
        "wildfire_resolver_resolutions_total{strategy=",
        "wildfire_resolver_records_total{topic=",
    ] {
        let routed: f64 = series
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, v)| *v)
            .sum();
        assert!(routed > 0.0, "{prefix} missing from {text}");
    }
}

/// Polls `GET {path}` (with the admin token) until `done` accepts its answer.
pub(crate) async fn wait_for(
    s: &Server,
    path: &str,
    what: &str,
    done: impl Fn(u16, &str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let (code, body) = call(
            reqwest::Method::GET,
            &format!("{}{path}", s.base),
            Some(TOKEN),
            None,
        )
        .await;
        if done(code, &body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} never happened: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
