//! A throwaway database per scenario on the suite's PostgreSQL server.

/// A fresh database `<prefix>_<pid>` on the PostgreSQL server of `DATABASE_URL`; its URL.
pub async fn fresh_database(prefix: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a PostgreSQL server: run the suite with `cargo xtask it run`",
    );
    let name = format!("{prefix}_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("connect DATABASE_URL");
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let (server, _) = base.rsplit_once('/').expect("URL with a database");
    format!("{server}/{name}")
}
