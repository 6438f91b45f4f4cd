//! Shared helpers: stores on SQLite and PostgreSQL, mock clusters, a verifying consumer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use producer::{KafkaProducer, OutgoingRecord, ProducerSettings, SqlDeadLetterStore};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use test_support::TestPostgres;

static N: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh SQLite store in a temporary file.
pub(crate) async fn sqlite_store() -> (SqlDeadLetterStore, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique("dlq"));
    let url = format!("sqlite://{}/dlq.db", dir.display());
    (
        SqlDeadLetterStore::connect(&url)
            .await
            .expect("sqlite store"),
        dir,
    )
}

/// A PostgreSQL server: `DATABASE_URL` when set (xtask sets it), else a throwaway
/// cluster owned by the returned guard.
pub(crate) fn postgres() -> (String, Option<TestPostgres>) {
    match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let pg =
                TestPostgres::start().expect("throwaway PostgreSQL starts (or set DATABASE_URL)");
            (pg.url(), Some(pg))
        }
    }
}

/// A fresh database on that server, so tests never share rows.
pub(crate) async fn postgres_store(admin_url: &str) -> SqlDeadLetterStore {
    use sqlx::Connection;
    let name = unique("dlq");
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    SqlDeadLetterStore::connect(&format!("{base}/{name}"))
        .await
        .expect("postgres store")
}

/// A one-broker mock cluster with `topics` (1 partition each).
pub(crate) fn mock_cluster(topics: &[&str]) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    for t in topics {
        mock.create_topic(t, 1, 1).expect("create topic");
    }
    mock
}

/// Fast retries for tests: 10 ms units instead of seconds.
pub(crate) fn fast_settings(max_retries: u32) -> ProducerSettings {
    ProducerSettings {
        max_retries,
        backoff_base: 2.0,
        backoff_unit: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        metadata_timeout: Duration::from_secs(5),
    }
}

pub(crate) fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000");
    c
}

pub(crate) fn producer(bootstrap: &str, extra: &[(&str, &str)], max_retries: u32) -> KafkaProducer {
    let mut c = base_config(bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    KafkaProducer::with_client_config(c, fast_settings(max_retries)).expect("producer")
}

/// `n` records to `topic` whose payload and `message_id` header carry `prefix-i`.
pub(crate) fn records(topic: &str, prefix: &str, n: usize) -> Vec<OutgoingRecord> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let mut r = OutgoingRecord::new(
                topic,
                "test-source",
                format!("{{\"id\":\"{id}\"}}").into_bytes(),
            );
            r.id = id.clone();
            r.headers
                .push(("message_id".to_owned(), id.into_bytes().into()));
            r
        })
        .collect()
}

pub(crate) use test_support::kafka::{assert_exactly_once, consume_ids};
