//! Topics the configuration names are created at start; one the cluster does not
//! create makes `/ready` fail with its name and what to do.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// Kills the server when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_topic_the_cluster_does_not_create_fails_ready_with_its_name() {
    // librdkafka's mock broker has no CreateTopics: it cannot create `weather-obs`, the
    // topic a source names (the fallback `demo` exists).
    let mock: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).unwrap();
    mock.create_topic("demo", 1, 1).unwrap();
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-topics");
    let config = format!(
        "kafka: {{ bootstrap_servers: '{bootstrap}', linger_ms: 5 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
  obs:
    source_type: synthetic
    topic: weather-obs
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.5 }}
server: {{ listen: '127.0.0.1:{port}' }}
",
        bootstrap = mock.bootstrap_servers(),
        dir = dir.path().display()
    );
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let _server = Child(
        Command::new(env!("CARGO_BIN_EXE_stream-server"))
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/ready");
    let started = Instant::now();
    let body = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "/ready never named the missing topic"
        );
        if let Ok(resp) = reqwest::get(&url).await {
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            if status == 503 && body.to_string().contains("weather-obs") {
                break body;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reasons = body["reasons"].as_array().expect("reasons");
    let reason = reasons
        .iter()
        .filter_map(|r| r.as_str())
        .find(|r| r.contains("`weather-obs`"))
        .unwrap_or_else(|| panic!("{body}"));
    assert!(reason.contains("does not exist"), "{reason}");
    assert!(reason.contains("create it"), "what to do: {reason}");
    // The fallback exists, so it is not named.
    assert!(!body.to_string().contains("`demo`"), "{body}");
}
