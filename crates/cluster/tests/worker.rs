//! A `Worker` driving a workload from group events, on tokio's paused clock (no Kafka:
//! the events come from the test, as `GroupMember` would send them): assigned slots
//! start their sources, a revoke stops them and waits for their records to settle (up to
//! the handover timeout), a fenced source stops and is claimed back a session timeout
//! later, not before, while its slot is still this worker's; reports build the view.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cluster::{
    slot_of, BoxError, Claim, ClusterSettings, Coordinator, Directory, Member, SlotSet, Unsettled,
    Worker, WorkerStatus, Workload,
};
use producer::{ClientConfig, GroupEvent};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// Sources by id (running or not), what happened to them, and the claim last given.
#[derive(Default)]
struct Fake {
    running: Mutex<BTreeMap<String, bool>>,
    log: Mutex<Vec<String>>,
    claim: Mutex<Option<Claim>>,
    unsettled: Arc<AtomicUsize>,
}

impl Fake {
    fn with(ids: &[&str]) -> Arc<Self> {
        let fake = Self::default();
        for id in ids {
            fake.running.lock().unwrap().insert((*id).to_owned(), false);
        }
        Arc::new(fake)
    }

    fn is_running(&self, id: &str) -> bool {
        self.running.lock().unwrap()[id]
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[async_trait]
impl Workload for Fake {
    async fn start(&self, mine: &SlotSet, claim: &Claim) {
        *self.claim.lock().unwrap() = Some(claim.clone());
        for (id, running) in self.running.lock().unwrap().iter_mut() {
            if !*running && mine.contains(id) {
                *running = true;
                self.log.lock().unwrap().push(format!("start {id}"));
            }
        }
    }

    async fn stop(&self, gone: &SlotSet, _grace: Duration) -> Unsettled {
        for (id, running) in self.running.lock().unwrap().iter_mut() {
            if *running && gone.contains(id) {
                *running = false;
                self.log.lock().unwrap().push(format!("stop {id}"));
            }
        }
        let unsettled = self.unsettled.clone();
        Box::new(move || unsettled.load(Ordering::SeqCst))
    }

    async fn stop_fenced(&self, id: &str) -> bool {
        let mut running = self.running.lock().unwrap();
        let was = running.get_mut(id).map(std::mem::take).unwrap_or(false);
        if was {
            self.log.lock().unwrap().push(format!("fenced {id}"));
        }
        was
    }

    async fn running(&self) -> Vec<String> {
        let running = self.running.lock().unwrap();
        running
            .iter()
            .filter(|(_, r)| **r)
            .map(|(id, _)| id.clone())
            .collect()
    }

    async fn status(&self) -> WorkerStatus {
        WorkerStatus {
            healthy: true,
            records_processed: 7,
        }
    }
}

/// Reports kept in memory.
#[derive(Debug, Default)]
struct Reports(Mutex<BTreeMap<String, String>>);

#[async_trait]
impl Directory for Reports {
    async fn report(&self, _group: &str, worker: &str, report: &str) -> Result<(), BoxError> {
        self.0.lock().unwrap().insert(worker.into(), report.into());
        Ok(())
    }

    async fn members(&self, _group: &str) -> Result<Vec<Member>, BoxError> {
        let reports = self.0.lock().unwrap();
        Ok(reports
            .iter()
            .map(|(w, r)| Member {
                worker_id: w.clone(),
                report: r.clone(),
                seen_at: 0,
            })
            .collect())
    }
}

/// Two source ids on different slots of 4, and a worker with 4 slots following events
/// sent on the returned channel.
fn worker(fake: &Arc<Fake>) -> (Worker, UnboundedSender<GroupEvent>) {
    let settings = ClusterSettings {
        worker_id: "w1".into(),
        slots: 4,
        ..ClusterSettings::new("g")
    };
    let worker = Worker::new(settings, ClientConfig::new(), Arc::new(Reports::default()));
    let (tx, rx) = unbounded_channel();
    worker.follow_events(fake.clone(), rx).expect("follows");
    (worker, tx)
}

/// Two ids whose slots (of 4) differ.
fn ids() -> (&'static str, &'static str) {
    let (a, b) = ("s0", "s1");
    assert_ne!(slot_of(a, 4), slot_of(b, 4), "the test needs two slots");
    (a, b)
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn assigned_slots_start_their_sources_and_a_revoke_waits_for_them_to_settle() {
    let (a, b) = ids();
    let fake = Fake::with(&[a, b]);
    let (worker, events) = worker(&fake);
    events
        .send(GroupEvent::Assigned(vec![slot_of(a, 4)]))
        .unwrap();
    settle().await;
    assert!(
        fake.is_running(a) && !fake.is_running(b),
        "only a's slot: {:?}",
        fake.log()
    );
    assert_eq!(worker.slots(), [slot_of(a, 4)]);
    let claim = fake.claim.lock().unwrap().clone().expect("claimed");
    assert_eq!(claim.worker_id, "w1");

    // A source added later whose slot is this worker's starts at once; one whose slot
    // is not stays waiting.
    fake.running.lock().unwrap().insert("late".into(), false);
    worker.source_added("late").await;
    assert_eq!(fake.is_running("late"), slot_of("late", 4) == slot_of(a, 4));

    // Revoked with two fetches unsettled: the group hears `done` only once they settle.
    fake.unsettled.store(2, Ordering::SeqCst);
    let (done, handed_over) = std::sync::mpsc::channel();
    events
        .send(GroupEvent::Revoked {
            slots: vec![slot_of(a, 4)],
            lost: false,
            done,
        })
        .unwrap();
    settle().await;
    assert!(!fake.is_running(a), "stopped on revoke");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        handed_over.try_recv().is_err(),
        "not before its records settle"
    );
    fake.unsettled.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    handed_over.try_recv().expect("handed over once settled");
    assert!(worker.slots().is_empty());

    // Never settling: handed over at the handover timeout (10 s), not before.
    events
        .send(GroupEvent::Assigned(vec![slot_of(b, 4)]))
        .unwrap();
    settle().await;
    assert!(fake.is_running(b));
    fake.unsettled.store(1, Ordering::SeqCst);
    let (done, handed_over) = std::sync::mpsc::channel();
    let revoked = tokio::time::Instant::now();
    events
        .send(GroupEvent::Revoked {
            slots: vec![slot_of(b, 4)],
            lost: true,
            done,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(9_900)).await;
    assert!(
        handed_over.try_recv().is_err(),
        "not before the handover timeout"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    handed_over.try_recv().expect("handed over at the timeout");
    assert!(revoked.elapsed() >= Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_fenced_source_stops_and_is_claimed_back_a_session_timeout_later() {
    let (a, b) = ids();
    let fake = Fake::with(&[a, b]);
    let (worker, events) = worker(&fake);
    events
        .send(GroupEvent::Assigned(vec![slot_of(a, 4), slot_of(b, 4)]))
        .unwrap();
    settle().await;
    let claim = fake.claim.lock().unwrap().clone().expect("claimed");
    claim.fenced.send(Arc::from(a)).unwrap();
    settle().await;
    assert!(
        !fake.is_running(a) && fake.is_running(b),
        "{:?}",
        fake.log()
    );
    // The session timeout is 10 s: at 9.9 s it still waits.
    tokio::time::sleep(Duration::from_millis(9_900)).await;
    assert!(
        !fake.is_running(a),
        "not claimed back before the session timeout"
    );
    // Checked with each report (every 2 s): claimed back by the first after 10 s.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(fake.is_running(a), "claimed back: {:?}", fake.log());

    // Fenced again, then its slot revoked: never claimed back.
    claim.fenced.send(Arc::from(a)).unwrap();
    settle().await;
    let (done, _handed_over) = std::sync::mpsc::channel();
    events
        .send(GroupEvent::Revoked {
            slots: vec![slot_of(a, 4)],
            lost: false,
            done,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!fake.is_running(a), "its slot is gone: {:?}", fake.log());
    let starts = fake
        .log()
        .iter()
        .filter(|l| **l == format!("start {a}"))
        .count();
    assert_eq!(starts, 2, "{:?}", fake.log());

    // The reports (every 2 s) make the view.
    let view = worker.view(fake.running().await).await.expect("view");
    assert_eq!(view.worker_id, "w1");
    assert_eq!(view.slots, [slot_of(b, 4)]);
    assert_eq!(view.sources, [b]);
    assert_eq!(view.members.len(), 1);
    assert_eq!(view.members[0].report["sources"], serde_json::json!([b]));
    assert_eq!(view.members[0].report["records_processed"], 7);
}
