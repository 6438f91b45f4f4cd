//! The controller (state machine over the lag window) and the enforcing token bucket.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::clock::TokioClock;
use crate::metrics as m;
use crate::probe::{Error, Lag, LagProbe};
use crate::window::{LagWindow, WindowStats};

/// Tuning of a throttle.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleSettings {
    /// When false, every decision is `Normal` at `max_rate` and nothing is paced.
    pub enabled: bool,
    /// Lowest rate, records per second.
    pub min_rate: f64,
    /// Highest (and initial) rate, records per second.
    pub max_rate: f64,
    /// Average lag below which sending is unrestricted.
    pub target_lag: u64,
    /// Average lag at or above which sending backs off exponentially.
    pub critical_lag: u64,
    /// Rate divisor under lag and multiplier on recovery (> 1).
    pub factor: f64,
    /// Width of the lag window.
    pub window: Duration,
    /// Most samples in the window.
    pub max_samples: usize,
    /// Highest backoff level.
    pub max_backoff_level: u32,
    /// Consecutive low checks before each recovery step.
    pub recovery_checks: u32,
    /// Delay in the moderate state.
    pub moderate_delay: Duration,
    /// Delay at backoff level 1; it doubles per level.
    pub critical_base_delay: Duration,
    /// Cap of the critical delay.
    pub max_delay: Duration,
    /// Burst the token bucket allows, in seconds of the current rate (at least 1 record).
    pub burst_seconds: f64,
}

impl Default for ThrottleSettings {
    /// The stream manager's documented defaults (1–1000 rec/s, target lag 1,000,
    /// critical 5,000, factor 1.5, a 60 s window of 100 samples).
    fn default() -> Self {
        Self {
            enabled: true,
            min_rate: 1.0,
            max_rate: 1000.0,
            target_lag: 1000,
            critical_lag: 5000,
            factor: 1.5,
            window: Duration::from_secs(60),
            max_samples: 100,
            max_backoff_level: 5,
            recovery_checks: 10,
            moderate_delay: Duration::from_secs(1),
            critical_base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(16),
            burst_seconds: 0.1,
        }
    }
}

/// Throttle states, by the window's average lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThrottleState {
    /// Below target: no delay.
    #[default]
    Normal,
    /// Between target and critical.
    Moderate,
    /// At or above critical: exponential backoff.
    Critical,
}

impl ThrottleState {
    /// 0, 1, 2: the value of the state gauge.
    pub fn as_number(self) -> u8 {
        match self {
            ThrottleState::Normal => 0,
            ThrottleState::Moderate => 1,
            ThrottleState::Critical => 2,
        }
    }

    /// `normal`, `moderate` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleState::Normal => "normal",
            ThrottleState::Moderate => "moderate",
            ThrottleState::Critical => "critical",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The state after this check.
    pub state: ThrottleState,
    /// How long the sender waits before its next send.
    pub delay: Duration,
    /// The enforced send rate, records per second.
    pub rate: f64,
    /// The backoff level (0 outside `Critical` recoveries).
    pub backoff_level: u32,
    /// The lag window after this sample.
    pub window: WindowStats,
}

type Limiter = RateLimiter<
    NotKeyed,
    InMemoryState,
    TokioClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

#[derive(Debug)]
struct Controller {
    window: LagWindow,
    state: ThrottleState,
    rate: f64,
    backoff_level: u32,
    low_checks: u32,
    last: Option<Decision>,
    /// Rate changes since start.
    adjustments: u64,
}

/// One throttle: a controller and the token bucket that enforces its rate.
#[derive(Debug)]
pub struct Throttle {
    settings: RwLock<ThrottleSettings>,
    /// `settings.enabled`, read without a lock on every `acquire`.
    enabled: AtomicBool,
    scope: String,
    controller: Mutex<Controller>,
    limiter: Mutex<Bucket>,
    /// The consumer groups of the last lag reading, with their lag.
    groups: Mutex<BTreeMap<String, i64>>,
    /// The last reading's failure (with its causes), until a reading succeeds.
    probe_error: Mutex<Option<String>>,
}

/// At most this many groups get a `throttle_group_lag{group}` series (the first by
/// name); `throttle_watched_groups` and health count and name them all.
pub const MAX_GROUP_SERIES: usize = 20;

