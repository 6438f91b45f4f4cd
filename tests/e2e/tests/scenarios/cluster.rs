//! Scenario: several workers share the sources through Kafka's group protocol (issue
//! #16). Three `stream-server` workers with one config (cluster mode, PostgreSQL fetch
//! state) poll eight HTTP sources of an upstream that logs who asked (`X-Worker`, from
//! each worker's `${WORKER}`). Checked from that log: in the steady state each source
//! is polled by one worker, and no source is polled by two workers at once for longer
//! than a stale worker takes to see the newer claim before its next fetch; after `kill -9`
//! of a worker its sources resume on the others within the session timeout + 5 s; a
//! fourth worker that joins takes sources over. Checked from Kafka: every id the
//! upstream answered arrived (0 lost); duplicates are counted and reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Json;
use e2e::{consume, header, json, serve, Config, Scene, Server, Storage};
use serde_json::json;

const SOURCES: usize = 8;
/// Each feed answers its newest `WINDOW` ids; its head moves one id every 200 ms, far
/// less than a window during any handover.
const WINDOW: u64 = 100;
const SESSION_TIMEOUT_MS: u64 = 6000;
const TOPIC: &str = "e2e-cluster";

#[derive(Default)]
struct Upstream {
    started: Option<Instant>,
    heads: Mutex<HashMap<String, u64>>,
    /// Every request: (source, worker, ms since the start).
    log: Mutex<Vec<(String, String, u64)>>,
    served: Mutex<BTreeSet<String>>,
}

async fn feed(
    State(up): State<Arc<Upstream>>,
    Path(source): Path<String>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let at = up.started.expect("set").elapsed().as_millis() as u64;
    let worker = headers
        .get("x-worker")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    up.log.lock().unwrap().push((source.clone(), worker, at));
    let head = *up.heads.lock().unwrap().get(&source).unwrap_or(&0);
    let ids: Vec<String> = (head.saturating_sub(WINDOW) + 1..=head)
        .map(|i| format!("{source}-{i}"))
        .collect();
    up.served.lock().unwrap().extend(ids.iter().cloned());
    let items: Vec<_> = ids.iter().map(|id| json!({ "id": id })).collect();
    Json(json!({ "items": items }))
}

/// How long a worker counts as polling a source after one of its requests: two poll
/// intervals (0.3 s) — a longer gap means it had stopped.
const ACTIVE_MS: u64 = 600;

/// For each source: the milliseconds during which two or more workers were polling it
/// (each worker active from a request until `ACTIVE_MS` after it), in total and the
/// longest unbroken stretch.
fn double_polling(log: &[(String, String, u64)]) -> BTreeMap<String, (u64, u64)> {
    let mut active: BTreeMap<String, BTreeMap<u64, BTreeSet<String>>> = BTreeMap::new();
    for (source, worker, at) in log {
        let buckets = active.entry(source.clone()).or_default();
        for b in (at / 10)..((at + ACTIVE_MS) / 10) {
            buckets.entry(b).or_default().insert(worker.clone());
        }
    }
    active
        .into_iter()
        .map(|(source, buckets)| {
            let (mut total, mut longest, mut run, mut prev) = (0, 0, 0, None::<u64>);
            for (b, w) in &buckets {
                if w.len() > 1 {
                    total += 10;
                    run = if prev == Some(b - 1) { run + 10 } else { 10 };
                    longest = longest.max(run);
                    prev = Some(*b);
                }
            }
            (source, (total, longest))
        })
        .collect()
}

/// Each source's workers in `log`: worker → number of requests.
fn spans(log: &[(String, String, u64)]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (source, worker, _) in log {
        *out.entry(source.clone())
            .or_default()
            .entry(worker.clone())
            .or_default() += 1;
    }
    out
}

/// For each source that changed workers in `log`, the longest time between the old
/// worker's last request and the new one's first (ms).
fn handover_gaps(log: &[(String, String, u64)]) -> BTreeMap<String, u64> {
    let mut by_source: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for (source, worker, at) in log {
        by_source.entry(source).or_default().push((worker, *at));
    }
    let mut out = BTreeMap::new();
    for (source, mut polls) in by_source {
        polls.sort_by_key(|p| p.1);
        for pair in polls.windows(2) {
            if pair[0].0 != pair[1].0 {
                let gap = out.entry(source.to_owned()).or_insert(0);
                *gap = (*gap).max(pair[1].1 - pair[0].1);
            }
        }
    }
    out
}

