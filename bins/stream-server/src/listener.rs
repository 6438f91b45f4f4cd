//! The admin API's listener: every connection must send its request headers within
//! `server.header_read_timeout_seconds` (no slow-loris), at most
//! `server.max_connections` are open at once, and shutdown lets requests in progress
//! finish (5 s at most).
//!
//! Probes are never starved by other connections. When every slot is taken, a new
//! connection takes the slot of the connection that has waited longest for its next
//! request's headers (that one is closed): half-open or slow-header connections cannot
//! hold the listener, and a probe, which sends its headers at once, gets in. When every
//! slot is serving a request, [`PROBE_SLOTS`] more connections are admitted for probes
//! alone (`/health`, `/ready`; anything else there is answered 503), under the same
//! rule. An `accept()` error backs off (10 ms doubling to 1 s) instead of spinning.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse as _;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Limits of the admin listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Connections admitted beyond `max_connections` when every slot is serving a request;
/// they may make probe requests only.
pub(crate) const PROBE_SLOTS: usize = 4;

/// The requests a probe slot serves.
const PROBE_PATHS: [&str; 2] = ["/health", "/ready"];

/// `accept()` errors, counted (the listener backs off after each).
pub(crate) const ACCEPT_ERRORS: &str = "admin_accept_errors_total";

/// Registers the listener's metric descriptions.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        ACCEPT_ERRORS,
        metrics::Unit::Count,
        "Admin API accept() errors (the listener backs off 10 ms doubling to 1 s after each)."
    );
}

/// One open connection.
#[derive(Debug)]
struct Conn {
    id: u64,
    probe_only: bool,
    /// Since when it has waited for a request's headers; `None` while serving one.
    waiting_since: Option<Instant>,
    close: Arc<Notify>,
}

/// The open connections and the rule that gives them slots.
#[derive(Debug, Default)]
struct Slots {
    conns: Mutex<(u64, Vec<Conn>)>,
}

/// A connection's place, released when dropped.
#[derive(Debug)]
struct Admitted {
    slots: Arc<Slots>,
    id: u64,
    probe_only: bool,
    close: Arc<Notify>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.slots.lock().1.retain(|c| c.id != self.id);
    }
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Conn>)> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new connection: a free slot, else the slot of the connection that
    /// has waited longest for headers (closed); when every slot serves a request, a
    /// probe slot under the same rule; else none.
    fn admit(self: &Arc<Self>, max: usize) -> Option<Admitted> {
        let mut guard = self.lock();
        let (next, conns) = &mut *guard;
        let mut place = |probe_only: bool, limit: usize| {
            let held = conns.iter().filter(|c| c.probe_only == probe_only).count();
            if held < limit {
                return true;
            }
            let oldest = conns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.probe_only == probe_only)
                .filter_map(|(i, c)| c.waiting_since.map(|t| (t, i)))
                .min()
                .map(|(_, i)| i);
            match oldest {
                Some(i) => {
                    conns.swap_remove(i).close.notify_one();
                    true
                }
                None => false,
            }
        };
        let probe_only = if place(false, max.max(1)) {
            false
        } else if place(true, PROBE_SLOTS) {
            true
        } else {
            return None;
        };
        *next += 1;
        let close = Arc::new(Notify::new());
        conns.push(Conn {
            id: *next,
            probe_only,
            waiting_since: Some(Instant::now()),
            close: close.clone(),
        });
        Some(Admitted {
            slots: self.clone(),
            id: *next,
            probe_only,
            close,
        })
    }

    /// Connection `id` is serving a request (`false`) or waiting for the next (`true`).
    fn set_waiting(&self, id: u64, waiting: bool) {
        if let Some(c) = self.lock().1.iter_mut().find(|c| c.id == id) {
            c.waiting_since = waiting.then(Instant::now);
        }
    }
}

/// The pause after consecutive `accept()` errors: 10 ms, doubling, at most 1 s.
#[derive(Debug, Default)]
struct AcceptBackoff(u32);

impl AcceptBackoff {
    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(10 << self.0.min(7)).min(Duration::from_secs(1));
        self.0 = self.0.saturating_add(1);
        wait
    }
}

/// Serves `app` on `listener` until `stop` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let slots = Arc::new(Slots::default());
    let graceful = GracefulShutdown::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = AcceptBackoff::default();
                a
            }
            Err(e) => {
                let wait = backoff.next();
                metrics::counter!(ACCEPT_ERRORS).increment(1);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "admin API accept failed; backing off");
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let Some(admitted) = slots.admit(limits.max_connections) else {
            tracing::warn!(%peer, max = limits.max_connections, probe_slots = PROBE_SLOTS, "admin API connections all serving requests; closing a new connection");
            drop(stream);
            continue;
        };
        let connection = graceful.watch(
            hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service(&app, &admitted)),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                // Its slot went to a newer connection while it waited for headers.
                _ = admitted.close.notified() => {}
            }
            drop(admitted);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

/// What a connection answers with.
type Answer = Result<axum::response::Response, std::convert::Infallible>;
/// A request being answered.
type Answering = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send>>;

/// `app` for one connection: marks it serving while a request is in progress, and on a
/// probe slot answers anything but a probe with 503.
fn service(
    app: &Router,
    admitted: &Admitted,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = Answering,
> {
    let inner = TowerToHyperService::new(app.clone());
    let (slots, id, probe_only) = (admitted.slots.clone(), admitted.id, admitted.probe_only);
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        slots.set_waiting(id, false);
        let served = (!probe_only || PROBE_PATHS.contains(&req.uri().path()))
            .then(|| hyper::service::Service::call(&inner, req));
        let slots = slots.clone();
        Box::pin(async move {
            let response = match served {
                Some(call) => call.await?,
                None => (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::CONNECTION, "close")],
                    axum::Json(serde_json::json!({
                        "error": "every admin API connection is serving a request; this one may only probe /health and /ready; retry later"
                    })),
                )
                    .into_response(),
            };
            slots.set_waiting(id, true);
            Ok(response)
        }) as Answering
    })
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
