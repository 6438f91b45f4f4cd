//! The real-broker scenarios: `stream-server` as a process, tansu as the broker,
//! PostgreSQL for the DLQ scenario. Each test is one scenario (issues #7 and #13); run them
//! with `cargo xtask it run [scenario]`.

mod bad_upstream;
mod cluster;
mod contracts;
mod crash;
mod dlq_postgres;
mod end_to_end;
mod lag_discovery;
mod lag_throttling;
mod outage;
mod partial_upstream;
mod secured;
mod seed_noaa;
mod shutdown;
mod topics_created;
