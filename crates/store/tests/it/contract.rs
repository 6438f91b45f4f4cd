//! One contract, every backend: each test runs on SQLite and on PostgreSQL (and on the
//! in-memory stores of `producer` and `api-client`, which promise the same semantics).

use std::time::Duration;

use store::SqlStore;
use stream_contracts::{Cursor, CursorStore};
use stream_contracts::{
    DeadLetterStore, DlqFilter, DlqStatus, FailureReason, NewDeadLetter, OutgoingRecord, Purge,
};

use crate::support::{postgres, sqlite_store};

fn letter(id: &str, source: &str, reason: FailureReason) -> NewDeadLetter {
    let mut record = OutgoingRecord::new(
        "wildfire-alerts",
        source,
        format!("{{\"id\":\"{id}\"}}").into_bytes(),
    );
    record.id = id.into();
    record.key = Some(b"k1".to_vec().into());
    record.headers = std::sync::Arc::new([("source_type".into(), b"synthetic".to_vec().into())]);
    NewDeadLetter {
        record,
        reason,
        details: "MessageSizeTooLarge: too big".into(),
    }
}

async fn insert_sets_status_by_reason_and_keeps_the_record(store: &dyn DeadLetterStore) {
    store
        .insert(
            &[
                letter("m1", "s1", FailureReason::BrokerUnavailable),
                letter("m2", "s1", FailureReason::RecordTooLarge),
            ],
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    let rows = store.list(&DlqFilter::default(), 10, 0).await.unwrap();
    assert_eq!(rows.len(), 2);
    let m1 = rows.iter().find(|r| r.message_id == "m1").unwrap();
    assert_eq!(m1.status, DlqStatus::QueuedForRetry);
    assert!(m1.retry_at.unwrap() >= m1.created_at + 1000);
    assert_eq!(m1.failure_reason, "broker_unavailable");
    let m2 = rows.iter().find(|r| r.message_id == "m2").unwrap();
    assert_eq!(m2.status, DlqStatus::PermanentFailure);
    assert_eq!(m2.retry_at, None);
    // The record comes back as it was sent.
    let again = m2.to_record(None);
    assert_eq!(&*again.topic, "wildfire-alerts");
    assert_eq!(again.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(again.payload.as_ref(), b"{\"id\":\"m2\"}");
    assert_eq!(m2.payload_json.as_deref(), Some("{\"id\":\"m2\"}"));
    assert_eq!(
        again.headers.to_vec(),
        vec![("source_type".into(), b"synthetic".to_vec().into())]
    );
    assert_eq!(store.get(m2.id).await.unwrap().as_ref(), Some(m2));
    assert_eq!(store.get(-1).await.unwrap(), None);
}

async fn same_message_updates_the_same_row(store: &dyn DeadLetterStore) {
    store
        .insert(
            &[letter("m1", "s1", FailureReason::Timeout)],
            Duration::ZERO,
        )
        .await
        .unwrap();
    store
        .insert(
            &[letter("m1", "s1", FailureReason::UnknownTopic)],
            Duration::ZERO,
        )
        .await
        .unwrap();
    let rows = store.list(&DlqFilter::default(), 10, 0).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].failure_reason, "unknown_topic");
    assert_eq!(rows[0].status, DlqStatus::PermanentFailure);
}

