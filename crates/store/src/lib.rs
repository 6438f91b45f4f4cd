//! The project's SQL: dead letters and source cursors in one database, SQLite by default
//! (embedded, a file) or PostgreSQL, chosen by URL. The only crate that knows sqlx.
//!
//! [`SqlStore`] implements `stream_contracts::DeadLetterStore` and
//! `stream_contracts::CursorStore` (also known as `producer::DeadLetterStore` and
//! `api_client::CursorStore`); it depends on neither librdkafka nor an HTTP client.
//! each backend has its own migration sequence, embedded in the binary and run on
//! connect.
//!
//! ```no_run
//! # async fn demo() -> Result<(), store::Error> {
//! use stream_contracts::{Cursor, CursorStore};
//!
//! let db = store::SqlStore::connect("sqlite://data/stream.db").await?;
//! db.commit("firms", &Cursor("2026-11-30T12:00:00Z".into())).await.unwrap();
//! assert_eq!(db.load("firms").await.unwrap(), Some(Cursor("2026-11-30T12:00:00Z".into())));
//! # Ok(()) }
//! ```

mod cursors;
mod leases;
mod sql;

pub use leases::MemberRow;
pub use sql::SqlStore;

/// Which database a URL names, by its scheme: the one place that decides what a
/// `dlq.url` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// `sqlite://path`: embedded, a file of this process.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: a server several processes may share.
    Postgres,
}

impl Database {
    /// The database `url` names; `None` for any other scheme.
    pub fn of(url: &str) -> Option<Self> {
        match url.split("://").next().unwrap_or_default() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// True when `url` names a database every worker of a cluster can reach (PostgreSQL):
    /// cluster mode keeps fetch state and reports there rather than in a Kafka topic.
    pub fn is_shared(url: &str) -> bool {
        Self::of(url) == Some(Self::Postgres)
    }
}

/// Errors of the store. Messages never contain a URL's password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is neither `sqlite://…` nor `postgres://…`.
    #[error("unsupported database URL `{0}`; use sqlite://path or postgres://user@host/db")]
    UnsupportedUrl(String),
    /// The SQLite file's folder could not be created.
    #[error("cannot create the database folder {dir}")]
    CreateDir {
        /// The folder.
        dir: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be reached.
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be created or upgraded.
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
}

/// The store's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for stream_contracts::ProducerError {
    fn from(e: Error) -> Self {
        stream_contracts::ProducerError::dlq(e)
    }
}

impl From<Error> for stream_contracts::SourceError {
    fn from(e: Error) -> Self {
        stream_contracts::SourceError::cursor(e)
    }
}

/// `url` with its password — in the user info or as a `password`/`sslpassword` query
/// parameter — replaced by `***` (unchanged when it has none), for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url
            .split_once('@')
            .map(|(_, host)| format!("***@{host}"))
            .unwrap_or_else(|| url.to_owned());
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let secret = |k: &str| k.to_ascii_lowercase().contains("pass");
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::{redact_url, Database};

    #[test]
    fn the_scheme_decides_the_database() {
        assert_eq!(Database::of("sqlite://data/dlq.db"), Some(Database::Sqlite));
        assert_eq!(Database::of("postgres://u@db/sm"), Some(Database::Postgres));
        assert_eq!(
            Database::of("postgresql://u@db/sm"),
            Some(Database::Postgres)
        );
        assert_eq!(Database::of("mysql://u@db/sm"), None);
        assert_eq!(Database::of("data/dlq.db"), None);
        assert!(Database::is_shared("postgresql://u@db/sm"));
        assert!(
            !Database::is_shared("sqlite://data/dlq.db"),
            "one process's file"
        );
        assert!(
            !Database::is_shared("sqlite://postgres://x"),
            "the scheme only"
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/dlq"),
            "postgres://app:***@db:5432/dlq"
        );
        assert_eq!(redact_url("sqlite://data/dlq.db"), "sqlite://data/dlq.db");
        // libpq also takes the password as a query parameter.
        let q = redact_url("postgres://app@db/dlq?sslmode=require&password=s3cret");
        assert!(
            !q.contains("s3cret") && q.contains("sslmode=require"),
            "{q}"
        );
        assert!(!redact_url("postgres://app:s3cret@db/dlq?x=%").contains("s3cret"));
    }
}
