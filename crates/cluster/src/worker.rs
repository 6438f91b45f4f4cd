//! [`Worker`]: one member of the group on Kafka (`producer::GroupMember`), turning the
//! group's events into calls on its [`Workload`]: assigned slots → their sources claimed
//! and started, revoked → stopped and settled, fenced → stopped, and claimed back a
//! session timeout later while the slot is still this worker's; a report every 2 s.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use producer::{ClientConfig, GroupEvent, GroupMember, GroupSettings};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::{ClusterSettings, ClusterView, Coordinator, Directory, Error, MemberView};

/// How often a worker writes its report for the group view.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// What a worker's sources are claimed with.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The owner the fetch state is claimed for (this worker).
    pub worker_id: String,
    /// Where the workload reports a source whose commit the store refused because
    /// another worker claimed it since: the worker stops it.
    pub fenced: UnboundedSender<Arc<str>>,
}

/// The sources a call is about: those whose slot is one of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSet {
    slots: BTreeSet<u32>,
    of: u32,
}

impl SlotSet {
    /// The sources of `slots` among `of` slots.
    pub fn new(slots: impl IntoIterator<Item = u32>, of: u32) -> Self {
        Self {
            slots: slots.into_iter().collect(),
            of,
        }
    }

    /// True when `source_id`'s slot is one of the set.
    pub fn contains(&self, source_id: &str) -> bool {
        self.slots.contains(&crate::slot_of(source_id, self.of))
    }
}

/// How many fetches of stopped sources are still unsettled (polled until 0).
pub type Unsettled = Box<dyn Fn() -> usize + Send + Sync>;

/// A worker's health and progress, for its report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The process is healthy.
    pub healthy: bool,
    /// Records delivered so far.
    pub records_processed: u64,
}

/// The program running the sources, as the worker drives it.
#[async_trait]
pub trait Workload: Send + Sync {
    /// Claims the fetch state (as `claim.worker_id`) of every source waiting for a slot
    /// in `mine`, and starts it; a source whose claim fails stays waiting.
    async fn start(&self, mine: &SlotSet, claim: &Claim);
    /// Stops every running source in `gone` (each waits for a slot again),
    /// each within `grace`; returns what is still to settle of them.
    async fn stop(&self, gone: &SlotSet, grace: Duration) -> Unsettled;
    /// Stops `source_id` if it runs (another worker claimed it): true if it ran.
    async fn stop_fenced(&self, source_id: &str) -> bool;
    /// The sources running here.
    async fn running(&self) -> Vec<String>;
    /// This worker's health and progress.
    async fn status(&self) -> WorkerStatus;
}

/// A worker's part in the group, on Kafka's group coordinator.
pub struct Worker {
    state: Arc<State>,
}

