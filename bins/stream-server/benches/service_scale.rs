//! Service scale (issue #25, goal 1): the whole `stream-server` (release, embedded
//! broker, SQLite state) with N `http_json` sources polling every second a local upstream
//! that answers conditional requests (ETag → mostly `304`). The upstream is a second
//! process (this binary with `--serve`). Per N it reports the service's CPU (cores, from
//! `/proc/<pid>/stat`), peak RSS during start-up and during a steady window (`VmHWM`,
//! reset with `/proc/<pid>/clear_refs` at the window's start), polls/s counted by the
//! upstream against N per second, and how late polls started against their schedule
//! (`ingestion_poll_lateness_seconds`, the difference of two scrapes of `/metrics`
//! around the window; p99 interpolated within its bucket, as Prometheus'
//! `histogram_quantile` does). Through the window `/metrics` is scraped every 10 s, as a
//! Prometheus server would: its size and slowest answer are reported, and the window's
//! peak RSS includes what the scrapes take.
//!
//! Options: `--sources 1000,10000,100000`, `--seconds S` (window, default 30),
//! `--change-every S` (each source's body changes every S seconds, default 60),
//! `--quick` (300 and 3,000 sources, 5 s).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use test_support::process::Supervised;
use test_support::{free_port, TempDir};

/// How often the window scrapes `/metrics`, as a Prometheus server would.
const SCRAPE_EVERY: Duration = Duration::from_secs(10);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The upstream: `/s/{i}` answers source `i`; its body (and ETag) changes every
/// `change_every` seconds, at a different second for each source; `If-None-Match` with
/// the current ETag gets a `304`. `/stats` says how many requests and `304`s it served.
fn serve(port: u16, change_every: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let c = counts.clone();
        let app = axum::Router::new()
            .route(
                "/s/{i}",
                axum::routing::get(
                    move |axum::extract::Path(i): axum::extract::Path<u64>,
                          headers: axum::http::HeaderMap| {
                        let c = c.clone();
                        async move {
                            c.0.fetch_add(1, Ordering::Relaxed);
                            let now = SystemTime::now()
                                .duration_since(SystemTime::UNIX_EPOCH)
                                .unwrap_or_default()
                                .as_secs();
                            let version = (now + i) / change_every.max(1);
                            let etag = format!("\"{i}-{version}\"");
                            let asked = headers.get("if-none-match").and_then(|v| v.to_str().ok());
                            if asked == Some(etag.as_str()) {
                                c.1.fetch_add(1, Ordering::Relaxed);
                                return axum::response::Response::builder()
                                    .status(304)
                                    .header("etag", etag)
                                    .body(axum::body::Body::empty())
                                    .expect("response");
                            }
                            let items: Vec<String> = (0..3)
                                .map(|k| format!("{{\"id\":\"{i}-{version}-{k}\",\"v\":{k}}}"))
                                .collect();
                            axum::response::Response::builder()
                                .header("etag", etag)
                                .header("content-type", "application/json")
                                .body(axum::body::Body::from(format!(
                                    "{{\"items\":[{}]}}",
                                    items.join(",")
                                )))
                                .expect("response")
                        }
                    },
                ),
            )
            .route(
                "/stats",
                axum::routing::get(move || {
                    let c = counts.clone();
                    async move {
                        format!(
                            "{} {}",
                            c.0.load(Ordering::Relaxed),
                            c.1.load(Ordering::Relaxed)
                        )
                    }
                }),
            );
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        axum::serve(l, app).await.expect("serve");
    });
}

/// `GET path` on 127.0.0.1:`port` over HTTP/1.0; the body, or "" on any failure.
fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut all = String::new();
    let _ = s.read_to_string(&mut all);
    all.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// utime + stime of `pid`, in clock ticks (100 per second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// A `/proc/<pid>/status` figure in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The upstream's (requests, 304s).