/// Waits (up to the session timeout + 20 s) until each of `sources` is polled by a
/// worker other than `gone` after `since` (ms since the start); the delay of each.
async fn resumed_elsewhere(
    up: &Upstream,
    sources: &[String],
    gone: &str,
    since: u64,
) -> BTreeMap<String, u64> {
    let deadline =
        Instant::now() + Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(20);
    let mut out = BTreeMap::new();
    while out.len() < sources.len() && Instant::now() < deadline {
        for (source, worker, at) in up.log.lock().unwrap().iter() {
            if *at > since && worker != gone && sources.contains(source) {
                out.entry(source.clone()).or_insert(at - since);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    out
}

fn now_ms(up: &Upstream) -> u64 {
    up.started.expect("set").elapsed().as_millis() as u64
}

/// Waits (up to 60 s) until the workers `live` run every source once between them, each
/// at least `min_each`, with the same assignment seen three times half a second apart
/// (a rebalance on tansu takes seconds: one snapshot can fall between its rounds).
async fn await_balanced(workers: &[Server], live: &[usize], min_each: usize) {
    let since = Instant::now();
    let mut stable = 0;
    let mut last = Vec::new();
    loop {
        let mut per_worker = Vec::new();
        for &i in live {
            let mut s = sources_of(&workers[i]).await;
            s.sort();
            per_worker.push(s);
        }
        let all: Vec<&String> = per_worker.iter().flatten().collect();
        let distinct: BTreeSet<_> = all.iter().collect();
        let balanced = all.len() == SOURCES
            && distinct.len() == SOURCES
            && per_worker.iter().all(|s| s.len() >= min_each);
        stable = if balanced && per_worker == last {
            stable + 1
        } else {
            0
        };
        if stable == 2 {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the sources never settled one per worker, at least {min_each} each: {per_worker:?}"
        );
        last = per_worker;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits (up to 60 s) until no live worker's slots have changed for `quiet`: no
/// rebalance round is under way. (A stall in the middle of a rebalance, between a
/// worker's JoinGroup and its SyncGroup, can leave tansu 0.6's group without a
/// reassignment of that worker's slots — seen once in CI; README, troubleshooting.)
async fn await_quiet_slots(workers: &[Server], live: &[usize], quiet: Duration) {
    let since = Instant::now();
    let mut last: Vec<Vec<u64>> = Vec::new();
    let mut unchanged_since = Instant::now();
    loop {
        let mut now = Vec::new();
        for &i in live {
            let (status, view) = workers[i].get("/cluster").await;
            assert_eq!(status, 200, "{view}");
            let mut slots: Vec<u64> = view["slots"]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
                .unwrap_or_default();
            slots.sort_unstable();
            now.push(slots);
        }
        if now != last {
            last = now;
            unchanged_since = Instant::now();
        } else if unchanged_since.elapsed() >= quiet {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the workers' slots never stayed unchanged for {quiet:?}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sources_of(server: &Server) -> Vec<String> {
    let (status, view) = server.get("/cluster").await;
    assert_eq!(status, 200, "{view}");
    view["sources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Fetch state and reports in the shared PostgreSQL store (each worker's DLQ too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_sources_through_postgres() {
    let scene = Scene::new("cluster_postgres");
    let db = e2e::fresh_database("e2e_cluster").await;
    run(scene, db).await;
}

/// Nothing but Kafka: fetch state and reports in the compacted state topic, each
/// worker's DLQ in its own SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_sources_through_kafka_only() {
    let scene = Scene::new("cluster_kafka");
    let db = format!("sqlite://{}/dlq-${{WORKER}}.db", scene.dir().display());
    run(scene, db).await;
}

async fn run(scene: Scene, db: String) {
    let tansu = scene.tansu(Storage::Sqlite).await;
    e2e::index_tansu_headers(&tansu).await;
    let up = Arc::new(Upstream {
        started: Some(Instant::now()),
        ..Upstream::default()
    });
    let addr = serve(
        axum::Router::new()
            .route("/feed/{source}", get(feed))
            .with_state(up.clone()),
    )
    .await;
    let ticker = {
        let up = up.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut heads = up.heads.lock().unwrap();
                for i in 0..SOURCES {
                    *heads.entry(format!("s{i}")).or_default() += 1;
                }
            }
        })
    };
    let mut config = Config::new(&tansu.bootstrap(), &db).with(json!({
        "topics": { TOPIC: { "partitions": 2 } },
        "routing": { "fallback_topic": TOPIC },
        "cluster": {
            "enabled": true,
            "group_id": "e2e-workers",
            "slots": 16,
            "worker_id": "${WORKER}",
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "handover_timeout_seconds": 5,
        },
    }));
    for i in 0..SOURCES {
        config = config.source(
            &format!("s{i}"),
            json!({
                "source_type": "http_json",
                "rate_limit_per_minute": 6000,
                "ingestion": { "mode": "real_time", "polling_interval_seconds": 0.3 },
                "custom_params": {
                    "url": format!("http://{addr}/feed/s{i}"),
                    "headers": { "X-Worker": "${WORKER}" },
                    "decoder": { "type": "json", "pointer": "/items" },
                    "dedup": { "keys": ["/id"] },
                },
            }),
        );
    }
    let mut workers = Vec::new();
    for w in ["w1", "w2", "w3"] {
        workers.push(Server::start_named(&scene, w, &config, &[("WORKER", w)]).await);
    }
    // Steady state: every source runs on exactly one worker, and the sources are spread
    // (every worker runs some).
    let settled = Instant::now();
    await_balanced(&workers, &[0, 1, 2], 1).await;
    println!(
        "cluster: 3 workers settled in {:.1} s",
        settled.elapsed().as_secs_f64()
    );
    let steady_from = now_ms(&up);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, view) = workers[0].get("/cluster").await;
    assert_eq!(status, 200);
    assert_eq!(
        view["members"].as_array().map(Vec::len),
        Some(3),
        "the group view shows every worker: {view}"
    );

    // kill -9 the worker with the most sources.
    let mut counts = Vec::new();
    for w in &workers {
        counts.push(sources_of(w).await);
    }
    let victim = (0..3).max_by_key(|i| counts[*i].len()).expect("three");
    let moved: Vec<String> = counts[victim].clone();
    assert!(!moved.is_empty(), "the victim runs sources");
    let killed_at = now_ms(&up);
    workers[victim].kill();
    let victim_id = format!("w{}", victim + 1);
    let handover_ms = resumed_elsewhere(&up, &moved, &victim_id, killed_at).await;
    println!(
        "cluster: kill -9 of {victim_id} ({moved:?}): resumed elsewhere after {handover_ms:?} ms"
    );
    assert_eq!(
        handover_ms.len(),
        moved.len(),
        "every source of the killed worker resumed"
    );
    let worst = handover_ms.values().copied().max().unwrap_or(0);
    // Issue #16 asks for the session timeout + 5 s. tansu 0.6's coordinator adds a fixed
    // 3 s pause to every follower's JoinGroup (`join_follower_pause`, PAUSE_MS in
    // tansu-broker's coordinator/group/administrator.rs), so on tansu the bound is the
    // session timeout + 3 s + 5 s.
    assert!(
        worst <= SESSION_TIMEOUT_MS + 8000,
        "handover took {worst} ms, more than the session timeout + tansu's 3 s + 5 s"
    );

    // A fourth worker joins and takes sources over.
    // The rebalance after the kill settles before w4 joins.
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    await_balanced(&workers, &survivors, 1).await;
    let join_from = now_ms(&up);
    let joined = Instant::now();
    workers.push(Server::start_named(&scene, "w4", &config, &[("WORKER", "w4")]).await);
    loop {
        let n = sources_of(&workers[3]).await.len();
        if n > 0 {
            break;
        }
        assert!(
            joined.elapsed() < Duration::from_secs(40),
            "the fourth worker never got a source:\n{}",
            workers[3].log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!(
        "cluster: w4 ran sources {:.1} s after it started",
        joined.elapsed().as_secs_f64()
    );
    let mut live = survivors.clone();
    live.push(3);
    await_balanced(&workers, &live, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The stall below comes while the group is at rest: tansu pauses a follower's
    // JoinGroup for 3 s, so 5 s without a change means no round is under way.
    await_quiet_slots(&workers, &live, Duration::from_secs(5)).await;

    // A worker stalled past its session timeout (SIGSTOP), then woken (SIGCONT): its
    // sources move on meanwhile; once awake it stops them (the group tells it its
    // membership is lost, or it sees the newer claim before a fetch, or the fence refuses
    // a commit) and writes no state.
    let mut most = (live[0], Vec::new());
    for &i in &live {
        let s = sources_of(&workers[i]).await;
        if s.len() > most.1.len() {
            most = (i, s);
        }
    }
    let (zombie, stalled) = most;
    let zombie_id = format!("w{}", zombie + 1);
    // What the worker's log says it did, counted before the stall and after the wake:
    // (sources stopped by a lost membership or the fence, commits the fence refused).
    let stops_and_refusals = |w: &Server| {
        let text = w.log_tail(1_000_000);
        (
            text.matches("lost=true").count() + text.matches("another worker owns it now").count(),
            text.matches("fetch state claimed by another worker")
                .count(),
        )
    };
    let before_stall = stops_and_refusals(&workers[zombie]);
    let stopped_at = now_ms(&up);
    workers[zombie].signal("STOP");
    let stall_handover = resumed_elsewhere(&up, &stalled, &zombie_id, stopped_at).await;
    println!("cluster: SIGSTOP of {zombie_id} ({stalled:?}): resumed elsewhere after {stall_handover:?} ms");
    assert_eq!(
        stall_handover.len(),
        stalled.len(),
        "every source of the stalled worker resumed"
    );
    let woke_at = now_ms(&up);
    workers[zombie].signal("CONT");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let zombie_polls: Vec<(String, u64)> = up
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, w, at)| *w == zombie_id && *at > woke_at && stalled.contains(s))
        .map(|(s, _, at)| (s.clone(), at - woke_at))
        .collect();
    let after_wake = stops_and_refusals(&workers[zombie]);
    let refused = after_wake.1 - before_stall.1;
    println!(
        "cluster: after SIGCONT {zombie_id} polled its old sources {} times (at ms {:?}); commits refused by the fence: {refused}",
        zombie_polls.len(),
        zombie_polls.iter().map(|p| p.1).collect::<Vec<_>>()
    );
    assert!(
        after_wake.0 > before_stall.0,
        "the woken worker stopped its sources itself (a lost membership or the fence):\n{}",
        workers[zombie].log_tail(40)
    );
    ticker.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, w) in workers.iter_mut().enumerate() {
        if i != victim {
            assert_eq!(w.sigterm(Duration::from_secs(60)).await, Some(0));
        }
    }

    let log = up.log.lock().unwrap().clone();
    let between = |from: u64, to: u64| -> Vec<(String, String, u64)> {
        log.iter()
            .filter(|(_, _, at)| *at >= from && *at < to)
            .cloned()
            .collect()
    };
    // Steady state: each source polled by exactly one worker.
    let steady = spans(&between(steady_from, killed_at));
    let shared: Vec<_> = steady.iter().filter(|(_, w)| w.len() != 1).collect();
    assert_eq!(
        steady.len(),
        SOURCES,
        "every source polled in the steady state"
    );
    assert!(
        shared.is_empty(),
        "steady state, polled by more than one worker: {shared:?}"
    );
    // A worker joins: sources move to it; the gap and any double polling are measured.
    let join = between(join_from, stopped_at);
    let join_double: u64 = double_polling(&join).values().map(|d| d.0).sum();
    let gaps = handover_gaps(&join);
    println!("cluster: join of w4: double polling {join_double} ms in all; sources moved with gaps (ms) {gaps:?}");
    assert!(!gaps.is_empty(), "w4's join moved sources");
    let double = double_polling(&log);
    let longest = double.values().map(|d| d.1).max().unwrap_or(0);
    println!("cluster: per source, ms polled by two workers at once (total, longest stretch): {double:?}");
    // A handover revokes before it assigns. tansu 0.6's coordinator also hands a slot to a
    // second worker without revoking it from the first (ARCHITECTURE.md): then the first
    // sees the second's claim before its next fetch and stops — at most a poll in flight
    // later. No stretch of double polling may outlast that by much (the 600 ms a worker
    // counts as active after its last request included; 0.33–0.65 s measured, also with
    // both cores busy; up to 2.1 s when the first stopped only at its next commit).
    assert!(
        longest <= 1_500,
        "a source was polled by two workers for {longest} ms at a stretch: {double:?}"
    );
    let served = up.served.lock().unwrap().clone();
    let records = consume(
        &tansu.bootstrap(),
        &[TOPIC],
        served.len() + 10_000,
        Duration::from_secs(30),
    )
    .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in &records {
        assert!(header(c, "source_id").is_some_and(|s| s.starts_with('s')));
        *seen
            .entry(json(c)["id"].as_str().expect("id").to_owned())
            .or_default() += 1;
    }
    let missing: Vec<_> = served.iter().filter(|id| !seen.contains_key(*id)).collect();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "cluster: {} ids answered, {} records received, {} missing, {duplicates} duplicates, {} requests logged",
        served.len(),
        records.len(),
        missing.len(),
        log.len()
    );
    assert!(
        missing.is_empty(),
        "lost: {:?}",
        &missing[..missing.len().min(10)]
    );
}
