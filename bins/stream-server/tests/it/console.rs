//! The data the operator console reads: records in/out/dead-lettered per second
//! (`GET /throughput`) and each source's freshness (`/streams`, `/metrics`).

use std::io::{Read as _, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::Value;

use crate::api::{call, promtool_accepts, start_server_config, READ_TOKEN, TOKEN};
use crate::summary::{conforms, get_json, openapi, server_section};

/// A local upstream on 127.0.0.1 answering every request with `body` (HTTP/1.1,
/// `Connection: close`); its port. The thread ends with the test process.
pub(crate) fn upstream(content_type: &'static str, body: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn sum(v: &Value) -> u64 {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

/// Records in, out and dead-lettered show up in the last seconds of a 900-second ring
/// (a synthetic source delivering, an NDJSON upstream with one undecodable line per
/// poll dead-lettering); the read token is enough, no token is 401; the answer has the
/// documented shape. Fails on the old code: no such route (404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_counts_records_in_out_and_dead_lettered_per_second() {
    let bad = upstream("application/x-ndjson", "{\"ok\":1}\nnot json\n".into());
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-console");
    let config = format!(
        "kafka: {{ bootstrap_servers: embedded, linger_ms: 5 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
  gen:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.2 }}
    custom_params: {{ records_per_second: 50 }}
  bad:
    source_type: http_json
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.5 }}
    custom_params: {{ url: 'http://127.0.0.1:{bad}/items', decoder: {{ type: ndjson }} }}
{server}",
        dir = dir.path().display(),
        server = server_section(port)
    );
    let s = start_server_config(dir, port, &config);
    let (code, _) = call(Method::GET, &format!("{}/throughput", s.base), None, None).await;
    assert_eq!(code, 401, "the ring needs a token, like /streams");
    let mut last = Value::Null;
    test_support::poll_until(
        Duration::from_secs(30),
        "throughput in, out and dead-lettered",
        async || {
            let (code, v) = get_json(&s, "/throughput", Some(READ_TOKEN)).await;
            assert_eq!(code, 200, "{v}");
            let moved = sum(&v["records_in"]) > 0
                && sum(&v["records_out"]) > 0
                && sum(&v["dead_lettered"]) > 0;
            last = v;
            moved
        },
    )
    .await;
    let v = last;
    for key in ["records_in", "records_out", "dead_lettered"] {
        assert_eq!(v[key].as_array().unwrap().len(), 900, "{key}");
    }
    assert_eq!(v["step_seconds"], 1);
    let end = v["start_unix_seconds"].as_u64().unwrap() + 900;
    let now = (now_ms() / 1000) as u64;
    assert!(end <= now + 1 && end + 3 >= now, "ends {end}, now {now}");
    // Only the last seconds saw records: the server started seconds ago.
    let first_busy = v["records_in"]
        .as_array()
        .unwrap()
        .iter()
        .position(|n| n.as_u64() != Some(0))
        .unwrap();
    assert!(first_busy > 850, "{first_busy}");
    let spec = openapi(&s).await;
    conforms(
        &spec,
        &spec["components"]["schemas"]["Throughput"],
        &v,
        "throughput",
    );
}

/// An http_json source with `event_time` shows the age of its newest record's own time
/// (two minutes old here), one without shows the time since its last fetch; both in
/// `/streams`, `/streams/{id}` and as `source_freshness_seconds{source}`, which promtool
/// accepts. Fails on the old code: no such fields, `event_time` an unknown key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_comes_from_the_event_time_else_from_the_last_fetch() {
    let newest = now_ms() - 120_000;
    let body = format!(
        r#"[{{"id":1,"at":{older}}},{{"id":2,"at":{newest}}},{{"id":3}}]"#,
        older = newest - 60_000
    );
    let up = upstream("application/json", body);
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-freshness");
    let config = format!(
        "kafka: {{ bootstrap_servers: embedded, linger_ms: 5 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
  timed:
    source_type: http_json
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.5 }}
    custom_params:
      url: 'http://127.0.0.1:{up}/items'
      event_time: {{ pointer: /at, format: epoch_ms }}
  plain:
    source_type: http_json
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.5 }}
    custom_params: {{ url: 'http://127.0.0.1:{up}/items' }}
{server}",
        dir = dir.path().display(),
        server = server_section(port)
    );
    let s = start_server_config(dir, port, &config);
    test_support::poll_until(Duration::from_secs(30), "both sources fresh", async || {
        let (_, timed) = get_json(&s, "/streams/timed", Some(READ_TOKEN)).await;
        let (_, plain) = get_json(&s, "/streams/plain", Some(READ_TOKEN)).await;
        timed["freshness_basis"] == "event_time" && plain["freshness_basis"] == "last_fetch"
    })
    .await;
    let (_, timed) = get_json(&s, "/streams/timed", Some(READ_TOKEN)).await;
    let expected = api_client::rfc3339(UNIX_EPOCH + Duration::from_millis(newest as u64));
    assert_eq!(timed["newest_event_at"], expected.as_str(), "{timed}");
    let age = timed["freshness_seconds"].as_f64().unwrap();
    assert!((120.0..150.0).contains(&age), "{age}");
    let (_, list) = get_json(&s, "/streams", Some(READ_TOKEN)).await;
    let plain = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "plain")
        .unwrap()
        .clone();
    let age = plain["freshness_seconds"].as_f64().unwrap();
    assert!(age < 10.0, "the last fetch is recent: {plain}");
    assert!(plain["newest_event_at"].is_string(), "{plain}");
    let spec = openapi(&s).await;
    conforms(
        &spec,
        &spec["components"]["schemas"]["Stream"],
        &plain,
        "plain",
    );

    let (code, text) = call(
        Method::GET,
        &format!("{}/metrics", s.base),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let gauge = |source: &str| {
        let prefix = format!("wildfire_source_freshness_seconds{{source=\"{source}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no freshness of {source} in /metrics"))
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        (120.0..150.0).contains(&gauge("timed")),
        "{}",
        gauge("timed")
    );
    assert!(gauge("plain") < 10.0, "{}", gauge("plain"));
    promtool_accepts(&text);
}

/// The example alerting rules (`config/prometheus/stream-manager-rules.yml`, which
/// alert on `source_freshness_seconds`) pass `promtool check rules`.
#[test]
fn the_example_alert_rules_pass_promtool() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/prometheus/stream-manager-rules.yml"
    );
    let text = std::fs::read_to_string(rules).unwrap();
    assert!(text.contains("stream_source_freshness_seconds"), "{text}");
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
        .expect("promtool is needed (apt-get install prometheus; cargo xtask test installs it)");
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