async fn retry_schedule_updates_the_same_row(store: &dyn DeadLetterStore) {
    store
        .insert(
            &[letter("m1", "s1", FailureReason::Network)],
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    let row = store
        .list(&DlqFilter::default(), 1, 0)
        .await
        .unwrap()
        .remove(0);
    let at = row.retry_at.unwrap();
    assert!(
        store.due(at - 1, 10).await.unwrap().is_empty(),
        "not due before retry_at"
    );
    assert_eq!(store.due(at, 10).await.unwrap().len(), 1);
    store
        .retry_failed(row.id, "still down", Some(at + 2000))
        .await
        .unwrap();
    let row2 = store.get(row.id).await.unwrap().unwrap();
    assert_eq!(
        (row2.retry_count, row2.status, row2.retry_at),
        (1, DlqStatus::QueuedForRetry, Some(at + 2000))
    );
    assert_eq!(row2.error_details, "still down");
    store.retry_failed(row.id, "gave up", None).await.unwrap();
    let row3 = store.get(row.id).await.unwrap().unwrap();
    assert_eq!(
        (row3.retry_count, row3.status, row3.retry_at),
        (2, DlqStatus::PermanentFailure, None)
    );
    assert!(store.due(i64::MAX, 10).await.unwrap().is_empty());
}

async fn filters_pagination_stats_status_and_delete(store: &dyn DeadLetterStore) {
    let mut batch = Vec::new();
    for i in 0..7 {
        let (source, reason) = if i % 2 == 0 {
            ("even", FailureReason::QueueOverflow)
        } else {
            ("odd", FailureReason::Timeout)
        };
        batch.push(letter(&format!("m{i}"), source, reason));
    }
    store.insert(&batch, Duration::from_secs(60)).await.unwrap();
    let all = DlqFilter::default();
    let page1 = store.list(&all, 3, 0).await.unwrap();
    let page2 = store.list(&all, 3, 3).await.unwrap();
    let page3 = store.list(&all, 3, 6).await.unwrap();
    assert_eq!((page1.len(), page2.len(), page3.len()), (3, 3, 1));
    assert!(page1[0].id > page1[2].id, "newest first");
    let odd = DlqFilter {
        source_id: Some("odd".into()),
        ..DlqFilter::default()
    };
    assert_eq!(store.list(&odd, 100, 0).await.unwrap().len(), 3);
    let overflow_even = DlqFilter {
        reason: Some("queue_overflow".into()),
        source_id: Some("even".into()),
        status: Some(DlqStatus::PermanentFailure),
    };
    let rows = store.list(&overflow_even, 100, 0).await.unwrap();
    assert_eq!(rows.len(), 4);

    let stats = store.stats().await.unwrap();
    assert_eq!((stats.total, stats.pending), (7, 7));
    assert_eq!(
        stats.by_reason,
        vec![("queue_overflow".into(), 4), ("timeout".into(), 3)]
    );
    assert!(stats.oldest_pending_at.is_some());

    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(
        store
            .set_status(&ids[..2], DlqStatus::Replayed)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .set_status(&ids[2..3], DlqStatus::Discarded)
            .await
            .unwrap(),
        1
    );
    assert!(store.delete(ids[3]).await.unwrap());
    assert!(!store.delete(ids[3]).await.unwrap());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.total, stats.pending), (6, 3));
    assert_eq!(
        stats.by_status,
        vec![
            ("discarded".into(), 1),
            ("queued_for_retry".into(), 3),
            ("replayed".into(), 2)
        ]
    );
    store.ping().await.unwrap();
}

async fn purge_removes_settled_rows_by_age_and_count_never_pending_ones(
    store: &dyn DeadLetterStore,
) {
    let batch: Vec<_> = (0..6)
        .map(|i| letter(&format!("p{i}"), "s", FailureReason::RecordTooLarge))
        .collect();
    store.insert(&batch, Duration::ZERO).await.unwrap();
    let rows = store.list(&DlqFilter::default(), 10, 0).await.unwrap();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    // p0..p3 done with (replayed / discarded), p4 and p5 still pending.
    store
        .set_status(&ids[..2], DlqStatus::Replayed)
        .await
        .unwrap();
    store
        .set_status(&ids[2..4], DlqStatus::Discarded)
        .await
        .unwrap();
    let settled = Purge {
        statuses: Purge::SETTLED.to_vec(),
        older_than_ms: None,
        keep_newest: Some(1),
    };
    assert_eq!(
        store.purge(&settled).await.unwrap(),
        3,
        "all but the newest settled row"
    );
    let left: Vec<String> = store
        .list(&DlqFilter::default(), 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.message_id)
        .collect();
    assert_eq!(
        left,
        ["p5", "p4", "p3"],
        "pending rows are never purged unless named"
    );
    // By age: everything settled changed before a time in the future.
    let by_age = Purge {
        statuses: Purge::SETTLED.to_vec(),
        older_than_ms: Some(i64::MAX),
        keep_newest: None,
    };
    assert_eq!(store.purge(&by_age).await.unwrap(), 1);
    assert_eq!(store.stats().await.unwrap().total, 2);
    // Named explicitly, pending rows go too.
    let pending = Purge {
        statuses: vec![DlqStatus::PermanentFailure],
        older_than_ms: Some(i64::MAX),
        keep_newest: None,
    };
    assert_eq!(store.purge(&pending).await.unwrap(), 2);
    assert_eq!(store.stats().await.unwrap().total, 0);
}

