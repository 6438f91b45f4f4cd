//! Fixed-rate schedules on absolute deadlines, and cron schedules.

use std::time::Duration;

use tokio::time::Instant;

/// Errors of the ingestion-modes crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cron expression does not parse.
    #[error("invalid cron expression `{expr}`: {message}")]
    Cron {
        /// The expression.
        expr: String,
        /// Why.
        message: String,
    },
    /// An interval is zero, negative, not a number or beyond ten years.
    #[error("`{key}` must be a positive number of seconds (at most ten years), got {value}")]
    Interval {
        /// The key.
        key: &'static str,
        /// The value.
        value: f64,
    },
    /// `ingestion.mode` names no registered mode.
    #[error("unknown ingestion mode `{name}`; registered: {known}")]
    UnknownMode {
        /// The name given.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// A registered mode refused its settings.
    #[error("ingestion mode `{mode}`: {message}")]
    Mode {
        /// The mode's name.
        mode: String,
        /// Why.
        message: String,
    },
    /// The pipeline is gone; nothing more can be emitted.
    #[error("the pipeline no longer accepts records")]
    SinkClosed,
}

/// Result with the ingestion-modes crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// When polls happen.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `period`, on the grid `start + k × period`.
    Every(Duration),
    /// At the times a cron expression names (wall-clock, UTC).
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// A cron schedule (5 fields, or 6 with seconds first).
    pub fn cron(expr: &str) -> Result<Self, Error> {
        parse_cron(expr)
            .map(|c| Schedule::Cron(Box::new(c)))
            .map_err(|message| Error::Cron {
                expr: expr.to_owned(),
                message,
            })
    }

    /// How long from the wall-clock time `now` to the next cron occurrence.
    pub fn until_next_cron(
        cron: &croner::Cron,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<Duration> {
        let next = cron.find_next_occurrence(&now, false).ok()?;
        (next - now).to_std().ok()
    }
}

/// Parses a cron expression: 5 fields, or 6 with seconds first (the `cron` key of an
/// `ingestion` section; the configuration's validation accepts the same syntax).
pub fn parse_cron(expr: &str) -> std::result::Result<croner::Cron, String> {
    use croner::parser::{CronParser, Seconds};
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

/// The grid of a fixed-rate schedule: tick `k` is due at `start + k × period`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    start: Instant,
    period: Duration,
    k: u64,
}

impl Grid {
    pub(crate) fn new(start: Instant, period: Duration) -> Self {
        Self {
            start,
            period: period.max(Duration::from_millis(1)),
            k: 0,
        }
    }

    /// When the current tick is due.
    pub(crate) fn due(&self) -> Instant {
        self.start
            + self
                .period
                .saturating_mul(self.k.min(u64::from(u32::MAX)) as u32)
    }

    /// Moves to the next tick after a poll that ended at `now`. If the poll outlasted
    /// ticks, the latest one already due is taken (it runs at once) and the ones between
    /// are skipped; returns how many were skipped.
    pub(crate) fn advance(&mut self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        let latest_due = (elapsed.as_nanos() / self.period.as_nanos()) as u64;
        let next = (self.k + 1).max(latest_due);
        let missed = next - (self.k + 1);
        self.k = next;
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_skips_ticks_a_slow_poll_covered() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut g = Grid::new(t0, s(10));
        assert_eq!(g.due(), t0);
        assert_eq!(g.advance(t0 + s(3)), 0);
        assert_eq!(g.due(), t0 + s(10));
        // A poll from 10 s to 35 s covered the ticks at 20 and 30: the one at 30 runs
        // at once, the one at 20 is missed.
        assert_eq!(g.advance(t0 + s(35)), 1);
        assert_eq!(g.due(), t0 + s(30));
        assert_eq!(g.advance(t0 + s(36)), 0);
        assert_eq!(g.due(), t0 + s(40), "back on the grid: no drift");
    }

    #[test]
    fn cron_next_occurrence() {
        let Schedule::Cron(c) = Schedule::cron("0 */15 * * * *").unwrap() else {
            unreachable!()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:07:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            Schedule::until_next_cron(&c, now),
            Some(Duration::from_secs(7 * 60 + 30))
        );
        assert!(Schedule::cron("61 * * * *").is_err());
    }
}
