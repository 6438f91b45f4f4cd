//! Polling scale: N `http_json` sources (default 1,000) each polling a local server every
//! second through the real client and schedule. The server is a second process (this
//! binary with `--serve`), so the figures are the pollers' own: CPU % of one core from
//! `/proc/self/stat`, peak and final RSS from `/proc/self/status`.
//! Options: `--sources N`, `--seconds S`, `--quick` (100 sources, 3 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{CursorTracker, MemoryCursorStore, Registry};
use ingestion_modes::{start, Emitted, ModeSpec};
use stream_config::{IngestionConfig, IngestionModeKind, SourceConfig};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn serve(port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let body = serde_json::json!({"items": (0..5).map(|i| serde_json::json!({"v": i})).collect::<Vec<_>>()}).to_string();
        let app = axum::Router::new().route(
            "/data",
            axum::routing::get(move || {
                let b = body.clone();
                async move { ([("content-type", "application/json")], b) }
            }),
        );
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        axum::serve(l, app).await.unwrap();
    });
}

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if let Some(port) = arg("--serve") {
        serve(port.parse().unwrap());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick =
        std::env::args().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    let sources: usize =
        arg("--sources").map_or(if quick { 100 } else { 1000 }, |s| s.parse().unwrap());
    let seconds: u64 = arg("--seconds").map_or(if quick { 3 } else { 30 }, |s| s.parse().unwrap());
    let port = test_support::free_port().unwrap();
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--serve", &port.to_string()])
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (cpu, peak, rss, records) = rt.block_on(async move {
        let registry = Registry::builtin();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Emitted>(10_000);
        let counter = tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(e) = rx.recv().await {
                n += e.records.len() as u64;
            }
            n
        });
        let sink: Arc<tokio::sync::mpsc::Sender<Emitted>> = Arc::new(tx);
        let mut handles = Vec::new();
        let store = Arc::new(MemoryCursorStore::default());
        for i in 0..sources {
            let id = format!("src_{i}");
            let mut cfg = SourceConfig::new("http_json");
            cfg.rate_limit_per_minute = 120;
            cfg.cache_ttl_seconds = 0;
            cfg.custom_params
                .insert("url".into(), format!("http://127.0.0.1:{port}/data").into());
            cfg.custom_params.insert(
                "decoder".into(),
                serde_json::json!({"type": "json", "pointer": "/items"}),
            );
            let source = registry.build(&id, &cfg).unwrap();
            let tracker = Arc::new(CursorTracker::load(&id, store.clone()).await.unwrap());
            let spec = ModeSpec::from_config(&IngestionConfig {
                mode: IngestionModeKind::RealTime,
                polling_interval_seconds: 1.0,
                ..IngestionConfig::default()
            })
            .unwrap()
            .with_start_jitter(Duration::from_secs(1));
            handles.push(start(&id, spec, source, tracker, sink.clone()));
        }
        // Let start-up settle, then measure a steady window.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (t0, c0) = (Instant::now(), cpu_ticks());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let cpu = (cpu_ticks() - c0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
        let (peak, rss) = (status_kb("VmHWM:"), status_kb("VmRSS:"));
        for h in handles {
            h.stop(Duration::from_secs(1)).await;
        }
        drop(sink);
        (cpu, peak, rss, counter.await.unwrap())
    });
    let _ = server.kill();
    let _ = server.wait();
    println!("polling_scale sources={sources} interval_s=1 measured_s={seconds}");
    println!("cpu_percent_of_one_core {cpu:.1}");
    println!("rss_peak_mb {:.1}", peak as f64 / 1024.0);
    println!("rss_end_mb {:.1}", rss as f64 / 1024.0);
    println!("records_received {records}");
}
