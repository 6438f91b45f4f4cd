//! The record path of a stream manager: what happens to a record between its source and
//! Kafka.
//!
//! A source's records enter through its [`StreamSink`] (an `ingestion_modes::Sink`):
//! each is checked against its data contract, given its priority and topic, serialized
//! once into an `OutgoingRecord` and pushed into the priority queue as a
//! [`QueuedRecord`] (what a full queue evicts or refuses is dead-lettered with its
//! reason). The dispatcher ([`supervise_dispatch`]) pops batches in two lanes
//! (CRITICAL alone), takes throttle tokens before records, registers every popped batch
//! until its delivery reports, and hands it to the producer's `Delivery` (Kafka, or the
//! DLQ beside it). Every record, delivered or dead-lettered, then settles with its
//! source's cursor tracker ([`settle`]), so fetch state advances only after the records
//! it guards have settled.
//!
//! [`RecordPath`] is the state these share; a stream manager builds one from its
//! components ([`Components`]), runs the dispatcher, gives each source a sink, and at
//! shutdown dead-letters what is still registered ([`RecordPath::take_registered`]).
//! [`check_lag`] feeds consumer lag to the throttles. Panicked tasks are restarted by
//! [`supervise`] and counted.

mod contracts;
mod dispatch;
mod lag;
mod sink;
mod supervise;
mod throughput;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use producer::{Delivery, TopicCreator};
use queue::{Priority, PriorityQueue};
use stream_config::StreamConfig;
use throttling::ThrottleGroup;
use topic_resolver::{Predicate, Resolver};

pub use crate::contracts::{stored_record, LastViolation, SCHEMA_VIOLATIONS};
pub use crate::dispatch::{supervise_dispatch, TASK_PANICS};
pub use crate::lag::check_lag;
pub use crate::sink::{
    settle, QueuedRecord, SourceCtx, StreamCounters, StreamSink, CURSOR_COMMIT_FAILURES,
};
pub use crate::supervise::{supervise, Worker, WorkerHealth};
pub use crate::throughput::{Meter, Throughput, SLOTS};

/// The components a record path is built from.
#[derive(Debug)]
pub struct Components {
    /// The configuration in force (the record path reads `metadata_in_payload`, the
    /// `throttling` switches, `kafka.batch_size` and `routing.fallback_topic`).
    pub config: Arc<StreamConfig>,
    pub queue: Arc<PriorityQueue<QueuedRecord>>,
    /// The global throttle and each source's own.
    pub throttle: Arc<ThrottleGroup>,
    /// The CRITICAL lane's own bucket (`throttling.critical_share` of the rate).
    pub critical_throttle: Arc<throttling::Throttle>,
    pub resolver: Arc<Resolver>,
    /// The first matching rule gives a record its priority (else its source's).
    pub priority_rules: Vec<(Predicate, Priority)>,
    /// The producer and the DLQ beside it.
    pub delivery: Arc<Delivery>,
    /// Creates topics first named by a topic template (a real cluster's; none: topics
    /// are expected to exist).
    pub topics: Option<Arc<TopicCreator>>,
    /// The data contracts in force.
    pub contracts: api_client::Contracts,
}

