//! The seed's views on a real pipeline (mock broker): `summary()` (its `get_metrics()`)
//! and `components()` (its `health_check()`), each verdict flipping with its component.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stream_manager::{Components, StreamManager};
use test_support::poll_until;
use throttling::StaticLagProbe;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::setup;

async fn components(m: &StreamManager) -> Components {
    let h = m.health().await;
    m.components(&h)
}

/// Throttling and the producer: a lag past `critical_consumer_lag` makes the throttle's
/// verdict unhealthy (and shows in the summary), its end makes it healthy again; the
/// broker down makes the producer's unhealthy until it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_and_producer_verdicts_flip_with_lag_and_the_broker() {
    let yaml = "
kafka: { linger_ms: 5 }
throttling: { max_send_rate: 1000, target_consumer_lag: 1000, critical_consumer_lag: 5000, window_size_seconds: 1 }
routing: { fallback_topic: all }
sources:
  s:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.1 }
    custom_params: { records_per_second: 20 }
";
    let (mock, cfg, _dir) = setup(yaml, &["all"]);
    let probe = StaticLagProbe::new(0);
    let m = StreamManager::builder(cfg)
        .lag_probe(Arc::new(probe.clone()))
        .check_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("manager starts");
    poll_until(Duration::from_secs(20), "records sent", async || {
        m.summary().producer.total_sent > 0
    })
    .await;
    let c = components(&m).await;
    assert!(
        c.throttling.healthy && c.producer.healthy && c.streams.healthy && c.dlq.healthy,
        "{c:?}"
    );
    assert_eq!(m.summary().throttling.current_state, "normal");

    probe.set(100_000);
    poll_until(
        Duration::from_secs(20),
        "the throttle critical",
        async || !components(&m).await.throttling.healthy,
    )
    .await;
    let s = m.summary();
    assert_eq!(s.throttling.current_state, "critical", "{s:?}");
    assert!(
        s.throttling.backoff_level >= 1 && s.throttling.rate_adjustments >= 1,
        "{s:?}"
    );
    let c = components(&m).await;
    assert!(
        c.producer.healthy && c.queue.healthy,
        "only the throttle: {c:?}"
    );
    probe.set(0);
    poll_until(
        Duration::from_secs(20),
        "the throttle back to normal",
        async || components(&m).await.throttling.healthy,
    )
    .await;

    mock.broker_down(1).expect("broker down");
    poll_until(
        Duration::from_secs(30),
        "the producer unhealthy",
        async || !components(&m).await.producer.healthy,
    )
    .await;
    let c = components(&m).await;
    assert!(!c.producer.kafka_connected && c.throttling.healthy, "{c:?}");
    mock.broker_up(1).expect("broker up");
    poll_until(
        Duration::from_secs(30),
        "the producer healthy again",
        async || components(&m).await.producer.healthy,
    )
    .await;
    m.shutdown(Duration::from_secs(10)).await;
}

/// The queue at its bound: the queue's verdict is unhealthy and the summary counts what
/// it dropped (each record dead-lettered, so the DLQ stays healthy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_unhealthy_and_its_drops_are_counted() {
    let yaml = "
throttling: { min_send_rate: 1, max_send_rate: 1 }
queue_max_size: 20
queue_overflow_strategy: drop_newest
routing: { fallback_topic: all }
sources:
  s:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.1 }
    custom_params: { records_per_second: 200 }
";
    let (_mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = crate::start(cfg).await;
    poll_until(Duration::from_secs(20), "the queue full", async || {
        !components(&m).await.queue.healthy
    })
    .await;
    let s = m.summary();
    assert_eq!(s.queue.size, 20, "{s:?}");
    assert!(s.queue.utilization_percent >= 100.0, "{s:?}");
    assert!(s.queue.dropped > 0 && s.queue.enqueued >= 20, "{s:?}");
    let c = components(&m).await;
    assert!(c.dlq.healthy && c.producer.healthy, "{c:?}");
    m.shutdown(Duration::from_secs(5)).await;
}

/// An HTTP source: answered (and answered from its cache), then failing. The API
/// figures and the API clients' verdict follow, and the stream counts its errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_figures_and_the_api_clients_verdict_follow_the_upstream() {
    let server = MockServer::start().await;
    Mock::given(path("/obs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [{"id": 1}]})))
        .mount(&server)
        .await;
    let yaml = format!(
        "
kafka: {{ linger_ms: 5 }}
routing: {{ fallback_topic: all }}
sources:
  api:
    source_type: http_json
    rate_limit_per_minute: 60000
    cache_ttl_seconds: 1
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.1 }}
    custom_params:
      url: '{}/obs'
      decoder: {{ type: json, pointer: /items }}
      max_retries: 0
",
        server.uri()
    );
    let (_mock, cfg, _dir) = setup(&yaml, &["all"]);
    let m = crate::start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "requests and cache hits",
        async || {
            let s = m.summary();
            s.api.total_requests >= 3 && s.api.cache_hit_rate > 0.0
        },
    )
    .await;
    let s = m.summary();
    assert_eq!(s.api.success_rate, 1.0, "{s:?}");
    assert!(components(&m).await.api_clients.healthy);

    server.reset().await;
    Mock::given(path("/obs"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    poll_until(
        Duration::from_secs(20),
        "the API clients unhealthy",
        async || !components(&m).await.api_clients.healthy,
    )
    .await;
    let c = components(&m).await;
    assert_eq!(c.api_clients.failing, ["api"], "{c:?}");
    assert!(!c.streams.healthy && c.streams.failing == ["api"], "{c:?}");
    let s = m.summary();
    assert!(
        s.api.success_rate > 0.0 && s.api.success_rate < 1.0,
        "some answered, some failed: {s:?}"
    );
    assert!(s.streams["api"].errors > 0, "{s:?}");
    m.shutdown(Duration::from_secs(5)).await;
}
