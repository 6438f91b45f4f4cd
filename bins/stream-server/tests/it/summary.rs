//! The seed's views on the running service: `GET /metrics/summary` (its `get_metrics()`)
//! and the per-component verdicts of a detailed `/ready` (its `health_check()`).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::api::{
    call, parse_prometheus, start_server_config, wait_for, Server, READ_TOKEN, TOKEN,
};

/// The server section every test here uses.
pub(crate) fn server_section(port: u16) -> String {
    format!("server: {{ listen: '127.0.0.1:{port}', admin_token: '${{ADMIN_TOKEN}}', read_token: '${{READ_TOKEN}}', metrics_namespace: wildfire }}\n")
}

pub(crate) async fn get_json(s: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let (code, body) = call(Method::GET, &format!("{}{path}", s.base), token, None).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
    (code, v)
}

/// Checks `value` against `schema` of the served OpenAPI document: `$ref`s, types,
/// required keys, properties and `additionalProperties` (what our schemas use).
pub(crate) fn conforms(spec: &Value, schema: &Value, value: &Value, at: &str) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return conforms(spec, &spec["components"]["schemas"][name], value, at);
    }
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    let ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    assert!(ok, "{at}: {value} is not a {}", schema["type"]);
    if let Some(values) = schema["enum"].as_array() {
        assert!(values.contains(value), "{at}: {value} not in {values:?}");
    }
    if let Some(min) = schema["minimum"].as_f64() {
        assert!(value.as_f64().unwrap() >= min, "{at}: {value} < {min}");
    }
    if let Some(max) = schema["maximum"].as_f64() {
        assert!(value.as_f64().unwrap() <= max, "{at}: {value} > {max}");
    }
    for key in schema["required"].as_array().into_iter().flatten() {
        let key = key.as_str().unwrap();
        assert!(
            value.get(key).is_some(),
            "{at}: `{key}` missing from {value}"
        );
    }
    if let Some(object) = value.as_object() {
        for (key, v) in object {
            let sub = &schema["properties"][key];
            if !sub.is_null() {
                conforms(spec, sub, v, &format!("{at}.{key}"));
            } else if schema["additionalProperties"].is_object() {
                conforms(
                    spec,
                    &schema["additionalProperties"],
                    v,
                    &format!("{at}.{key}"),
                );
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            conforms(spec, items, v, &format!("{at}[{i}]"));
        }
    }
}

pub(crate) async fn openapi(s: &Server) -> Value {
    let (code, spec) = get_json(s, "/openapi.json", Some(TOKEN)).await;
    assert_eq!(code, 200);
    spec
}