/// State shared by the record path's tasks and its owner.
#[derive(Debug)]
pub struct RecordPath {
    config: RwLock<Arc<StreamConfig>>,
    pub queue: Arc<PriorityQueue<QueuedRecord>>,
    pub throttle: Arc<ThrottleGroup>,
    /// The CRITICAL lane's own bucket.
    pub critical_throttle: Arc<throttling::Throttle>,
    pub resolver: Arc<Resolver>,
    priority_rules: RwLock<Arc<Vec<(Predicate, Priority)>>>,
    pub delivery: Arc<Delivery>,
    /// A delay the lag check asks the NORMAL lane to wait before its next batch.
    pub pending_delay_ms: AtomicU64,
    /// Batches with the producer and not yet reported, by number.
    in_flight: Mutex<std::collections::HashMap<u64, Arc<Vec<QueuedRecord>>>>,
    next_batch: AtomicU64,
    /// Panics of the dispatcher and its delivery tasks (health shows them).
    pub dispatcher_panics: AtomicU64,
    shutting_down: AtomicBool,
    /// The supervised background tasks (dispatcher, the owner's workers), for health.
    workers: Mutex<Vec<Arc<Worker>>>,
    /// Creates topics first named by a template.
    pub topics: Option<Arc<TopicCreator>>,
    /// Each source's share of the queue and its own lag throttle.
    pub per_source: throttling::PerSource,
    /// The data contracts in force, swapped whole by a reload.
    contracts: RwLock<Arc<api_client::Contracts>>,
    /// Records in, out and dead-lettered per second.
    pub meter: Meter,
}

impl RecordPath {
    /// A record path over `c`, not yet dispatching (run [`supervise_dispatch`]).
    pub fn new(c: Components) -> Self {
        Self {
            config: RwLock::new(c.config),
            queue: c.queue,
            throttle: c.throttle,
            critical_throttle: c.critical_throttle,
            resolver: c.resolver,
            priority_rules: RwLock::new(Arc::new(c.priority_rules)),
            delivery: c.delivery,
            pending_delay_ms: AtomicU64::new(0),
            in_flight: Mutex::new(std::collections::HashMap::new()),
            next_batch: AtomicU64::new(0),
            dispatcher_panics: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
            topics: c.topics,
            per_source: throttling::PerSource::default(),
            contracts: RwLock::new(Arc::new(c.contracts)),
            meter: Meter::new(),
        }
    }

    /// Takes every registered batch (popped, not yet reported) out of the registry: for
    /// the shutdown deadline and a dispatcher that died holding them.
    pub fn take_registered(&self) -> Vec<Arc<Vec<QueuedRecord>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, batch)| batch)
            .collect()
    }

    /// Registers a supervised task under `name` (health shows it from now on).
    pub fn worker(&self, name: &'static str) -> Arc<Worker> {
        let worker = Worker::new(name);
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker.clone());
        worker
    }

    /// The supervised tasks' health, in the order they were registered.
    pub fn workers(&self) -> Vec<WorkerHealth> {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|w| w.health())
            .collect()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<StreamConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The data contracts in force (read once per batch).
    pub fn contracts(&self) -> Arc<api_client::Contracts> {
        self.contracts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The priority rules in force (read once per batch, not per record).
    fn priority_rules(&self) -> Arc<Vec<(Predicate, Priority)>> {
        self.priority_rules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in a reloaded configuration with its priority rules and contracts (each
    /// batch reads them once, so a batch sees either the old set or the new).
    pub fn reconfigure(
        &self,
        config: Arc<StreamConfig>,
        priority_rules: Vec<(Predicate, Priority)>,
        contracts: api_client::Contracts,
    ) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        *self
            .priority_rules
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(priority_rules);
        *self.contracts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(contracts);
    }

    /// From now on nothing waits for room or tokens: the owner is shutting down.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// True once [`RecordPath::begin_shutdown`] was called.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// Registers the help text of the record path's own metrics with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        TASK_PANICS,
        metrics::Unit::Count,
        "Panicked tasks (dispatcher, delivery, lag_checker, dlq_worker, dlq_retention), by task; each is restarted and makes health unhealthy."
    );
    metrics::describe_counter!(
        CURSOR_COMMIT_FAILURES,
        metrics::Unit::Count,
        "Cursor commits the fetch-state store failed, by source; the source shows failing (and /ready not ready) until a commit lands."
    );
    metrics::describe_counter!(
        SCHEMA_VIOLATIONS,
        metrics::Unit::Count,
        "Records that failed their source's or topic's JSON Schema, by source and schema (dead-lettered as schema_violation in enforce mode, delivered in observe mode)."
    );
}
