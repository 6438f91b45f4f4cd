//! Cost per source-poll (issue #25, goal 3) and the service beside the script a user
//! would write instead (goal 5).
//!
//! Goal 3: one `http_json` source polled through the whole service — the HTTP client and
//! decoder, the `real_time` ingestion mode, the cursor tracker, the queue and
//! dispatcher, an instant producer ([`producer::NullProducer`]: Kafka's cost per record
//! is the pipeline bench's), and fetch state committed to a real SQLite file through
//! `store::SqlStore` — against a local server in a child process (`server.rs`). Four
//! cases: a 1 KB body of new records on every poll, or `304 Not Modified`, each with
//! and without a dedup window (20,000 identities, the default, filled before measuring).
//! Per poll: CPU µs of this process (`/proc/self/stat`), the fetch state's bytes handed
//! to the store (`CursorStore::state_bytes_written`: snapshot or delta text) and the
//! bytes this process wrote through `write(2)` (`wchar` of `/proc/self/io`: SQLite's
//! WAL frames and the HTTP request).
//!
//! Goal 5 (`users.rs`, when `BENCH_BOOTSTRAP` names a broker and `BENCH_PYTHON` a
//! Python with confluent-kafka): the service and `user_producer.py` doing the same two
//! jobs on the same broker, each in a process of its own.
//!
//! `--quick` runs a few seconds; `BENCH_ONLY=polls|users` runs one goal.

#[path = "../common/process.rs"]
mod process;
mod server;
mod users;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::CursorStore as _;
use stream_config::{Format, Loader, StreamConfig};
use stream_manager::StreamManager;

pub(crate) use process::{cpu_seconds, median, spawn_child, status_mb};

/// Bytes this process has written through `write(2)` and friends.
fn wchar() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn load(yaml: &str) -> StreamConfig {
    Loader::new()
        .load_str(yaml, Format::Yaml, "<bench>")
        .unwrap_or_else(|e| panic!("bench config: {e}"))
}

/// A fetch state whose dedup window is full: `window` identities, persisted as the
/// HTTP source persists them (`{"http_state":1,"ids":…}`, 11 characters of unpadded
/// base64 per little-endian u64), so a measured poll finds the window as a long-running
/// source has it.
fn full_window(window: u64) -> String {
    use base64::Engine as _;
    let mut ids = String::with_capacity(window as usize * 11);
    for i in 0..window {
        let id = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode_string(id.to_le_bytes(), &mut ids);
    }
    format!("{{\"http_state\":1,\"ids\":\"{ids}\"}}")
}

/// The SQLite store, counting commits and the largest state write of one.
#[derive(Debug)]
struct Counting {
    inner: Arc<store::SqlStore>,
    commits: std::sync::atomic::AtomicU64,
    largest: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl api_client::CursorStore for Counting {
    async fn load(&self, id: &str) -> api_client::Result<Option<api_client::Cursor>> {
        self.inner.load(id).await
    }
    async fn commit(&self, id: &str, cursor: &api_client::Cursor) -> api_client::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let before = self.inner.state_bytes_written();
        let r = self.inner.commit(id, cursor).await;
        self.commits.fetch_add(1, Relaxed);
        self.largest
            .fetch_max(self.inner.state_bytes_written() - before, Relaxed);
        r
    }
    fn state_bytes_written(&self) -> u64 {
        self.inner.state_bytes_written()
    }
}

/// One case's figures per poll.
struct PollCost {
    cpu_us: f64,
    state_bytes: f64,
    write_bytes: f64,
    records: f64,
    commits: f64,
    largest: u64,
}

const DEDUP_WINDOW: u64 = 20_000;

/// One case: a fresh SQLite file and manager, `path` on the server, dedup on or off.
async fn poll_case(
    dir: &std::path::Path,
    port: u16,
    path: &str,
    dedup: bool,
    polls: u64,
) -> PollCost {
    let run = format!(
        "{}-{}",
        path.trim_start_matches('/').replace(['?', '='], "-"),
        dedup
    );
    let db = dir.join(format!("cost-{run}.db"));
    let store = Arc::new(
        store::SqlStore::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("sqlite store"),
    );
    let dedup_yaml = if dedup {
        store
            .commit_cursor("poll", &full_window(DEDUP_WINDOW))
            .await
            .expect("prefill the window");
        format!(", dedup: {{ keys: [/station_id, /sequence], window: {DEDUP_WINDOW} }}")
    } else {
        String::new()
    };
    let cfg = load(&format!(
        "kafka: {{ bootstrap_servers: '127.0.0.1:9' }}
dlq: {{ url: 'sqlite://{}' }}
throttling: {{ max_send_rate: 100000000, consumer_groups: [] }}
routing: {{ fallback_topic: bench-poll }}
sources:
  poll:
    source_type: http_json
    rate_limit_per_minute: 6000000
    cache_ttl_seconds: 0
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.002 }}
    custom_params: {{ url: 'http://127.0.0.1:{port}{path}', decoder: {{ type: json, pointer: /items }}{dedup_yaml} }}
",
        db.display()
    ));
    let counting = Arc::new(Counting {
        inner: store.clone(),
        commits: Default::default(),
        largest: Default::default(),
    });
    let m = StreamManager::builder(cfg)
        .producer(Arc::new(producer::NullProducer))
        .dlq(store.clone())
        .cursors(counting.clone())
        .start()
        .await
        .expect("manager");
    let polls_now = || m.stream("poll");
    // Warm up: connections, the first (200) answer of `/same`, allocator.
    while polls_now().await.map(|s| s.polls).unwrap_or(0) < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (p0, c0, s0, w0) = (
        polls_now().await.map(|s| s.polls).unwrap_or(0),
        cpu_seconds(),
        store.state_bytes_written(),
        wchar(),
    );
    let r0 = m
        .stream("poll")
        .await
        .map(|s| s.records_processed)
        .unwrap_or(0);
    let k0 = counting.commits.load(std::sync::atomic::Ordering::Relaxed);
    counting
        .largest
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let mut p = p0;
    while p < p0 + polls {
        tokio::time::sleep(Duration::from_millis(20)).await;
        p = polls_now().await.map(|s| s.polls).unwrap_or(0);
    }
    let (c1, s1, w1) = (cpu_seconds(), store.state_bytes_written(), wchar());
    let k1 = counting.commits.load(std::sync::atomic::Ordering::Relaxed);
    let largest = counting.largest.load(std::sync::atomic::Ordering::Relaxed);
    // Records of the last polls may still be on their way: records over the polls made
    // until they are counted (the lag at both ends about cancels).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = m.stream("poll").await.expect("stream");
    let (r1, p_r) = (info.records_processed, info.polls);
    let errors = m.stream("poll").await.map(|s| s.errors).unwrap_or(0);
    m.shutdown(Duration::from_secs(5)).await;
    assert_eq!(errors, 0, "poll errors in case {run}");
    let n = (p - p0) as f64;
    PollCost {
        cpu_us: (c1 - c0) / n * 1e6,
        state_bytes: (s1 - s0) as f64 / n,
        write_bytes: (w1 - w0) as f64 / n,
        records: (r1 - r0) as f64 / (p_r - p0).max(1) as f64,
        commits: (k1 - k0) as f64 / n,
        largest,
    }
}

