//! Integration tests of the store, compiled as one binary: a SQLite file and a real
//! PostgreSQL server (a throwaway cluster, or `DATABASE_URL`); the state topic on
//! librdkafka's mock broker.

mod contract;
mod state;
mod support;
mod topic;
