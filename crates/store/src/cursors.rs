//! Sources' fetch state in SQL, incrementally: a snapshot in `source_cursors` and the
//! deltas written since in `source_cursor_deltas` ([`stream_contracts::StateChains`] decides
//! which a commit writes), so a commit costs what changed. A snapshot replaces the
//! deltas in the same transaction; a load reads both in one. Commits under a claim are
//! fenced as before: the check and the write are one statement (SQLite) or one
//! transaction holding the claim's row (PostgreSQL).

use async_trait::async_trait;
use stream_contracts::{Cursor, CursorStore, Lease, StateWrite, StoredState};

use crate::sql::{now_ms, on_pool, Backend};
use crate::{Error, SqlStore};

const UPSERT: &str = "INSERT INTO source_cursors (source_id, cursor, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (source_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at";
/// SQLite: the upsert only while `$4` is the newest claim (one statement: writes are
/// serialized, so no claim lands between the check and the write).
const UPSERT_IF_CLAIMED: &str =
    "INSERT INTO source_cursors (source_id, cursor, updated_at) SELECT $1, $2, $3 \
     WHERE EXISTS (SELECT 1 FROM source_leases WHERE source_id = $1 AND epoch = $4) \
     ON CONFLICT (source_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at";
const APPEND: &str = "INSERT INTO source_cursor_deltas (source_id, seq, delta) VALUES ($1, $2, $3)";
const APPEND_IF_CLAIMED: &str =
    "INSERT INTO source_cursor_deltas (source_id, seq, delta) SELECT $1, $2, $3 \
     WHERE EXISTS (SELECT 1 FROM source_leases WHERE source_id = $1 AND epoch = $4)";
const DROP_DELTAS: &str = "DELETE FROM source_cursor_deltas WHERE source_id = $1";
const SNAPSHOT: &str = "SELECT cursor FROM source_cursors WHERE source_id = $1";
const DELTAS: &str = "SELECT delta FROM source_cursor_deltas WHERE source_id = $1 ORDER BY seq";

impl SqlStore {
    /// The committed fetch state of a source: its snapshot with every delta applied.
    pub async fn load_cursor(&self, source_id: &str) -> crate::Result<Option<String>> {
        let stored = self.load_stored(source_id).await.map_err(Error::Query)?;
        Ok(self.chains.loaded(source_id, stored).await.map(|c| c.0))
    }

    /// The snapshot and the deltas after it, read in one transaction.
    async fn load_stored(&self, source_id: &str) -> Result<Option<StoredState>, sqlx::Error> {
        // One reading of both, so no delta committed between the two queries is mixed
        // with a snapshot that does not have it.
        let postgres = matches!(self.backend, Backend::Postgres(_));
        let (snapshot, deltas): (Option<String>, Vec<String>) = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let s = sqlx::query_scalar(SNAPSHOT)
                .bind(source_id)
                .fetch_optional(&mut *tx)
                .await?;
            let d = sqlx::query_scalar(DELTAS)
                .bind(source_id)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            (s, d)
        });
        Ok(snapshot.map(|snapshot| StoredState {
            gen: 0,
            snapshot,
            deltas,
        }))
    }

    /// Commits a source's fetch state (a delta of what changed since this store's last
    /// write of it, or a snapshot).
    pub async fn commit_cursor(&self, source_id: &str, cursor: &str) -> crate::Result<()> {
        let cursor = Cursor(cursor.to_owned());
        self.chains
            .commit(source_id, &cursor, |w| self.write(source_id, w, None))
            .await
            .map(|_| ())
            .map_err(Error::Query)
    }

    /// Commits `cursor` if `lease` is still `source_id`'s newest claim. On PostgreSQL the
    /// claim's row is locked from the check to the write, so a claim waits for a commit
    /// in progress and the new owner's load sees it; SQLite runs the check and the write
    /// as one statement (its writes are serialized).
    pub async fn commit_cursor_leased(
        &self,
        source_id: &str,
        cursor: &str,
        lease: &Lease,
    ) -> stream_contracts::SourceResult<()> {
        let cursor = Cursor(cursor.to_owned());
        let written = self
            .chains
            .commit(source_id, &cursor, |w| {
                self.write(source_id, w, Some(lease.epoch))
            })
            .await
            .map_err(|e| stream_contracts::SourceError::cursor(Error::Query(e)))?;
        if written {
            return Ok(());
        }
        let owner = self.source_owner(source_id).await.ok().flatten();
        Err(stream_contracts::SourceError::Fenced(
            stream_contracts::fenced_message(source_id, lease, owner.as_deref()),
        ))
    }

    /// Writes one snapshot or delta; under claim `epoch` only while it is the newest
    /// (`Ok(false)`: refused, nothing written).
    async fn write(
        &self,
        source_id: &str,
        w: StateWrite,
        epoch: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        match &self.backend {
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let written = match &w {
                    StateWrite::Snapshot { text, .. } => {
                        let q = sqlx::query(epoch.map_or(UPSERT, |_| UPSERT_IF_CLAIMED))
                            .bind(source_id)
                            .bind(text)
                            .bind(now);
                        let q = match epoch {
                            Some(e) => q.bind(e),
                            None => q,
                        };
                        let written = q.execute(&mut *tx).await?.rows_affected() > 0;
                        if written {
                            sqlx::query(DROP_DELTAS)
                                .bind(source_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        written
                    }
                    StateWrite::Delta { seq, delta, .. } => {
                        let q = sqlx::query(epoch.map_or(APPEND, |_| APPEND_IF_CLAIMED))
                            .bind(source_id)
                            .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                            .bind(delta);
                        let q = match epoch {
                            Some(e) => q.bind(e),
                            None => q,
                        };
                        q.execute(&mut *tx).await?.rows_affected() > 0
                    }
                };
                tx.commit().await?;
                Ok(written)
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                if let Some(epoch) = epoch {
                    let newest: Option<i64> = sqlx::query_scalar(
                        "SELECT epoch FROM source_leases WHERE source_id = $1 FOR UPDATE",
                    )
                    .bind(source_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if newest != Some(epoch) {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                match &w {
                    StateWrite::Snapshot { text, .. } => {
                        sqlx::query(UPSERT)
                            .bind(source_id)
                            .bind(text)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(DROP_DELTAS)
                            .bind(source_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    StateWrite::Delta { seq, delta, .. } => {
                        sqlx::query(APPEND)
                            .bind(source_id)
                            .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                            .bind(delta)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl CursorStore for SqlStore {
    async fn load(&self, source_id: &str) -> stream_contracts::SourceResult<Option<Cursor>> {
        Ok(self.load_cursor(source_id).await?.map(Cursor))
    }

    async fn commit(&self, source_id: &str, cursor: &Cursor) -> stream_contracts::SourceResult<()> {
        Ok(self.commit_cursor(source_id, &cursor.0).await?)
    }

    async fn claim(&self, source_id: &str, owner: &str) -> stream_contracts::SourceResult<Lease> {
        Ok(self.claim_source(source_id, owner).await?)
    }

    async fn commit_leased(
        &self,
        source_id: &str,
        cursor: &Cursor,
        lease: &Lease,
    ) -> stream_contracts::SourceResult<()> {
        self.commit_cursor_leased(source_id, &cursor.0, lease).await
    }

    async fn check_lease(
        &self,
        source_id: &str,
        lease: &Lease,
    ) -> stream_contracts::SourceResult<()> {
        self.check_source_lease(source_id, lease).await
    }

    fn state_bytes_written(&self) -> u64 {
        self.chains.bytes_written()
    }
}
