//! Integration tests of the producer and the DLQ, compiled as one binary: librdkafka's
//! in-process mock broker, a SQLite file, and a real PostgreSQL server.

mod admin_lag;
mod delivery;
mod dlq_contract;
mod kafka;
mod support;
