//! Circuit breaker: closed → open after `threshold` consecutive failures → half-open
//! (one probe) after `cooldown` → closed on success, open again on failure.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Breaker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the cooldown ends.
    Open,
    /// One probe request is allowed.
    HalfOpen,
}

impl BreakerState {
    /// 0 closed, 1 half-open, 2 open: the value of the breaker gauge.
    pub fn as_number(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
}

/// A circuit breaker on tokio's clock.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// Opens after `threshold` consecutive failures, probes after `cooldown`.
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May a request go now? `Err(wait)` while open. Moves open → half-open when the
    /// cooldown is over.
    pub(crate) fn allow(&self) -> Result<(), Duration> {
        let mut i = self.lock();
        match i.state {
            BreakerState::Closed | BreakerState::HalfOpen => Ok(()),
            BreakerState::Open => {
                let since = i.opened_at.map_or(self.cooldown, |t| t.elapsed());
                if since >= self.cooldown {
                    i.state = BreakerState::HalfOpen;
                    Ok(())
                } else {
                    Err(self.cooldown - since)
                }
            }
        }
    }

    /// A request succeeded.
    pub(crate) fn success(&self) {
        let mut i = self.lock();
        i.state = BreakerState::Closed;
        i.failures = 0;
        i.opened_at = None;
    }

    /// A request failed.
    pub(crate) fn failure(&self) {
        let mut i = self.lock();
        i.failures += 1;
        if i.state == BreakerState::HalfOpen || i.failures >= self.threshold {
            i.state = BreakerState::Open;
            i.opened_at = Some(Instant::now());
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        self.lock().state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_probes_and_closes() {
        let b = CircuitBreaker::new(3, Duration::from_secs(30));
        b.failure();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.allow(), Err(Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.allow(), Ok(()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.failure(); // the probe failed: open again at once
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.allow(), Ok(()));
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
