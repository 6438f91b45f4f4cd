//! The rate limiter's clock: tokio's time, so `tokio::time::pause()` drives upstream rate
//! limits in tests. (The throttling crate has its own; ten lines are cheaper than a
//! dependency between two crates that must stand alone.)

use std::time::Duration;

/// Time since the clock was made, as tokio measures it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock(tokio::time::Instant);

impl TokioClock {
    pub(crate) fn start() -> Self {
        Self(tokio::time::Instant::now())
    }
}

impl governor::clock::Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}
