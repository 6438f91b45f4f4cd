//! Goal 5: the service beside the script a user would write instead
//! (`user_producer.py`: confluent-kafka, whose wheel bundles its own librdkafka), on the
//! same broker in the same run, each side in a process of its own (CPU and RSS are that
//! process's, all threads): the same records (bytes and keys), the same five headers,
//! the same producer settings (linger 5 ms, 1,000 messages a batch, lz4, acks all,
//! idempotence, statistics every 5 s).
//!
//! - polling: `GET /changed?n=100` every 100 ms (1,000 readings a second), each reading
//!   produced; figures over a window after a warm-up (a new idempotent producer waits
//!   for its producer id);
//! - bulk: an NDJSON file of readings produced as fast as they go; rec/s from the first
//!   acknowledgement to the last, CPU over the whole job (start-up included); the
//!   service's queue at its default size (10,000 records), blocking the source when full.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stream_manager::StreamManager;

use crate::{cpu_seconds, load, median, status_mb};

const TOPIC: &str = "bench-users";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/poll_cost/user_producer.py"
);
const POLL_INTERVAL_S: f64 = 0.1;
const PER_POLL: u64 = 100;
const WARM_S: u64 = 3;

fn kafka_yaml(bootstrap: &str, dir: &str) -> String {
    format!(
        "kafka: {{ bootstrap_servers: '{bootstrap}', linger_ms: 5, batch_size: 1000, compression_type: lz4 }}
dlq: {{ url: 'sqlite://{dir}/service-{}.db' }}
routing: {{ fallback_topic: {TOPIC} }}
",
        std::process::id()
    )
}

async fn processed(m: &StreamManager, id: &str) -> u64 {
    m.stream(id).await.map(|s| s.records_processed).unwrap_or(0)
}

async fn polls(m: &StreamManager, id: &str) -> u64 {
    m.stream(id).await.map(|s| s.polls).unwrap_or(0)
}

/// The service's side of a job, in a child process; prints one JSON line.
pub(crate) async fn child(mode: &str, args: &[String]) {
    let bootstrap = std::env::var("BENCH_BOOTSTRAP").expect("BENCH_BOOTSTRAP");
    let at = args
        .iter()
        .position(|a| a == mode)
        .map_or(args.len(), |i| i + 1);
    let arg = |i: usize| args.get(at + i).cloned().expect("child argument");
    let out = match mode {
        "service-poll" => {
            let (dir, port) = (arg(0), arg(1));
            let measure: u64 = arg(2).parse().expect("seconds");
            let cfg = load(&format!(
                "{}throttling: {{ max_send_rate: 100000000 }}
sources:
  poll:
    source_type: http_json
    rate_limit_per_minute: 6000000
    cache_ttl_seconds: 0
    partition_key: {{ pointer: '/station_id' }}
    ingestion: {{ mode: real_time, polling_interval_seconds: {POLL_INTERVAL_S} }}
    custom_params: {{ url: 'http://127.0.0.1:{port}/changed?n={PER_POLL}', decoder: {{ type: json, pointer: /items }} }}
",
                kafka_yaml(&bootstrap, &dir)
            ));
            let m = StreamManager::builder(cfg).start().await.expect("manager");
            tokio::time::sleep(Duration::from_secs(WARM_S)).await;
            let (t0, c0, r0, p0) = (
                Instant::now(),
                cpu_seconds(),
                processed(&m, "poll").await,
                polls(&m, "poll").await,
            );
            tokio::time::sleep(Duration::from_secs(measure)).await;
            let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
            let (r1, p1) = (processed(&m, "poll").await, polls(&m, "poll").await);
            let (rss, peak) = (status_mb("VmRSS"), status_mb("VmHWM"));
            m.shutdown(Duration::from_secs(10)).await;
            json!({ "records": r1 - r0, "polls": p1 - p0, "seconds": secs, "cpu_seconds": cpu,
                    "rss_mb": rss, "peak_rss_mb": peak })
        }
        "service-bulk" => {
            let (dir, path) = (arg(0), arg(1));
            let n: u64 = arg(2).parse().expect("records");
            let c0 = cpu_seconds();
            let cfg = load(&format!(
                "{}throttling: {{ max_send_rate: 100000000 }}
queue_overflow_strategy: block
sources:
  bulk:
    source_type: file
    partition_key: {{ pointer: '/station_id' }}
    ingestion: {{ mode: continuous_streaming, polling_interval_seconds: 0.01, buffer_size: 2000, buffer_flush_interval_seconds: 0.02, max_records_per_poll: 100000 }}
    custom_params: {{ path: '{path}', records_per_fetch: 5000 }}
",
                kafka_yaml(&bootstrap, &dir)
            ));
            let m = StreamManager::builder(cfg).start().await.expect("manager");
            let mut first = None;
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut d = 0;
            while d < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
                d = processed(&m, "bulk").await;
                if d > 0 && first.is_none() {
                    first = Some(Instant::now());
                }
            }
            let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
            let cpu = cpu_seconds() - c0;
            let (rss, peak) = (status_mb("VmRSS"), status_mb("VmHWM"));
            m.shutdown(Duration::from_secs(10)).await;
            json!({ "records": d, "seconds": secs, "cpu_seconds": cpu, "rss_mb": rss, "peak_rss_mb": peak })
        }
        other => panic!("unknown child {other}"),
    };
    println!("result {out}");
}

