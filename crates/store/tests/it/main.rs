//! Integration tests of the store, compiled as one binary: a SQLite file and a real
//! PostgreSQL server (a throwaway cluster, or `DATABASE_URL`). The state topic's store
//! (`producer::TopicStore`) is tested in `producer`.

mod contract;
mod state;
mod support;
