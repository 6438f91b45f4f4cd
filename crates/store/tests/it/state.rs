//! Fetch state written as snapshot and deltas is rebuilt exactly by another store on the
//! same database: a restart (SQLite reopened) and another worker's claim (PostgreSQL).

use store::SqlStore;
use stream_contracts::CursorStore;

use crate::contract::window;
use crate::support::{postgres, postgres_database, sqlite_store};

#[tokio::test]
async fn a_restart_rebuilds_the_committed_state_from_snapshot_and_deltas() {
    let (first, dir) = sqlite_store().await;
    first.commit("usgs", &window(0, 0..20_000)).await.unwrap();
    for step in 1..=30 {
        first
            .commit("usgs", &window(step, step * 7..20_000 + step * 7))
            .await
            .unwrap();
    }
    drop(first);
    let url = format!("sqlite://{}/dlq.db", dir.path().display());
    let again = SqlStore::connect(&url).await.unwrap();
    assert_eq!(
        again.load("usgs").await.unwrap(),
        Some(window(30, 210..20_210))
    );
    // And continues the chain from there.
    let before = again.state_bytes_written();
    again
        .commit("usgs", &window(31, 217..20_217))
        .await
        .unwrap();
    assert!(again.state_bytes_written() - before < 400);
    let third = SqlStore::connect(&url).await.unwrap();
    assert_eq!(
        third.load("usgs").await.unwrap(),
        Some(window(31, 217..20_217))
    );
}

#[tokio::test]
async fn another_worker_claims_and_continues_the_chain() {
    let (url, _guard) = postgres();
    let db = postgres_database(&url).await;
    let w1 = SqlStore::connect(&db).await.unwrap();
    let lease = w1.claim("nws", "w1").await.unwrap();
    for step in 0..10 {
        w1.commit_leased("nws", &window(step, step * 5..20_000 + step * 5), &lease)
            .await
            .unwrap();
    }
    // w2: its own pool and chains on the same database.
    let w2 = SqlStore::connect(&db).await.unwrap();
    let newer = w2.claim("nws", "w2").await.unwrap();
    assert_eq!(
        w2.load("nws").await.unwrap(),
        Some(window(9, 45..20_045)),
        "the new owner resumes at w1's last commit"
    );
    assert!(w1
        .commit_leased("nws", &window(99, 0..1), &lease)
        .await
        .is_err());
    w2.commit_leased("nws", &window(10, 50..20_050), &newer)
        .await
        .unwrap();
    assert_eq!(
        SqlStore::connect(&db)
            .await
            .unwrap()
            .load("nws")
            .await
            .unwrap(),
        Some(window(10, 50..20_050))
    );
}
