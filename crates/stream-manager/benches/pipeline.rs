//! The whole pipeline, end to end: `synthetic` source → queue → throttle → resolver →
//! producer → broker acknowledgement, against bare rdkafka sending records of the same
//! size with the same producer settings to the same broker, in the same run.
//!
//! Prints Markdown tables (for `cargo xtask bench`): throughput and ratio per record
//! size, CPU seconds per million records, the emit → ack latency distribution at fixed
//! offered rates, CRITICAL vs NORMAL latency under a LOW backlog, RSS under queue
//! overflow, and idle RSS with 10 sources (the last two in fresh child processes).
//!
//! The broker is librdkafka's in-process mock, or the one `BENCH_BOOTSTRAP` names
//! (topics must exist: `bench-pipeline`, `bench-bare`). `--quick` runs a few seconds.

use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use producer::{client_config, EmbeddedBroker};
use rdkafka::config::FromClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use stream_config::{Format, Loader, StreamConfig};
use stream_manager::StreamManager;

const TOPIC: &str = "bench-pipeline";
const BARE_TOPIC: &str = "bench-bare";

struct Bench {
    quick: bool,
    bootstrap: String,
    broker: &'static str,
    dir: std::path::PathBuf,
    runs: std::sync::atomic::AtomicU32,
}

impl Bench {
    /// A config with the shared producer settings and `sources`/`extra` YAML.
    fn config(&self, extra: &str) -> StreamConfig {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let routing = if extra.contains("routing:") {
            String::new()
        } else {
            format!("routing: {{ fallback_topic: {TOPIC} }}\n")
        };
        let yaml = format!(
            "kafka: {{ bootstrap_servers: '{}', linger_ms: 5, batch_size: 1000, compression_type: lz4 }}
dlq: {{ url: 'sqlite://{}/dlq-{n}.db' }}
{routing}{extra}",
            self.bootstrap,
            self.dir.display()
        );
        Loader::new()
            .load_str(&yaml, Format::Yaml, "<bench>")
            .unwrap_or_else(|e| panic!("bench config: {e}"))
    }
}

