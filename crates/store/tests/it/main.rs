//! Integration tests of the store, compiled as one binary: a SQLite file and a real
//! PostgreSQL server (a throwaway cluster, or `DATABASE_URL`).

mod contract;
mod support;
