//! `Builder`: the components, given or built from the configuration, wired together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{CursorStore, Registry};
use producer::{DeadLetterStore, Delivery, Producer};
use queue::{Priority, PriorityQueue};
use store::SqlStore;
use stream_config::{Loader, StreamConfig};
use throttling::{LagProbe, ThrottleGroup};
use topic_resolver::{Predicate, Resolver};

use record_path::{Components, RecordPath};

use crate::manager::StreamManager;
use crate::{component, convert, workers, Error, Result};

pub(crate) fn compile_priority_rules(cfg: &StreamConfig) -> Result<Vec<(Predicate, Priority)>> {
    cfg.routing
        .priority_rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Predicate::new(
                &format!("routing.priority_rules[{i}]"),
                &r.field,
                r.operator,
                &r.value,
            )
            .map(|p| (p, convert::priority(r.priority)))
            .map_err(component("routing"))
        })
        .collect()
}

/// Assembles a [`StreamManager`]; components not given are built from the config.
pub struct Builder {
    pub(crate) config: StreamConfig,
    pub(crate) producer: Option<Arc<dyn Producer>>,
    pub(crate) dlq: Option<Arc<dyn DeadLetterStore>>,
    pub(crate) cursors: Option<Arc<dyn CursorStore>>,
    pub(crate) lag_probe: Option<Arc<dyn LagProbe>>,
    pub(crate) registry: Registry,
    pub(crate) modes: ingestion_modes::ModeRegistry,
    pub(crate) max_in_flight: usize,
    pub(crate) check_interval: Duration,
    pub(crate) start_jitter: Duration,
    pub(crate) topics: Option<Arc<crate::TopicCreator>>,
    /// Where schema files may be read (`file_roots`; none given: anywhere).
    pub(crate) schema_roots: Option<Vec<std::path::PathBuf>>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Uses `producer` instead of a `KafkaProducer` from `kafka`.
    pub fn producer(mut self, producer: Arc<dyn Producer>) -> Self {
        self.producer = Some(producer);
        self
    }

    /// Uses `store` instead of the `dlq.url` database.
    pub fn dlq(mut self, store: Arc<dyn DeadLetterStore>) -> Self {
        self.dlq = Some(store);
        self
    }

    /// Uses `cursors` instead of the `dlq.url` database.
    pub fn cursors(mut self, cursors: Arc<dyn CursorStore>) -> Self {
        self.cursors = Some(cursors);
        self
    }

    /// Uses `probe` for consumer lag (default: Kafka lag of `throttling.consumer_groups`,
    /// of every group with commits on the config's topics when the key is absent, none
    /// — no lag throttling — when it is `[]`). A
    /// [`throttling::QueueFillProbe`] can be passed here deliberately.
    pub fn lag_probe(mut self, probe: Arc<dyn LagProbe>) -> Self {
        self.lag_probe = Some(probe);
        self
    }

    /// Uses `registry` for source types (default: the built-in connectors).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Uses `modes` for `ingestion.mode` (default: the three built-in modes); a mode a
    /// program registers there is selected by name like a built-in one.
    pub fn ingestion_modes(mut self, modes: ingestion_modes::ModeRegistry) -> Self {
        self.modes = modes;
        self
    }

    /// Creates the topics a runtime update names and those a topic template resolves
    /// to, before records go there (`KafkaHandle::topic_creator`). Without one, such
    /// topics must exist (or the cluster create them by itself).
    pub fn topic_creator(mut self, creator: Option<Arc<crate::TopicCreator>>) -> Self {
        self.topics = creator;
        self
    }

    /// `file` sources may read only under `roots` (see `Registry::restrict_files_to`).
    /// Schema files (`schema:` paths) likewise.
    pub fn file_roots(mut self, roots: Vec<std::path::PathBuf>) -> Self {
        self.schema_roots = Some(roots.clone());
        self.registry.restrict_files_to(roots);
        self
    }

    /// How often lag is checked (default 1 s).
    pub fn check_interval(mut self, every: Duration) -> Self {
        self.check_interval = every;
        self
    }

    /// Random delay of each source's first poll, up to this (default 0).
    pub fn start_jitter(mut self, jitter: Duration) -> Self {
        self.start_jitter = jitter;
        self
    }

