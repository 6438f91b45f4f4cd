//! End to end inside one process: sources → queue → throttle → routing → Kafka (mock).

use std::time::Duration;

use serde_json::Value;
use stream_manager::StreamStatus;
use test_support::kafka::consume;
use test_support::poll_until;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{setup, start};

pub(crate) const BASE: &str = "
kafka: { linger_ms: 5, batch_size: 200 }
throttling: { max_send_rate: 100000 }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_is_delivered_count_for_count_with_headers() {
    let yaml = format!(
        "{BASE}
routing: {{ fallback_topic: readings }}
sources:
  replay:
    source_type: file
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.05, max_records_per_poll: 100 }}
    custom_params: {{ path: '${{FIXTURES}}/readings.ndjson', records_per_fetch: 1000 }}
"
    );
    let (mock, cfg, _dir) = setup(&yaml, &["readings"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "m.stream(\"replay\").await.unwrap().records_processed == 300",
        async || m.stream("replay").await.unwrap().records_processed == 300,
    )
    .await;
    let got = consume(
        &mock.bootstrap_servers(),
        &["readings"],
        300,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 300);
    let mut ids: Vec<i64> = got
        .iter()
        .map(|c| {
            serde_json::from_slice::<Value>(&c.payload).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..300).collect::<Vec<_>>(), "every record once");
    let h = &got[0].headers;
    for k in [
        "message_id",
        "source_id",
        "source_type",
        "priority",
        "ingested_at_ms",
    ] {
        assert!(h.iter().any(|(hk, _)| hk == k), "header {k} missing: {h:?}");
    }
    assert!(h.contains(&("source_type".into(), "file".into())));
    m.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        m.stream("replay").await.unwrap().cursor.as_deref(),
        Some("300"),
        "cursor committed after delivery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_source_is_delivered_count_for_count() {
    let server = MockServer::start().await;
    let items: Vec<Value> = (0..120).map(|i| serde_json::json!({"obs": i})).collect();
    Mock::given(path("/obs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"items": items})))
        .mount(&server)
        .await;
    let yaml = format!(
        "{BASE}
sources:
  api:
    source_type: http_json
    topic: observations
    rate_limit_per_minute: 6000
    ingestion: {{ mode: batch, schedule_interval_seconds: 3600, batch_size: 50 }}
    custom_params:
      url: '{}/obs'
      decoder: {{ type: json, pointer: /items }}
",
        server.uri()
    );
    let (mock, cfg, _dir) = setup(&yaml, &["observations"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "m.stream(\"api\").await.unwrap().records_processed == 120",
        async || m.stream("api").await.unwrap().records_processed == 120,
    )
    .await;
    let got = consume(
        &mock.bootstrap_servers(),
        &["observations"],
        120,
        Duration::from_secs(20),
    );
    let unique: std::collections::HashSet<_> = got.iter().map(|c| c.id.clone()).collect();
    assert_eq!((got.len(), unique.len()), (120, 120));
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_record_of_a_mixed_batch_goes_where_its_own_rules_say() {
    let yaml = format!(
        "{BASE}
routing:
  fallback_topic: readings
  content_rules:
    - {{ field: /severity, operator: eq, value: critical, topic: alerts }}
sources:
  mixed:
    source_type: file
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.05 }}
    custom_params: {{ path: '${{FIXTURES}}/alerts.ndjson' }}
  readings:
    source_type: file
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.05 }}
    custom_params: {{ path: '${{FIXTURES}}/readings.ndjson' }}
"
    );
    let (mock, cfg, _dir) = setup(&yaml, &["readings", "alerts"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "{ let s = m.list_streams().await; s.iter().map(|s| s.records_processed).sum::<u64>() == 305 }",
        async || {
            let s = m.list_streams().await;
            s.iter().map(|s| s.records_processed).sum::<u64>() == 305
        },
    )
    .await;
    let got = consume(
        &mock.bootstrap_servers(),
        &["readings", "alerts"],
        305,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 305);
    for c in &got {
        let v: Value = serde_json::from_slice(&c.payload).unwrap();
        let expected = if v.get("severity").is_some() {
            "alerts"
        } else {
            "readings"
        };
        assert_eq!(c.topic, expected, "{v}");
    }
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_records_overtake_a_low_backlog() {
    // 50 records/s: the 300 LOW readings form a backlog; the alerts arrive later and
    // are CRITICAL by a priority rule.
    let yaml = "
kafka: { linger_ms: 5, batch_size: 10 }
throttling: { max_send_rate: 50, min_send_rate: 1 }
routing:
  fallback_topic: all
  priority_rules:
    - { field: /alert_id, operator: exists, priority: critical }
sources:
  readings:
    source_type: file
    priority: low
    ingestion: { mode: real_time, polling_interval_seconds: 3600 }
    custom_params: { path: '${FIXTURES}/readings.ndjson' }
  late_alerts:
    source_type: file
    enabled: false
    custom_params: { path: '${FIXTURES}/alerts.ndjson' }
";
    let (mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(10),
        "m.get_metrics().await.queue.len_by_priority[0] > 200",
        async || m.get_metrics().await.queue.len_by_priority[0] > 200,
    )
    .await;
    m.start_stream("late_alerts").await.unwrap();
    poll_until(
        Duration::from_secs(10),
        "m.stream(\"late_alerts\").await.unwrap().records_processed == 5",
        async || m.stream("late_alerts").await.unwrap().records_processed == 5,
    )
    .await;
    // Read once every alert is acknowledged: LOW records acknowledged so far (some maybe
    // after the alerts), hence at least as many as went to Kafka before the last alert.
    let low_delivered = m.stream("readings").await.unwrap().records_processed;
    assert!(
        low_delivered < 300,
        "every LOW record was delivered before the alerts: they overtook nothing"
    );
    m.shutdown(Duration::from_secs(20)).await;
    let got = consume(
        &mock.bootstrap_servers(),
        &["all"],
        305,
        Duration::from_secs(20),
    );
    assert_eq!(got.len(), 305, "nothing lost");
    let is_alert =
        |c: &test_support::kafka::Consumed| c.payload.windows(8).any(|w| w == b"alert_id");
    let last_alert = got.iter().rposition(is_alert).unwrap();
    let low_before = got[..last_alert].iter().filter(|c| !is_alert(c)).count();
    // The alerts went out ahead of every LOW record still queued when they arrived.
    assert!(
        low_before as u64 <= low_delivered,
        "{low_before} LOW records went out before the last alert, though only \
         {low_delivered} were delivered when every alert had been"
    );
    assert_eq!(got.iter().filter(|c| is_alert(c)).count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_overflow_goes_to_the_dlq_and_nothing_is_lost() {
    let yaml = "
kafka: { linger_ms: 5, batch_size: 10 }
throttling: { max_send_rate: 20, min_send_rate: 1 }
queue_max_size: 20
queue_overflow_strategy: drop_oldest
routing: { fallback_topic: all }
sources:
  burst:
    source_type: file
    ingestion: { mode: real_time, polling_interval_seconds: 3600 }
    custom_params: { path: '${FIXTURES}/readings.ndjson' }
";
    let (mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(30),
        "{ let s = m.stream(\"burst\").await.unwrap(); s.records_processed + s.records_dead_lettered == 300 }",
        async || {
            let s = m.stream("burst").await.unwrap();
            s.records_processed + s.records_dead_lettered == 300
        },
    )
    .await;
    let (s, rows, all) = crate::settled_ids(&m, &mock.bootstrap_servers(), &["all"], "burst").await;
    assert!(s.records_dead_lettered >= 250, "{s:?}");
    assert_eq!(rows.len() as u64, s.records_dead_lettered);
    assert_eq!(
        all,
        (0..300).collect::<Vec<_>>(),
        "every record either in Kafka or in the DLQ"
    );
    m.shutdown(Duration::from_secs(10)).await;
}

/// One batch that evicts megabytes: its evicted records are dead-lettered as they go
/// (a megabyte at a time), not held to the end of the batch, and still every record
/// ends in Kafka or in the DLQ with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_evicting_megabytes_dead_letters_them_as_it_goes() {
    let yaml = "
kafka: { linger_ms: 5, batch_size: 10 }
throttling: { max_send_rate: 20, min_send_rate: 1 }
queue_max_bytes: 65536
queue_overflow_strategy: drop_oldest
routing: { fallback_topic: all }
sources:
  big:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 3600, buffer_size: 1000 }
    custom_params: { records_per_second: 600, max_per_fetch: 600, seed: 5, pad_bytes: 4000 }
";
    let (mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = start(cfg).await;
    poll_until(Duration::from_secs(30), "600 settled", async || {
        let s = m.stream("big").await.unwrap();
        s.records_processed + s.records_dead_lettered == 600
    })
    .await;
    let (s, rows, all) =
        crate::settled_by(&m, &mock.bootstrap_servers(), &["all"], "big", "sequence").await;
    // 600 records of 4 KB through a 64 KiB queue: well over two megabytes evicted.
    assert!(s.records_dead_lettered >= 500, "{s:?}");
    assert_eq!(rows.len() as u64, s.records_dead_lettered);
    assert!(
        rows.iter().all(|r| r.error_details.contains("drop_oldest")),
        "reason kept"
    );
    assert_eq!(
        all,
        (1..=600).collect::<Vec<_>>(),
        "every record in Kafka or the DLQ"
    );
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_nothing() {
    let yaml = "
kafka: { linger_ms: 20, batch_size: 500 }
throttling: { max_send_rate: 100000 }
routing: { fallback_topic: all }
sources:
  gen:
    source_type: synthetic
    ingestion: { mode: continuous_streaming, polling_interval_seconds: 0.02, buffer_size: 200, buffer_flush_interval_seconds: 0.2 }
    custom_params: { records_per_second: 5000, seed: 3 }
";
    let (mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = start(cfg).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    m.shutdown(Duration::from_secs(20)).await;
    let s = m.stream("gen").await.unwrap();
    let generated: u64 = s.cursor.as_deref().unwrap().parse().unwrap();
    assert!(generated > 1000, "load was generated: {generated}");
    assert_eq!(
        s.records_processed + s.records_dead_lettered,
        generated,
        "every generated record settled: {s:?}"
    );
    let got = consume(
        &mock.bootstrap_servers(),
        &["all"],
        s.records_processed as usize,
        Duration::from_secs(30),
    );
    let unique: std::collections::HashSet<_> = got.iter().map(|c| c.id.clone()).collect();
    assert_eq!(unique.len() as u64, s.records_processed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_update_restarts_only_the_changed_stream() {
    let yaml = format!(
        "{BASE}
routing: {{ fallback_topic: all }}
sources:
  a:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.1 }}
    custom_params: {{ records_per_second: 10 }}
  b:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.1 }}
    custom_params: {{ records_per_second: 10 }}
"
    );
    let (_mock, cfg, _dir) = setup(&yaml, &["all", "b-topic"]);
    let m = start(cfg.clone()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before_a = m.stream("a").await.unwrap().polls;
    let mut next = cfg.clone();
    next.sources.get_mut("b").unwrap().topic = Some("b-topic".into());
    let touched = m.apply_config(next).await.unwrap();
    assert_eq!(touched, vec!["b".to_owned()]);
    let a = m.stream("a").await.unwrap();
    let b = m.stream("b").await.unwrap();
    assert!(a.polls >= before_a, "a kept running: {a:?}");
    assert!(b.polls <= 1, "b restarted: {b:?}");
    assert_eq!(b.status, StreamStatus::Running);
    // An invalid update changes nothing.
    let mut bad = cfg.clone();
    bad.queue_max_size = 0;
    assert!(m.apply_config(bad).await.is_err());
    assert_eq!(m.config().sources["b"].topic.as_deref(), Some("b-topic"));
    // Keys read only at start: refused with their paths, nothing applied.
    let mut restart = m.config().as_ref().clone();
    restart.throttling.consumer_groups = Some(vec!["watchers".into()]);
    restart.kafka.linger_ms += 1;
    restart.sources.get_mut("a").unwrap().topic = Some("b-topic".into());
    match m.apply_config(restart).await {
        Err(stream_manager::Error::NeedsRestart { keys }) => {
            assert_eq!(keys, ["kafka.linger_ms", "throttling.consumer_groups"]);
        }
        other => panic!("expected NeedsRestart, got {other:?}"),
    }
    assert_eq!(
        m.config().sources["a"].topic,
        None,
        "not even the live part applied"
    );
    // Half-valid: a routing change plus a new source whose connector parameters are
    // wrong (http_json without `url`). Nothing is applied, not even the routing.
    let mut half = m.config().as_ref().clone();
    half.routing.fallback_topic = "elsewhere".into();
    half.sources
        .insert("web".into(), stream_config::SourceConfig::new("http_json"));
    let err = m.apply_config(half).await.unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        text.contains("source web") && text.contains("url"),
        "{text}"
    );
    assert_eq!(m.config().routing.fallback_topic, "all");
    assert!(m.stream("web").await.is_err(), "no stream was added");
    m.shutdown(Duration::from_secs(10)).await;
}

/// Requests `server` has received for `at`.
async fn hits(server: &MockServer, at: &str) -> usize {
    let got = server.received_requests().await.unwrap_or_default();
    got.iter().filter(|r| r.url.path() == at).count()
}

/// Waits until the `tick` source (same interval as `s`, running throughout) has polled
/// `n` more times, then asserts `s` has not polled at all meanwhile: what its own polling
/// would have done in that time, counted by the upstream rather than by the clock.
async fn no_polls_while_tick_polls(server: &MockServer, n: usize, why: &str) {
    let s_before = hits(server, "/s").await;
    let tick_before = hits(server, "/tick").await;
    poll_until(
        Duration::from_secs(20),
        "the tick source polling on",
        async || hits(server, "/tick").await >= tick_before + n,
    )
    .await;
    assert_eq!(hits(server, "/s").await, s_before, "{why}");
}

/// Waits until `s` polls again (counted by the upstream and in its figures).
async fn polls_again(m: &stream_manager::StreamManager, server: &MockServer, why: &str) {
    let before = hits(server, "/s").await;
    poll_until(Duration::from_secs(20), why, async || {
        hits(server, "/s").await > before + 1
    })
    .await;
    poll_until(Duration::from_secs(20), why, async || {
        m.stream("s").await.unwrap().polls > 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_operations_and_health() {
    // `s` is operated on; `tick`, polling at the same interval, is the clock: while it
    // polls five times a paused or stopped `s` must not poll once.
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    let source = |at: &str| {
        format!(
            "
    source_type: http_json
    rate_limit_per_minute: 60000
    cache_ttl_seconds: 0
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.1 }}
    custom_params: {{ url: '{}{at}' }}",
            server.uri()
        )
    };
    let yaml = format!(
        "{BASE}
routing: {{ fallback_topic: all }}
sources:
  s:{}
  tick:{}
",
        source("/s"),
        source("/tick")
    );
    let (_mock, cfg, _dir) = setup(&yaml, &["all"]);
    let m = start(cfg).await;
    let h = m.health().await;
    assert!(h.healthy, "{h:?}");
    assert!(
        h.producer.kafka_connected && h.dlq.reachable && h.streams.active == 2,
        "{h:?}"
    );
    polls_again(&m, &server, "s polls once started").await;

    assert_eq!(
        m.pause_stream("s").await.unwrap().status,
        StreamStatus::Paused
    );
    no_polls_while_tick_polls(&server, 5, "a paused stream does not poll").await;
    assert_eq!(m.stream("s").await.unwrap().status, StreamStatus::Paused);
    assert_eq!(
        m.resume_stream("s").await.unwrap().status,
        StreamStatus::Running
    );
    polls_again(&m, &server, "s polls again once resumed").await;

    assert_eq!(
        m.stop_stream("s").await.unwrap().status,
        StreamStatus::Stopped
    );
    no_polls_while_tick_polls(&server, 5, "a stopped stream does not poll").await;
    assert!(
        m.resume_stream("s").await.is_err(),
        "only paused streams resume"
    );
    no_polls_while_tick_polls(&server, 2, "a refused resume does not start it").await;
    assert_eq!(
        m.start_stream("s").await.unwrap().status,
        StreamStatus::Running
    );
    polls_again(&m, &server, "s polls again once started").await;
    assert!(matches!(
        m.stream("nope").await,
        Err(stream_manager::Error::UnknownStream(_))
    ));
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_can_be_embedded_in_the_payload() {
    let yaml = format!(
        "{BASE}
metadata_in_payload: true
routing: {{ fallback_topic: all }}
sources:
  replay:
    source_type: file
    ingestion: {{ mode: real_time, polling_interval_seconds: 3600 }}
    custom_params: {{ path: '${{FIXTURES}}/alerts.ndjson' }}
"
    );
    let (mock, cfg, _dir) = setup(&yaml, &["all"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "m.stream(\"replay\").await.unwrap().records_processed == 5",
        async || m.stream("replay").await.unwrap().records_processed == 5,
    )
    .await;
    let got = consume(
        &mock.bootstrap_servers(),
        &["all"],
        5,
        Duration::from_secs(20),
    );
    let v: Value = serde_json::from_slice(&got[0].payload).unwrap();
    assert_eq!(v["_metadata"]["source_id"], "replay");
    assert_eq!(
        v["_metadata"]["message_id"],
        Value::String(got[0].id.clone())
    );
    assert!(v["data"]["alert_id"].is_string(), "{v}");
    m.shutdown(Duration::from_secs(10)).await;
}
