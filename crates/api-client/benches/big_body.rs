//! Bodies of any size in bounded memory (#25): a 1 GB FIRMS-shaped CSV and a 500 MB
//! USGS-shaped GeoJSON collection served over HTTP by a local server on 127.0.0.1 (a
//! child process holding the generated body), fetched by `HttpApiClient` with records
//! handed on in chunks into a counting sink (another task that takes and drops them).
//! Each fetch runs in a child process of its own, whose resident memory is read before
//! (idle) and at its peak (`VmHWM`, reset through `/proc/self/clear_refs` after
//! setup). The full pipeline to a broker is not in it (the record path's own benches
//! measure that); this is the source and decoder path. `--quick`: a tenth of the sizes.
//! Prints a Markdown table (`cargo xtask bench` puts it in BENCHMARKS.md).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api_client::{ChunkSender, ClientOptions, Decoder, HttpApiClient, HttpSpec, Source};

const MB: f64 = 1e6;

fn main() {
    if let Ok(kind) = std::env::var("BIG_BODY_SERVE") {
        serve(&kind);
        return;
    }
    if let Ok(url) = std::env::var("BIG_BODY_FETCH") {
        fetch(&url);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    println!(
        "| body | bytes | records | seconds | MB/s (goal ≥ 100) | CPU s | idle RSS MB | peak RSS MB | peak − idle MB (goal ≤ 64) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (kind, bytes) in [
        ("csv", 1_000_000_000 / scale),
        ("geojson", 500_000_000 / scale),
    ] {
        let mut server = Command::new(std::env::current_exe().expect("own path"))
            .env("BIG_BODY_SERVE", kind)
            .env("BIG_BODY_BYTES", bytes.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server");
        let mut line = String::new();
        BufReader::new(server.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the server's port and body length");
        let (port, len) = line.trim().split_once(' ').expect("port and length");
        let url = format!("http://127.0.0.1:{port}/{kind}");
        let out = Command::new(std::env::current_exe().expect("own path"))
            .env("BIG_BODY_FETCH", &url)
            .env("BIG_BODY_LEN", len)
            .output()
            .expect("fetch");
        let _ = server.kill();
        let _ = server.wait();
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{kind}: {line}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{line}");
    }
}

/// FIRMS VIIRS rows (`world`, a day) and USGS features (`all_month`), varied.
fn generate(kind: &str, bytes: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes + 4096);
    let mut i: u64 = 0;
    let mut rnd = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        rnd
    };
    if kind == "csv" {
        body.extend_from_slice(b"latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight\n");
        while body.len() < bytes {
            let r = next();
            let _ = writeln!(
                body,
                "{:.5},{:.5},{}.{},0.{},0.{},2026-11-27,{:04},N,VIIRS,{},2.0NRT,{}.{},{}.{},{}",
                (r % 180_000) as f64 / 1000.0 - 90.0,
                ((r >> 20) % 360_000) as f64 / 1000.0 - 180.0,
                295 + r % 70,
                r % 100,
                35 + r % 60,
                36 + (r >> 8) % 60,
                i % 2400,
                ["n", "l", "h"][(r % 3) as usize],
                270 + (r >> 4) % 40,
                (r >> 12) % 100,
                (r >> 16) % 90,
                (r >> 24) % 10,
                if r % 2 == 0 { "D" } else { "N" }
            );
            i += 1;
        }
    } else {
        body.extend_from_slice(br#"{"type":"FeatureCollection","metadata":{"generated":1795747900000,"url":"https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/all_month.geojson","title":"USGS All Earthquakes, Past Month","status":200,"api":"1.10.3"},"features":["#);
        while body.len() < bytes {
            let r = next();
            if i > 0 {
                body.push(b',');
            }
            let code = format!("{:08x}", r as u32);
            let _ = write!(
                body,
                r#"{{"type":"Feature","properties":{{"mag":{}.{},"place":"{} km {} of Somewhere, CA","time":{},"updated":{},"tz":null,"url":"https://earthquake.usgs.gov/earthquakes/eventpage/ci{code}","detail":"https://earthquake.usgs.gov/earthquakes/feed/v1.0/detail/ci{code}.geojson","felt":null,"cdi":null,"mmi":null,"alert":null,"status":"automatic","tsunami":0,"sig":{},"net":"ci","code":"{code}","ids":",ci{code},","sources":",ci,","types":",nearby-cities,origin,phase-data,","nst":{},"dmin":0.0{},"rms":0.{},"gap":{},"magType":"ml","type":"earthquake","title":"M {}.{} - {} km {} of Somewhere, CA"}},"geometry":{{"type":"Point","coordinates":[-{}.{},{}.{},{}.{}]}},"id":"ci{code}"}}"#,
                r % 6,
                (r >> 3) % 100,
                r % 90,
                ["N", "SE", "WNW"][(r % 3) as usize],
                1_795_747_900_461 + i,
                1_795_748_000_000 + i,
                r % 600,
                r % 80,
                r % 9000,
                (r >> 5) % 100,
                (r >> 7) % 300,
                r % 6,
                (r >> 3) % 100,
                r % 90,
                ["N", "SE", "WNW"][(r % 3) as usize],
                115 + r % 10,
                (r >> 9) % 10_000,
                32 + (r >> 11) % 8,
                (r >> 13) % 10_000,
                r % 20,
                (r >> 2) % 100
            );
            i += 1;
        }
        body.extend_from_slice(br#"],"bbox":[-179.9,-60.1,-0.5,179.9,70.2,650.3]}"#);
    }
    body
}

/// Serves the generated body to every GET, one thread per connection.
fn serve(kind: &str) {
    let bytes: usize = std::env::var("BIG_BODY_BYTES")
        .ok()
        .and_then(|b| b.parse().ok())
        .expect("BIG_BODY_BYTES");
    let body = std::sync::Arc::new(generate(kind, bytes));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    println!("{port} {}", body.len());
    std::io::stdout().flush().expect("flush");
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let body = body.clone();
        std::thread::spawn(move || {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            for piece in body.chunks(256 * 1024) {
                if conn.write_all(piece).is_err() {
                    return;
                }
            }
        });
    }
}

/// `VmRSS` / `VmHWM` of this process, in bytes.
fn status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime), counted after the command name's `)`.
    (ticks(11) + ticks(12)) / 100.0
}