    /// Builds the components and starts every enabled stream.
    pub async fn start(self) -> Result<StreamManager> {
        // One copy, shared with `RecordPath::config` (at 10,000 sources each copy is ≈ 15 MB).
        let cfg = Arc::new(self.config);
        let loader = Loader::new()
            .with_source_types(self.registry.names())
            .with_ingestion_modes(self.modes.names())
            .with_builtin_schemas(crate::builtin_schemas());
        loader.validate(&cfg, "<config>")?;
        let mut sql: Option<Arc<SqlStore>> = None;
        let given_cursors = self.cursors.is_some();
        let (dlq, cursors) = match (self.dlq, self.cursors) {
            (Some(dlq), Some(cursors)) => (dlq, cursors),
            (dlq, cursors) => {
                let store = Arc::new(
                    SqlStore::connect(&cfg.dlq.url)
                        .await
                        .map_err(|e| Error::Store(Box::new(e)))?,
                );
                sql = Some(store.clone());
                (
                    dlq.unwrap_or_else(|| store.clone()),
                    cursors.unwrap_or_else(|| store.clone()),
                )
            }
        };
        // A worker of a group: reports and fetch state in the shared PostgreSQL store,
        // or, on nothing but Kafka, in the state topic.
        let mut cursors = cursors;
        let cluster: Option<Arc<dyn cluster::Coordinator>> = if cfg.cluster.enabled {
            let directory: Arc<dyn cluster::Directory> = if store::Database::is_shared(&cfg.dlq.url)
            {
                match sql {
                    Some(s) => s,
                    None => Arc::new(
                        SqlStore::connect(&cfg.dlq.url)
                            .await
                            .map_err(|e| Error::Store(Box::new(e)))?,
                    ),
                }
            } else {
                let log = Arc::new(
                    producer::StateLog::open(
                        &producer::client_config(&cfg.kafka),
                        &cfg.cluster.state_topic(),
                    )
                    .await
                    .map_err(component("cluster state topic"))?,
                );
                if !given_cursors {
                    cursors = Arc::new(producer::TopicStore::new(log.clone()));
                }
                log
            };
            Some(Arc::new(cluster::Worker::new(
                convert::cluster_settings(&cfg.cluster),
                producer::client_config(&cfg.kafka),
                directory,
            )))
        } else {
            None
        };
        let producer: Arc<dyn Producer> = match self.producer {
            Some(p) => p,
            None => Arc::new(
                producer::KafkaProducer::with_buffer_cap(&cfg.kafka, cfg.queue_max_bytes)
                    .map_err(component("producer"))?,
            ),
        };
        let queue = Arc::new(PriorityQueue::new(convert::queue_config(&cfg)));
        let (probe, lag_mode) = crate::lag::probe_for(&cfg, self.lag_probe);
        let delivery = Arc::new(
            Delivery::new(producer, dlq)
                .with_first_retry(Duration::from_secs(cfg.dlq.retry_base_delay_seconds)),
        );
        delivery.set_dlq_enabled(cfg.enable_dlq);
        // Dead letters a previous run could not store (its journal) go in first.
        let journal = std::path::Path::new(&cfg.dlq.journal_path);
        match delivery.replay_journal(journal).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(records = n, path = %journal.display(), "stored the dead letters of the previous run's journal")
            }
            Err(e) => tracing::error!(
                error = &e as &dyn std::error::Error,
                path = %journal.display(),
                "cannot store the dead-letter journal yet; it is kept for the next start"
            ),
        }
        let shared = Arc::new(RecordPath::new(Components {
            resolver: Arc::new(
                Resolver::new(convert::routing_rules(&cfg)).map_err(component("routing"))?,
            ),
            priority_rules: compile_priority_rules(&cfg)?,
            throttle: Arc::new(ThrottleGroup::new(convert::throttle_settings(
                &cfg.throttling,
            ))),
            critical_throttle: Arc::new(throttling::Throttle::new(
                convert::critical_throttle_settings(&cfg.throttling),
                "critical",
            )),
            contracts: crate::contracts::compile(&cfg, self.schema_roots.as_deref())?,
            config: cfg.clone(),
            queue,
            delivery,
            topics: self.topics.clone(),
        }));
        let manager = StreamManager {
            shared: shared.clone(),
            lag_mode,
            loader,
            // Sources never request the admin API's own address (issue 22).
            registry: {
                let mut registry = self.registry;
                if let Ok(admin) = cfg.server.listen.parse() {
                    registry.set_admin_address(admin);
                }
                registry
            },
            modes: self.modes,
            cursors,
            streams: tokio::sync::Mutex::new(BTreeMap::new()),
            streams_seen: std::sync::Mutex::default(),
            dispatcher: std::sync::Mutex::new(Some(tokio::spawn(record_path::supervise_dispatch(
                shared.clone(),
                self.max_in_flight,
            )))),
            background: std::sync::Mutex::new(workers::spawn(&shared, probe, self.check_interval)),
            start_jitter: self.start_jitter,
            started_at: Instant::now(),
            reload_lock: tokio::sync::Mutex::new(()),
            cluster,
        };
        for (id, src) in &cfg.sources {
            let source = manager.build_source(id, src)?;
            manager.add_stream(id, src, source, src.enabled).await?;
        }
        Ok(manager)
    }
}