fn synthetic(id: &str, priority: &str, rate: f64, pad: usize, mode: &str, alerts: f64) -> String {
    format!(
        "  {id}:
    source_type: synthetic
    priority: {priority}
    ingestion: {{ mode: {mode}, polling_interval_seconds: 0.01, buffer_size: 2000, buffer_flush_interval_seconds: 0.02, max_records_per_poll: 100000 }}
    custom_params: {{ records_per_second: {rate}, max_per_fetch: 5000, seed: 1, alert_probability: {alerts}, pad_bytes: {pad} }}
"
    )
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn delivered(m: &StreamManager) -> u64 {
    m.get_metrics()
        .await
        .streams
        .iter()
        .map(|s| s.records_processed)
        .sum()
}

/// Pipeline throughput: records/s over `n` minus a 10 % warm-up, CPU s per M records.
async fn pipeline_run(b: &Bench, pad: usize, n: u64) -> (f64, f64) {
    let cfg = b.config(&format!(
        "throttling: {{ max_send_rate: 100000000 }}
queue_max_size: 200000
queue_overflow_strategy: block
sources:
{}",
        synthetic(
            "gen",
            "normal",
            5_000_000.0,
            pad,
            "continuous_streaming",
            0.0
        )
    ));
    let m = StreamManager::builder(cfg).start().await.expect("manager");
    let warm = n / 10;
    while delivered(&m).await < warm {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (t0, c0, d0) = (Instant::now(), cpu_seconds(), delivered(&m).await);
    // Measure `n - warm` records after the warm-up, however far a burst already went
    // (one fetch can deliver thousands at once: quick runs once measured nothing).
    let target = d0 + n - warm;
    let mut d = d0;
    while d < target {
        tokio::time::sleep(Duration::from_millis(2)).await;
        d = delivered(&m).await;
    }
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    m.shutdown(Duration::from_secs(30)).await;
    let count = (d - d0) as f64;
    (count / secs, cpu / count * 1e6)
}

/// Bare rdkafka: `n` records of `size` bytes, same client settings.
async fn bare_run(p: &FutureProducer, size: usize, n: u64) -> (f64, f64) {
    let payload = vec![b'x'; size];
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut futures = Vec::with_capacity(n as usize);
    for i in 0..n {
        let key = (i % 25).to_string();
        loop {
            match p.send_result(FutureRecord::to(BARE_TOPIC).payload(&payload).key(&key)) {
                Ok(f) => {
                    futures.push(f);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    for f in futures {
        f.await.expect("delivery future").expect("delivered");
    }
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    (n as f64 / secs, cpu / n as f64 * 1e6)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean serialized size of the synthetic records with `pad` padding (the size bare
/// rdkafka sends), measured on 100 generated records.
async fn record_bytes(pad: usize) -> usize {
    use api_client::Source as _;
    let params: api_client::SyntheticParams = serde_json::from_value(serde_json::json!({
        "records_per_second": 100.0,
        "alert_probability": 0.0,
        "pad_bytes": pad,
    }))
    .expect("synthetic params");
    let fetch = api_client::SyntheticSource::new(params)
        .fetch(None)
        .await
        .expect("synthetic fetch");
    let total: usize = fetch
        .records
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
        .sum();
    total / fetch.records.len().max(1)
}

/// Drains the emit → ack samples recorded since the last call: (normal, critical).
fn all_e2e(snap: &Snapshotter) -> (Vec<f64>, Vec<f64>) {
    let mut normal = Vec::new();
    let mut critical = Vec::new();
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let k = key.key();
        if k.name() != "pipeline_e2e_latency_seconds" {
            continue;
        }
        if let DebugValue::Histogram(v) = value {
            let crit = k
                .labels()
                .any(|l| l.key() == "path" && l.value() == "critical");
            let target = if crit { &mut critical } else { &mut normal };
            target.extend(v.into_iter().map(|x| x.into_inner()));
        }
    }
    (normal, critical)
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i]
}

fn ms(v: f64) -> String {
    format!("{:.2}", v * 1000.0)
}

/// Emit → ack latency at a fixed offered rate.
async fn latency_run(b: &Bench, snap: &Snapshotter, rate: f64) -> (usize, [f64; 4]) {
    let cfg = b.config(&format!(
        "throttling: {{ max_send_rate: 100000000 }}
sources:
{}",
        synthetic("gen", "normal", rate, 0, "real_time", 0.0)
    ));
    let m = StreamManager::builder(cfg).start().await.expect("manager");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = all_e2e(snap); // drop the warm-up
    tokio::time::sleep(Duration::from_secs(if b.quick { 2 } else { 10 })).await;
    let mut v = all_e2e(snap).0;
    m.shutdown(Duration::from_secs(30)).await;
    let _ = all_e2e(snap);
    let n = v.len();
    let q = [
        quantile(&mut v, 0.5),
        quantile(&mut v, 0.99),
        quantile(&mut v, 0.999),
        quantile(&mut v, 1.0),
    ];
    (n, q)
}

/// CRITICAL vs NORMAL latency while LOW records queue up behind a throttled rate.
async fn priority_run(b: &Bench, snap: &Snapshotter) -> (usize, f64, usize, f64, usize) {
    let cfg = b.config(&format!(
        "throttling: {{ max_send_rate: 3000 }}
queue_max_size: 1000000
routing:
  fallback_topic: {TOPIC}
  priority_rules:
    - {{ field: /severity, operator: eq, value: critical, priority: critical }}
sources:
{}{}",
        synthetic("backlog", "low", 4000.0, 0, "real_time", 0.0),
        synthetic("mixed", "normal", 500.0, 0, "real_time", 0.05)
    ));
    let m = StreamManager::builder(cfg).start().await.expect("manager");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = all_e2e(snap);
    tokio::time::sleep(Duration::from_secs(if b.quick { 3 } else { 10 })).await;
    let (mut normal, mut critical) = all_e2e(snap);
    let backlog = m.get_metrics().await.queue.len_by_priority[0];
    m.shutdown(Duration::from_secs(1)).await;
    let _ = all_e2e(snap);
    (
        critical.len(),
        quantile(&mut critical, 0.99),
        normal.len(),
        quantile(&mut normal, 0.99),
        backlog,
    )
}

/// Child: RSS while the queue overflows its byte cap (drop_oldest).
async fn overflow_child(b: &Bench, cap_mb: u64) {
    let base = rss_mb("VmRSS");
    let cfg = b.config(&format!(
        "throttling: {{ max_send_rate: 500 }}
enable_dlq: false
queue_max_size: 10000000
queue_max_bytes: {}
queue_overflow_strategy: drop_oldest
sources:
{}",
        cap_mb * 1024 * 1024,
        synthetic("flood", "normal", 20000.0, 2000, "real_time", 0.0)
    ));
    let m = StreamManager::builder(cfg).start().await.expect("manager");
    let mut peak = 0.0f64;
    let mut max_queue_mb = 0.0f64;
    let until = Instant::now() + Duration::from_secs(if b.quick { 3 } else { 15 });
    while Instant::now() < until {
        peak = peak.max(rss_mb("VmRSS"));
        max_queue_mb = max_queue_mb.max(m.get_metrics().await.queue.bytes as f64 / 1048576.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let evicted = m.get_metrics().await.queue.evicted;
    m.shutdown(Duration::from_secs(1)).await;
    println!("overflow {base:.1} {peak:.1} {max_queue_mb:.1} {evicted}");
}

/// Child: RSS with 10 sources configured and idle-ish (1 record/s each).
async fn idle_child(b: &Bench) {
    let sources: String = (0..10)
        .map(|i| {
            format!(
                "  s{i}:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 1 }}
    custom_params: {{ records_per_second: 1, seed: {i} }}
"
            )
        })
        .collect();
    let cfg = b.config(&format!("sources:\n{sources}"));
    let m = StreamManager::builder(cfg).start().await.expect("manager");
    tokio::time::sleep(Duration::from_secs(if b.quick { 2 } else { 10 })).await;
    println!("idle {:.1} {:.1}", rss_mb("VmRSS"), rss_mb("VmHWM"));
    m.shutdown(Duration::from_secs(1)).await;
}

fn child(mode: &str, quick: bool) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("bench exe"));
    cmd.args(["--child", mode]);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().expect("child bench");
    assert!(
        out.status.success(),
        "child {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(mode))
        .unwrap_or_default()
        .to_owned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let quick = args.iter().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    let child_mode = args
        .iter()
        .position(|a| a == "--child")
        .and_then(|i| args.get(i + 1).cloned());
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    if child_mode.is_none() {
        recorder.install().expect("recorder");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("bench-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let external = std::env::var("BENCH_BOOTSTRAP").ok();
    let mock = match &external {
        Some(_) => None,
        None => Some(
            EmbeddedBroker::start(&[(TOPIC.to_owned(), 4), (BARE_TOPIC.to_owned(), 4)])
                .expect("mock broker"),
        ),
    };
    let bench = Bench {
        quick,
        bootstrap: external
            .clone()
            .unwrap_or_else(|| mock.as_ref().expect("mock").bootstrap_servers().to_owned()),
        broker: if external.is_some() { "tansu" } else { "mock" },
        dir: dir.clone(),
        runs: std::sync::atomic::AtomicU32::new(0),
    };
    match child_mode.as_deref() {
        Some("overflow") => return rt.block_on(overflow_child(&bench, 16)),
        Some("idle") => return rt.block_on(idle_child(&bench)),
        _ => {}
    }
    let broker = bench.broker;
    rt.block_on(async {
        let kafka = bench.config("").kafka.clone();
        let bare = FutureProducer::from_config(&client_config(&kafka)).expect("bare producer");
        let runs = if quick { 1 } else { 3 };
        println!("### End-to-end throughput ({broker})\n");
        println!("| record | pipeline rec/s | bare rdkafka rec/s | ratio | pipeline CPU s / M rec | bare CPU s / M rec |");
        println!("|---|---|---|---|---|---|");
        for pad in [0usize, 1800] {
            let size = record_bytes(pad).await;
            let n: u64 = match (quick, pad) {
                (true, 0) => 100_000,
                (true, _) => 25_000,
                (false, 0) => 400_000,
                (false, _) => 100_000,
            };
            let _ = bare_run(&bare, size, 2_000).await; // warm-up
            let (mut p, mut bb, mut pc, mut bc) = (vec![], vec![], vec![], vec![]);
            for _ in 0..runs {
                let (r, c) = pipeline_run(&bench, pad, n).await;
                p.push(r);
                pc.push(c);
                let (r, c) = bare_run(&bare, size, n).await;
                bb.push(r);
                bc.push(c);
            }
            let (p, bb) = (median(p), median(bb));
            println!(
                "| ~{size} B | {p:.0} | {bb:.0} | {:.3} | {:.2} | {:.2} |",
                p / bb,
                median(pc),
                median(bc)
            );
        }
        if std::env::var("BENCH_ONLY").is_ok_and(|o| o == "throughput") {
            return;
        }
        println!("\n### Latency, source emit → broker ack ({broker}, linger 5 ms)\n");
        println!("| offered rec/s | samples | p50 ms | p99 ms | p99.9 ms | max ms |");
        println!("|---|---|---|---|---|---|");
        for rate in [1_000.0, 10_000.0, 50_000.0] {
            let (n, q) = latency_run(&bench, &snap, rate).await;
            println!(
                "| {rate:.0} | {n} | {} | {} | {} | {} |",
                ms(q[0]),
                ms(q[1]),
                ms(q[2]),
                ms(q[3])
            );
        }
        let (cn, c99, nn, n99, backlog) = priority_run(&bench, &snap).await;
        println!("\n### CRITICAL vs NORMAL under a LOW backlog ({broker})\n");
        println!("4,000 LOW rec/s + 500 NORMAL rec/s (5 % CRITICAL alerts) against a 3,000 rec/s send rate.\n");
        println!("| path | samples | p99 ms |\n|---|---|---|");
        println!("| critical | {cn} | {} |", ms(c99));
        println!("| normal + low | {nn} | {} |", ms(n99));
        println!("\nLOW records still queued at the end: {backlog}.");
    });
    if std::env::var("BENCH_ONLY").is_ok_and(|o| o == "throughput") {
        return;
    }
    let o = child("overflow", quick);
    let f: Vec<f64> = o
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let i = child("idle", quick);
    let g: Vec<f64> = i
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    println!("\n### Memory ({broker})\n");
    println!("| measurement | value |\n|---|---|");
    if f.len() == 4 {
        println!(
            "| RSS under overflow (16 MB queue cap, 20k × 2 KB rec/s offered, 500/s sent) | start {:.1} MB, peak {:.1} MB (+{:.1} MB); queue held at most {:.1} MB; {} evicted |",
            f[0], f[1], f[1] - f[0], f[2], f[3]
        );
    }
    if g.len() == 2 {
        println!(
            "| idle RSS, 10 sources at 1 rec/s | {:.1} MB (peak {:.1} MB) |",
            g[0], g[1]
        );
    }
    drop(mock);
    let _ = std::fs::remove_dir_all(&dir);
}