/// The token bucket at one rate, with the clock it was built on.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: u32,
    clock: TokioClock,
    limiter: Arc<Limiter>,
}

impl Bucket {
    fn new(rate: f64, burst_seconds: f64) -> Self {
        // Paced between one record per 1,000 s and one per nanosecond (a period of 0 ns
        // has no quota), whatever the caller asks.
        let period =
            Duration::from_secs_f64(1.0 / rate.clamp(1e-3, 1e9)).max(Duration::from_nanos(1));
        let burst = (rate * burst_seconds)
            .floor()
            .clamp(1.0, f64::from(u32::MAX)) as u32;
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let clock = TokioClock::default();
        Self {
            rate,
            burst,
            clock,
            limiter: Arc::new(RateLimiter::direct_with_clock(quota, clock)),
        }
    }
}

impl Throttle {
    /// A throttle at `max_rate` in `Normal`. `scope` labels its metrics (`global` or a
    /// source id).
    pub fn new(settings: ThrottleSettings, scope: impl Into<String>) -> Self {
        let rate = settings.max_rate;
        let limiter = Bucket::new(rate, settings.burst_seconds);
        let t = Self {
            controller: Mutex::new(Controller {
                window: LagWindow::new(settings.window, settings.max_samples),
                state: ThrottleState::Normal,
                rate,
                backoff_level: 0,
                low_checks: 0,
                last: None,
                adjustments: 0,
            }),
            limiter: Mutex::new(limiter),
            groups: Mutex::new(BTreeMap::new()),
            probe_error: Mutex::new(None),
            scope: scope.into(),
            enabled: AtomicBool::new(settings.enabled),
            settings: RwLock::new(settings),
        };
        t.publish(&t.snapshot(), 0);
        metrics::gauge!(m::WATCHED_GROUPS, "scope" => t.scope.clone()).set(0.0);
        t
    }

    /// The settings in force.
    pub fn settings(&self) -> ThrottleSettings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies new settings to the running throttle, keeping its state, backoff level
    /// and lag samples (the window is re-cut to its new width and size at the next
    /// sample). The rate stays where the controller had it, within the new bounds; a
    /// throttle running at its old `max_rate` (unthrottled) moves to the new one.
    pub fn reconfigure(&self, next: ThrottleSettings) {
        let mut c = self.controller.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(
            &mut *self.settings.write().unwrap_or_else(|e| e.into_inner()),
            next.clone(),
        );
        self.enabled.store(next.enabled, Ordering::Relaxed);
        if old.window != next.window || old.max_samples != next.max_samples {
            c.window.resize(next.window, next.max_samples);
        }
        let before = c.rate;
        c.rate = if before >= old.max_rate {
            next.max_rate
        } else {
            before.clamp(next.min_rate.min(next.max_rate), next.max_rate)
        };
        c.backoff_level = c.backoff_level.min(next.max_backoff_level.max(1));
        if c.rate != before {
            c.adjustments += 1;
        }
        let (rate, level) = (c.rate, c.backoff_level);
        if let Some(last) = c.last.as_mut() {
            last.rate = rate;
            last.backoff_level = level;
        }
        let adjustments = c.adjustments;
        *self.limiter.lock().unwrap_or_else(|e| e.into_inner()) =
            Bucket::new(c.rate, next.burst_seconds);
        drop(c);
        self.publish(&self.snapshot(), adjustments);
    }

    /// Reads the probe and records its total lag; the reading's groups become the
    /// watched groups ([`Throttle::watched_groups`]). A probe failure changes nothing
    /// but [`Throttle::probe_error`].
    pub async fn check(&self, probe: &dyn LagProbe) -> Result<Decision, Error> {
        self.check_with(probe, |lag| lag.total).await
    }

    /// [`Throttle::check`], recording what `pick` takes from a reading (e.g. the lag no
    /// per-source throttle claims) instead of its total.
    pub async fn check_with(
        &self,
        probe: &dyn LagProbe,
        pick: impl FnOnce(&Lag) -> i64,
    ) -> Result<Decision, Error> {
        let lag = match probe.lag().await {
            Ok(lag) => lag,
            Err(e) => {
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(": ");
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                *self.probe_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
                return Err(e);
            }
        };
        *self.probe_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.set_groups(&lag.by_group);
        Ok(self.record(pick(&lag)))
    }