fn upstream_counts(port: u16) -> (u64, u64) {
    let s = get(port, "/stats");
    let mut it = s.split_whitespace().map(|v| v.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The lateness histogram's cumulative buckets (upper bound, count) and the summed
/// missed ticks, from a `/metrics` text.
#[derive(Debug, Default, Clone)]
struct Scrape {
    buckets: Vec<(f64, f64)>,
    missed: f64,
}

fn scrape(port: u16) -> Scrape {
    let text = get(port, "/metrics");
    let mut s = Scrape::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if name.contains("ingestion_poll_lateness_seconds_bucket") {
            let le = name
                .split("le=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("+Inf");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            s.buckets.push((le, value));
        } else if name.contains("ingestion_missed_ticks_total") {
            s.missed += value;
        }
    }
    s.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    s
}

/// `q`-quantile of the polls between two scrapes, and their count and the share of them
/// no later than `on_time` (a bucket bound).
fn quantile(before: &Scrape, after: &Scrape, q: f64, on_time: f64) -> (f64, f64, f64) {
    let count_at = |s: &Scrape, le: f64| s.buckets.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
    let diff: Vec<(f64, f64)> = after
        .buckets
        .iter()
        .map(|&(le, n)| (le, n - count_at(before, le)))
        .collect();
    let total = diff.last().map_or(0.0, |b| b.1);
    if total <= 0.0 {
        return (f64::NAN, 0.0, f64::NAN);
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    let mut p = f64::NAN;
    for &(le, n) in &diff {
        if n >= rank {
            p = if le.is_infinite() {
                lower.0
            } else {
                lower.0 + (le - lower.0) * (rank - lower.1) / (n - lower.1).max(1e-9)
            };
            break;
        }
        lower = (le, n);
    }
    let on = diff.iter().find(|b| b.0 == on_time).map_or(0.0, |b| b.1) / total;
    (p, total, on)
}

fn config(dir: &Path, sources: usize, upstream: u16, admin: u16) -> std::path::PathBuf {
    let mut map = serde_json::Map::new();
    for i in 0..sources {
        map.insert(
            format!("src_{i:06}"),
            serde_json::json!({
                "source_type": "http_json",
                "topic": "scale",
                "rate_limit_per_minute": 120,
                "ingestion": {"mode": "real_time", "polling_interval_seconds": 1},
                "custom_params": {
                    "url": format!("http://127.0.0.1:{upstream}/s/{i}"),
                    "decoder": {"type": "json", "pointer": "/items"},
                },
            }),
        );
    }
    let cfg = serde_json::json!({
        "kafka": {"bootstrap_servers": "embedded"},
        "dlq": {"url": "sqlite://data/dlq.db"},
        "topics": {"scale": {"partitions": 4}},
        "routing": {"fallback_topic": "scale"},
        "server": {"listen": format!("127.0.0.1:{admin}")},
        "sources": map,
    });
    let path = dir.join("scale.json");
    std::fs::write(&path, serde_json::to_vec(&cfg).expect("json")).expect("write config");
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    path
}

/// One run at `sources`: a Markdown table row.
fn run(sources: usize, window: Duration, change_every: u64) -> String {
    let dir = TempDir::new("service_scale");
    let (upstream_port, admin) = (free_port().expect("port"), free_port().expect("port"));
    let me = std::env::current_exe().expect("own path");
    let upstream = Supervised::spawn(
        &me,
        &[
            "--serve".into(),
            upstream_port.to_string(),
            "--change-every".into(),
            change_every.to_string(),
        ],
        dir.path(),
        &[],
        &dir.path().join("upstream.log"),
    )
    .expect("upstream");
    while TcpStream::connect(("127.0.0.1", upstream_port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cfg = config(dir.path(), sources, upstream_port, admin);
    let started = Instant::now();
    let server = Supervised::spawn(
        Path::new(env!("CARGO_BIN_EXE_stream-server")),
        &["run".into(), cfg.display().to_string()],
        dir.path(),
        &[("RUST_LOG".into(), "warn".into())],
        &dir.path().join("server.log"),
    )
    .expect("server");
    let pid = server.pid();
    // Start-up: until the admin API answers and the upstream sees ~N polls a second
    // (at most 3 minutes), then 5 s more.
    let expected = sources as f64;
    let ready_by = Instant::now() + Duration::from_secs(180);
    while get(admin, "/health").is_empty() && Instant::now() < ready_by {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut last = upstream_counts(upstream_port).0;
    while Instant::now() < ready_by {
        std::thread::sleep(Duration::from_secs(1));
        let now = upstream_counts(upstream_port).0;
        let rate = now.saturating_sub(last) as f64;
        last = now;
        if rate >= 0.9 * expected {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    let startup_s = started.elapsed().as_secs_f64();
    let startup_peak = status_kb(pid, "VmHWM:");
    let before = scrape(admin);
    // The steady window: peak RSS from here on.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let (t0, c0, u0) = (
        Instant::now(),
        cpu_ticks(pid),
        upstream_counts(upstream_port),
    );
    let uc0 = cpu_ticks(upstream.pid());
    // Scraped as Prometheus would, every `SCRAPE_EVERY` through the window: what a scrape
    // costs (rendering every source's series) is part of what a worker takes.
    // An empty answer is a scrape that failed (timed out): counted apart, not as a fast
    // empty one.
    let (mut scrapes, mut failed, mut scrape_max, mut scrape_bytes) =
        (0u32, 0u32, Duration::ZERO, 0usize);
    while t0.elapsed() + SCRAPE_EVERY <= window {
        std::thread::sleep(SCRAPE_EVERY);
        let at = Instant::now();
        let bytes = get(admin, "/metrics").len();
        if bytes == 0 {
            failed += 1;
            continue;
        }
        scrape_bytes = scrape_bytes.max(bytes);
        scrape_max = scrape_max.max(at.elapsed());
        scrapes += 1;
    }
    let scraped = match (scrapes, failed) {
        (0, 0) => "none".to_owned(),
        (0, f) => format!("not read ({f} failed)"),
        (n, f) => format!(
            "{n} × {:.1} MB, ≤ {:.2} s{}",
            scrape_bytes as f64 / 1e6,
            scrape_max.as_secs_f64(),
            if f > 0 {
                format!(", {f} failed")
            } else {
                String::new()
            }
        ),
    };
    std::thread::sleep(window.saturating_sub(t0.elapsed()));
    let secs = t0.elapsed().as_secs_f64();
    let cores = (cpu_ticks(pid) - c0) as f64 / 100.0 / secs;
    let upstream_cores = (cpu_ticks(upstream.pid()) - uc0) as f64 / 100.0 / secs;
    let u1 = upstream_counts(upstream_port);
    let (peak, rss) = (status_kb(pid, "VmHWM:"), status_kb(pid, "VmRSS:"));
    let after = scrape(admin);
    let polls_s = (u1.0 - u0.0) as f64 / secs;
    let not_modified = (u1.1 - u0.1) as f64 / (u1.0 - u0.0).max(1) as f64;
    let (p99, polls, on_time) = quantile(&before, &after, 0.99, 0.1);
    let (p50, _, _) = quantile(&before, &after, 0.5, 0.1);
    let missed = after.missed - before.missed;
    let alive = server.pid() == pid && std::path::Path::new(&format!("/proc/{pid}")).exists();
    drop(server);
    drop(upstream);
    let mb = |kb: u64| kb as f64 / 1024.0;
    // No poll counted between the scrapes (a scrape that timed out or could not be
    // read, at 100,000 sources): the lateness columns say so instead of `NaN`.
    let (lateness, on_time) = if polls > 0.0 {
        (
            format!("{:.1} / {:.1}", p50 * 1000.0, p99 * 1000.0),
            format!("{:.1} % of {polls:.0}", 100.0 * on_time),
        )
    } else {
        ("not read".to_owned(), "not read".to_owned())
    };
    format!(
        "| {sources} | {startup_s:.0} | {expected:.0} | {polls_s:.0} ({:.1} %) | {:.1} % | {cores:.2} | {upstream_cores:.2} | {:.1} | {:.1} / {:.1} | {:.1} | {scraped} | {lateness} | {on_time} | {missed:.0} |{}",
        100.0 * polls_s / expected,
        100.0 * not_modified,
        mb(startup_peak),
        mb(peak),
        mb(rss),
        peak as f64 / sources as f64,
        if alive { "" } else { " (the server had exited)" },
    )
}

fn main() {
    if let Some(port) = arg("--serve") {
        let every = arg("--change-every").map_or(60, |s| s.parse().unwrap_or(60));
        serve(port.parse().expect("port"), every);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick =
        std::env::args().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    let sources: Vec<usize> = arg("--sources")
        .unwrap_or_else(|| {
            (if quick {
                "300,3000"
            } else {
                "1000,10000,100000"
            })
            .to_owned()
        })
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let window = Duration::from_secs(
        arg("--seconds").map_or(if quick { 5 } else { 30 }, |s| s.parse().unwrap_or(30)),
    );
    let change_every = arg("--change-every").map_or(60, |s| s.parse().unwrap_or(60));
    println!(
        "The release `stream-server` (embedded broker, SQLite state) with N `http_json` sources polling every second a local upstream in another process (axum, 2 threads) that answers `If-None-Match` with `304` (each source's body changes every {change_every} s: 3 new records). The two processes share the machine's cores. Measured over a steady window of {} s after start-up, `/metrics` scraped every 10 s through it as Prometheus would (the window's peak RSS includes what rendering every source's series takes); lateness is how long after its scheduled time a poll started (`ingestion_poll_lateness_seconds`), p50 / p99 interpolated within the metric's buckets.\n",
        window.as_secs()
    );
    println!("| sources | start-up s | expected polls/s | polls/s (of expected) | `304` share | service cores | upstream cores | start-up peak RSS MB | window peak / end RSS MB | peak KB per source | `/metrics` scrapes in the window: size, slowest | lateness p50 / p99 ms | polls ≤ 100 ms late | missed ticks |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sources {
        println!("{}", run(n, window, change_every));
    }
}
