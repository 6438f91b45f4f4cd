//! Scenario 6: a watched consumer group stops consuming → its lag grows past the
//! thresholds → the throttle escalates (moderate, then critical backoff) and the send
//! rate drops; the consumer resumes → the state recovers and the rate returns to max.
//! Asserted on the states and rates the server publishes in `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{Config, Metrics, Scene, Server, Storage};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use test_support::poll_until;

const MAX_RATE: f64 = 2000.0;
const OFFERED: u64 = 800;

/// A member of `e2e-analytics` that consumes and auto-commits while `run` is set.
fn analytics_consumer(bootstrap: String, run: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "e2e-analytics")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .create()
        .expect("analytics consumer");
    consumer.subscribe(&["e2e-lag"]).expect("subscribe");
    while !stop.load(Ordering::Relaxed) {
        if run.load(Ordering::Relaxed) {
            let _ = consumer.poll(Duration::from_millis(100));
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn state(m: &Metrics) -> f64 {
    m.value("stream_throttle_state", &[("scope", "global")])
}

fn rate(m: &Metrics) -> f64 {
    m.value("stream_throttle_send_rate", &[("scope", "global")])
}

fn sent(m: &Metrics) -> f64 {
    m.value("stream_producer_sent_total", &[])
}

/// Records/s actually sent over `window`.
async fn measured_rate(server: &Server, window: Duration) -> f64 {
    let a = sent(&server.metrics().await);
    tokio::time::sleep(window).await;
    let b = sent(&server.metrics().await);
    (b - a) / window.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_throttling() {
    let scene = Scene::new("lag_throttling");
    // SQLite storage: its end offsets are right, so lag is right.
    let tansu = scene.tansu(Storage::Sqlite).await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "kafka": { "linger_ms": 10 },
            "throttling": {
                "max_send_rate": MAX_RATE,
                "min_send_rate": 5,
                // Moderate throttling halves the allowed rate at each check, so the lag
                // added after the target is crossed is a geometric series of about
                // 800 + 500 + 250 + … ≈ 1,800 records: with critical at 3,000 the lag
                // reached it only through measurement delay (peaks of 3,212 and 3,686
                // locally, below 3,000 in one CI run; 2,733 and 2,974 in two runs
                // against 2,500). 2,000 leaves a margin; the escalation asserted
                // below is unchanged.
                "target_consumer_lag": 1000,
                "critical_consumer_lag": 2000,
                "adjustment_factor": 2.0,
                "window_size_seconds": 3,
                "metric_sample_size": 10,
                "max_backoff_level": 2,
                "recovery_checks": 2,
                "consumer_groups": ["e2e-analytics"],
            },
            "queue_max_size": 200000,
            "queue_overflow_strategy": "block",
            "topics": { "e2e-lag": { "partitions": 1 } },
            "routing": { "fallback_topic": "e2e-lag" },
        }))
        .synthetic("gen", OFFERED, 9);
    let run = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (b, r, s) = (tansu.bootstrap(), run.clone(), stop.clone());
        std::thread::spawn(move || analytics_consumer(b, r, s))
    };
    let mut server = Server::start(&scene, &config).await;

    // Consumer keeping up: normal state at full rate.
    poll_until(Duration::from_secs(30), "normal at max rate", || async {
        let m = server.metrics().await;
        sent(&m) > 0.0 && state(&m) == 0.0 && rate(&m) == MAX_RATE
    })
    .await;
    let normal_sent = measured_rate(&server, Duration::from_secs(3)).await;

    // The consumer stops: lag grows; states escalate.
    run.store(false, Ordering::Relaxed);
    let paused_at = Instant::now();
    let mut states = vec![0.0];
    let mut lowest_rate = MAX_RATE;
    let mut max_lag: f64 = 0.0;
    while paused_at.elapsed() < Duration::from_secs(60) {
        let m = server.metrics().await;
        let s = state(&m);
        if states.last() != Some(&s) {
            states.push(s);
        }
        lowest_rate = lowest_rate.min(rate(&m));
        max_lag = max_lag.max(m.value("stream_throttle_lag_avg", &[("scope", "global")]));
        if s == 2.0 && m.value("stream_throttle_backoff_level", &[("scope", "global")]) >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let escalated_in = paused_at.elapsed();
    assert!(
        states.contains(&1.0) && states.contains(&2.0),
        "states seen while lag grew: {states:?}"
    );
    let i1 = states.iter().position(|s| *s == 1.0).unwrap();
    let i2 = states.iter().position(|s| *s == 2.0).unwrap();
    assert!(i1 < i2, "moderate came before critical: {states:?}");
    assert!(
        lowest_rate < MAX_RATE / 2.0,
        "the allowed rate dropped ({lowest_rate})"
    );
    let critical_sent = measured_rate(&server, Duration::from_secs(4)).await;
    assert!(
        critical_sent < normal_sent / 2.0,
        "sending slowed under critical lag: {critical_sent:.0}/s vs {normal_sent:.0}/s"
    );

    // The consumer resumes: lag falls, the state recovers, the rate returns to max.
    run.store(true, Ordering::Relaxed);
    let resumed_at = Instant::now();
    poll_until(
        Duration::from_secs(90),
        "recovered to normal at max rate",
        || async {
            let m = server.metrics().await;
            state(&m) == 0.0 && rate(&m) == MAX_RATE
        },
    )
    .await;
    let recovered_in = resumed_at.elapsed();
    let m = server.metrics().await;
    let increases = m.value(
        "stream_throttle_rate_increases_total",
        &[("scope", "global")],
    );
    assert!(increases >= 1.0, "the rate was raised back step by step");
    println!(
        "lag_throttling: states {states:?} within {escalated_in:?} of the pause (peak avg lag \
         {max_lag:.0}); allowed rate fell to {lowest_rate:.1}/s; sent {normal_sent:.0}/s normal \
         vs {critical_sent:.0}/s critical; recovered to {MAX_RATE}/s {recovered_in:?} after \
         the resume ({increases} increases)"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = consumer.join();
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));
}