    /// The last lag reading's failure with its causes, until a reading succeeds.
    pub fn probe_error(&self) -> Option<String> {
        self.probe_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The consumer groups of the last lag reading, by name, with their lag.
    pub fn watched_groups(&self) -> BTreeMap<String, i64> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Keeps `groups` and publishes `throttle_watched_groups` and, for the first
    /// [`MAX_GROUP_SERIES`] by name, `throttle_group_lag{group}`; a group that left the
    /// reading has its series set to 0.
    fn set_groups(&self, groups: &BTreeMap<String, i64>) {
        let mut held = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let scope = &self.scope;
        for gone in held
            .keys()
            .take(MAX_GROUP_SERIES)
            .filter(|g| !groups.contains_key(*g))
        {
            metrics::gauge!(m::GROUP_LAG, "scope" => scope.clone(), "group" => gone.clone())
                .set(0.0);
        }
        for (group, lag) in groups.iter().take(MAX_GROUP_SERIES) {
            metrics::gauge!(m::GROUP_LAG, "scope" => scope.clone(), "group" => group.clone())
                .set(*lag as f64);
        }
        metrics::gauge!(m::WATCHED_GROUPS, "scope" => scope.clone()).set(groups.len() as f64);
        held.clone_from(groups);
    }

    /// Records a lag sample taken now and decides.
    pub fn record(&self, lag: i64) -> Decision {
        self.record_at(Instant::now(), lag)
    }

    /// Records a lag sample taken at `now` and decides.
    pub fn record_at(&self, now: Instant, lag: i64) -> Decision {
        let s = &self.settings();
        let mut c = self.controller.lock().unwrap_or_else(|e| e.into_inner());
        c.window.push(now, lag);
        let window = c.window.stats();
        if !s.enabled {
            let d = Decision {
                state: ThrottleState::Normal,
                delay: Duration::ZERO,
                rate: s.max_rate,
                backoff_level: 0,
                window,
            };
            c.last = Some(d);
            let adjustments = c.adjustments;
            drop(c);
            self.publish(&d, adjustments);
            return d;
        }
        let before = c.rate;
        let delay;
        if window.avg < s.target_lag as f64 {
            c.state = ThrottleState::Normal;
            delay = Duration::ZERO;
            c.low_checks += 1;
            if c.low_checks >= s.recovery_checks {
                c.low_checks = 0;
                c.backoff_level = c.backoff_level.saturating_sub(1);
                c.rate = (c.rate * s.factor).min(s.max_rate);
            }
        } else if window.avg < s.critical_lag as f64 {
            c.state = ThrottleState::Moderate;
            c.low_checks = 0;
            delay = s.moderate_delay;
            c.rate = (c.rate / s.factor).max(s.min_rate);
        } else {
            c.state = ThrottleState::Critical;
            c.low_checks = 0;
            c.backoff_level = (c.backoff_level + 1).min(s.max_backoff_level.max(1));
            let doublings = c.backoff_level.saturating_sub(1).min(30);
            delay = s
                .critical_base_delay
                .saturating_mul(1 << doublings)
                .min(s.max_delay);
            c.rate = (c.rate / (s.factor * s.factor)).max(s.min_rate);
        }
        let d = Decision {
            state: c.state,
            delay,
            rate: c.rate,
            backoff_level: c.backoff_level,
            window,
        };
        c.last = Some(d);
        if d.rate != before {
            c.adjustments += 1;
        }
        let adjustments = c.adjustments;
        drop(c);
        if d.rate > before {
            metrics::counter!(m::RATE_INCREASES, "scope" => self.scope.clone()).increment(1);
        } else if d.rate < before {
            metrics::counter!(m::RATE_DECREASES, "scope" => self.scope.clone()).increment(1);
        }
        if d.state != ThrottleState::Normal {
            metrics::counter!(m::THROTTLES, "scope" => self.scope.clone()).increment(1);
        }
        if d.rate != before {
            let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
            *l = Bucket::new(d.rate, s.burst_seconds);
        }
        self.publish(&d, adjustments);
        d
    }

    /// The last decision (or the initial state).
    pub fn snapshot(&self) -> Decision {
        let c = self.controller.lock().unwrap_or_else(|e| e.into_inner());
        c.last.unwrap_or(Decision {
            state: c.state,
            delay: Duration::ZERO,
            rate: c.rate,
            backoff_level: c.backoff_level,
            window: c.window.stats(),
        })
    }

    /// How many times the rate changed since start (the seed's `rate_adjustments`).
    pub fn rate_adjustments(&self) -> u64 {
        self.controller
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .adjustments
    }

    /// The rate enforced now, records per second.
    pub fn rate(&self) -> f64 {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner()).rate
    }

