//! Integration tests of the producer and the DLQ, compiled as one binary: librdkafka's
//! in-process mock broker and the in-memory DLQ (the SQL backends are tested in `store`).

mod admin_lag;
mod delivery;
mod isolate;
mod journal;
mod kafka;
mod state_log;
mod state_store;
mod support;
mod upkeep;