fn series(text: &str, name: &str) -> f64 {
    parse_prometheus(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .1
}

/// Traffic moves the figures: records sent, the queue's backlog (400 records/s offered,
/// 100/s let through), a source whose upstream refuses every connection (its breaker
/// kept shut, so it keeps asking). The seed's
/// gauges on `/metrics` are the same counters. Fails on the old code: no such route
/// (404), and `queue_size` had no total series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_summary_moves_with_traffic_in_the_seeds_shape() {
    let port = test_support::free_port().unwrap();
    let closed = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-summary");
    let config = format!(
        "kafka: {{ bootstrap_servers: embedded, linger_ms: 5 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
throttling: {{ max_send_rate: 100 }}
sources:
  gen:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.2 }}
    custom_params: {{ records_per_second: 400 }}
  down:
    source_type: http_json
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.3 }}
    custom_params: {{ url: 'http://127.0.0.1:{closed}/items', max_retries: 0, breaker_threshold: 1000000 }}
{server}",
        dir = dir.path().display(),
        server = server_section(port)
    );
    let s = start_server_config(dir, port, &config);
    let (code, _) = get_json(&s, "/metrics/summary", None).await;
    assert_eq!(code, 401, "the summary needs a token, like /streams");
    let started = Instant::now();
    let first = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the figures never moved"
        );
        let (code, v) = get_json(&s, "/metrics/summary", Some(READ_TOKEN)).await;
        assert_eq!(code, 200, "{v}");
        if v["producer"]["total_sent"].as_u64().unwrap() > 50
            && v["streams"]["down"]["errors"].as_u64().unwrap() > 0
            && v["queue"]["size"].as_u64().unwrap() > 0
        {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The embedded broker lists no consumer groups: lag throttling is off there rather
    // than failing every reading (it showed "failed to fill whole buffer" in /ready).
    let (_, ready) = get_json(&s, "/ready", Some(READ_TOKEN)).await;
    assert_eq!(ready["health"]["lag"]["mode"], "off", "{ready}");
    assert!(ready["health"]["lag"]["error"].is_null(), "{ready}");
    let spec = openapi(&s).await;
    conforms(&spec, &json_ref("Summary"), &first, "summary");
    // Queue: a backlog, and the counters agree with each other.
    let q = &first["queue"];
    let (enq, deq) = (
        q["enqueued"].as_u64().unwrap(),
        q["dequeued"].as_u64().unwrap(),
    );
    let sent = first["producer"]["total_sent"].as_u64().unwrap();
    assert!(enq >= deq && deq >= sent, "{first}");
    assert!(q["utilization_percent"].as_f64().unwrap() > 0.0, "{first}");
    assert_eq!(first["producer"]["total_failed"], 0, "{first}");
    assert_eq!(first["throttling"]["current_state"], "normal", "{first}");
    // API: every request of `down` failed, none was answered from a cache.
    let api = &first["api"];
    assert!(api["total_requests"].as_u64().unwrap() > 0, "{first}");
    assert!(api["success_rate"].as_f64().unwrap() < 1.0, "{first}");
    assert_eq!(api["cache_hit_rate"].as_f64().unwrap(), 0.0, "{first}");
    // Per stream.
    let gen = &first["streams"]["gen"];
    assert!(gen["records_processed"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(gen["errors"], 0, "{first}");
    assert_eq!(first["streams"]["down"]["records_processed"], 0, "{first}");

    // The seed's gauges are the same counters (read between two summaries).
    let (code, text) = call(Method::GET, &format!("{}/metrics", s.base), None, None).await;
    assert_eq!(code, 200);
    let (_, second) = get_json(&s, "/metrics/summary", Some(TOKEN)).await;
    let gauge_sent = series(&text, "wildfire_producer_total_sent");
    assert!(
        gauge_sent >= sent as f64
            && gauge_sent <= second["producer"]["total_sent"].as_f64().unwrap(),
        "{gauge_sent} {first} {second}"
    );
    assert!(
        series(&text, "wildfire_queue_size") > 0.0,
        "the total, no label"
    );
    assert_eq!(series(&text, "wildfire_producer_total_failed"), 0.0);
    assert_eq!(
        series(
            &text,
            "wildfire_throttle_rate_adjustments{scope=\"global\"}"
        ),
        second["throttling"]["rate_adjustments"].as_f64().unwrap()
    );

    // A second later everything that counts has moved on.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, third) = get_json(&s, "/metrics/summary", Some(TOKEN)).await;
    for path in [
        "/producer/total_sent",
        "/queue/enqueued",
        "/queue/dequeued",
        "/api/total_requests",
        "/streams/gen/records_processed",
        "/streams/down/errors",
    ] {
        let (a, b) = (first.pointer(path).unwrap(), third.pointer(path).unwrap());
        assert!(b.as_u64() > a.as_u64(), "{path}: {a} then {b}");
    }
    assert!(third["streams"]["gen"]["uptime_seconds"].as_u64().unwrap() >= 1);
}

fn json_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Polls the detailed `/ready` until `done` accepts its `components`.
async fn components_until(s: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let body = wait_for(s, "/ready", what, |_, body| {
        serde_json::from_str::<Value>(body).is_ok_and(|v| done(&v["components"]))
    })
    .await;
    serde_json::from_str::<Value>(&body).unwrap()["components"].clone()
}

/// The verdicts of `components`, by name.
fn verdicts(c: &Value) -> Vec<(String, bool)> {
    c.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["healthy"].as_bool().unwrap()))
        .collect()
}

fn healthy_but(c: &Value, unhealthy: &[&str]) -> bool {
    verdicts(c)
        .iter()
        .all(|(k, ok)| *ok != unhealthy.contains(&k.as_str()))
}