    /// Waits until the token bucket permits sending, and returns how many of `wanted`
    /// records may go now (at least 1 when `wanted > 0`, at most the bucket's burst).
    pub async fn acquire(&self, wanted: usize) -> usize {
        if wanted == 0 {
            return 0;
        }
        if !self.enabled.load(Ordering::Relaxed) {
            return wanted;
        }
        loop {
            let bucket = self
                .limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let n = wanted.min(bucket.burst as usize).max(1);
            let n32 = NonZeroU32::new(n as u32).unwrap_or(NonZeroU32::MIN);
            match bucket.limiter.check_n(n32) {
                Ok(Ok(())) => return n,
                Ok(Err(not_until)) => {
                    use governor::clock::Clock as _;
                    let wait = not_until.wait_time_from(bucket.clock.now());
                    tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
                }
                // `n` never exceeds the burst of the bucket it was checked against.
                Err(_) => tokio::task::yield_now().await,
            }
        }
    }

    /// `adjustments`: the rate changes so far, read under the lock the decision took.
    fn publish(&self, d: &Decision, adjustments: u64) {
        let scope = self.scope.clone();
        metrics::gauge!(m::STATE, "scope" => scope.clone()).set(f64::from(d.state.as_number()));
        metrics::gauge!(m::BACKOFF_LEVEL, "scope" => scope.clone()).set(f64::from(d.backoff_level));
        metrics::gauge!(m::RATE, "scope" => scope.clone()).set(d.rate);
        metrics::gauge!(m::LAG_AVG, "scope" => scope.clone()).set(d.window.avg);
        metrics::gauge!(m::LAG_P95, "scope" => scope.clone()).set(d.window.p95 as f64);
        metrics::gauge!(m::SEED_RATE_ADJUSTMENTS, "scope" => scope).set(adjustments as f64);
    }
}

/// A global throttle plus one per key (source id), created on first use with the same
/// settings.
#[derive(Debug)]
pub struct ThrottleGroup {
    global: Arc<Throttle>,
    settings: Mutex<ThrottleSettings>,
    by_key: Mutex<HashMap<String, Arc<Throttle>>>,
}

impl ThrottleGroup {
    /// A group whose throttles all use `settings`.
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            global: Arc::new(Throttle::new(settings.clone(), "global")),
            settings: Mutex::new(settings),
            by_key: Mutex::new(HashMap::new()),
        }
    }

    /// The global throttle.
    pub fn global(&self) -> &Arc<Throttle> {
        &self.global
    }

    /// The throttle of `key`, created on first use.
    pub fn for_key(&self, key: &str) -> Arc<Throttle> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.to_owned())
            .or_insert_with(|| {
                let settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
                Arc::new(Throttle::new(settings.clone(), key))
            })
            .clone()
    }

    /// Applies new settings to the global throttle and every keyed one (see
    /// [`Throttle::reconfigure`]); throttles created later use them too.
    pub fn reconfigure(&self, next: ThrottleSettings) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = next.clone();
        self.global.reconfigure(next.clone());
        let keyed: Vec<Arc<Throttle>> = self
            .by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for t in keyed {
            t.reconfigure(next.clone());
        }
    }

    /// The throttle of `key`, if it was created.
    pub fn get(&self, key: &str) -> Option<Arc<Throttle>> {
        self.by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Every keyed throttle's last decision, by key.
    pub fn snapshot(&self) -> Vec<(String, Decision)> {
        let map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = map.iter().map(|(k, t)| (k.clone(), t.snapshot())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
