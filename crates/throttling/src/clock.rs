//! A governor clock on tokio's time, so `tokio::time::pause()` drives rate limits too.

use std::time::Duration;

use governor::clock::Clock;

/// Measures time as tokio does (virtual under `tokio::time::pause()`), from its creation.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}
