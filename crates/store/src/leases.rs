//! Workers sharing sources: claims on sources' cursors (a commit under a superseded
//! claim is refused, atomically with the claim) and each worker's report for the view of
//! the whole group.

use sqlx::Row;
use stream_contracts::Lease;

use crate::sql::{now_ms, on_pool, Backend};
use crate::{Error, Result, SqlStore};

const CLAIM: &str =
    "INSERT INTO source_leases (source_id, owner, epoch, claimed_at) VALUES ($1, $2, 1, $3) \
     ON CONFLICT (source_id) DO UPDATE SET owner = excluded.owner, \
     epoch = source_leases.epoch + 1, claimed_at = excluded.claimed_at RETURNING epoch";

/// A worker's last report, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The worker's id.
    pub worker_id: String,
    /// What it reported (JSON written by the worker).
    pub report: String,
    /// When, ms since the epoch.
    pub seen_at: i64,
}

impl SqlStore {
    /// Claims `source_id` for `owner`: the returned epoch is one more than any before.
    pub async fn claim_source(&self, source_id: &str, owner: &str) -> Result<Lease> {
        let epoch: i64 = on_pool!(self, |pool| sqlx::query_scalar(CLAIM)
            .bind(source_id)
            .bind(owner)
            .bind(now_ms())
            .fetch_one(pool)
            .await)
        .map_err(Error::Query)?;
        Ok(Lease {
            owner: owner.to_owned(),
            epoch,
        })
    }

    /// `Ok` while `lease` is `source_id`'s newest claim; else `Fenced`, naming the owner.
    pub async fn check_source_lease(
        &self,
        source_id: &str,
        lease: &Lease,
    ) -> stream_contracts::SourceResult<()> {
        let sql = "SELECT epoch, owner FROM source_leases WHERE source_id = $1";
        let newest: Option<(i64, String)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(source_id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| stream_contracts::SourceError::cursor(Error::Query(e)))?;
        lease.check(source_id, newest.as_ref().map(|(e, o)| (*e, o.as_str())))
    }

    /// Who claimed `source_id` last.
    pub async fn source_owner(&self, source_id: &str) -> Result<Option<String>> {
        let sql = "SELECT owner FROM source_leases WHERE source_id = $1";
        on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(source_id)
            .fetch_optional(pool)
            .await)
        .map_err(Error::Query)
    }

    /// Records `worker_id`'s report in `group_id` (its sources and health, as JSON).
    pub async fn report_member(&self, group_id: &str, worker_id: &str, report: &str) -> Result<()> {
        let sql = "INSERT INTO cluster_members (group_id, worker_id, report, seen_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (group_id, worker_id) DO UPDATE SET report = excluded.report, seen_at = excluded.seen_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(group_id)
            .bind(worker_id)
            .bind(report)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(Error::Query)
    }

    /// Every worker's last report in `group_id`, by worker id.
    pub async fn members(&self, group_id: &str) -> Result<Vec<MemberRow>> {
        let sql = "SELECT worker_id, report, seen_at FROM cluster_members WHERE group_id = $1 ORDER BY worker_id";
        fn rows<R: Row>(rows: Vec<R>) -> Result<Vec<MemberRow>, sqlx::Error>
        where
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> &'r str: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|r| {
                    Ok(MemberRow {
                        worker_id: r.try_get("worker_id")?,
                        report: r.try_get("report")?,
                        seen_at: r.try_get("seen_at")?,
                    })
                })
                .collect()
        }
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(group_id)
            .fetch_all(pool)
            .await
            .and_then(rows))
        .map_err(Error::Query)
    }
}
