//! The state machine: scripted lag series, recovery, and bounds as properties.

use std::time::Duration;

use proptest::prelude::*;
use throttling::{StaticLagProbe, Throttle, ThrottleGroup, ThrottleSettings, ThrottleState};

fn settings() -> ThrottleSettings {
    ThrottleSettings {
        min_rate: 1.0,
        max_rate: 1000.0,
        target_lag: 1000,
        critical_lag: 5000,
        factor: 2.0,
        max_samples: 1, // the window is the latest sample: the script below is exact
        max_backoff_level: 5,
        recovery_checks: 2,
        ..ThrottleSettings::default()
    }
}

use ThrottleState::{Critical as C, Moderate as M, Normal as N};

#[tokio::test(start_paused = true)]
async fn scripted_lag_series_gives_exact_states_delays_and_rates() {
    let t = Throttle::new(settings(), "test");
    let script: &[(i64, ThrottleState, u64, f64, u32)] = &[
        // lag,  state, delay s, rate, backoff level
        (0, N, 0, 1000.0, 0),
        (2000, M, 1, 500.0, 0),
        (6000, C, 2, 125.0, 1),
        (9000, C, 4, 31.25, 2),
        (6000, C, 8, 7.8125, 3),
        (6000, C, 16, 1.953125, 4),
        (6000, C, 16, 1.0, 5), // delay capped at 16 s, rate floored at min
        (6000, C, 16, 1.0, 5), // level capped
        (-300, N, 0, 1.0, 5),  // stale watermark: counts as 0; first low check
        (0, N, 0, 2.0, 4),     // second low check: one recovery step
        (4000, M, 1, 1.0, 4),  // moderate resets the low-check count
        (0, N, 0, 1.0, 4),
        (0, N, 0, 2.0, 3),
    ];
    let mut changes = 0;
    let mut last_rate = t.rate();
    for (i, (lag, state, delay, rate, level)) in script.iter().enumerate() {
        tokio::time::advance(Duration::from_secs(1)).await;
        let d = t.record(*lag);
        if d.rate != last_rate {
            changes += 1;
            last_rate = d.rate;
        }
        assert_eq!(
            t.rate_adjustments(),
            changes,
            "step {i}: the seed's rate_adjustments counts every change"
        );
        assert_eq!(
            (d.state, d.delay, d.rate, d.backoff_level),
            (*state, Duration::from_secs(*delay), *rate, *level),
            "step {i}: lag {lag}"
        );
        assert_eq!(
            t.rate(),
            *rate,
            "step {i}: the enforced rate follows the decision"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn recovery_returns_to_max_send_rate() {
    let t = Throttle::new(settings(), "test");
    for _ in 0..6 {
        t.record(10_000);
    }
    assert_eq!(t.rate(), 1.0);
    let mut checks = 0;
    while t.rate() < 1000.0 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let d = t.record(0);
        assert_eq!(d.state, N);
        checks += 1;
        assert!(checks < 100, "rate never recovered: {}", t.rate());
    }
    // 1 → 1000 doubling takes 10 steps of 2 checks each.
    assert_eq!(checks, 20);
    assert_eq!(t.snapshot().backoff_level, 0);
    // And it stays there.
    for _ in 0..10 {
        assert_eq!(t.record(0).rate, 1000.0);
    }
}

#[tokio::test(start_paused = true)]
async fn decisions_use_the_window_average() {
    let t = Throttle::new(
        ThrottleSettings {
            max_samples: 100,
            window: Duration::from_secs(10),
            ..settings()
        },
        "w",
    );
    assert_eq!(t.record(0).state, N);
    tokio::time::advance(Duration::from_secs(1)).await;
    // avg(0, 3000) = 1500: moderate, not critical.
    assert_eq!(t.record(3000).state, M);
    tokio::time::advance(Duration::from_secs(1)).await;
    // avg(0, 3000, 12000) = 5000: critical.
    assert_eq!(t.record(12_000).state, C);
    // 20 s later the old samples are gone: avg = 0.
    tokio::time::advance(Duration::from_secs(20)).await;
    let d = t.record(0);
    assert_eq!((d.state, d.window.count), (N, 1));
}

#[tokio::test(start_paused = true)]
async fn probe_checks_feed_the_throttle() {
    let probe = StaticLagProbe::new(7000);
    let t = Throttle::new(settings(), "p");
    assert_eq!(t.check(&probe).await.unwrap().state, C);
    probe.set(0);
    assert_eq!(t.check(&probe).await.unwrap().state, N);
    let fill = throttling::QueueFillProbe::new(|| 2500);
    assert_eq!(t.check(&fill).await.unwrap().state, M);
}

#[tokio::test(start_paused = true)]
async fn disabled_throttle_never_slows_down() {
    let t = Throttle::new(
        ThrottleSettings {
            enabled: false,
            ..settings()
        },
        "off",
    );
    let d = t.record(1_000_000);
    assert_eq!((d.state, d.delay, d.rate), (N, Duration::ZERO, 1000.0));
    assert_eq!(t.acquire(5000).await, 5000);
}

#[test]
fn group_keeps_one_throttle_per_key() {
    let g = ThrottleGroup::new(settings());
    g.for_key("a").record(10_000);
    assert_eq!(g.for_key("a").snapshot().state, C);
    assert_eq!(g.for_key("b").snapshot().state, N);
    assert_eq!(g.global().snapshot().state, N);
    assert_eq!(g.snapshot().len(), 2);
}

fn any_settings() -> impl Strategy<Value = ThrottleSettings> {
    (
        0.5f64..100.0,
        1.0f64..10_000.0,
        1u64..10_000,
        1u64..10_000,
        1.01f64..4.0,
        1u32..8,
        1u32..5,
        1usize..50,
    )
        .prop_map(
            |(min, span, target, extra, factor, level, recovery, samples)| ThrottleSettings {
                min_rate: min,
                max_rate: min + span,
                target_lag: target,
                critical_lag: target + extra,
                factor,
                max_backoff_level: level,
                recovery_checks: recovery,
                max_samples: samples,
                ..ThrottleSettings::default()
            },
        )
}

proptest! {
    #[test]
    fn rate_stays_in_bounds_and_delay_under_the_cap(
        s in any_settings(),
        lags in prop::collection::vec(-1_000i64..50_000, 1..200),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let t = Throttle::new(s.clone(), "prop");
            for lag in lags {
                tokio::time::advance(Duration::from_millis(500)).await;
                let d = t.record(lag);
                prop_assert!(d.rate >= s.min_rate && d.rate <= s.max_rate, "rate {} out of [{}, {}]", d.rate, s.min_rate, s.max_rate);
                prop_assert!(d.delay <= s.max_delay);
                prop_assert!(d.backoff_level <= s.max_backoff_level);
                prop_assert!(d.window.avg >= 0.0);
            }
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn absurd_rates_are_paced_not_panicked_on() {
    let throttle = |max_rate: f64| {
        Throttle::new(
            ThrottleSettings {
                min_rate: max_rate.min(1.0),
                max_rate,
                burst_seconds: 1.0,
                ..settings()
            },
            "absurd",
        )
    };
    // Rates beyond a record per nanosecond: a whole batch at once, no time passes.
    for max_rate in [1e10, f64::MAX] {
        let t = throttle(max_rate);
        let start = tokio::time::Instant::now();
        assert_eq!(t.acquire(10).await, 10, "rate {max_rate}");
        assert_eq!(t.acquire(10).await, 10, "rate {max_rate}");
        assert_eq!(start.elapsed(), Duration::ZERO, "rate {max_rate}");
    }
    // A rate below one record per 1,000 s is paced at one per 1,000 s: the first record
    // goes at once, the next one waits for its token.
    let t = throttle(1e-9);
    let start = tokio::time::Instant::now();
    assert_eq!(t.acquire(10).await, 1, "a burst of one record");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(t.acquire(10).await, 1);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(999) && waited <= Duration::from_secs(1001),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn reconfigure_applies_new_bounds_and_targets_to_a_running_throttle() {
    let t = Throttle::new(settings(), "live");
    t.record(2000);
    assert_eq!((t.snapshot().state, t.rate()), (M, 500.0));
    // A higher target makes the same lag normal; the throttled rate stays put but
    // within the new bounds.
    t.reconfigure(ThrottleSettings {
        target_lag: 3000,
        critical_lag: 9000,
        min_rate: 600.0,
        max_rate: 2000.0,
        ..settings()
    });
    assert_eq!(t.rate(), 600.0, "clamped into the new bounds");
    assert_eq!(t.settings().target_lag, 3000);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(t.record(2000).state, N, "2,000 is below the new target");
    // An unthrottled throttle follows a raised ceiling at once.
    let u = Throttle::new(settings(), "free");
    u.reconfigure(ThrottleSettings {
        max_rate: 5000.0,
        ..settings()
    });
    assert_eq!(u.rate(), 5000.0);
    assert_eq!(u.acquire(10_000).await, 500, "burst follows the new rate");
    // Turning it off stops pacing at once.
    u.reconfigure(ThrottleSettings {
        enabled: false,
        ..settings()
    });
    assert_eq!(u.acquire(1_000_000).await, 1_000_000);
}

#[tokio::test(start_paused = true)]
async fn a_group_reconfigures_its_global_and_keyed_throttles_and_later_ones() {
    let g = ThrottleGroup::new(settings());
    let a = g.for_key("a");
    g.reconfigure(ThrottleSettings {
        max_rate: 10.0,
        ..settings()
    });
    assert_eq!(g.global().rate(), 10.0);
    assert_eq!(a.rate(), 10.0);
    assert_eq!(g.for_key("b").settings().max_rate, 10.0);
}
