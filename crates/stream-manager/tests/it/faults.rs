//! Faults inside one process, on the mock broker: a restart, a panicking source, the
//! broker down at shutdown, the dead-letter store down, a panicking delivery task —
//! nothing delivered is re-emitted and nothing is lost.

use std::time::Duration;

use producer::DlqFilter;
use serde_json::Value;
use stream_manager::StreamStatus;
use test_support::kafka::consume;
use test_support::poll_until;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::pipeline::BASE;
use crate::{setup, start};
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_re_emits_nothing_already_delivered() {
    // An upstream that always answers the same 40 items (an overlapping window, as FIRMS,
    // USGS and NWS do), with an ETag on one endpoint and without on the other.
    let server = MockServer::start().await;
    let items: Vec<Value> = (0..40)
        .map(|i| serde_json::json!({"id": format!("q{i}")}))
        .collect();
    Mock::given(path("/window"))
        .respond_with(ResponseTemplate::new(200).set_body_json(items.clone()))
        .mount(&server)
        .await;
    Mock::given(path("/tagged"))
        .and(wiremock::matchers::header("if-none-match", "\"t1\""))
        .respond_with(ResponseTemplate::new(304))
        .mount(&server)
        .await;
    Mock::given(path("/tagged"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"t1\"")
                .set_body_json(serde_json::json!([{"id": "t0"}, {"id": "t1"}])),
        )
        .mount(&server)
        .await;
    let yaml = format!(
        "{BASE}
routing: {{ fallback_topic: quakes }}
sources:
  window:
    source_type: http_json
    rate_limit_per_minute: 6000
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.2 }}
    custom_params:
      url: '{uri}/window'
      dedup: {{ keys: [/id] }}
  tagged:
    source_type: http_json
    rate_limit_per_minute: 6000
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.2 }}
    custom_params:
      url: '{uri}/tagged'
",
        uri = server.uri()
    );
    let (mock, cfg, _dir) = setup(&yaml, &["quakes"]);
    let m = start(cfg.clone()).await;
    poll_until(
        Duration::from_secs(20),
        "both sources delivered and polled again",
        async || {
            let (w, t) = (
                m.stream("window").await.unwrap(),
                m.stream("tagged").await.unwrap(),
            );
            w.records_processed == 40 && t.records_processed == 2 && w.polls >= 3 && t.polls >= 3
        },
    )
    .await;
    m.shutdown(Duration::from_secs(10)).await;
    drop(m);

    // A new process on the same store: the committed fetch state (dedup window,
    // validators) is loaded, so polling on re-emits nothing.
    let m = start(cfg).await;
    poll_until(
        Duration::from_secs(20),
        "polled after the restart",
        async || {
            let (w, t) = (
                m.stream("window").await.unwrap(),
                m.stream("tagged").await.unwrap(),
            );
            w.polls >= 3 && t.polls >= 3
        },
    )
    .await;
    let (w, t) = (
        m.stream("window").await.unwrap(),
        m.stream("tagged").await.unwrap(),
    );
    assert_eq!(
        (w.records_processed, t.records_processed),
        (0, 0),
        "{w:?} {t:?}"
    );
    m.shutdown(Duration::from_secs(10)).await;
    let got = consume(
        &mock.bootstrap_servers(),
        &["quakes"],
        100,
        Duration::from_secs(5),
    );
    assert_eq!(got.len(), 42, "each record once in Kafka");
    let tagged: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/tagged")
        .collect();
    assert!(
        tagged
            .iter()
            .skip(1)
            .all(|r| r.headers.contains_key("if-none-match")),
        "every request after the first is conditional, also across the restart"
    );
}

