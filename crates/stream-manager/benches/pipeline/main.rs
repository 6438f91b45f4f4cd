//! The whole pipeline, end to end: sources → queue → throttle → resolver → producer →
//! broker acknowledgement, against bare rdkafka sending the same records (bytes, headers,
//! keys) with the same producer settings to the same broker, in the same run
//! (`fair.rs`).
//!
//! Prints Markdown tables (for `cargo xtask bench`): throughput, CPU µs and allocations
//! per record for the sources alone, the pipeline with an instant producer, the pipeline
//! and bare rdkafka against the broker; the emit → ack latency distribution at fixed
//! offered rates; CRITICAL vs NORMAL latency under a LOW backlog; RSS under queue
//! overflow and idle RSS with 10 sources (the last two in fresh child processes).
//!
//! The broker is librdkafka's mock, run in a child process (so CPU and RSS figures
//! count the pipeline only), or the one `BENCH_BOOTSTRAP` names (topics must exist:
//! `bench-pipeline`, `bench-bare`). `--quick` runs a few seconds. For profiling:
//! `BENCH_ONLY=throughput|latency` runs one part, `BENCH_PAD=0|1800` one record size and
//! `BENCH_STAGE=sources,null,pipeline,bare` (any of them) some stages of the throughput
//! table; `BENCH_SCHEMA=1` puts a data contract on each source (`fair.rs`);
//! `BENCH_QUEUE` (YAML) sets the throughput pipeline's queue bounds; `BENCH_STATS=1`
//! prints, after each broker stage, librdkafka's message sets (records and bytes per
//! set, its queue) on both sides and the pipeline's queue at the end (stderr).

mod fair;
#[path = "../common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use producer::{client_config, EmbeddedBroker};
use stream_config::{Format, Loader, StreamConfig};
use stream_manager::StreamManager;

pub(crate) use process::{cpu_seconds, median, spawn_child, status_mb};

const TOPIC: &str = "bench-pipeline";
const BARE_TOPIC: &str = "bench-bare";