async fn cursors_are_committed_and_overwritten(store: &dyn CursorStore) {
    let c = |s: &str| Cursor(s.to_owned());
    assert_eq!(store.load("noaa").await.unwrap(), None);
    store
        .commit("noaa", &c("2026-11-27T00:00:00Z"))
        .await
        .unwrap();
    store.commit("firms", &c("17")).await.unwrap();
    store
        .commit("noaa", &c("2026-11-27T01:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        store.load("noaa").await.unwrap(),
        Some(c("2026-11-27T01:00:00Z"))
    );
    assert_eq!(store.load("firms").await.unwrap(), Some(c("17")));
}

async fn a_superseded_claim_cannot_commit(store: &dyn CursorStore) {
    let c = |s: &str| Cursor(s.to_owned());
    let first = store.claim("firms", "w1").await.unwrap();
    store.commit_leased("firms", &c("1"), &first).await.unwrap();
    store
        .check_lease("firms", &first)
        .await
        .expect("the only claim holds");
    let second = store.claim("firms", "w2").await.unwrap();
    assert!(second.epoch > first.epoch, "{first:?} then {second:?}");
    let early = store
        .check_lease("firms", &first)
        .await
        .expect_err("the old owner sees the newer claim before it fetches");
    assert!(
        matches!(&early, stream_contracts::SourceError::Fenced(m) if m.contains("`w2`")),
        "{early}"
    );
    store
        .check_lease("firms", &second)
        .await
        .expect("the newest claim holds");
    let err = store
        .commit_leased("firms", &c("2"), &first)
        .await
        .expect_err("the old owner is fenced");
    assert!(
        matches!(&err, stream_contracts::SourceError::Fenced(m) if m.contains("`w2`")),
        "{err}"
    );
    assert_eq!(
        store.load("firms").await.unwrap(),
        Some(c("1")),
        "nothing written"
    );
    store
        .commit_leased("firms", &c("3"), &second)
        .await
        .unwrap();
    assert_eq!(store.load("firms").await.unwrap(), Some(c("3")));
    let other = store.claim("noaa", "w1").await.unwrap();
    assert_eq!(other.epoch, 1, "claims are per source");
    let never = stream_contracts::Lease {
        owner: "w9".into(),
        epoch: 1,
    };
    assert!(store
        .commit_leased("never-claimed", &c("x"), &never)
        .await
        .is_err());
    assert!(
        store.check_lease("never-claimed", &never).await.is_err(),
        "a lease nobody took does not hold"
    );
}

/// A fetch state shaped as an HTTP source writes it (`api-client/src/http/state.rs`): the
/// incremental cursor, then the dedup window's identities `ids`, 11 characters each.
pub(crate) fn window(cursor: u64, ids: std::ops::Range<u64>) -> Cursor {
    use base64::Engine as _;
    let mut text = format!("{{\"http_state\":1,\"cursor\":\"{cursor}\",\"ids\":\"");
    for id in ids {
        let hashed = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode_string(hashed.to_le_bytes(), &mut text);
    }
    text.push_str("\"}");
    Cursor(text)
}

/// A commit after adding k identities to a full window writes O(k) bytes, not the
/// window; the state loads back exactly (snapshot and deltas in order).
pub(crate) async fn a_commit_writes_what_changed_not_the_whole_window(store: &dyn CursorStore) {
    const WINDOW: u64 = 20_000;
    const K: u64 = 10;
    let first = window(0, 0..WINDOW);
    store.commit("usgs", &first).await.unwrap();
    let snapshot = store.state_bytes_written();
    assert!(snapshot >= first.0.len() as u64, "{snapshot} bytes");
    let mut costs = Vec::new();
    for step in 1..=20 {
        let before = store.state_bytes_written();
        store
            .commit("usgs", &window(step, step * K..WINDOW + step * K))
            .await
            .unwrap();
        costs.push(store.state_bytes_written() - before);
    }
    let worst = costs.iter().max().copied().unwrap_or_default();
    assert!(
        worst < K * 11 + 300,
        "a commit of {K} new identities in a window of {WINDOW} ({} bytes) wrote {costs:?} bytes",
        first.0.len()
    );
    assert_eq!(
        store.load("usgs").await.unwrap(),
        Some(window(20, 20 * K..WINDOW + 20 * K)),
        "snapshot and deltas rebuild the last commit"
    );
    // Under a claim too.
    let lease = store.claim("nws", "w1").await.unwrap();
    store
        .commit_leased("nws", &window(0, 0..WINDOW), &lease)
        .await
        .unwrap();
    let before = store.state_bytes_written();
    store
        .commit_leased("nws", &window(1, K..WINDOW + K), &lease)
        .await
        .unwrap();
    let cost = store.state_bytes_written() - before;
    assert!(cost < K * 11 + 300, "{cost} bytes under a claim");
    assert_eq!(
        store.load("nws").await.unwrap(),
        Some(window(1, K..WINDOW + K))
    );
}

/// One module per backend, each running every named contract test on a fresh store.
macro_rules! contract {
    ($memory:expr; $($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = $memory;
                    super::$name(&store).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = crate::support::sqlite_store().await;
                    assert_eq!(store.backend_name(), "sqlite");
                    super::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let (url, _guard) = crate::support::postgres();
                    let store = crate::support::postgres_store(&url).await;
                    assert_eq!(store.backend_name(), "postgres");
                    super::$name(&store).await;
                }
            )*
        }
    };
}

