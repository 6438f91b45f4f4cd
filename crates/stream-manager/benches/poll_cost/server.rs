//! The upstream of the poll-cost bench, run as a child process (so its CPU is not the
//! poller's): an axum server on 127.0.0.1 answering `{"items": [...]}` bodies of
//! sensor readings (the pipeline bench's ~230 B record shape).
//!
//! - `GET /changed?n=N`: N new readings every time (fresh sequence numbers, so fresh
//!   dedup identities) and a new `ETag`, so every poll is a 200 with new records;
//! - `GET /same?n=N`: the same N readings and `ETag: "same-N"`; a request whose
//!   `If-None-Match` names it is answered `304 Not Modified` with no body;
//! - `GET /count`: requests answered on the two above so far (text).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// Reading number `seq`: a sensor reading as the synthetic connector writes them, its
/// values varied by a cheap hash of `seq`, compact JSON (what the service sends as is).
pub(crate) fn reading(seq: u64) -> String {
    let h = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let f = |shift: u32, span: f64| ((h >> shift) & 0xffff) as f64 / 65_536.0 * span;
    let round = |v: f64, digits: i32| (v * 10f64.powi(digits)).round() / 10f64.powi(digits);
    serde_json::json!({
        "station_id": format!("sensor_{:04}", seq % 500),
        "sequence": seq,
        "timestamp": "2026-12-06T13:00:00.000Z",
        "latitude": round(32.5 + f(0, 9.5), 4),
        "longitude": round(-124.0 + f(16, 10.0), 4),
        "temperature_c": round(-5.0 + f(32, 45.0), 2),
        "humidity_pct": round(f(48, 100.0), 1),
        "wind_speed_ms": round(f(8, 25.0), 2),
        "wind_direction_deg": (h >> 24) % 360,
        "pm25_ugm3": round(f(40, 150.0), 1),
    })
    .to_string()
}

/// `{"items": [readings first .. first + n]}`.
pub(crate) fn body(first: u64, n: u64) -> String {
    let mut b = String::from("{\"items\":[");
    for seq in first..first + n {
        if seq > first {
            b.push(',');
        }
        b.push_str(&reading(seq));
    }
    b.push_str("]}");
    b
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    next_seq: AtomicU64,
}

fn n_of(q: &HashMap<String, String>) -> u64 {
    q.get("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
        .min(100_000)
}

async fn changed(
    State(c): State<Arc<Counters>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    c.requests.fetch_add(1, Ordering::Relaxed);
    let n = n_of(&q);
    // From 1_000_000_000 on, so no reading of `/same` shares an identity with these.
    let first = 1_000_000_000 + c.next_seq.fetch_add(n, Ordering::Relaxed);
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::ETAG, format!("\"c{first}\"")),
        ],
        body(first, n),
    )
        .into_response()
}

async fn same(
    State(c): State<Arc<Counters>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    c.requests.fetch_add(1, Ordering::Relaxed);
    let n = n_of(&q);
    let etag = format!("\"same-{n}\"");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::ETAG, etag),
        ],
        body(0, n),
    )
        .into_response()
}

/// Serves until stdin closes (the parent exited); prints `server <port>` first.
pub(crate) fn run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async {
        let counters = Arc::new(Counters::default());
        let count = counters.clone();
        let app = axum::Router::new()
            .route("/changed", axum::routing::get(changed))
            .route("/same", axum::routing::get(same))
            .route(
                "/count",
                axum::routing::get(move || {
                    let n = count.requests.load(Ordering::Relaxed);
                    async move { n.to_string() }
                }),
            )
            .with_state(counters);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        println!("server {port}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        tokio::spawn(async move { axum::serve(listener, app).await });
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await
        .ok();
    });
}
