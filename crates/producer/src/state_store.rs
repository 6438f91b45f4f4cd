//! Fetch state on nothing but Kafka: [`crate::StateLog`] as a [`CursorStore`], for
//! workers sharing sources without PostgreSQL (moved here from `store`, which no longer
//! reaches librdkafka). A commit writes a delta of what changed, or a snapshot cut into
//! records of at most [`crate::STATE_CHUNK_BYTES`] ([`StateChains`] decides), so neither
//! the cost of a commit nor the size of a record grows with the dedup window.

use std::sync::Arc;

use async_trait::async_trait;
use stream_contracts::{
    fenced_message, Cursor, CursorStore, Lease, SourceError, SourceResult, StateChains, StateWrite,
    StoredState,
};

use crate::{Claimed, StateLog};

/// Sources' cursors in a compacted topic, fenced by log order.
#[derive(Debug, Clone)]
pub struct TopicStore {
    log: Arc<StateLog>,
    chains: Arc<StateChains>,
}

fn kafka(e: crate::Error) -> SourceError {
    SourceError::cursor(e)
}

impl TopicStore {
    /// Fetch state on `log`.
    pub fn new(log: Arc<StateLog>) -> Self {
        Self {
            log,
            // A delta is one record: escaped as JSON it may double.
            chains: Arc::new(StateChains::new(crate::STATE_CHUNK_BYTES / 2)),
        }
    }

    /// Writes under claim `epoch`; `false`: a newer claim is known, nothing written.
    async fn write(&self, source_id: &str, cursor: &Cursor, epoch: i64) -> SourceResult<bool> {
        self.chains
            .commit(source_id, cursor, |w| async move {
                match w {
                    StateWrite::Snapshot { gen, text } => {
                        self.log.write_snapshot(source_id, epoch, gen, &text).await
                    }
                    StateWrite::Delta { gen, seq, delta } => {
                        self.log
                            .write_delta(source_id, epoch, gen, seq, &delta)
                            .await
                    }
                }
            })
            .await
            .map_err(kafka)
    }
}

#[async_trait]
impl CursorStore for TopicStore {
    /// The state as of this worker's last write at least: a load right after a commit
    /// (a stream restarted) must not take an older state as the base of its deltas.
    async fn load(&self, source_id: &str) -> SourceResult<Option<Cursor>> {
        self.log.read_own_writes().await.map_err(kafka)?;
        let stored = self.log.state(source_id).map(|c| StoredState {
            gen: c.gen,
            snapshot: c.snapshot,
            deltas: c.deltas,
        });
        Ok(self.chains.loaded(source_id, stored).await)
    }

    /// Outside a claim: written under the newest claim, if any.
    async fn commit(&self, source_id: &str, cursor: &Cursor) -> SourceResult<()> {
        let epoch = self.log.owner(source_id).map_or(-1, |(e, _)| e);
        self.write(source_id, cursor, epoch).await.map(|_| ())
    }

    async fn claim(&self, source_id: &str, owner: &str) -> SourceResult<Lease> {
        match self.log.claim(source_id, owner).await.map_err(kafka)? {
            Claimed::Won { epoch, .. } => Ok(Lease {
                owner: owner.to_owned(),
                epoch,
            }),
            Claimed::Lost { owner: newer } => Err(SourceError::Fenced(format!(
                "`{source_id}` was claimed by `{newer}` right after this worker's claim"
            ))),
        }
    }

    async fn commit_leased(
        &self,
        source_id: &str,
        cursor: &Cursor,
        lease: &Lease,
    ) -> SourceResult<()> {
        if self.write(source_id, cursor, lease.epoch).await? {
            return Ok(());
        }
        let newest = self.log.owner(source_id).map(|(_, o)| o);
        Err(SourceError::Fenced(fenced_message(
            source_id,
            lease,
            newest.as_deref(),
        )))
    }

    /// From this worker's view of the log (claims arrive as fast as it consumes).
    async fn check_lease(&self, source_id: &str, lease: &Lease) -> SourceResult<()> {
        let newest = self.log.owner(source_id);
        lease.check(source_id, newest.as_ref().map(|(e, o)| (*e, o.as_str())))
    }

    /// Keys and payloads of the state records this worker sent.
    fn state_bytes_written(&self) -> u64 {
        self.log.state_bytes_written()
    }
}
