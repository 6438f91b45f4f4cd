//! Cost of one throttle decision (record a sample, update the window, decide).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use throttling::{Throttle, ThrottleSettings};

fn decision(c: &mut Criterion) {
    let t = Throttle::new(ThrottleSettings::default(), "bench");
    let mut lag = 0i64;
    c.bench_function("throttle_decision_100_samples", |b| {
        b.iter(|| {
            lag = (lag + 137) % 8000;
            std::hint::black_box(t.record(lag))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = decision
}
criterion_main!(benches);
