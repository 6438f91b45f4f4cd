//! The sliding window of lag samples.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Lag samples from the last `width`, at most `max_samples` of them.
#[derive(Debug, Clone)]
pub struct LagWindow {
    samples: VecDeque<(Instant, u64)>,
    width: Duration,
    max_samples: usize,
}

/// Summary of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    /// Samples in the window.
    pub count: usize,
    /// Mean lag.
    pub avg: f64,
    /// Median lag (nearest rank).
    pub p50: u64,
    /// 95th percentile (nearest rank).
    pub p95: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
}

impl LagWindow {
    /// An empty window; `max_samples` below 1 is taken as 1.
    pub fn new(width: Duration, max_samples: usize) -> Self {
        Self {
            samples: VecDeque::new(),
            width,
            max_samples: max_samples.max(1),
        }
    }

    /// Adds a sample taken at `now` (negative lag, from stale watermarks, counts as 0)
    /// and forgets samples older than the window or beyond its size.
    pub fn push(&mut self, now: Instant, lag: i64) {
        self.samples.push_back((now, lag.max(0) as u64));
        while self.samples.len() > self.max_samples {
            self.samples.pop_front();
        }
        while let Some((t, _)) = self.samples.front() {
            if now.saturating_duration_since(*t) > self.width {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// A new width and size; the samples beyond the size go now (oldest first), those
    /// older than the width at the next `push`.
    pub fn resize(&mut self, width: Duration, max_samples: usize) {
        self.width = width;
        self.max_samples = max_samples.max(1);
        while self.samples.len() > self.max_samples {
            self.samples.pop_front();
        }
    }

    /// Mean and percentiles of the samples in the window.
    pub fn stats(&self) -> WindowStats {
        let count = self.samples.len();
        if count == 0 {
            return WindowStats::default();
        }
        let mut sorted: Vec<u64> = self.samples.iter().map(|(_, v)| *v).collect();
        sorted.sort_unstable();
        let rank = |q: f64| sorted[((q * count as f64).ceil() as usize).clamp(1, count) - 1];
        WindowStats {
            count,
            avg: sorted.iter().map(|v| *v as f64).sum::<f64>() / count as f64,
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_old_and_excess_samples_and_clamps_negatives() {
        let t0 = Instant::now();
        let mut w = LagWindow::new(Duration::from_secs(10), 3);
        w.push(t0, -50);
        assert_eq!(w.stats().avg, 0.0);
        w.push(t0 + Duration::from_secs(1), 100);
        w.push(t0 + Duration::from_secs(2), 200);
        w.push(t0 + Duration::from_secs(3), 300); // evicts the first by size
        assert_eq!(w.stats().count, 3);
        assert_eq!(w.stats().avg, 200.0);
        w.push(t0 + Duration::from_secs(13), 600); // 1 s and 2 s samples fall out by age
        let s = w.stats();
        assert_eq!(s.count, 2);
        assert_eq!(s.avg, 450.0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let t0 = Instant::now();
        let mut w = LagWindow::new(Duration::from_secs(1000), 100);
        for v in 1..=100 {
            w.push(t0, v);
        }
        let s = w.stats();
        assert_eq!((s.p50, s.p95, s.p99), (50, 95, 99));
    }
}
