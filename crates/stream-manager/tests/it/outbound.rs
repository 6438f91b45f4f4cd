//! The manager hands `server.listen` to the connectors: an upstream redirecting a source
//! to the admin API's own address is refused, shown as the stream's error, even when the
//! source's `allowed_hosts` names the host (issue 22).

use std::time::Duration;

use serde_json::json;
use test_support::poll_until;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{setup, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_the_admin_address_is_the_streams_error() {
    // Stands in for our own admin API: whatever it answers must never become a record.
    let admin = MockServer::start().await;
    Mock::given(path("/config"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"admin": "config"}])))
        .mount(&admin)
        .await;
    let home = MockServer::start().await;
    Mock::given(path("/feed"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/config", admin.uri())),
        )
        .mount(&home)
        .await;
    let yaml = format!(
        "
kafka: {{ linger_ms: 5 }}
server: {{ listen: '{}' }}
sources:
  api:
    source_type: http_json
    topic: observations
    allowed_hosts: ['127.0.0.1']
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.1 }}
    custom_params: {{ url: '{}/feed', max_retries: 0 }}
",
        admin.address(),
        home.uri()
    );
    let (_mock, cfg, _dir) = setup(&yaml, &["observations"]);
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "the stream shows the refused redirect",
        async || {
            m.stream("api")
                .await
                .unwrap()
                .last_error
                .is_some_and(|e| e.contains("own admin API"))
        },
    )
    .await;
    assert!(
        admin.received_requests().await.unwrap().is_empty(),
        "never asked"
    );
    assert_eq!(m.stream("api").await.unwrap().records_processed, 0);
    m.shutdown(Duration::from_secs(10)).await;
}
