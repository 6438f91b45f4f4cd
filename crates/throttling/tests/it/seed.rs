//! The seed's documented throttling with the default settings (issue #23): no delay
//! below the target lag, 1 s up to critical, 2 → 4 → 8 → 16 s beyond, recovery after
//! 10 low-lag checks; and the groups of a reading become the watched groups.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use throttling::{Lag, LagProbe, Throttle, ThrottleSettings, ThrottleState};

use ThrottleState::{Critical as C, Moderate as M, Normal as N};

/// The defaults, with a window of one sample so each check sees exactly its lag.
fn seed() -> ThrottleSettings {
    ThrottleSettings {
        max_samples: 1,
        ..ThrottleSettings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn the_seeds_states_and_delays_hold_with_the_default_settings() {
    let d = ThrottleSettings::default();
    assert_eq!(
        (d.target_lag, d.critical_lag),
        (1000, 5000),
        "seed thresholds"
    );
    assert_eq!(d.recovery_checks, 10);
    let t = Throttle::new(seed(), "seed");
    let script: &[(i64, ThrottleState, u64, u32)] = &[
        // lag, state, delay s, backoff level
        (999, N, 0, 0),
        (1000, M, 1, 0),
        (4999, M, 1, 0),
        (5000, C, 2, 1),
        (8000, C, 4, 2),
        (8000, C, 8, 3),
        (8000, C, 16, 4),
        (8000, C, 16, 5), // the seed's ladder ends at 16 s
        (8000, C, 16, 5),
    ];
    for (i, (lag, state, delay, level)) in script.iter().enumerate() {
        tokio::time::advance(Duration::from_secs(1)).await;
        let got = t.record(*lag);
        assert_eq!(
            (got.state, got.delay, got.backoff_level),
            (*state, Duration::from_secs(*delay), *level),
            "step {i}: lag {lag}"
        );
    }
    // Recovery: nine low checks change nothing but the state; the tenth raises the rate
    // (× 1.5) and lowers the backoff level.
    let floor = t.rate();
    for check in 1..=9 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let got = t.record(10);
        assert_eq!(
            (got.state, got.delay, got.rate, got.backoff_level),
            (N, Duration::ZERO, floor, 5),
            "low check {check}"
        );
    }
    tokio::time::advance(Duration::from_secs(1)).await;
    let got = t.record(10);
    assert_eq!((got.state, got.backoff_level), (N, 4));
    assert_eq!(got.rate, (floor * 1.5).min(1000.0), "tenth low check");
}

#[derive(Debug)]
struct Groups(BTreeMap<String, i64>);

#[async_trait]
impl LagProbe for Groups {
    async fn lag(&self) -> throttling::Result<Lag> {
        Ok(Lag {
            total: self.0.values().sum(),
            by_group: self.0.clone(),
            ..Lag::default()
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_readings_groups_are_the_watched_groups() {
    let t = Throttle::new(seed(), "groups");
    assert!(t.watched_groups().is_empty(), "none before a reading");
    let two = Groups(BTreeMap::from([
        ("a".to_owned(), 4000),
        ("b".to_owned(), 2000),
    ]));
    assert_eq!(t.check(&two).await.unwrap().state, C, "lags are summed");
    assert_eq!(t.watched_groups(), two.0);
    let one = Groups(BTreeMap::from([("b".to_owned(), 10)]));
    assert_eq!(t.check(&one).await.unwrap().state, N);
    assert_eq!(
        t.watched_groups().into_keys().collect::<Vec<_>>(),
        vec!["b".to_owned()],
        "a group missing from the reading is no longer watched"
    );
}

#[derive(Debug)]
struct Refused;

#[async_trait]
impl LagProbe for Refused {
    async fn lag(&self) -> throttling::Result<Lag> {
        Err(throttling::Error::ProbeUnavailable(
            "listing consumer groups failed: not supported".into(),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_reading_changes_nothing_but_is_kept_until_one_succeeds() {
    let t = Throttle::new(seed(), "failing");
    let one = Groups(BTreeMap::from([("a".to_owned(), 3000)]));
    assert_eq!(t.check(&one).await.unwrap().state, M);
    assert!(t.check(&Refused).await.is_err());
    assert_eq!(
        t.probe_error().as_deref(),
        Some("lag probe unavailable: listing consumer groups failed: not supported")
    );
    assert_eq!((t.snapshot().state, t.watched_groups()), (M, one.0.clone()));
    t.check(&one).await.unwrap();
    assert_eq!(t.probe_error(), None);
}