/// Each component's verdict in the detailed `/ready`: all healthy, then a stopped
/// stream, then the DLQ's PostgreSQL stopped, each flipping its own. `/ready` keeps its
/// contract (no `components` without a token; 503 when no stream runs). Fails on the
/// old code: no `components`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_carries_a_verdict_per_component_and_each_flips() {
    let pg = test_support::TestPostgres::start().expect("a throwaway PostgreSQL starts");
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-components");
    let config = format!(
        "kafka: {{ bootstrap_servers: embedded, linger_ms: 5 }}
dlq: {{ url: '{url}' }}
routing: {{ fallback_topic: demo }}
sources:
  gen:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.2 }}
    custom_params: {{ records_per_second: 20 }}
{server}",
        url = pg.url(),
        server = server_section(port)
    );
    let s = start_server_config(dir, port, &config);
    let all = components_until(&s, "every component healthy", |c| healthy_but(c, &[])).await;
    let spec = openapi(&s).await;
    conforms(&spec, &json_ref("Components"), &all, "components");
    let names: Vec<String> = verdicts(&all).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "api_clients",
            "dlq",
            "producer",
            "queue",
            "streams",
            "throttling"
        ],
        "{all}"
    );
    assert_eq!(all["streams"]["active_count"], 1, "{all}");
    assert_eq!(all["producer"]["kafka_connected"], true, "{all}");
    // Without a token: the verdict and reasons only, as before.
    let (code, open) = get_json(&s, "/ready", None).await;
    assert_eq!(code, 200, "{open}");
    assert!(
        open.get("components").is_none() && open.get("health").is_none(),
        "{open}"
    );
    let (_, read) = get_json(&s, "/ready", Some(READ_TOKEN)).await;
    assert!(
        read["components"].is_object(),
        "the read token sees details: {read}"
    );

    // A stream stopped: the streams' verdict alone flips (and /ready says 503, as before).
    let (code, body) = call(
        Method::POST,
        &format!("{}/streams/gen/stop", s.base),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let c = components_until(&s, "the streams' verdict flipping", |c| {
        healthy_but(c, &["streams"])
    })
    .await;
    assert_eq!(c["streams"]["active_count"], 0, "{c}");
    assert_eq!(
        c["streams"]["not_running"],
        serde_json::json!(["gen"]),
        "{c}"
    );
    let (code, _) = get_json(&s, "/ready", None).await;
    assert_eq!(code, 503);
    let (code, body) = call(
        Method::POST,
        &format!("{}/streams/gen/start", s.base),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    components_until(&s, "healthy again", |c| healthy_but(c, &[])).await;

    // The DLQ store down: its verdict flips. (The same database holds the fetch state,
    // so the stream fails its commits too.)
    pg.stop(false);
    let started = Instant::now();
    let c = components_until(&s, "the DLQ's verdict flipping", |c| {
        c["dlq"]["healthy"] == false
    })
    .await;
    assert_eq!(c["dlq"]["reachable"], false, "{c}");
    assert!(
        c["producer"]["healthy"] == true && c["queue"]["healthy"] == true,
        "the others are not affected: {c}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Kafka unreachable from the start: the producer's verdict is unhealthy (and the seed's
/// producer gauges exist at 0 although nothing was ever sent). Fails on the old code:
/// no `components`, and no `producer_total_sent` before a first send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_verdict_is_unhealthy_while_kafka_is_unreachable() {
    let port = test_support::free_port().unwrap();
    let closed = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-nokafka");
    let config = format!(
        "kafka: {{ bootstrap_servers: '127.0.0.1:{closed}' }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
  gen:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.5 }}
    custom_params: {{ records_per_second: 10 }}
{server}",
        dir = dir.path().display(),
        server = server_section(port)
    );
    let s = start_server_config(dir, port, &config);
    let c = components_until(&s, "the producer's verdict", |c| c.is_object()).await;
    assert_eq!(c["producer"]["healthy"], false, "{c}");
    assert_eq!(c["producer"]["kafka_connected"], false, "{c}");
    assert_eq!(c["dlq"]["healthy"], true, "{c}");
    let (code, _) = get_json(&s, "/ready", None).await;
    assert_eq!(code, 503, "Kafka unreachable is not ready, as before");
    let (code, text) = call(Method::GET, &format!("{}/metrics", s.base), None, None).await;
    assert_eq!(code, 200);
    for name in [
        "wildfire_producer_total_sent",
        "wildfire_producer_total_failed",
        "wildfire_producer_retry_count",
    ] {
        assert_eq!(series(&text, name), 0.0, "{name}");
    }
    let (_, summary) = get_json(&s, "/metrics/summary", Some(TOKEN)).await;
    assert_eq!(summary["producer"]["total_sent"], 0, "{summary}");
}
