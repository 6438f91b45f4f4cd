//! Stores on a fresh SQLite file and on a fresh PostgreSQL database.

use std::sync::atomic::{AtomicU64, Ordering};

use store::SqlStore;
use test_support::{TempDir, TestPostgres};

/// A fresh SQLite store in a temporary folder (removed when the guard drops).
pub(crate) async fn sqlite_store() -> (SqlStore, TempDir) {
    let dir = TempDir::new("store");
    let url = format!("sqlite://{}/dlq.db", dir.path().display());
    (SqlStore::connect(&url).await.expect("sqlite store"), dir)
}

/// A PostgreSQL server: `DATABASE_URL` when set (xtask sets it), else a throwaway
/// cluster owned by the returned guard.
pub(crate) fn postgres() -> (String, Option<TestPostgres>) {
    match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let pg =
                TestPostgres::start().expect("throwaway PostgreSQL starts (or set DATABASE_URL)");
            (pg.url(), Some(pg))
        }
    }
}

/// A fresh database on that server, so tests never share rows.
pub(crate) async fn postgres_store(admin_url: &str) -> SqlStore {
    let url = postgres_database(admin_url).await;
    SqlStore::connect(&url).await.expect("postgres store")
}

/// The URL of a fresh database on that server.
pub(crate) async fn postgres_database(admin_url: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "store_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}
