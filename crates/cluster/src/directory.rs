//! Where the workers' reports are kept, for the group view: the shared SQL store
//! (`store::SqlStore`) or the state topic (`producer::StateLog`), or any other
//! [`Directory`].

use async_trait::async_trait;

use crate::BoxError;

/// A worker's last report, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The worker's id.
    pub worker_id: String,
    /// What it reported (JSON written by the worker).
    pub report: String,
    /// When, ms since the epoch.
    pub seen_at: i64,
}

/// Keeps each worker's last report.
#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Records `worker`'s `report` in `group`.
    async fn report(&self, group: &str, worker: &str, report: &str) -> Result<(), BoxError>;
    /// Every worker's last report in `group`.
    async fn members(&self, group: &str) -> Result<Vec<Member>, BoxError>;
}

#[async_trait]
impl Directory for store::SqlStore {
    async fn report(&self, group: &str, worker: &str, report: &str) -> Result<(), BoxError> {
        Ok(self.report_member(group, worker, report).await?)
    }

    async fn members(&self, group: &str) -> Result<Vec<Member>, BoxError> {
        Ok(store::SqlStore::members(self, group)
            .await?
            .into_iter()
            .map(|r| Member {
                worker_id: r.worker_id,
                report: r.report,
                seen_at: r.seen_at,
            })
            .collect())
    }
}

#[async_trait]
impl Directory for producer::StateLog {
    async fn report(&self, group: &str, worker: &str, report: &str) -> Result<(), BoxError> {
        Ok(
            producer::StateLog::report(self, group, worker, report, crate::worker::now_ms())
                .await?,
        )
    }

    async fn members(&self, group: &str) -> Result<Vec<Member>, BoxError> {
        Ok(producer::StateLog::members(self, group)
            .into_iter()
            .map(|(worker_id, report, seen_at)| Member {
                worker_id,
                report,
                seen_at,
            })
            .collect())
    }
}
