//! What a Kafka message holds: the record's own text from the upstream, compacted —
//! key order, number spelling and escapes as sent — and routed and keyed by fields read
//! from that text.

use std::time::Duration;

use test_support::kafka::consume;
use test_support::poll_until;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{setup, start};

/// Pretty-printed, keys out of alphabetical order, numbers a parser would respell
/// (`1.50`, `1e3`, an integer beyond 64 bits), escapes, a nested key to route and key by.
const BODY: &str = r#"{
  "features": [
    {
      "zone": "north",
      "reading": 1.50,
      "scaled": 1e3,
      "big_id": 123456789012345678901234567890,
      "note": "line\nbreak \"quoted\" caf\u00e9",
      "props": { "severity": "critical", "station": "s-1" }
    },
    { "zone": "south", "reading": -0.0, "props": { "severity": "low", "station": "s-2" } }
  ],
  "next": null
}"#;

const EXPECTED: [&str; 2] = [
    r#"{"zone":"north","reading":1.50,"scaled":1e3,"big_id":123456789012345678901234567890,"note":"line\nbreak \"quoted\" caf\u00e9","props":{"severity":"critical","station":"s-1"}}"#,
    r#"{"zone":"south","reading":-0.0,"props":{"severity":"low","station":"s-2"}}"#,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payload_is_the_upstream_text_compacted_and_fields_route_and_key_it() {
    let server = MockServer::start().await;
    Mock::given(path("/obs"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(BODY, "application/json"))
        .mount(&server)
        .await;
    let yaml = format!(
        "
kafka: {{ linger_ms: 5 }}
routing:
  fallback_topic: other
  content_rules:
    - {{ field: /props/severity, operator: eq, value: critical, topic: alerts }}
sources:
  api:
    source_type: http_json
    partition_key: {{ pointer: /props/station }}
    ingestion: {{ mode: batch, schedule_interval_seconds: 3600 }}
    custom_params:
      url: '{}/obs'
      decoder: {{ type: json, pointer: /features }}
",
        server.uri()
    );
    let (mock, cfg, _dir) = setup(&yaml, &["alerts", "other"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "both records delivered",
        async || m.stream("api").await.unwrap().records_processed == 2,
    )
    .await;
    let alert = consume(
        &mock.bootstrap_servers(),
        &["alerts"],
        1,
        Duration::from_secs(20),
    );
    let other = consume(
        &mock.bootstrap_servers(),
        &["other"],
        1,
        Duration::from_secs(20),
    );
    assert_eq!(
        (alert.len(), other.len()),
        (1, 1),
        "the content rule read /props/severity from the text"
    );
    assert_eq!(String::from_utf8_lossy(&alert[0].payload), EXPECTED[0]);
    assert_eq!(String::from_utf8_lossy(&other[0].payload), EXPECTED[1]);
    assert_eq!(alert[0].key.as_deref(), Some(&b"s-1"[..]));
    assert_eq!(other[0].key.as_deref(), Some(&b"s-2"[..]));
    m.shutdown(Duration::from_secs(10)).await;
}