/// Runs a command and parses the JSON of its last line that is an object.
fn run_json(cmd: &mut std::process::Command, what: &str) -> Value {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim_start_matches("result ")).ok())
        .unwrap_or_else(|| panic!("{what} printed no result: {stdout}"))
}

fn service(args: &[&str]) -> Value {
    run_json(
        std::process::Command::new(std::env::current_exe().expect("bench exe"))
            .arg("--child")
            .args(args),
        args[0],
    )
}

fn python(py: &str, bootstrap: &str, args: &[&str]) -> Value {
    run_json(
        std::process::Command::new(py)
            .arg(SCRIPT)
            .arg(args[0])
            .arg(bootstrap)
            .args(&args[1..]),
        "user_producer.py",
    )
}

/// Figures of one side: rec/s, CPU µs per record, RSS and peak RSS (medians).
fn row(job: &str, side: &str, runs: &[Value], expected: Option<u64>) -> String {
    let f = |k: &str| {
        runs.iter()
            .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
            .collect::<Vec<_>>()
    };
    let rate = median(
        f("records")
            .iter()
            .zip(f("seconds"))
            .map(|(r, s)| r / s)
            .collect(),
    );
    let cpu = median(
        f("cpu_seconds")
            .iter()
            .zip(f("records"))
            .map(|(c, r)| c / r * 1e6)
            .collect(),
    );
    if let Some(n) = expected {
        for r in runs {
            assert_eq!(
                r["records"].as_u64(),
                Some(n),
                "{side} {job}: not every record acknowledged: {r}"
            );
        }
    }
    format!(
        "| {job} | {side} | {rate:.0} | {cpu:.2} | {:.1} | {:.1} |",
        median(f("rss_mb")),
        median(f("peak_rss_mb"))
    )
}

/// The comparison, when a broker and a Python with confluent-kafka are given.
pub(crate) async fn compare(quick: bool, dir: &std::path::Path, port: u16) {
    println!("### The service beside a user's Python script (goal 5)\n");
    let (Ok(bootstrap), Ok(py)) = (
        std::env::var("BENCH_BOOTSTRAP"),
        std::env::var("BENCH_PYTHON"),
    ) else {
        println!("Not run: it needs a broker Python can reach (`BENCH_BOOTSTRAP`, topic `{TOPIC}`) and a Python with confluent-kafka (`BENCH_PYTHON`); `cargo xtask bench` sets both.");
        return;
    };
    let versions = std::process::Command::new(&py)
        .args(["-c", "import confluent_kafka as c, sys, importlib.metadata as m; print('Python', sys.version.split()[0] + ', confluent-kafka', m.version('confluent-kafka') + ' (its own librdkafka', c.libversion()[0] + ')')"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let runs = if quick { 1 } else { 3 };
    let measure: u64 = if quick { 3 } else { 20 };
    let bulk_n: u64 = if quick { 30_000 } else { 300_000 };
    let d = dir.display().to_string();
    let bulk = dir.join("bulk.ndjson");
    let mut text = String::new();
    for i in 0..bulk_n {
        text.push_str(&crate::server::reading(2_000_000_000 + i));
        text.push('\n');
    }
    let mean = text.len() as u64 / bulk_n - 1;
    std::fs::write(&bulk, text).expect("bulk file");
    let bulk = bulk.display().to_string();
    let url = format!("http://127.0.0.1:{port}/changed?n={PER_POLL}");
    let (mut sp, mut pp, mut sb, mut pb) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        sp.push(service(&[
            "service-poll",
            &d,
            &port.to_string(),
            &measure.to_string(),
        ]));
        pp.push(python(
            &py,
            &bootstrap,
            &[
                "poll",
                &url,
                TOPIC,
                &POLL_INTERVAL_S.to_string(),
                &WARM_S.to_string(),
                &measure.to_string(),
            ],
        ));
        sb.push(service(&["service-bulk", &d, &bulk, &bulk_n.to_string()]));
        pb.push(python(&py, &bootstrap, &["bulk", &bulk, TOPIC]));
    }
    println!(
        "{versions}; the service: librdkafka 2.12.1 (bundled with rdkafka 0.38). Readings of ~{mean} B keyed by `station_id`, five headers, same producer settings, topic `{TOPIC}` (4 partitions). Both services with `max_send_rate` raised out of the way (its default is 1,000 rec/s) and the default lag probe. Polling: `GET /changed?n={PER_POLL}` every {} ms ({} readings/s offered), {measure} s measured after {WARM_S} s. Bulk: {bulk_n} readings from an NDJSON file (the service: a `file` source, the queue at its default 10,000 records, `block` when full), rec/s from the first acknowledgement to the last, CPU over the whole job. Each side in a process of its own, alternating, medians of {runs}.\n",
        (POLL_INTERVAL_S * 1000.0) as u64,
        (PER_POLL as f64 / POLL_INTERVAL_S) as u64
    );
    println!("| job | side | rec/s | CPU µs / rec | RSS MB | peak RSS MB |");
    println!("|---|---|---|---|---|---|");
    println!("{}", row("polling", "service", &sp, None));
    println!("{}", row("polling", "Python + confluent-kafka", &pp, None));
    println!("{}", row("bulk", "service", &sb, Some(bulk_n)));
    println!(
        "{}",
        row("bulk", "Python + confluent-kafka", &pb, Some(bulk_n))
    );
}
