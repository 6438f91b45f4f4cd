//! Scenario 12 (issue #23): lag throttling with no `consumer_groups` key. A consumer
//! group that the server was never told about starts reading the pipeline's topic and
//! committing → the server discovers it (ListGroups + OffsetFetch on tansu) within its
//! refresh interval and names it in `/metrics` and `/ready`; the group stops → its lag
//! passes the target, then critical → the throttle goes moderate, then critical with
//! the seed's backoff levels; the group catches up → normal again, and the rate is
//! raised once per 10 low-lag checks (the seed's recovery).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{Config, Metrics, Scene, Server, Storage};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use test_support::poll_until;

const GROUP: &str = "e2e-discovered";
const TOPIC: &str = "e2e-lag-discovery";
const MAX_RATE: f64 = 2000.0;
const OFFERED: u64 = 800;

/// A member of [`GROUP`] that consumes and auto-commits while `run` is set.
fn group_member(bootstrap: String, run: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", GROUP)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .create()
        .expect("group member");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    while !stop.load(Ordering::Relaxed) {
        if run.load(Ordering::Relaxed) {
            let _ = consumer.poll(Duration::from_millis(100));
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn global(m: &Metrics, name: &str) -> f64 {
    m.value(&format!("stream_throttle_{name}"), &[("scope", "global")])
}

fn group_lag(m: &Metrics) -> f64 {
    m.value(
        "stream_throttle_group_lag",
        &[("scope", "global"), ("group", GROUP)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_discovery() {
    let scene = Scene::new("lag_discovery");
    // SQLite storage: its end offsets are right, so lag is right.
    let tansu = scene.tansu(Storage::Sqlite).await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "kafka": { "linger_ms": 10 },
            // No `consumer_groups` key: the groups are discovered. The delays (1 s
            // moderate; 2, 4, 8, 16 s by backoff level) and the 10 low-lag checks per
            // recovery step are the seed's defaults; the thresholds and factor are
            // those of the `lag_throttling` scenario. A reading is reused for 5 s and
            // lag grows by ~4,000 records between readings here, so with a window of
            // 3 s the average jumped from 0 straight past critical (seen: states
            // [0, 2]); a 10-sample window (one check a second) raises the average by a
            // tenth of the jump per check, through moderate, then critical.
            "throttling": {
                "max_send_rate": MAX_RATE,
                "min_send_rate": 5,
                "target_consumer_lag": 1000,
                "critical_consumer_lag": 2000,
                "adjustment_factor": 2.0,
                "window_size_seconds": 10,
                "metric_sample_size": 10,
            },
            "queue_max_size": 200000,
            "queue_overflow_strategy": "block",
            "topics": { TOPIC: { "partitions": 1 } },
            "routing": { "fallback_topic": TOPIC },
        }))
        .synthetic("gen", OFFERED, 11);
    let mut server = Server::start(&scene, &config).await;
    poll_until(Duration::from_secs(30), "records flowing", || async {
        server
            .metrics()
            .await
            .value("stream_producer_sent_total", &[])
            > 0.0
    })
    .await;
    let (status, ready) = server.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["health"]["lag"]["mode"], "discovered", "{ready}");
    assert_eq!(
        server
            .metrics()
            .await
            .value("stream_throttle_watched_groups", &[("scope", "global")]),
        0.0,
        "no group reads the topic yet"
    );

    // A group the config does not name starts reading: discovered at the next listing.
    let run = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let member = {
        let (b, r, s) = (tansu.bootstrap(), run.clone(), stop.clone());
        std::thread::spawn(move || group_member(b, r, s))
    };
    let joined_at = Instant::now();
    poll_until(Duration::from_secs(60), "the group discovered", || async {
        global(&server.metrics().await, "watched_groups") == 1.0
    })
    .await;
    let discovered_in = joined_at.elapsed();
    let (_, ready) = server.get("/ready").await;
    let watched = &ready["health"]["lag"]["watched_groups"];
    assert!(watched.get(GROUP).is_some(), "{ready}");
    assert_eq!(
        watched.as_object().map(|o| o.len()),
        Some(1),
        "the one group with commits on our topic: {ready}"
    );
    poll_until(Duration::from_secs(30), "normal at max rate", || async {
        let m = server.metrics().await;
        global(&m, "state") == 0.0 && global(&m, "send_rate") == MAX_RATE
    })
    .await;

    // The group stops: its lag grows; the states escalate through the seed's levels.
    run.store(false, Ordering::Relaxed);
    let paused_at = Instant::now();
    let mut states = vec![0.0];
    let mut levels = vec![0.0];
    let mut peak_lag: f64 = 0.0;
    let mut moderate_at = None;
    let mut critical_at = None;
    while paused_at.elapsed() < Duration::from_secs(90) {
        let m = server.metrics().await;
        let (s, level) = (global(&m, "state"), global(&m, "backoff_level"));
        if states.last() != Some(&s) {
            states.push(s);
        }
        if levels.last() != Some(&level) {
            levels.push(level);
        }
        if s == 1.0 {
            moderate_at.get_or_insert_with(|| paused_at.elapsed());
        }
        if s == 2.0 {
            critical_at.get_or_insert_with(|| paused_at.elapsed());
        }
        peak_lag = peak_lag.max(group_lag(&m));
        if level >= 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let i1 = states.iter().position(|s| *s == 1.0);
    let i2 = states.iter().position(|s| *s == 2.0);
    assert!(
        matches!((i1, i2), (Some(a), Some(b)) if a < b),
        "moderate, then critical: {states:?}"
    );
    let at = |l: f64| levels.iter().position(|x| *x == l);
    assert!(
        matches!((at(1.0), at(2.0), at(3.0), at(4.0)), (Some(a), Some(b), Some(c), Some(d)) if a < b && b < c && c < d),
        "backoff levels 1 → 2 → 3 → 4 (delays 2 → 4 → 8 → 16 s): {levels:?}"
    );
    assert!(peak_lag >= 2000.0, "the group's own lag series: {peak_lag}");

    // The group resumes and catches up: normal again, then one rate step per 10 low
    // checks (checked every second).
    run.store(true, Ordering::Relaxed);
    let resumed_at = Instant::now();
    let increases = |m: &Metrics| {
        m.value(
            "stream_throttle_rate_increases_total",
            &[("scope", "global")],
        )
    };
    let before = increases(&server.metrics().await);
    poll_until(Duration::from_secs(60), "normal again", || async {
        global(&server.metrics().await, "state") == 0.0
    })
    .await;
    let normal_in = resumed_at.elapsed();
    let normal_at = Instant::now();
    // Critical checks may have raised it after the resume, until the window emptied.
    let peak_level = global(&server.metrics().await, "backoff_level");
    let mut steps = Vec::new();
    while steps.len() < 2 && normal_at.elapsed() < Duration::from_secs(60) {
        let m = server.metrics().await;
        let n = increases(&m) - before;
        if n as usize > steps.len() {
            steps.push(normal_at.elapsed());
        }
        assert_eq!(global(&m, "state"), 0.0, "stays normal while it recovers");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(steps.len(), 2, "two recovery steps within 60 s: {steps:?}");
    let between = steps[1] - steps[0];
    assert!(
        between >= Duration::from_secs(8) && between <= Duration::from_secs(14),
        "10 low checks at 1 s between steps: {between:?}"
    );
    let m = server.metrics().await;
    assert!(group_lag(&m) < 1000.0, "caught up: {}", group_lag(&m));
    assert_eq!(
        global(&m, "backoff_level"),
        peak_level - 2.0,
        "each recovery step lowers the backoff level"
    );
    println!(
        "lag_discovery: group discovered {discovered_in:?} after it joined; states \
         {states:?}, backoff levels {levels:?} (moderate at {moderate_at:?}, critical at \
         {critical_at:?} after the pause; peak group lag {peak_lag:.0}); normal \
         {normal_in:?} after the resume; recovery steps at {steps:?} after normal, backoff \
         level {peak_level} → {}",
        global(&m, "backoff_level")
    );
    stop.store(true, Ordering::Relaxed);
    let _ = member.join();
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));
}