/// A source that panics on every third fetch, else emits two records.
#[derive(Debug, Default)]
struct Panicky {
    fetches: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl api_client::Source for Panicky {
    async fn fetch(
        &self,
        cursor: Option<&api_client::Cursor>,
    ) -> api_client::Result<api_client::Fetch> {
        let n = self
            .fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        assert!(n % 3 != 0, "connector bug on fetch {n}");
        let at: u64 = cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0);
        Ok(api_client::Fetch {
            records: vec![
                serde_json::json!({"seq": at + 1}).into(),
                serde_json::json!({"seq": at + 2}).into(),
            ],
            next_cursor: Some(api_client::Cursor((at + 2).to_string())),
            changed: true,
            ..api_client::Fetch::default()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_source_is_shown_failing_and_polled_again_without_losing_its_place() {
    let yaml = format!(
        "{BASE}
routing: {{ fallback_topic: all }}
sources:
  bug:
    source_type: panicky
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.05 }}
"
    );
    let (mock, cfg, _dir) = setup(&yaml, &["all"]);
    let mut registry = api_client::Registry::builtin();
    registry.register("panicky", |_, _| {
        Ok(std::sync::Arc::new(Panicky::default()))
    });
    let m = stream_manager::StreamManager::builder(cfg)
        .registry(registry)
        .start()
        .await
        .unwrap();
    poll_until(Duration::from_secs(10), "the panic is shown", async || {
        let s = m.stream("bug").await.unwrap();
        s.failing
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("connector bug on fetch 3"))
    })
    .await;
    // It keeps polling after its backoff: the panic did not end the stream.
    poll_until(
        Duration::from_secs(10),
        "records after the panic",
        async || m.stream("bug").await.unwrap().records_processed >= 8,
    )
    .await;
    let s = m.stream("bug").await.unwrap();
    assert_eq!(s.status, StreamStatus::Running);
    m.stop_stream("bug").await.unwrap();
    poll_until(Duration::from_secs(10), "drained", async || {
        let q = m.get_metrics().await;
        q.queue.is_empty() && q.producer_in_flight == 0
    })
    .await;
    let delivered = m.stream("bug").await.unwrap().records_processed as usize;
    let got = consume(
        &mock.bootstrap_servers(),
        &["all"],
        delivered,
        Duration::from_secs(10),
    );
    let mut seqs: Vec<u64> = got
        .iter()
        .map(|c| {
            serde_json::from_slice::<Value>(&c.payload).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=delivered as u64).collect::<Vec<_>>(),
        "no sequence skipped or repeated across the panics"
    );
    m.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_the_broker_down_and_the_queue_blocked_meets_its_deadline_and_loses_nothing()
{
    let yaml = "
kafka: { linger_ms: 5, batch_size: 200, message_timeout_ms: 300000 }
throttling: { max_send_rate: 100000 }
queue_max_size: 1000
queue_overflow_strategy: block
routing: { fallback_topic: all }
sources:
  gen:
    source_type: synthetic
    ingestion: { mode: continuous_streaming, polling_interval_seconds: 0.02, buffer_size: 100, buffer_flush_interval_seconds: 0.1 }
    custom_params: { records_per_second: 2000, seed: 5 }
";
    let (mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = start(cfg.clone()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    mock.broker_down(1).expect("broker down");
    // Records pile up: in flight in librdkafka, popped by the dispatcher, queued until
    // the queue is full — then the source blocks on it (`block`).
    poll_until(
        Duration::from_secs(20),
        "the queue is full and the source blocked",
        async || m.get_metrics().await.queue.len() >= 1000,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let report = m.shutdown(Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3 + 5),
        "returned {took:?} after shutdown began with the broker down"
    );
    let s = m.stream("gen").await.unwrap();
    let generated: u64 = s.cursor.as_deref().unwrap().parse().unwrap();
    mock.broker_up(1).unwrap();
    let got = consume(
        &mock.bootstrap_servers(),
        &["all"],
        100_000,
        Duration::from_secs(5),
    );
    let in_kafka: std::collections::HashSet<_> = got.iter().map(|c| c.id.clone()).collect();
    let all_rows = m
        .dlq_list(&DlqFilter::default(), 1_000_000, 0)
        .await
        .unwrap();
    let in_dlq: std::collections::HashSet<_> =
        all_rows.iter().map(|r| r.message_id.clone()).collect();
    assert_eq!(
        in_kafka.union(&in_dlq).count() as u64,
        generated,
        "each generated record is in Kafka or in the DLQ (some in both: librdkafka sent them once the broker was back)"
    );
    assert!(report.dead_lettered > 0, "{report:?}");
    assert_eq!(
        s.records_processed + s.records_dead_lettered,
        generated,
        "every generated record was acknowledged or dead-lettered: {s:?} {report:?}"
    );
    let rows = m
        .dlq_list(
            &DlqFilter {
                reason: Some("shutdown".into()),
                ..DlqFilter::default()
            },
            1_000_000,
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len() as u64,
        s.records_dead_lettered,
        "each one a replayable row"
    );
    println!(
        "broker down at shutdown: {generated} generated, {} acknowledged, {} dead-lettered as shutdown ({} queued at shutdown, {} also reached Kafka later), returned after {took:?}",
        s.records_processed,
        s.records_dead_lettered,
        report.queued,
        in_kafka.intersection(&in_dlq).count()
    );
}

/// A DLQ store that never answers (down for the whole test).
#[derive(Debug)]
struct DownStore;

fn down<T>() -> Result<T, producer::Error> {
    Err(producer::Error::dlq(
        "connection refused (the test's store is down)",
    ))
}

#[async_trait::async_trait]
impl producer::DeadLetterStore for DownStore {
    async fn insert(
        &self,
        _: &[producer::NewDeadLetter],
        _: Duration,
    ) -> Result<(), producer::Error> {
        down()
    }
    async fn due(&self, _: i64, _: i64) -> Result<Vec<producer::DeadLetter>, producer::Error> {
        down()
    }
    async fn retry_failed(&self, _: i64, _: &str, _: Option<i64>) -> Result<(), producer::Error> {
        down()
    }
    async fn set_status(&self, _: &[i64], _: producer::DlqStatus) -> Result<u64, producer::Error> {
        down()
    }
    async fn get(&self, _: i64) -> Result<Option<producer::DeadLetter>, producer::Error> {
        down()
    }
    async fn list(
        &self,
        _: &DlqFilter,
        _: i64,
        _: i64,
    ) -> Result<Vec<producer::DeadLetter>, producer::Error> {
        down()
    }
    async fn stats(&self) -> Result<producer::DlqStats, producer::Error> {
        down()
    }
    async fn delete(&self, _: i64) -> Result<bool, producer::Error> {
        down()
    }
    async fn purge(&self, _: &producer::Purge) -> Result<u64, producer::Error> {
        down()
    }
    async fn ping(&self) -> Result<(), producer::Error> {
        down()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_the_store_could_not_take_survive_exit_in_the_journal() {
    let yaml = "
throttling: { max_send_rate: 20 }
queue_max_size: 20
queue_overflow_strategy: drop_newest
routing: { fallback_topic: all }
sources:
  flood:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.05 }
    custom_params: { records_per_second: 2000, seed: 9 }
";
    let (_mock, mut cfg, dir) = setup(yaml, &["all"]);
    cfg.dlq.journal_path = dir.path().join("journal.jsonl").display().to_string();
    let m = stream_manager::StreamManager::builder(cfg.clone())
        .dlq(std::sync::Arc::new(DownStore))
        .start()
        .await
        .unwrap();
    poll_until(
        Duration::from_secs(10),
        "overflow dead letters held in memory",
        async || m.health().await.dlq.buffered > 100,
    )
    .await;
    m.shutdown(Duration::from_secs(2)).await;
    let dead = m.stream("flood").await.unwrap().records_dead_lettered;
    drop(m);
    let journal =
        std::fs::read_to_string(dir.path().join("journal.jsonl")).expect("journal written");
    assert_eq!(
        journal.lines().count() as u64,
        dead,
        "every dead letter is in the journal"
    );

    // The next start (the store reachable again) stores them and removes the journal.
    let m = start(cfg).await;
    let rows = m
        .dlq_list(&DlqFilter::default(), 1_000_000, 0)
        .await
        .unwrap();
    assert!(
        rows.len() as u64 >= dead,
        "{} rows, {dead} journaled",
        rows.len()
    );
    assert!(
        !dir.path().join("journal.jsonl").exists(),
        "the journal is removed once stored"
    );
    m.shutdown(Duration::from_secs(5)).await;
}

/// A producer with a bug: every send panics.
#[derive(Debug)]
struct PanickingProducer;

#[async_trait::async_trait]
impl producer::Producer for PanickingProducer {
    async fn send(
        &self,
        _: Vec<producer::OutgoingRecord>,
    ) -> Vec<(producer::OutgoingRecord, producer::Outcome)> {
        panic!("producer bug");
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn in_flight(&self) -> i64 {
        0
    }
    async fn flush(&self, _: Duration) -> producer::Result<()> {
        Ok(())
    }
    async fn health(&self) -> producer::KafkaHealth {
        producer::KafkaHealth {
            connected: true,
            brokers: 1,
            last_error: None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_a_panicking_delivery_task_go_to_the_dlq() {
    let yaml = "
dlq: { retry_base_delay_seconds: 3600 }
routing: { fallback_topic: all }
sources:
  gen:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.05 }
    custom_params: { records_per_second: 200, seed: 4 }
";
    let (_mock, cfg, _dir) = setup(yaml, &["all"]);
    let m = stream_manager::StreamManager::builder(cfg)
        .producer(std::sync::Arc::new(PanickingProducer))
        .start()
        .await
        .unwrap();
    poll_until(Duration::from_secs(10), "dead letters", async || {
        m.stream("gen").await.unwrap().records_dead_lettered >= 50
    })
    .await;
    m.stop_stream("gen").await.unwrap();
    let rows = async || {
        m.dlq_list(
            &DlqFilter {
                reason: Some("task_panic".into()),
                ..DlqFilter::default()
            },
            1_000_000,
            0,
        )
        .await
        .unwrap()
        .len() as u64
    };
    // The last records may still be on their way to the producer when the stream stops:
    // wait until every dead-lettered record is one row and settled its cursor.
    poll_until(
        Duration::from_secs(10),
        "each dead letter a row, all settled",
        async || {
            let s = m.stream("gen").await.unwrap();
            let settled = s.cursor.as_deref().and_then(|c| c.parse::<u64>().ok());
            m.get_metrics().await.queue.is_empty()
                && settled == Some(s.records_dead_lettered)
                && rows().await == s.records_dead_lettered
        },
    )
    .await;
    let s = m.stream("gen").await.unwrap();
    assert_eq!(s.records_processed, 0);
    let h = m.health().await;
    assert!(h.task_panics > 0 && !h.healthy, "{h:?}");
    m.shutdown(Duration::from_secs(5)).await;
}