// The allocator under test: glibc's (the system's), or mimalloc with the
// `bench-mimalloc` feature. Allocations per record are counted by `tests/alloc.rs`, not
// here: a counting allocator's shared atomic counters cost 12 % of this bench's samples
// (perf) and would slow the side that allocates more.
#[cfg(feature = "bench-mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator in use, for the report.
const ALLOCATOR: &str = if cfg!(feature = "bench-mimalloc") {
    "mimalloc"
} else {
    "glibc malloc"
};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

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
        // `BENCH_STATS=1`: librdkafka's statistics every second on both sides, and its
        // message sets printed after each broker stage (stderr).
        let stats = if std::env::var_os("BENCH_STATS").is_some() {
            ", librdkafka_options: { statistics.interval.ms: '1000' }"
        } else {
            ""
        };
        let yaml = format!(
            "kafka: {{ bootstrap_servers: '{}', linger_ms: 5, batch_size: 1000, compression_type: lz4{stats} }}
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

async fn delivered(m: &StreamManager) -> u64 {
    m.get_metrics().await.records_processed()
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

/// `BENCH_STATS=1`: the pipeline producer's last message-set gauges.
fn batch_gauges(snap: &Snapshotter) -> String {
    let mut out = String::new();
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let name = key.key().name();
        if name.starts_with("producer_librdkafka_batch")
            || name == "producer_librdkafka_queue_messages"
        {
            if let DebugValue::Gauge(g) = value {
                let path: Vec<_> = key.key().labels().map(|l| l.value().to_owned()).collect();
                out.push_str(&format!("{name}{path:?}={:.0} ", g.into_inner()));
            }
        }
    }
    out
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

/// The producer's resends during a latency run: (our layer's resends, librdkafka's own
/// resends per its statistics, client errors) — what explains a tail.
fn resends(snap: &Snapshotter) -> (f64, f64, f64) {
    let (mut layer, mut librdkafka, mut errors) = (0.0, 0.0, 0.0);
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let v = match value {
            DebugValue::Counter(c) => c as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(_) => continue,
        };
        match key.key().name() {
            "producer_retries_total" => layer += v,
            "producer_librdkafka_tx_retries" => librdkafka += v,
            "producer_client_errors_total" => errors += v,
            _ => {}
        }
    }
    (layer, librdkafka, errors)
}

/// How long a freshly started manager runs before its latency samples count. Bare
/// rdkafka's producer is warmed up before it is measured; a new idempotent producer
/// holds its first records until the broker has given it a producer id (on tansu 0.6
/// ≈ 0.5–1 s after creation: the pipeline's 1 s "tail" in the runs of 2026-11-30 was
/// that, counted because records emitted during a 1 s warm-up were acknowledged after
/// it). Records emitted in the first second are acknowledged within this.
const WARM_UP: Duration = Duration::from_secs(3);

/// Emit → ack latency at a fixed offered rate.
async fn latency_run(b: &Bench, snap: &Snapshotter, rate: f64) -> (usize, [f64; 4]) {
    let cfg = b.config(&format!(
        "throttling: {{ max_send_rate: 100000000 }}
sources:
{}",
        synthetic("gen", "normal", rate, 0, "real_time", 0.0)
    ));
    let m = StreamManager::builder(cfg).start().await.expect("manager");
    tokio::time::sleep(WARM_UP).await;
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
    tokio::time::sleep(WARM_UP).await;
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
    let base = status_mb("VmRSS");
    let base_anon = status_mb("RssAnon");
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
    // Anonymous memory alone: the data's, without the binary's code pages that the
    // first records fault in.
    let mut peak_anon = 0.0f64;
    let mut max_queue_mb = 0.0f64;
    let until = Instant::now() + Duration::from_secs(if b.quick { 3 } else { 15 });
    while Instant::now() < until {
        peak = peak.max(status_mb("VmRSS"));
        peak_anon = peak_anon.max(status_mb("RssAnon"));
        max_queue_mb = max_queue_mb.max(m.get_metrics().await.queue.bytes as f64 / 1048576.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let evicted = m.get_metrics().await.queue.evicted;
    m.shutdown(Duration::from_secs(1)).await;
    println!(
        "overflow {base:.1} {peak:.1} {max_queue_mb:.1} {evicted} {base_anon:.1} {peak_anon:.1}"
    );
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
    println!(
        "idle {:.1} {:.1} {:.1} {:.1}",
        status_mb("VmRSS"),
        status_mb("VmHWM"),
        status_mb("RssAnon"),
        status_mb("RssFile")
    );
    m.shutdown(Duration::from_secs(1)).await;
}

fn child(mode: &str, quick: bool, bootstrap: &str) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("bench exe"));
    cmd.args(["--child", mode])
        .env("BENCH_BOOTSTRAP", bootstrap);
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

/// Child: the mock broker with the bench topics; prints its address, runs until stdin
/// closes (the parent exited or dropped it).
fn mock_broker_child() {
    let broker = EmbeddedBroker::start(&[(TOPIC.to_owned(), 4), (BARE_TOPIC.to_owned(), 4)])
        .expect("mock broker");
    println!("mock-broker {}", broker.bootstrap_servers());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
}

/// Starts [`mock_broker_child`]; the child and its address.
fn spawn_mock_broker() -> (std::process::Child, String) {
    spawn_child("mock-broker")
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
    if child_mode.as_deref() == Some("mock-broker") {
        return mock_broker_child();
    }
    let external = std::env::var("BENCH_BOOTSTRAP").ok();
    // The mock broker runs in a child process, so this process's CPU and RSS are the
    // pipeline's (or bare rdkafka's) alone.
    let mut mock = None;
    let bootstrap = match &external {
        Some(b) => b.clone(),
        None => {
            let (proc, bootstrap) = spawn_mock_broker();
            mock = Some(proc);
            bootstrap
        }
    };
    let bench = Bench {
        quick,
        bootstrap,
        broker: if external.is_some() && child_mode.is_none() {
            "tansu"
        } else {
            "mock"
        },
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
        let probe = fair::StatsProbe::default();
        let bare: fair::Bare = client_config(&kafka)
            .create_with_context(probe.clone())
            .expect("bare producer");
        let runs = if quick { 1 } else { 3 };
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        if only != "latency" {
        println!("### Throughput: the same records on both sides ({broker})\n");
        println!(
            "Two looping `file` sources replay 3,000 synthetic sensor readings (NDJSON) and 1,000 GeoJSON fire detections (large variant: each padded with random text); bare rdkafka sends the same payload bytes with the same five headers and keys, same producer settings (linger 5 ms, batch 1,000, lz4, acks all, idempotence). CPU counts this process only{}. Medians of {runs} alternating runs.\n",
            if broker == "mock" { " (the mock broker runs in a child process)" } else { " (tansu is another process)" }
        );
        println!("Allocator: {ALLOCATOR}.\n");
        println!("| records | stage | rec/s | CPU µs / rec |");
        println!("|---|---|---|---|");
        let pads: Vec<usize> = match std::env::var("BENCH_PAD").ok().and_then(|p| p.parse().ok()) {
            Some(pad) => vec![pad],
            None => vec![0, 1800],
        };
        let stage = std::env::var("BENCH_STAGE").unwrap_or_default();
        let runs_stage = |s: &str| stage.is_empty() || stage.split(',').any(|x| x == s);
        for pad in pads {
            let corpus = fair::corpus(&bench, pad).await;
            let n: u64 = match (quick, pad) {
                (true, 0) => 100_000,
                (true, _) => 25_000,
                (false, 0) => 400_000,
                (false, _) => 100_000,
            };
            let _ = fair::bare(&bare, &corpus, 2_000).await; // warm-up
            let (mut src, mut null, mut p, mut bb) = (vec![], vec![], vec![], vec![]);
            for _ in 0..runs {
                if runs_stage("sources") {
                    src.push(fair::sources_alone(&bench, &corpus, n).await);
                }
                if runs_stage("null") {
                    null.push(fair::pipeline_null(&bench, &corpus, n).await);
                }
                if runs_stage("pipeline") {
                    p.push(fair::pipeline(&bench, &corpus, n, None).await);
                    if std::env::var_os("BENCH_STATS").is_some() {
                        eprintln!("pipeline {:?} {}", p.last(), batch_gauges(&snap));
                    }
                }
                if runs_stage("bare") {
                    let _ = probe.take();
                    bb.push(fair::bare(&bare, &corpus, n).await);
                    if std::env::var_os("BENCH_STATS").is_some() {
                        tokio::time::sleep(Duration::from_millis(1100)).await;
                        eprintln!("bare {:?} {}", bb.last(), probe.take());
                    }
                }
            }
            let label = &corpus.label;
            let rows = [
                ("sources alone (fetch)", src),
                ("pipeline → instant producer", null),
                ("pipeline → broker", p),
                ("bare rdkafka → broker", bb),
            ];
            let mut rates = Vec::new();
            for (stage, figures) in rows {
                let f = fair::Figure {
                    rate: median(figures.iter().map(|f| f.rate).collect()),
                    cpu_us: median(figures.iter().map(|f| f.cpu_us).collect()),
                };
                rates.push(f.rate);
                println!("| {label} | {stage} | {:.0} | {:.2} |", f.rate, f.cpu_us);
            }
            println!(
                "| {label} | **pipeline / bare** | **{:.3}** | |",
                rates[2] / rates[3]
            );
        }
        }
        if only == "throughput" {
            return;
        }
        println!("\n### Latency ({broker}, linger 5 ms)\n");
        println!("Pipeline: source emit → broker ack per record (a synthetic source, no key). Bare rdkafka: send → ack of the ~230 B corpus records paced at the same rate, same producer settings — the floor — with the corpus's keys and without keys.\n");
        println!("| offered rec/s | path | samples | p50 ms | p99 ms | p99.9 ms | max ms |");
        println!("|---|---|---|---|---|---|---|");
        let small = fair::corpus(&bench, 0).await;
        let mut explained = Vec::new();
        for rate in [1_000.0, 10_000.0, 50_000.0] {
            let before = resends(&snap);
            let (n, q) = latency_run(&bench, &snap, rate).await;
            let after = resends(&snap);
            explained.push(format!(
                "{rate:.0} rec/s: {:.0} resends by the producer layer, librdkafka tx retries {:.0} (gauge), client errors {:.0}",
                after.0 - before.0,
                after.1,
                after.2 - before.2
            ));
            println!(
                "| {rate:.0} | pipeline | {n} | {} | {} | {} | {} |",
                ms(q[0]),
                ms(q[1]),
                ms(q[2]),
                ms(q[3])
            );
            let secs = if quick { 2.0 } else { 10.0 };
            // Keyed (the corpus's keys) and keyless (as the pipeline's synthetic source
            // sends: librdkafka's sticky partitioner).
            for (keyed, label) in [(true, "bare rdkafka, keyed"), (false, "bare rdkafka, no key")] {
                let mut v = fair::bare_latency(&bare, &small, rate, secs, keyed).await;
                let n = v.len();
                let q = [0.5, 0.99, 0.999, 1.0].map(|p| quantile(&mut v, p));
                println!(
                    "| {rate:.0} | {label} | {n} | {} | {} | {} | {} |",
                    ms(q[0]),
                    ms(q[1]),
                    ms(q[2]),
                    ms(q[3])
                );
            }
        }
        println!("\nDuring the pipeline's runs: {}.", explained.join("; "));
        let (cn, c99, nn, n99, backlog) = priority_run(&bench, &snap).await;
        println!("\n### CRITICAL vs NORMAL under a LOW backlog ({broker})\n");
        println!("4,000 LOW rec/s + 500 NORMAL rec/s (5 % CRITICAL alerts) against a 3,000 rec/s send rate.\n");
        println!("| path | samples | p99 ms |\n|---|---|---|");
        println!("| critical | {cn} | {} |", ms(c99));
        println!("| normal + low | {nn} | {} |", ms(n99));
        println!("\nLOW records still queued at the end: {backlog}.");
    });
    if std::env::var("BENCH_ONLY").is_ok_and(|o| o == "throughput" || o == "latency") {
        return;
    }
    let o = child("overflow", quick, &bench.bootstrap);
    let f: Vec<f64> = o
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let i = child("idle", quick, &bench.bootstrap);
    let g: Vec<f64> = i
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    println!("\n### Memory ({broker})\n");
    println!("| measurement | value |\n|---|---|");
    if f.len() == 6 {
        println!(
            "| RSS under overflow (16 MB queue cap, 20k × 2 KB rec/s offered, 500/s sent) | start {:.1} MB, peak {:.1} MB (+{:.1} MB; anonymous memory alone +{:.1} MB); queue held at most {:.1} MB; {} evicted |",
            f[0], f[1], f[1] - f[0], f[5] - f[4], f[2], f[3]
        );
    }
    if g.len() == 4 {
        println!(
            "| idle RSS, 10 sources at 1 rec/s | {:.1} MB (peak {:.1} MB): anonymous {:.1} MB, file-backed {:.1} MB (the binary's code and the shared libraries, as the kernel maps them in) |",
            g[0], g[1], g[2], g[3]
        );
    }
    drop(mock);
    let _ = std::fs::remove_dir_all(&dir);
}
