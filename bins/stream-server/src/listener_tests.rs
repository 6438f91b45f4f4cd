//! The listener under connections that hold on: slow half-open ones, ones whose requests
//! never finish, and a listening socket whose `accept()` keeps failing.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Serves `app` on a fresh 127.0.0.1 port with `max_connections` slots; the server
/// stops when the returned sender drops.
async fn start(app: Router, max_connections: usize) -> (std::net::SocketAddr, impl Drop) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        header_read_timeout: Duration::from_secs(60),
        max_connections,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, limits, stopped));
    (addr, stop)
}

fn probes() -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ready" }))
        .route("/other", get(|| async { "other" }))
}

/// A whole request on a new connection; the response as text ("" if it was closed).
async fn get_once(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn probes_answer_while_every_slot_is_held_by_slow_half_open_connections() {
    let max = 8;
    let (addr, _stop) = start(probes(), max).await;
    // `max` connections that send part of their headers, then nothing (accepted in
    // this order: the kernel's accept queue is first in, first out).
    let mut slow = Vec::new();
    for _ in 0..max {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /other HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        slow.push(s);
    }

    let health = get_once(addr, "/health").await;
    let ready = get_once(addr, "/ready").await;

    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready:?}");
    // The one that had waited longest for its headers gave its slot up.
    let mut buf = [0u8; 64];
    let closed = slow[0].read(&mut buf).await;
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}

#[tokio::test]
async fn with_every_slot_serving_a_request_probes_get_a_reserve_slot_and_nothing_else_does() {
    let max = 3;
    let (entered, mut inside) = tokio::sync::mpsc::unbounded_channel::<()>();
    let app = probes().route(
        "/stuck",
        get(move || {
            let entered = entered.clone();
            async move {
                let _ = entered.send(());
                std::future::pending::<()>().await
            }
        }),
    );
    let (addr, _stop) = start(app, max).await;
    let mut stuck = Vec::new();
    for _ in 0..max {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        stuck.push(s);
    }
    for _ in 0..max {
        inside.recv().await.unwrap();
    }

    let health = get_once(addr, "/health").await;
    let other = get_once(addr, "/other").await;

    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(other.starts_with("HTTP/1.1 503"), "{other:?}");
    assert!(
        other.contains("may only probe /health and /ready"),
        "{other:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn accept_errors_back_off_ten_ms_doubling() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    // Errors since the last look (a snapshot takes the counts).
    let errors = || {
        snapshots
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == ACCEPT_ERRORS)
            .map(|(.., v)| match v {
                DebugValue::Counter(n) => n,
                _ => 0,
            })
            .sum::<u64>()
    };
    // A listening socket shut down: every accept() fails at once (EINVAL), forever.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    socket2::SockRef::from(&listener)
        .shutdown(std::net::Shutdown::Both)
        .unwrap();
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 1,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Router::new(), limits, stopped));

    // Many turns of the runtime, no time passing: one error, then a pause.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(errors(), 1);
    // Six more by 1 s (the snapshot counts since the last): at 10, 30, 70, 150, 310 and
    // 630 ms; the next at 1,270 ms.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(errors(), 6);

    stop.send(()).unwrap();
    server.await.unwrap();
}
