//! One `reqwest::Client` (its connection pool, TLS configuration, resolver and redirect
//! policy) for all the sources whose clients would be built alike: the same outbound
//! rules (origins, `allowed_hosts`, the admin address) and the same credentials rule
//! for redirects. What differs per source — its id in metrics and messages, its
//! timeout, its `User-Agent` — goes on each request instead. 10,000 sources polling
//! one API thus hold one client and a few pooled connections instead of 10,000 of each.
//!
//! A shared client lets at most [`MAX_IN_FLIGHT`] requests wait for their answer at once;
//! the others wait their turn (first come, first served) without a connection. hyper
//! opens a connection for every request that finds none idle, so without the bound a
//! burst (thousands of sources due in the same second, an upstream slowing down) left
//! thousands of connections open, each with its buffers and task.
//!
//! The clients live as long as a source holds them: the table keeps weak references,
//! dropped entries are swept when a client is added.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Most requests of one shared client waiting for their answers at once.
pub(crate) const MAX_IN_FLIGHT: usize = 128;

/// A client and the requests it lets out at once.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: reqwest::Client,
    in_flight: Semaphore,
}

impl Shared {
    /// Waits for a turn to send a request (held until its answer's headers are in).
    pub(crate) async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        self.in_flight.acquire().await.ok()
    }
}

type Table = Mutex<HashMap<String, Weak<Shared>>>;

static CLIENTS: OnceLock<Table> = OnceLock::new();

/// The client shared under `key`, or a new one from `build` (then shared under it).
pub(crate) fn client<E>(
    key: String,
    build: impl FnOnce() -> Result<reqwest::Client, E>,
) -> Result<Arc<Shared>, E> {
    let table = CLIENTS.get_or_init(Table::default);
    let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(shared) = table.get(&key).and_then(Weak::upgrade) {
        return Ok(shared);
    }
    table.retain(|_, c| c.strong_count() > 0);
    let built = Arc::new(Shared {
        client: build()?,
        in_flight: Semaphore::new(MAX_IN_FLIGHT),
    });
    table.insert(key, Arc::downgrade(&built));
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_sources_share_a_client_and_a_dropped_one_is_swept() {
        let build = || Ok::<_, ()>(reqwest::Client::new());
        let a = client("shared-test-a".to_owned(), build).unwrap();
        let a2 = client("shared-test-a".to_owned(), build).unwrap();
        let b = client("shared-test-b".to_owned(), build).unwrap();
        assert!(Arc::ptr_eq(&a, &a2), "same key: one client");
        assert!(!Arc::ptr_eq(&a, &b), "another key: another client");
        drop((a, a2));
        let again = client("shared-test-c".to_owned(), build).unwrap();
        let table = CLIENTS.get().unwrap().lock().unwrap();
        assert!(!table.contains_key("shared-test-a"), "swept once unused");
        assert!(table.contains_key("shared-test-b"));
        drop((b, again));
    }

    #[tokio::test]
    async fn a_shared_client_lets_out_at_most_its_bound_at_once() {
        let c = client("shared-test-turns".to_owned(), || {
            Ok::<_, ()>(reqwest::Client::new())
        })
        .unwrap();
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            held.push(c.turn().await.expect("a turn"));
        }
        let next = tokio::time::timeout(std::time::Duration::from_millis(20), c.turn()).await;
        assert!(next.is_err(), "the next request waits");
        held.pop();
        assert!(c.turn().await.is_some(), "and goes once one has its answer");
    }
}
