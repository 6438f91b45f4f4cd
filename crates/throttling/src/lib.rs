//! Consumer-lag-aware send control.
//!
//! A [`Throttle`] takes lag samples (from a [`LagProbe`]: Kafka consumer groups, a static
//! value, or the queue's fill), keeps a sliding window of them, and moves between three
//! states on the window's average:
//!
//! | average lag | state | delay | rate |
//! |---|---|---|---|
//! | `< target` | `Normal` | none | × factor after `recovery_checks` low checks, up to max |
//! | `target ≤ avg < critical` | `Moderate` | 1 s | ÷ factor |
//! | `≥ critical` | `Critical` | 2 s, 4 s, 8 s, 16 s (per backoff level, capped) | ÷ factor² |
//!
//! The rate is enforced by a token bucket ([`Throttle::acquire`]), always within
//! `[min_send_rate, max_send_rate]`. [`PerSource`] gives each source its fair share of
//! a bounded pipeline and, from per-topic lag, a throttle of its own.
//!
//! ```
//! use std::time::Duration;
//! use throttling::{Throttle, ThrottleSettings, ThrottleState};
//!
//! let settings = ThrottleSettings { target_lag: 100, critical_lag: 500, ..ThrottleSettings::default() };
//! let throttle = Throttle::new(settings, "global");
//! let d = throttle.record(800);
//! assert_eq!(d.state, ThrottleState::Critical);
//! assert_eq!(d.delay, Duration::from_secs(2));
//! assert!(d.rate < 1000.0);
//! ```

mod clock;
mod fair;
mod metrics;
mod probe;
mod throttle;
mod window;

pub use clock::TokioClock;
pub use fair::{PerSource, SourceShare};
pub use metrics::describe_metrics;
pub use probe::{Error, Lag, LagProbe, QueueFillProbe, Result, StaticLagProbe};
pub use throttle::{
    Decision, Throttle, ThrottleGroup, ThrottleSettings, ThrottleState, MAX_GROUP_SERIES,
};
pub use window::{LagWindow, WindowStats};
