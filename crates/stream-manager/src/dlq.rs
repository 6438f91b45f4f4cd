//! The DLQ operations of the admin API: list, count, replay, discard. The manager keeps
//! the producer and the store to itself; callers see dead letters and counts.

use producer::{DeadLetter, DlqFilter, DlqStats, DlqStatus};

use crate::{Error, Result, StreamManager};

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayOutcome {
    /// Delivered and marked `replayed`.
    pub replayed: usize,
    /// Failed again (their rows keep their status, with the new error).
    pub failed: usize,
}

impl StreamManager {
    /// Dead letters matching `filter`, newest first.
    pub async fn dlq_list(
        &self,
        filter: &DlqFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self
            .shared
            .delivery
            .store()
            .list(filter, limit, offset)
            .await?)
    }

    /// One dead letter.
    pub async fn dlq_get(&self, id: i64) -> Result<Option<DeadLetter>> {
        Ok(self.shared.delivery.store().get(id).await?)
    }

    /// The DLQ's counts.
    pub async fn dlq_stats(&self) -> Result<DlqStats> {
        Ok(self.shared.delivery.dlq_stats().await?)
    }

    /// Sends row `id` again, to its topic or to `topic`.
    pub async fn dlq_replay_one(&self, id: i64, topic: Option<&str>) -> Result<ReplayOutcome> {
        let letter = self
            .dlq_get(id)
            .await?
            .ok_or(Error::UnknownDeadLetter(id))?;
        self.replay(&[letter], topic).await
    }

    /// Sends again up to `limit` rows matching `filter` (default status:
    /// `permanent_failure`, the rows no background retry will send).
    pub async fn dlq_replay(
        &self,
        filter: &DlqFilter,
        limit: i64,
        topic: Option<&str>,
    ) -> Result<ReplayOutcome> {
        let mut filter = filter.clone();
        filter.status.get_or_insert(DlqStatus::PermanentFailure);
        let rows = self.dlq_list(&filter, limit, 0).await?;
        self.replay(&rows, topic).await
    }

    /// Deletes the rows `purge` selects; returns how many.
    pub async fn dlq_purge(&self, purge: &producer::Purge) -> Result<u64> {
        Ok(self.shared.delivery.store().purge(purge).await?)
    }

    /// Marks row `id` discarded (kept for the record, never sent).
    pub async fn dlq_discard(&self, id: i64) -> Result<()> {
        match self
            .shared
            .delivery
            .store()
            .set_status(&[id], DlqStatus::Discarded)
            .await?
        {
            0 => Err(Error::UnknownDeadLetter(id)),
            _ => Ok(()),
        }
    }

    /// Rows that still fail their schema are not sent (`contracts.rs`).
    async fn replay(&self, letters: &[DeadLetter], topic: Option<&str>) -> Result<ReplayOutcome> {
        let d = &self.shared.delivery;
        let (letters, refused) = self.recheck_for_replay(letters, topic).await?;
        let (replayed, failed) =
            producer::replay(d.store().as_ref(), d.producer().as_ref(), &letters, topic).await?;
        Ok(ReplayOutcome {
            replayed,
            failed: failed + refused,
        })
    }
}
