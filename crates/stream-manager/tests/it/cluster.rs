//! One worker of a cluster on librdkafka's mock broker (fetch state in the state topic):
//! it runs the sources of the slots the group gives it, starts a source added by a
//! config update at once when its slot is its own, stops a source another worker has
//! claimed (the claim check before a fetch itself is tested in `ingestion-modes` and
//! `store`), and claims it back a session timeout later, not before, while the slot is
//! still its own.

use std::time::{Duration, Instant};

use producer::{Claimed, StateLog};
use rdkafka::config::ClientConfig;
use stream_manager::{StreamManager, StreamStatus};

use crate::{setup, start};

const YAML: &str = "
kafka: { linger_ms: 5 }
routing: { fallback_topic: all }
cluster: { enabled: true, group_id: g, slots: 4, worker_id: w1, session_timeout_ms: 6000 }
sources:
  s1:
    source_type: synthetic
    ingestion: { mode: real_time, polling_interval_seconds: 0.1 }
    custom_params: { records_per_second: 20 }
";

/// Waits (up to `within`) until `id` has `status`.
async fn until_status(m: &StreamManager, id: &str, status: StreamStatus, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = m.stream(id).await.expect("stream exists");
        if s.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became {status:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_its_slots_takes_new_sources_and_yields_to_a_newer_claim() {
    let (mock, cfg, _dir) = setup(YAML, &["all", "g.state"]);
    // The group's coordination topic: one partition per slot (the server creates both
    // topics with `prepare_kafka`).
    mock.create_topic("g.slots", 4, 1).expect("slots topic");
    let m = std::sync::Arc::new(start(cfg).await);
    assert_eq!(
        m.stream("s1").await.unwrap().status,
        StreamStatus::Unassigned,
        "nothing runs before the group assigns slots"
    );
    m.join_cluster().expect("joins the group");
    until_status(&m, "s1", StreamStatus::Running, Duration::from_secs(30)).await;

    // A source added by a config update: its slot is this worker's (the only one), so
    // it starts without waiting for a rebalance.
    let mut next = m.config().as_ref().clone();
    let mut s2 = next.sources["s1"].clone();
    s2.custom_params.insert("seed".into(), serde_json::json!(2));
    next.sources.insert("s2".into(), s2);
    m.apply_config(next).await.expect("update applies");
    until_status(&m, "s2", StreamStatus::Running, Duration::from_secs(10)).await;

    // Another worker claims s1 (as a worker the coordinator wrongly gave the slot too
    // would): this one stops it.
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", mock.bootstrap_servers());
    let other = StateLog::open(&client, "g.state").await.expect("state log");
    // No later than the fence's own note of when it stopped s1 (taken after s1 shows
    // Unassigned): an instant before the claim, then before each read still showing s1
    // running.
    let mut before_fence = Instant::now();
    let claimed_at = before_fence;
    match other.claim("s1", "w2").await.expect("claim") {
        Claimed::Won { .. } => {}
        Claimed::Lost { owner } => panic!("lost to {owner}"),
    }
    let polls = loop {
        let read_at = Instant::now();
        let s = m.stream("s1").await.unwrap();
        match s.status {
            StreamStatus::Unassigned => break s.polls,
            StreamStatus::Running => before_fence = read_at,
            _ => panic!("{s:?}"),
        }
        assert!(
            claimed_at.elapsed() < Duration::from_secs(10),
            "s1 never stopped: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The slot stays this worker's, so the other claimer was the stale one: a session
    // timeout after the fence this worker claims s1 again and runs it. Until then s1
    // stays as the fence left it. (A restarted stream counts its polls afresh: a claim
    // back before the session timeout shows here as a changed count or status.)
    let session_timeout = Duration::from_millis(6000);
    loop {
        let s = m.stream("s1").await.unwrap();
        if s.status == StreamStatus::Running {
            break;
        }
        assert_eq!(
            (s.status, s.polls),
            (StreamStatus::Unassigned, polls),
            "s1 is left alone until it is claimed back"
        );
        assert!(
            claimed_at.elapsed() < Duration::from_secs(30),
            "s1 never claimed back: {s:?}"
        );
        assert_eq!(m.stream("s2").await.unwrap().status, StreamStatus::Running);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Seen running again at least a session timeout after the fence (no margin: the
    // bound starts before the fence).
    let after = before_fence.elapsed();
    assert!(
        after >= session_timeout,
        "s1 was claimed back within {after:?} of the fence stopping it, before the {session_timeout:?} session timeout"
    );
    let (_, owner) = other.owner("s1").expect("a claim");
    assert_eq!(owner, "w1", "claimed back");
    let report = m.shutdown(Duration::from_secs(10)).await;
    assert!(
        m.stream("s1").await.unwrap().records_processed > 0,
        "{report:?}"
    );
}
