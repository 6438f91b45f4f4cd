//! The producer layer versus bare rdkafka: the same records, the same producer settings,
//! the same broker, alternating runs; prints records/s and the ratio per record size.
//! The broker is librdkafka's in-process mock, or the one `BENCH_BOOTSTRAP` names (its
//! topic `BENCH_TOPIC`, default `bench`, must exist). `BENCH_RECORD_BYTES` is a
//! comma-separated list of sizes (default `200,2048`). `--quick` (or BENCH_QUICK=1)
//! sends fewer records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use producer::{client_config, KafkaProducer, OutgoingRecord, Producer, ProducerSettings};
use rdkafka::config::FromClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use stream_config::KafkaConfig;

const BATCH: usize = 500;
const IN_FLIGHT: usize = 16;

fn kafka_config(bootstrap: &str) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: bootstrap.to_owned(),
        linger_ms: 5,
        ..KafkaConfig::default()
    }
}

async fn bare(p: &FutureProducer, topic: &str, payload: &[u8], n: usize) -> Duration {
    let keys: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let start = Instant::now();
    let mut futures = Vec::with_capacity(n);
    for key in &keys {
        loop {
            match p.send_result(FutureRecord::to(topic).payload(payload).key(key)) {
                Ok(f) => {
                    futures.push(f);
                    break;
                }
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    for f in futures {
        f.await.unwrap().unwrap();
    }
    start.elapsed()
}

async fn layer(p: Arc<KafkaProducer>, topic: &str, payload: &[u8], n: usize) -> Duration {
    let records: Vec<OutgoingRecord> = (0..n)
        .map(|i| {
            let mut r = OutgoingRecord::new(topic, "bench", payload.to_vec());
            r.key = Some(i.to_string().into_bytes().into());
            r
        })
        .collect();
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::new();
    for chunk in records.chunks(BATCH) {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (p, chunk) = (p.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let out = p.send(chunk).await;
            drop(permit);
            assert!(out.iter().all(|(_, o)| o.is_ok()));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let quick =
        std::env::args().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (n, runs) = if quick { (5_000, 1) } else { (200_000, 5) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let external = std::env::var("BENCH_BOOTSTRAP").ok();
    let topic = std::env::var("BENCH_TOPIC").unwrap_or_else(|_| "bench".to_owned());
    let mock = if external.is_none() {
        let m = MockCluster::new(1).unwrap();
        m.create_topic(&topic, 4, 1).unwrap();
        Some(m)
    } else {
        None
    };
    let bootstrap = external
        .clone()
        .unwrap_or_else(|| mock.as_ref().unwrap().bootstrap_servers());
    let broker = if external.is_some() {
        "external"
    } else {
        "mock"
    };
    let sizes: Vec<usize> = std::env::var("BENCH_RECORD_BYTES")
        .unwrap_or_else(|_| "200,2048".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let cfg = kafka_config(&bootstrap);
    let bare_producer: FutureProducer = FutureProducer::from_config(&client_config(&cfg)).unwrap();
    let ours = Arc::new(
        KafkaProducer::with_client_config(client_config(&cfg), ProducerSettings::from_config(&cfg))
            .unwrap(),
    );
    for size in sizes {
        // 2 KB records: fewer of them, about the same bytes per run.
        let n = if size > 1000 { n / 4 } else { n };
        let payload = vec![b'x'; size];
        let (mut bare_rates, mut layer_rates) = (Vec::new(), Vec::new());
        rt.block_on(async {
            // Warm-up: metadata, connections, idempotent producer ids.
            bare(&bare_producer, &topic, &payload, 1_000).await;
            layer(ours.clone(), &topic, &payload, 1_000).await;
            for _ in 0..runs {
                bare_rates.push(
                    n as f64
                        / bare(&bare_producer, &topic, &payload, n)
                            .await
                            .as_secs_f64(),
                );
                layer_rates
                    .push(n as f64 / layer(ours.clone(), &topic, &payload, n).await.as_secs_f64());
            }
        });
        let (b, l) = (median(bare_rates), median(layer_rates));
        println!("producer_vs_bare broker={broker} records={n} runs={runs} record_bytes={size}");
        println!("bare_rdkafka_records_per_s {b:.0}");
        println!("producer_layer_records_per_s {l:.0}");
        println!("ratio_layer_over_bare {:.3}", l / b);
    }
}