mod dlq {
    use super::*;
    contract!(
        stream_contracts::MemoryDeadLetterStore::default();
        insert_sets_status_by_reason_and_keeps_the_record,
        same_message_updates_the_same_row,
        retry_schedule_updates_the_same_row,
        filters_pagination_stats_status_and_delete,
        purge_removes_settled_rows_by_age_and_count_never_pending_ones,
    );
}

mod cursors {
    use super::*;
    contract!(
        stream_contracts::MemoryCursorStore::default();
        cursors_are_committed_and_overwritten,
        a_superseded_claim_cannot_commit,
        a_commit_writes_what_changed_not_the_whole_window,
    );
}

#[tokio::test]
async fn unsupported_url_is_a_clear_error_without_the_password() {
    let err = SqlStore::connect("mysql://u:hunter2@h/db")
        .await
        .unwrap_err();
    // Display and Debug (which shows every cause) alike.
    let text = format!("{err} {err:?}");
    assert!(text.contains("unsupported database URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn unreachable_postgres_error_hides_the_password() {
    let port = test_support::free_port().unwrap();
    let err = SqlStore::connect(&format!("postgres://u:hunter2@127.0.0.1:{port}/db"))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("cannot connect to postgres://u:***@127.0.0.1"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn sqlite_store_creates_its_folder_and_survives_reopen() {
    let (store, dir) = sqlite_store().await;
    let dir = dir.path().to_path_buf();
    store
        .insert(
            &[letter("keep", "s", FailureReason::Shutdown)],
            Duration::ZERO,
        )
        .await
        .unwrap();
    drop(store);
    let again = SqlStore::connect(&format!("sqlite://{}/dlq.db", dir.display()))
        .await
        .unwrap();
    assert_eq!(
        again.stats().await.unwrap().total,
        1,
        "rows survive a restart; migrations are idempotent"
    );
}

#[tokio::test]
async fn postgres_helper_is_real() {
    // The PostgreSQL tests above run against a PostgreSQL server, never a stand-in: the
    // helper's URL answers the wire protocol, names itself PostgreSQL, and keeps what is
    // written on one connection for another.
    use sqlx::Connection;
    let (url, _guard) = postgres();
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("the helper's URL accepts a PostgreSQL connection");
    let version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(version.starts_with("PostgreSQL "), "{version}");
    let db = crate::support::postgres_database(&url).await;
    let mut a = sqlx::PgConnection::connect(&db).await.unwrap();
    sqlx::query("CREATE TABLE probe (n integer)")
        .execute(&mut a)
        .await
        .unwrap();
    sqlx::query("INSERT INTO probe VALUES (42)")
        .execute(&mut a)
        .await
        .unwrap();
    let mut b = sqlx::PgConnection::connect(&db).await.unwrap();
    let n: i32 = sqlx::query_scalar("SELECT n FROM probe")
        .fetch_one(&mut b)
        .await
        .unwrap();
    assert_eq!(n, 42, "a row written on one connection is read on another");
}

#[tokio::test]
async fn postgres_over_tls_verifies_the_server_and_refuses_a_wrong_ca() {
    let pg = test_support::TestPostgres::start_tls().expect("a TLS PostgreSQL starts");
    let url = |ca: &std::path::Path| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
            pg.port(),
            ca.display()
        )
    };
    // The right CA: connected, migrated, usable.
    let store = SqlStore::connect(&url(&pg.ca_file()))
        .await
        .expect("verify-full with the CA that signed the server");
    store.ping().await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    // Another CA: refused, saying why.
    let other = test_support::TempDir::new("other-ca");
    let wrong = test_support::make_ca(other.path(), "other").unwrap();
    let err = SqlStore::connect(&url(&wrong)).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("cannot connect to postgres://"), "{text}");
    assert!(
        text.to_lowercase().contains("certificate") || text.contains("UnknownIssuer"),
        "the error names the certificate problem: {text}"
    );
}

#[tokio::test]
async fn worker_reports_are_kept_per_group_and_overwritten() {
    let (url, _guard) = postgres();
    let store = crate::support::postgres_store(&url).await;
    store
        .report_member("g", "w1", r#"{"sources":["a"]}"#)
        .await
        .unwrap();
    store
        .report_member("g", "w2", r#"{"sources":[]}"#)
        .await
        .unwrap();
    store.report_member("other", "w3", "{}").await.unwrap();
    store
        .report_member("g", "w1", r#"{"sources":["a","b"]}"#)
        .await
        .unwrap();
    let m = store.members("g").await.unwrap();
    let ids: Vec<&str> = m.iter().map(|r| r.worker_id.as_str()).collect();
    assert_eq!(ids, ["w1", "w2"]);
    assert_eq!(m[0].report, r#"{"sources":["a","b"]}"#);
    assert!(m[0].seen_at > 0);
}