/// One fetch of `url` into a counting sink; prints its table row.
fn fetch(url: &str) {
    let kind = if url.ends_with("csv") {
        "csv"
    } else {
        "geojson"
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let spec = HttpSpec {
            decoder: if kind == "csv" {
                Decoder::Csv
            } else {
                Decoder::Geojson
            },
            max_response_bytes: 4 << 30,
            ..HttpSpec::get(url)
        };
        let opts = ClientOptions {
            source_id: "bench".into(),
            rate_limit_per_minute: 60_000,
            timeout: Duration::from_secs(3600),
            cache_ttl: Duration::ZERO,
            allowed_hosts: Vec::new(),
            admin_address: None,
            limits: Default::default(),
        };
        let client = std::sync::Arc::new(HttpApiClient::new(spec, opts).expect("client"));
        let idle = status("VmRSS:");
        // Peak resident memory from here on.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let (cpu0, started) = (cpu_seconds(), Instant::now());
        let (out, mut chunks) = ChunkSender::channel(1);
        let task = tokio::spawn({
            let client = client.clone();
            async move { client.fetch_streaming(None, &out).await }
        });
        let mut records = 0usize;
        while let Some(chunk) = chunks.recv().await {
            records += chunk.records.len();
        }
        let fetch = task.await.expect("fetch task").expect("fetch");
        assert!(fetch.failures.is_empty(), "{:?}", fetch.failures);
        records += fetch.records.len();
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let peak = status("VmHWM:").max(idle);
        let bytes: u64 = std::env::var("BIG_BODY_LEN")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        println!(
            "| {kind} | {bytes} | {records} | {seconds:.2} | {:.0} | {cpu:.2} | {:.1} | {:.1} | {:.1} |",
            bytes as f64 / MB / seconds,
            idle as f64 / MB,
            peak as f64 / MB,
            (peak - idle) as f64 / MB,
        );
    });
}