/// The manager alone, its source polling once an hour: CPU per second of its own
/// background (timers, DLQ upkeep, health), for reading the per-poll figures.
async fn idle_cpu_per_s(dir: &std::path::Path, port: u16, secs: u64) -> f64 {
    let cfg = load(&format!(
        "kafka: {{ bootstrap_servers: '127.0.0.1:9' }}
dlq: {{ url: 'sqlite://{}/idle.db' }}
throttling: {{ max_send_rate: 100000000, consumer_groups: [] }}
routing: {{ fallback_topic: bench-poll }}
sources:
  poll:
    source_type: http_json
    ingestion: {{ mode: real_time, polling_interval_seconds: 3600 }}
    custom_params: {{ url: 'http://127.0.0.1:{port}/same', decoder: {{ type: json, pointer: /items }} }}
",
        dir.display()
    ));
    let m = StreamManager::builder(cfg)
        .producer(Arc::new(producer::NullProducer))
        .start()
        .await
        .expect("manager");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = (cpu_seconds() - c0) / t0.elapsed().as_secs_f64();
    m.shutdown(Duration::from_secs(5)).await;
    cpu
}

/// Starts the server child; the child and its port.
fn spawn_server() -> (std::process::Child, u16) {
    let (child, port) = spawn_child("server");
    (child, port.parse().expect("the server prints its port"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let quick = args.iter().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    let child = args
        .iter()
        .position(|a| a == "--child")
        .and_then(|i| args.get(i + 1).cloned());
    if child.as_deref() == Some("server") {
        return server::run();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(mode) = child {
        return rt.block_on(users::child(&mode, &args));
    }
    let dir = std::env::temp_dir().join(format!("bench-poll-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let (mut server, port) = spawn_server();
    let polls: u64 = if quick { 300 } else { 3_000 };
    let one_kb = server::body(0, 4).len();
    rt.block_on(async {
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        if only == "users" {
            return users::compare(quick, &dir, port).await;
        }
        println!("### Cost per source-poll (goal 3)\n");
        println!(
            "One `http_json` source, `real_time` every 2 ms, through the whole service (client, decoder, ingestion mode, cursor tracker, queue, dispatcher, an instant producer) with fetch state in a SQLite file (`store::SqlStore`); the server is a child process. Changed: a {one_kb}-byte body of 4 new readings and a new ETag on every poll. 304: the same ETag, answered `304 Not Modified`. Dedup: keys `/station_id` + `/sequence`, a {DEDUP_WINDOW}-identity window filled before measuring. {polls} polls per case after 200 of warm-up; medians of {} runs.\n",
            if quick { 1 } else { 3 }
        );
        println!("| response | dedup | CPU µs / poll | state bytes to the store / poll | largest commit, bytes | commits / poll | bytes written (`wchar`) / poll | records delivered / poll |");
        println!("|---|---|---|---|---|---|---|---|");
        for (label, path) in [("changed 1 KB", "/changed?n=4"), ("304", "/same?n=4")] {
            for dedup in [false, true] {
                let mut figures = Vec::new();
                for _ in 0..if quick { 1 } else { 3 } {
                    figures.push(poll_case(&dir, port, path, dedup, polls).await);
                }
                let med = |f: fn(&PollCost) -> f64| median(figures.iter().map(f).collect());
                println!(
                    "| {label} | {} | {:.1} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
                    if dedup { "on" } else { "off" },
                    med(|c| c.cpu_us),
                    med(|c| c.state_bytes),
                    med(|c| c.largest as f64),
                    med(|c| c.commits),
                    med(|c| c.write_bytes),
                    med(|c| c.records),
                );
            }
        }
        let idle = idle_cpu_per_s(&dir, port, if quick { 1 } else { 5 }).await;
        println!(
            "\nThe manager's own background with no polls: {:.0} CPU µs per second over {} s (`/proc/self/stat` counts 10 ms ticks; not subtracted above: at one poll every 2 ms it is ≈ {:.1} µs of each poll).\n",
            idle * 1e6,
            if quick { 1 } else { 5 },
            idle * 1e6 * 0.002
        );
        if only != "polls" {
            users::compare(quick, &dir, port).await;
        }
    });
    drop(server.stdin.take());
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
