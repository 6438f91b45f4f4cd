//! Cluster mode as the manager takes part in it: the `cluster` crate's worker decides
//! which sources run here and calls back through [`cluster::Workload`], implemented
//! here on the streams (claim a source's fetch state and start it, stop it and hand back
//! what is still to settle, stop a fenced one), plus the façade's `join_cluster` and
//! `cluster_view`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use api_client::CursorTracker;
use async_trait::async_trait;
use cluster::{Claim, ClusterView, SlotSet, Unsettled, WorkerStatus};

use crate::streams::StreamStatus;
use crate::{Result, StreamManager};
use record_path::SourceCtx;

/// The manager's streams as a [`cluster::Workload`] (weak: the worker's task must not
/// keep the manager alive).
struct Streams(Weak<StreamManager>);

impl StreamManager {
    /// In cluster mode (`cluster.enabled`), joins the worker group: from then on the
    /// group decides which of this worker's sources run. Does nothing otherwise. Called
    /// once, after [`crate::Builder::start`]; [`StreamManager::shutdown`] leaves the group.
    pub fn join_cluster(self: &Arc<Self>) -> Result<()> {
        let Some(cluster) = self.cluster.clone() else {
            return Ok(());
        };
        cluster
            .join(Arc::new(Streams(Arc::downgrade(self))))
            .map_err(crate::component("worker group"))
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

    /// The worker group: this worker's slots and sources, and every member's last report.
    /// `None` outside cluster mode.
    pub async fn cluster_view(&self) -> Option<Result<ClusterView>> {
        let cluster = self.cluster.as_ref()?;
        let running = self.running_sources().await;
        Some(cluster.view(running).await.map_err(|e| match e {
            cluster::Error::Directory(e) => crate::Error::Store(e),
            e => crate::component("worker group")(e),
        }))
    }
}

#[async_trait]
impl cluster::Workload for Streams {
    async fn start(&self, mine: &SlotSet, claim: &Claim) {
        let Some(m) = self.0.upgrade() else { return };
        let mut streams = m.streams.lock().await;
        for (id, stream) in streams.iter_mut() {
            if stream.status != StreamStatus::Unassigned || !mine.contains(id) {
                continue;
            }
            // The claim comes before the load: a commit of the previous owner still in
            // progress finishes first, and the load sees it.
            let tracker = match CursorTracker::claim(id, &claim.worker_id, m.cursors.clone()).await
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
                fenced: Some(claim.fenced.clone()),
            });
            match m.launch(id, stream) {
                Ok(()) => {
                    tracing::info!(source = %id, worker = %claim.worker_id, "source started on this worker")
                }
                Err(e) => {
                    tracing::error!(source = %id, error = &e as &dyn std::error::Error, "cannot start an assigned source")
                }
            }
        }
    }

    async fn stop(&self, gone: &SlotSet, grace: Duration) -> Unsettled {
        let Some(m) = self.0.upgrade() else {
            return Box::new(|| 0);
        };
        let (stops, trackers): (Vec<_>, Vec<_>) = {
            let mut streams = m.streams.lock().await;
            streams
                .iter_mut()
                .filter(|(id, s)| s.status == StreamStatus::Running && gone.contains(id))
                .map(|(id, s)| {
                    s.status = StreamStatus::Unassigned;
                    tracing::info!(source = %id, "source stopped: its slot was revoked");
                    (s.take_handle(), s.ctx.tracker.clone())
                })
                .unzip()
        };
        let stopping: Vec<_> = stops
            .into_iter()
            .flatten()
            .map(|h| tokio::spawn(async move { h.stop(grace).await }))
            .collect();
        for s in stopping {
            let _ = s.await;
        }
        Box::new(move || trackers.iter().map(|t| t.unsettled()).sum())
    }

    async fn stop_fenced(&self, id: &str) -> bool {
        let Some(m) = self.0.upgrade() else {
            return false;
        };
        let handle = {
            let mut streams = m.streams.lock().await;
            match streams.get_mut(id) {
                Some(s) if s.status == StreamStatus::Running => {
                    s.status = StreamStatus::Unassigned;
                    s.take_handle()
                }
                _ => None,
            }
        };
        match handle {
            Some(h) => {
                h.stop(Duration::from_secs(1)).await;
                true
            }
            None => false,
        }
    }

    async fn running(&self) -> Vec<String> {
        match self.0.upgrade() {
            Some(m) => m.running_sources().await,
            None => Vec::new(),
        }
    }

    async fn status(&self) -> WorkerStatus {
        let Some(m) = self.0.upgrade() else {
            return WorkerStatus::default();
        };
        WorkerStatus {
            healthy: m.health().await.healthy,
            records_processed: m.get_metrics().await.records_processed(),
        }
    }
}