struct State {
    settings: ClusterSettings,
    client: ClientConfig,
    directory: Arc<dyn Directory>,
    slots: Mutex<BTreeSet<u32>>,
    member: Mutex<Option<GroupMember>>,
    task: Mutex<Option<JoinHandle<()>>>,
    workload: Mutex<Option<Arc<dyn Workload>>>,
    /// Sources stopped because the fence refused their commits, and when: if their slot
    /// is still this worker's a session timeout later, the claimer was the stale one.
    fenced_at: Mutex<HashMap<String, Instant>>,
    claim: Claim,
    fenced_rx: Mutex<Option<UnboundedReceiver<Arc<str>>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.state.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Worker {
    /// A worker with `settings` that joins the group through `client` (bootstrap servers
    /// and security) and keeps its reports in `directory`.
    pub fn new(
        settings: ClusterSettings,
        client: ClientConfig,
        directory: Arc<dyn Directory>,
    ) -> Self {
        let (fenced, fenced_rx) = unbounded_channel();
        let state = State {
            claim: Claim {
                worker_id: settings.worker_id.clone(),
                fenced,
            },
            settings,
            client,
            directory,
            slots: Mutex::new(BTreeSet::new()),
            member: Mutex::new(None),
            task: Mutex::new(None),
            workload: Mutex::new(None),
            fenced_at: Mutex::new(HashMap::new()),
            fenced_rx: Mutex::new(Some(fenced_rx)),
        };
        Self {
            state: Arc::new(state),
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.state.settings
    }

    /// The slots this worker owns now.
    pub fn slots(&self) -> Vec<u32> {
        self.state.slots()
    }

    /// Drives `workload` from a membership's `events` (what [`Coordinator::join`] does
    /// with the group it joins; a program with a membership of its own, or a test, may
    /// call this instead). Fails if the worker already follows a membership.
    pub fn follow_events(
        &self,
        workload: Arc<dyn Workload>,
        events: UnboundedReceiver<GroupEvent>,
    ) -> Result<(), Error> {
        let fenced = lock(&self.state.fenced_rx)
            .take()
            .ok_or(Error::AlreadyJoined)?;
        self.follow(workload, events, fenced);
        Ok(())
    }

    fn follow(
        &self,
        workload: Arc<dyn Workload>,
        mut events: UnboundedReceiver<GroupEvent>,
        mut fenced: UnboundedReceiver<Arc<str>>,
    ) {
        *lock(&self.state.workload) = Some(workload);
        let this = self.state.clone();
        let task = tokio::spawn(async move {
            let mut report = tokio::time::interval(REPORT_EVERY);
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        None => return,
                        Some(GroupEvent::Assigned(slots)) => this.take_slots(&slots).await,
                        Some(GroupEvent::Revoked { slots, lost, done }) => {
                            this.release_slots(&slots, lost).await;
                            let _ = done.send(());
                        }
                    },
                    Some(id) = fenced.recv() => this.release_fenced(&id).await,
                    _ = report.tick() => {
                        this.retake_fenced().await;
                        this.report().await;
                    }
                }
            }
        });
        *lock(&self.state.task) = Some(task);
    }
}

impl State {
    fn slots(&self) -> Vec<u32> {
        lock(&self.slots).iter().copied().collect()
    }

    fn workload(&self) -> Option<Arc<dyn Workload>> {
        lock(&self.workload).clone()
    }

    /// Has the workload claim and start the sources of `slots`.
    async fn take_slots(&self, slots: &[u32]) {
        lock(&self.slots).extend(slots.iter().copied());
        let Some(workload) = self.workload() else {
            return;
        };
        let mine = SlotSet::new(slots.iter().copied(), self.settings.slots);
        workload.start(&mine, &self.claim).await;
    }

