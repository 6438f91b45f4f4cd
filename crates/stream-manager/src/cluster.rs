//! Cluster mode: this process is one worker of a group sharing the sources. Kafka's group
//! coordinator assigns slots (partitions of the coordination topic, `producer::GroupMember`);
//! a source runs on the worker that owns its slot. On assign a worker claims each
//! source's fetch state (a lease in the shared store) and starts it; on revoke it stops
//! the sources, waits for their records to settle (cursors committed) and only then lets
//! the group hand the slots on. Commits under a superseded lease are refused by the store,
//! so a worker that lost its membership cannot overwrite its successor's state.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_client::CursorTracker;
use producer::{GroupEvent, GroupMember, GroupSettings};
use serde::Serialize;
use stream_config::ClusterConfig;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::pipeline::SourceCtx;
use crate::streams::StreamStatus;
use crate::{component, Result, StreamManager};

/// How often a worker writes its report for the group view.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// A worker's part in the group.
pub(crate) struct Cluster {
    pub(crate) settings: ClusterConfig,
    pub(crate) worker_id: String,
    pub(crate) directory: Directory,
    slots: Mutex<BTreeSet<u32>>,
    member: Mutex<Option<GroupMember>>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Sources stopped because the fence refused their commits, and when: if their slot
    /// is still this worker's a session timeout later, the claimer was the stale one.
    fenced_at: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Sources whose commits the fence refused: claimed by another worker.
    fenced_tx: UnboundedSender<Arc<str>>,
    fenced_rx: Mutex<Option<UnboundedReceiver<Arc<str>>>>,
}

