//! Fetch state on nothing but Kafka: [`producer::StateLog`] as an
//! [`api_client::CursorStore`], for workers sharing sources without PostgreSQL.

use std::sync::Arc;

use api_client::{fenced_message, Cursor, CursorStore, Lease};
use async_trait::async_trait;
use producer::{Claimed, StateLog};

/// Sources' cursors in a compacted topic, fenced by log order.
#[derive(Debug, Clone)]
pub struct TopicStore(pub Arc<StateLog>);

fn kafka(e: producer::Error) -> api_client::Error {
    api_client::Error::cursor(e)
}

#[async_trait]
impl CursorStore for TopicStore {
    async fn load(&self, source_id: &str) -> api_client::Result<Option<Cursor>> {
        Ok(self.0.state(source_id).map(Cursor))
    }

    /// Outside a claim: written under the newest claim, if any.
    async fn commit(&self, source_id: &str, cursor: &Cursor) -> api_client::Result<()> {
        let epoch = self.0.owner(source_id).map_or(-1, |(e, _)| e);
        self.0
            .commit(source_id, epoch, &cursor.0)
            .await
            .map(|_| ())
            .map_err(kafka)
    }

    async fn claim(&self, source_id: &str, owner: &str) -> api_client::Result<Lease> {
        match self.0.claim(source_id, owner).await.map_err(kafka)? {
            Claimed::Won { epoch, .. } => Ok(Lease {
                owner: owner.to_owned(),
                epoch,
            }),
            Claimed::Lost { owner: newer } => Err(api_client::Error::Fenced(format!(
                "`{source_id}` was claimed by `{newer}` right after this worker's claim"
            ))),
        }
    }

    async fn commit_leased(
        &self,
        source_id: &str,
        cursor: &Cursor,
        lease: &Lease,
    ) -> api_client::Result<()> {
        if self
            .0
            .commit(source_id, lease.epoch, &cursor.0)
            .await
            .map_err(kafka)?
        {
            return Ok(());
        }
        let newest = self.0.owner(source_id).map(|(_, o)| o);
        Err(api_client::Error::Fenced(fenced_message(
            source_id,
            lease,
            newest.as_deref(),
        )))
    }

    /// From this worker's view of the log (claims arrive as fast as it consumes).
    async fn check_lease(&self, source_id: &str, lease: &Lease) -> api_client::Result<()> {
        let newest = self.0.owner(source_id);
        lease.check(source_id, newest.as_ref().map(|(e, o)| (*e, o.as_str())))
    }
}