    /// Has the workload stop the sources of `slots`, and waits (up to the handover
    /// timeout) until every record they emitted has settled and their cursors are
    /// committed.
    async fn release_slots(&self, slots: &[u32], lost: bool) {
        {
            let mut own = lock(&self.slots);
            for s in slots {
                own.remove(s);
            }
        }
        let Some(workload) = self.workload() else {
            return;
        };
        let timeout = self.settings.handover_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let gone = SlotSet::new(slots.iter().copied(), self.settings.slots);
        tracing::info!(worker = %self.settings.worker_id, ?slots, lost, "slots revoked: stopping their sources");
        let grace = (timeout / 3).min(Duration::from_secs(5));
        let unsettled = workload.stop(&gone, grace).await;
        while unsettled() > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(fetches = unsettled(), "handover timeout: fetches of revoked sources still unsettled; their cursors will not be committed by this worker (the next owner re-reads them)");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops a source whose fetch state another worker has claimed (the group gave its
    /// slot away without a revoke reaching this worker: a lost membership, or a
    /// coordinator that rebalanced without it). Its records in flight still settle.
    async fn release_fenced(&self, id: &str) {
        let Some(workload) = self.workload() else {
            return;
        };
        // Noted before the stop (up to 1 s): the session timeout counts from the fence.
        let at = Instant::now();
        if workload.stop_fenced(id).await {
            tracing::warn!(source = %id, "source stopped: another worker owns it now");
            lock(&self.fenced_at).insert(id.to_owned(), at);
        }
    }

    /// Claims again the fenced sources whose slots are still this worker's a session
    /// timeout after the fence: by then the group would have taken the slots away had
    /// this worker been the stale one, so the other claimer was (a coordinator that gave
    /// one slot to two workers, or a worker that missed its revoke). Without this such a
    /// source would run nowhere. If two workers really hold the slot, they fence each
    /// other at most once per session timeout.
    async fn retake_fenced(&self) {
        let timeout = self.settings.session_timeout;
        let due: Vec<u32> = {
            let mut fenced = lock(&self.fenced_at);
            let own = lock(&self.slots);
            fenced.retain(|id, _| own.contains(&self.settings.slot_of(id)));
            let due: Vec<String> = fenced
                .iter()
                .filter(|(_, at)| at.elapsed() >= timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &due {
                fenced.remove(id);
            }
            due.iter().map(|id| self.settings.slot_of(id)).collect()
        };
        if !due.is_empty() {
            tracing::warn!(worker = %self.settings.worker_id, slots = ?due, "fenced sources whose slots are still this worker's: claiming them again");
            self.take_slots(&due).await;
        }
    }

    async fn report(&self) {
        let Some(workload) = self.workload() else {
            return;
        };
        let sources = workload.running().await;
        let status = workload.status().await;
        let report = serde_json::json!({
            "slots": self.slots(),
            "sources": sources,
            "healthy": status.healthy,
            "records_processed": status.records_processed,
        });
        let (group, worker) = (&self.settings.group_id, &self.settings.worker_id);
        if let Err(e) = self
            .directory
            .report(group, worker, &report.to_string())
            .await
        {
            tracing::warn!(
                error = &*e as &dyn std::error::Error,
                "cannot write this worker's report to the shared store"
            );
        }
    }
}

#[async_trait]
impl Coordinator for Worker {
    fn worker_id(&self) -> &str {
        &self.state.settings.worker_id
    }

    fn join(&self, workload: Arc<dyn Workload>) -> Result<(), Error> {
        let me = &self.state;
        let fenced = lock(&me.fenced_rx).take().ok_or(Error::AlreadyJoined)?;
        let settings = GroupSettings {
            group_id: me.settings.group_id.clone(),
            topic: me.settings.coordination_topic.clone(),
            worker_id: me.settings.worker_id.clone(),
            session_timeout: me.settings.session_timeout,
            handover_timeout: me.settings.handover_timeout,
        };
        let (member, events) = GroupMember::join(&me.client, &settings).map_err(Error::Join)?;
        *lock(&me.member) = Some(member);
        tracing::info!(worker = %settings.worker_id, group = %settings.group_id, topic = %settings.topic, "joined the worker group");
        self.follow(workload, events, fenced);
        Ok(())
    }

    async fn source_added(&self, source_id: &str) {
        let me = &self.state;
        let slot = me.settings.slot_of(source_id);
        if lock(&me.slots).contains(&slot) {
            me.take_slots(&[slot]).await;
        }
    }

    fn stop_events(&self) {
        let me = &self.state;
        if let Some(t) = lock(&me.task).take() {
            t.abort();
        }
    }

    async fn leave(&self) {
        let me = &self.state;
        let member = lock(&me.member).take();
        if let Some(m) = member {
            let _ = tokio::task::spawn_blocking(move || m.leave()).await;
        }
    }

    async fn view(&self, running: Vec<String>) -> Result<ClusterView, Error> {
        let me = &self.state;
        let now = now_ms();
        let members = self
            .state
            .directory
            .members(&me.settings.group_id)
            .await
            .map_err(Error::Directory)?
            .into_iter()
            .map(|r| MemberView {
                worker_id: r.worker_id,
                last_seen_ms_ago: (now - r.seen_at).max(0),
                report: serde_json::from_str(&r.report).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        Ok(ClusterView {
            group_id: me.settings.group_id.clone(),
            worker_id: me.settings.worker_id.clone(),
            slots: me.slots(),
            sources: running,
            members,
        })
    }
}