impl Cluster {
    pub(crate) fn new(settings: ClusterConfig, directory: Directory) -> Self {
        let worker_id = if settings.worker_id.is_empty() {
            format!("worker-{}", std::process::id())
        } else {
            settings.worker_id.clone()
        };
        let (fenced_tx, fenced_rx) = unbounded_channel();
        Self {
            settings,
            worker_id,
            directory,
            slots: Mutex::new(BTreeSet::new()),
            member: Mutex::new(None),
            task: Mutex::new(None),
            fenced_at: Mutex::new(std::collections::HashMap::new()),
            fenced_tx,
            fenced_rx: Mutex::new(Some(fenced_rx)),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeSet<u32>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn owns(&self, slot: u32) -> bool {
        self.slots().contains(&slot)
    }

    /// Stops handling group events (first step of a shutdown: a revoke arriving later
    /// finds nobody listening and returns at once).
    pub(crate) fn stop_events(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }

    /// Leaves the group (last step of a shutdown, after the records have settled).
    pub(crate) async fn leave(&self) {
        let member = self.member.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(m) = member {
            let _ = tokio::task::spawn_blocking(move || m.leave()).await;
        }
    }
}

/// Where the workers' reports are kept: the shared SQL store, or the state topic.
#[derive(Debug, Clone)]
pub(crate) enum Directory {
    Sql(Arc<store::SqlStore>),
    Topic(Arc<producer::StateLog>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Directory {
    async fn report(&self, group: &str, worker: &str, report: &str) -> Result<(), BoxError> {
        match self {
            Directory::Sql(s) => Ok(s.report_member(group, worker, report).await?),
            Directory::Topic(t) => Ok(t
                .report(group, worker, report, crate::pipeline::now_ms())
                .await?),
        }
    }

    async fn members(&self, group: &str) -> Result<Vec<store::MemberRow>, BoxError> {
        match self {
            Directory::Sql(s) => Ok(s.members(group).await?),
            Directory::Topic(t) => Ok(t
                .members(group)
                .into_iter()
                .map(|(worker_id, report, seen_at)| store::MemberRow {
                    worker_id,
                    report,
                    seen_at,
                })
                .collect()),
        }
    }
}

/// One worker as the group view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Its id.
    pub worker_id: String,
    /// Milliseconds since its last report (a worker reports every 2 s while alive).
    pub last_seen_ms_ago: i64,
    /// What it reported: its slots, the sources it runs, its health.
    pub report: serde_json::Value,
}

/// The whole group, as this worker sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// The consumer group.
    pub group_id: String,
    /// This worker.
    pub worker_id: String,
    /// Slots assigned to this worker.
    pub slots: Vec<u32>,
    /// Sources this worker runs.
    pub sources: Vec<String>,
    /// Every worker that has reported, this one included (from the shared store).
    pub members: Vec<MemberView>,
}

impl StreamManager {
    /// In cluster mode (`cluster.enabled`), joins the worker group: from then on the
    /// group decides which of this worker's sources run. Does nothing otherwise. Called
    /// once, after [`crate::Builder::start`]; [`StreamManager::shutdown`] leaves the group.
    pub fn join_cluster(self: &Arc<Self>) -> Result<()> {
        let Some(cluster) = self.cluster.clone() else {
            return Ok(());
        };
        let cfg = self.config();
        let settings = GroupSettings {
            group_id: cluster.settings.group_id.clone(),
            topic: cluster.settings.coordination_topic(),
            worker_id: cluster.worker_id.clone(),
            session_timeout: Duration::from_millis(cluster.settings.session_timeout_ms),
            handover_timeout: Duration::from_secs(cluster.settings.handover_timeout_seconds),
        };
        let (member, mut events) =
            GroupMember::join(&producer::client_config(&cfg.kafka), &settings)
                .map_err(component("worker group"))?;
        *cluster.member.lock().unwrap_or_else(|e| e.into_inner()) = Some(member);
        tracing::info!(worker = %cluster.worker_id, group = %settings.group_id, topic = %settings.topic, "joined the worker group");
        let mut fenced = cluster
            .fenced_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| crate::Error::Component {
                component: "worker group".into(),
                source: "join_cluster was called twice".into(),
            })?;
        let manager = self.clone();
        let task = tokio::spawn(async move {
            let mut report = tokio::time::interval(REPORT_EVERY);
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        None => return,
                        Some(GroupEvent::Assigned(slots)) => manager.take_slots(&slots).await,
                        Some(GroupEvent::Revoked { slots, lost, done }) => {
                            manager.release_slots(&slots, lost).await;
                            let _ = done.send(());
                        }
                    },
                    Some(id) = fenced.recv() => manager.release_fenced(&id).await,
                    _ = report.tick() => {
                        manager.retake_fenced().await;
                        manager.report_member().await;
                    }
                }
            }
        });
        *cluster.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(())
    }

    /// Claims and starts the sources of `slots`.
    pub(crate) async fn take_slots(&self, slots: &[u32]) {
        let Some(cluster) = &self.cluster else { return };
        cluster.slots().extend(slots.iter().copied());
        let mut streams = self.streams.lock().await;
        for (id, stream) in streams.iter_mut() {
            let slot = cluster.settings.slot_of(id);
            if stream.status != StreamStatus::Unassigned || !slots.contains(&slot) {
                continue;
            }
            // The claim comes before the load: a commit of the previous owner still in
            // progress finishes first, and the load sees it.
            let tracker = match CursorTracker::claim(id, &cluster.worker_id, self.cursors.clone())
                .await
            {
                Ok(t) => Arc::new(t),
                Err(e) => {
                    tracing::error!(source = %id, error = &e as &dyn std::error::Error, "cannot claim the source's fetch state; not starting it");
                    continue;
                }
            };
            let old = &stream.ctx;
            stream.ctx = Arc::new(SourceCtx {
                id: old.id.clone(),
                source_type: old.source_type.clone(),
                id_header: old.id_header.clone(),
                type_header: old.type_header.clone(),
                priority: old.priority,
                tracker,
                counters: old.counters.clone(),
                share: old.share.clone(),
                freshness: old.freshness.clone(),
                fenced: Some(cluster.fenced_tx.clone()),
            });
            match self.launch(id, stream) {
                Ok(()) => {
                    tracing::info!(source = %id, slot, worker = %cluster.worker_id, "source started on this worker")
                }
                Err(e) => {
                    tracing::error!(source = %id, error = &e as &dyn std::error::Error, "cannot start an assigned source")
                }
            }
        }
    }

    /// Stops the sources of `slots` and waits (up to the handover timeout) until every
    /// record they emitted has settled and their cursors are committed.
    async fn release_slots(&self, slots: &[u32], lost: bool) {
        let Some(cluster) = &self.cluster else { return };
        {
            let mut own = cluster.slots();
            for s in slots {
                own.remove(s);
            }
        }
        let timeout = Duration::from_secs(cluster.settings.handover_timeout_seconds);
        let deadline = tokio::time::Instant::now() + timeout;
        let (stops, trackers): (Vec<_>, Vec<_>) = {
            let mut streams = self.streams.lock().await;
            streams
                .iter_mut()
                .filter(|(id, s)| {
                    s.status == StreamStatus::Running
                        && slots.contains(&cluster.settings.slot_of(id))
                })
                .map(|(id, s)| {
                    s.status = StreamStatus::Unassigned;
                    tracing::info!(source = %id, worker = %cluster.worker_id, lost, "source stopped: its slot was revoked");
                    (s.take_handle(), s.ctx.tracker.clone())
                })
                .unzip()
        };
        let grace = (timeout / 3).min(Duration::from_secs(5));
        let stopping: Vec<_> = stops
            .into_iter()
            .flatten()
            .map(|h| tokio::spawn(async move { h.stop(grace).await }))
            .collect();
        for s in stopping {
            let _ = s.await;
        }
        while trackers.iter().any(|t| t.unsettled() > 0) {
            if tokio::time::Instant::now() >= deadline {
                let open: usize = trackers.iter().map(|t| t.unsettled()).sum();
                tracing::warn!(fetches = open, "handover timeout: fetches of revoked sources still unsettled; their cursors will not be committed by this worker (the next owner re-reads them)");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops a source whose fetch state another worker has claimed (the group gave its
    /// slot away without a revoke reaching this worker: a lost membership, or a
    /// coordinator that rebalanced without it). Its records in flight still settle.
    async fn release_fenced(&self, id: &str) {
        let handle = {
            let mut streams = self.streams.lock().await;
            match streams.get_mut(id) {
                Some(s) if s.status == StreamStatus::Running => {
                    s.status = StreamStatus::Unassigned;
                    s.take_handle()
                }
                _ => None,
            }
        };
        if let Some(h) = handle {
            tracing::warn!(source = %id, "source stopped: another worker owns it now");
            if let Some(c) = &self.cluster {
                c.fenced_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_owned(), std::time::Instant::now());
            }
            h.stop(Duration::from_secs(1)).await;
        }
    }

    /// Claims again the fenced sources whose slots are still this worker's a session
    /// timeout after the fence: by then the group would have taken the slots away had
    /// this worker been the stale one, so the other claimer was (a coordinator that gave
    /// one slot to two workers, or a worker that missed its revoke). Without this such a
    /// source would run nowhere. If two workers really hold the slot, they fence each
    /// other at most once per session timeout.
    async fn retake_fenced(&self) {
        let Some(cluster) = &self.cluster else { return };
        let timeout = Duration::from_millis(cluster.settings.session_timeout_ms);
        let due: Vec<u32> = {
            let mut fenced = cluster.fenced_at.lock().unwrap_or_else(|e| e.into_inner());
            let own = cluster.slots();
            fenced.retain(|id, _| own.contains(&cluster.settings.slot_of(id)));
            let due: Vec<String> = fenced
                .iter()
                .filter(|(_, at)| at.elapsed() >= timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &due {
                fenced.remove(id);
            }
            due.iter().map(|id| cluster.settings.slot_of(id)).collect()
        };
        if !due.is_empty() {
            tracing::warn!(worker = %cluster.worker_id, slots = ?due, "fenced sources whose slots are still this worker's: claiming them again");
            self.take_slots(&due).await;
        }
    }

    /// The sources this worker runs now.
    async fn running_sources(&self) -> Vec<String> {
        self.streams
            .lock()
            .await
            .iter()
            .filter(|(_, s)| s.status == StreamStatus::Running)
            .map(|(id, _)| id.clone())
            .collect()
    }

    async fn report_member(&self) {
        let Some(cluster) = &self.cluster else { return };
        let sources = self.running_sources().await;
        let health = self.health().await;
        let report = serde_json::json!({
            "slots": cluster.slots().iter().collect::<Vec<_>>(),
            "sources": sources,
            "healthy": health.healthy,
            "records_processed": self.get_metrics().await.records_processed(),
        });
        if let Err(e) = cluster
            .directory
            .report(
                &cluster.settings.group_id,
                &cluster.worker_id,
                &report.to_string(),
            )
            .await
        {
            tracing::warn!(
                error = &*e as &dyn std::error::Error,
                "cannot write this worker's report to the shared store"
            );
        }
    }

    /// The worker group: this worker's slots and sources, and every member's last report.
    /// `None` outside cluster mode.
    pub async fn cluster_view(&self) -> Option<Result<ClusterView>> {
        let cluster = self.cluster.as_ref()?;
        let sources = self.running_sources().await;
        let now = crate::pipeline::now_ms();
        let members = match cluster.directory.members(&cluster.settings.group_id).await {
            Ok(rows) => rows
                .into_iter()
                .map(|r| MemberView {
                    worker_id: r.worker_id,
                    last_seen_ms_ago: (now - r.seen_at).max(0),
                    report: serde_json::from_str(&r.report).unwrap_or(serde_json::Value::Null),
                })
                .collect(),
            Err(e) => return Some(Err(crate::Error::Store(e))),
        };
        Some(Ok(ClusterView {
            group_id: cluster.settings.group_id.clone(),
            worker_id: cluster.worker_id.clone(),
            slots: cluster.slots().iter().copied().collect(),
            sources,
            members,
        }))
    }
}
