//! The rate is enforced: `acquire` paces sends with a token bucket on tokio's clock.

use std::time::Duration;

use throttling::{Throttle, ThrottleSettings};
use tokio::time::Instant;

fn settings(max_rate: f64) -> ThrottleSettings {
    ThrottleSettings {
        min_rate: 1.0,
        max_rate,
        factor: 2.0,
        max_samples: 1,
        ..ThrottleSettings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn acquire_paces_records_at_the_current_rate() {
    // 10 records/s, burst 0.1 s = 1 record: 50 single sends take 4.9 s.
    let t = Throttle::new(settings(10.0), "pace");
    let start = Instant::now();
    for _ in 0..50 {
        assert_eq!(t.acquire(1).await, 1);
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(4_850) && took <= Duration::from_millis(5_000),
        "50 records at 10/s took {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_permits_at_most_the_burst_per_call() {
    // 1000/s with a 0.1 s burst: 100 records per call, and 1000 records take ~0.9 s.
    let t = Throttle::new(settings(1000.0), "burst");
    let start = Instant::now();
    let mut sent = 0;
    while sent < 1000 {
        let n = t.acquire(500).await;
        assert!(n <= 100, "permitted {n}");
        sent += n;
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(850) && took <= Duration::from_millis(1_000),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn lower_rate_after_lag_slows_sends_down() {
    let t = Throttle::new(settings(100.0), "slow");
    t.record(1_000_000); // critical: 100 / 2² = 25 records/s
    assert_eq!(t.rate(), 25.0);
    let start = Instant::now();
    let mut sent = 0;
    while sent < 50 {
        sent += t.acquire(50).await;
    }
    let took = start.elapsed();
    // 50 records at 25/s, the first burst (2) free: ~1.9 s.
    assert!(
        took >= Duration::from_millis(1_800) && took <= Duration::from_millis(2_000),
        "{took:?}"
    );
}
