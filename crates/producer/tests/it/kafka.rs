//! The producer against librdkafka's in-process broker, with fault injection.

use std::time::Duration;

use producer::{replay, DeadLetterStore, Delivery, DlqFilter, DlqStatus, FailureReason, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::support::{
    assert_exactly_once, consume_ids, memory_store, mock_cluster, producer, records,
};

#[tokio::test]
async fn every_record_is_acknowledged_with_its_offset() {
    let mock = mock_cluster(&["t"]);
    let p = producer(&mock.bootstrap_servers(), &[], 3);
    let outcomes = p.send(records("t", "r", 100)).await;
    assert_eq!(outcomes.len(), 100);
    let mut offsets: Vec<i64> = outcomes
        .iter()
        .map(|(_, o)| o.as_ref().expect("delivered").offset)
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..100).collect::<Vec<_>>());
    // Outcomes come back in input order.
    assert!(outcomes
        .iter()
        .enumerate()
        .all(|(i, (r, _))| *r.id == format!("r-{i}")));
    assert_eq!(p.stats().sent, 100);
    assert_exactly_once(
        &consume_ids(&mock.bootstrap_servers(), "t", 100, Duration::from_secs(20)),
        "r",
        100,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_then_up_delivers_everything_exactly_once() {
    let mock = mock_cluster(&["t"]);
    let p = std::sync::Arc::new(producer(&mock.bootstrap_servers(), &[], 3));
    // Warm up so the producer knows the leader.
    assert!(p.send(records("t", "warm", 1)).await[0].1.is_ok());
    mock.broker_down(1).unwrap();
    let sender = tokio::spawn({
        let p = p.clone();
        async move { p.send(records("t", "down", 300)).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !sender.is_finished(),
        "nothing is acknowledged while the broker is down"
    );
    mock.broker_up(1).unwrap();
    let outcomes = sender.await.unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first().map(|f| &f.1)
    );
    assert_eq!(
        p.stats().retries,
        0,
        "librdkafka rode out the outage; nothing was resent"
    );
    let seen = consume_ids(&mock.bootstrap_servers(), "t", 301, Duration::from_secs(30));
    let down: std::collections::HashMap<_, _> = seen
        .into_iter()
        .filter(|(k, _)| k.starts_with("down-"))
        .collect();
    assert_exactly_once(&down, "down", 300);
}

#[tokio::test]
async fn injected_retryable_errors_are_retried_by_librdkafka_under_idempotence() {
    let mock = mock_cluster(&["t"]);
    let p = producer(&mock.bootstrap_servers(), &[], 3);
    assert!(p.send(records("t", "warm", 1)).await[0].1.is_ok());
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 4],
    );
    let outcomes = p.send(records("t", "e", 50)).await;
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()));
    let seen = consume_ids(&mock.bootstrap_servers(), "t", 51, Duration::from_secs(20));
    let e: std::collections::HashMap<_, _> = seen
        .into_iter()
        .filter(|(k, _)| k.starts_with("e-"))
        .collect();
    assert_exactly_once(&e, "e", 50);
}

#[tokio::test]
async fn our_retry_resends_only_the_failed_records() {
    let mock = mock_cluster(&["t"]);
    // librdkafka's own retries off, so failures reach our retry layer.
    let p = producer(
        &mock.bootstrap_servers(),
        &[
            ("enable.idempotence", "false"),
            ("message.send.max.retries", "0"),
            ("linger.ms", "50"),
        ],
        5,
    );
    assert!(p.send(records("t", "warm", 1)).await[0].1.is_ok());
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let outcomes = p.send(records("t", "x", 40)).await;
    assert!(
        outcomes.iter().all(|(_, o)| o.is_ok()),
        "{:?}",
        outcomes.iter().find(|(_, o)| o.is_err())
    );
    let stats = p.stats();
    assert!(
        stats.retries > 0,
        "the injected errors reached our retry layer"
    );
    assert!(
        stats.retries <= 80,
        "only failed records are resent, at most once per error: {stats:?}"
    );
    let seen = consume_ids(&mock.bootstrap_servers(), "t", 41, Duration::from_secs(20));
    let x: std::collections::HashMap<_, _> = seen
        .into_iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .collect();
    assert_exactly_once(&x, "x", 40);
}

#[tokio::test]
async fn fatal_errors_go_to_the_dlq_and_replay_delivers_after_the_fix() {
    let mock = mock_cluster(&["t", "forbidden"]);
    let bootstrap = mock.bootstrap_servers();
    let store = memory_store();
    let store = std::sync::Arc::new(store);
    // A producer that refuses records over 1000 bytes.
    let strict = std::sync::Arc::new(producer(&bootstrap, &[("message.max.bytes", "1000")], 3));
    let delivery = Delivery::new(strict.clone(), store.clone());
    let mut batch = records("t", "ok", 3);
    let mut big = records("t", "big", 1).remove(0);
    big.payload = vec![b'x'; 5000].into();
    batch.push(big);
    mock.topic_error(
        "forbidden",
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    )
    .unwrap();
    batch.extend(records("forbidden", "auth", 1));
    let report = delivery.deliver(batch).await;
    assert_eq!(
        (report.delivered, report.dead_lettered),
        (3, 2),
        "{report:?}"
    );
    assert_eq!(strict.stats().retries, 0, "fatal errors are never retried");

    let rows = store.list(&DlqFilter::default(), 10, 0).await.unwrap();
    let big_row = rows
        .iter()
        .find(|r| r.message_id == "big-0")
        .expect("oversized row");
    assert_eq!(
        big_row.failure_reason,
        FailureReason::RecordTooLarge.as_str()
    );
    assert!(
        big_row.error_details.starts_with("MessageSizeTooLarge"),
        "{}",
        big_row.error_details
    );
    assert_eq!(big_row.status, DlqStatus::PermanentFailure);
    let auth_row = rows
        .iter()
        .find(|r| r.message_id == "auth-0")
        .expect("authorization row");
    assert_eq!(
        auth_row.failure_reason,
        FailureReason::Authorization.as_str()
    );

    // The cause is fixed (a producer with the default size limit): replay delivers it.
    let fixed = producer(&bootstrap, &[], 3);
    let (replayed, failed) = replay(store.as_ref(), &fixed, std::slice::from_ref(big_row), None)
        .await
        .unwrap();
    assert_eq!((replayed, failed), (1, 0));
    assert_eq!(
        store.get(big_row.id).await.unwrap().unwrap().status,
        DlqStatus::Replayed
    );
    let seen = consume_ids(&bootstrap, "t", 4, Duration::from_secs(20));
    assert_eq!(seen.get("big-0"), Some(&1));
}

#[tokio::test]
async fn unreachable_cluster_exhausts_retries_into_the_dlq_as_retriable() {
    let port = test_support::free_port().unwrap();
    let p = std::sync::Arc::new(producer(
        &format!("127.0.0.1:{port}"),
        &[
            ("message.timeout.ms", "300"),
            ("enable.idempotence", "false"),
        ],
        2,
    ));
    let store = memory_store();
    let delivery = Delivery::new(p.clone(), std::sync::Arc::new(store));
    let report = delivery.deliver(records("t", "lost", 5)).await;
    assert_eq!(report.dead_lettered, 5);
    assert!(
        report.failures.iter().all(|(_, r)| r.is_retriable()),
        "{report:?}"
    );
    assert_eq!(p.stats().retries, 10, "5 records × 2 retries");
    let rows = delivery
        .store()
        .list(&DlqFilter::default(), 10, 0)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.status == DlqStatus::QueuedForRetry));
}

#[tokio::test]
async fn critical_records_skip_the_linger_window() {
    let mock = mock_cluster(&["t"]);
    let p = std::sync::Arc::new(producer(
        &mock.bootstrap_servers(),
        &[("linger.ms", "3000")],
        3,
    ));
    assert!(p.send(records("t", "warm", 1)).await[0].1.is_ok());
    let normal = tokio::spawn({
        let p = p.clone();
        async move { p.send(records("t", "normal", 1)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut alert = records("t", "alert", 1);
    alert[0].critical = true;
    let out = p.send(alert).await;
    assert!(out[0].1.is_ok());
    assert!(
        !normal.is_finished(),
        "the normal record still lingers while the alert is acknowledged"
    );
    assert!(normal.await.unwrap()[0].1.is_ok());
}

#[tokio::test]
async fn health_reports_brokers_or_the_error() {
    let mock = mock_cluster(&["t"]);
    let p = producer(&mock.bootstrap_servers(), &[], 0);
    let h = p.health().await;
    assert!(h.connected && h.brokers == 1, "{h:?}");
    let port = test_support::free_port().unwrap();
    let mut settings = crate::support::fast_settings(0);
    settings.metadata_timeout = Duration::from_millis(500);
    let dead = producer::KafkaProducer::with_client_config(
        crate::support::base_config(&format!("127.0.0.1:{port}")),
        settings,
    )
    .unwrap();
    let h = dead.health().await;
    assert!(!h.connected && h.last_error.is_some(), "{h:?}");
}

/// A log sink for the test's global subscriber.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn librdkafka_log_lines_reach_tracing() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("librdkafka=debug")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // librdkafka logs from its own threads: the subscriber must be global.
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test of this binary installs a global subscriber");
    let port = test_support::free_port().unwrap();
    let p = producer(
        &format!("127.0.0.1:{port}"),
        &[("message.timeout.ms", "1500")],
        0,
    );
    let _ = p.send(records("t", "log", 1)).await;
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(text.contains("librdkafka"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.to_lowercase().contains("refused"),
        "the connection failure is logged: {text}"
    );
}
