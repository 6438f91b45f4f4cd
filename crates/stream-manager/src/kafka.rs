//! Before the pipeline starts: the Kafka cluster made ready (an embedded broker started,
//! or the configured topics created), and every source checked by building it.

use std::time::Duration;

use api_client::Registry;
use stream_config::StreamConfig;

use crate::{component, Result};

/// What `prepare_kafka` started. Keep it for the life of the process: dropping it stops an
/// embedded broker.
#[derive(Debug)]
pub struct KafkaHandle {
    embedded: Option<producer::EmbeddedBroker>,
    /// Refused topics, tried again every 30 s until none is left.
    missing: MissingTopics,
}

/// The topics the configuration names that the cluster refused to create, as they
/// stand (a handle shared with the task that tries them again).
#[derive(Debug, Clone, Default)]
pub struct MissingTopics(std::sync::Arc<std::sync::Mutex<Vec<MissingTopic>>>);

impl MissingTopics {
    /// The topics still missing.
    pub fn list(&self) -> Vec<MissingTopic> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, topics: Vec<MissingTopic>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = topics;
    }
}

/// A topic the configuration names that the cluster refused to create.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingTopic {
    /// The topic.
    pub topic: String,
    /// The broker's answer.
    pub why: String,
}

impl KafkaHandle {
    /// True when an in-process broker serves this process.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// The topics the configuration names that the cluster refused to create (tried
    /// again every 30 s; a topic created meanwhile by someone else counts as there).
    pub fn missing_topics(&self) -> MissingTopics {
        self.missing.clone()
    }
}

/// Readies Kafka for `cfg`. With `bootstrap_servers: embedded`, starts the in-process
/// broker with every static topic (4 partitions unless the `topics` section says
/// otherwise) and points `cfg` at it. Otherwise creates, where missing, every topic the
/// configuration names literally (`StreamConfig::static_topics`: the `topics` section
/// with its settings, the others with its defaults); a failure is logged, not fatal (the
/// topics may exist, or the broker may come up later), and a topic the broker refused
/// is kept in [`KafkaHandle::missing_topics`].
pub async fn prepare_kafka(cfg: &mut StreamConfig) -> Result<KafkaHandle> {
    if cfg.kafka.is_embedded() {
        let topics: Vec<(String, i32)> = cfg
            .static_topics()
            .into_iter()
            .map(|t| {
                let partitions = cfg.topics.get(&t).map_or(4, |c| c.partitions as i32);
                (t, partitions)
            })
            .collect();
        let broker =
            producer::EmbeddedBroker::start(&topics).map_err(component("embedded broker"))?;
        cfg.kafka.bootstrap_servers = broker.bootstrap_servers().to_owned();
        return Ok(KafkaHandle {
            embedded: Some(broker),
            missing: Default::default(),
        });
    }
    let mut topics = cfg.topics.clone();
    // Every topic the config names (a source's own `topic`, the routing rules, the
    // fallback), not only the `topics` section: on a cluster without automatic topic
    // creation a named topic that does not exist dead-letters every record sent to it.
    // Those not in `topics` get its defaults (4 partitions, replication 1, 7 days).
    for topic in cfg.static_topics() {
        topics.entry(topic).or_default();
    }
    if cfg.cluster.enabled {
        // The workers' coordination topic: one partition per slot, no records.
        topics
            .entry(cfg.cluster.coordination_topic())
            .or_insert_with(|| stream_config::TopicConfig {
                partitions: cfg.cluster.slots,
                ..stream_config::TopicConfig::default()
            });
        if !stream_config::ClusterConfig::state_in_postgres(&cfg.dlq.url) {
            // The workers' fetch state: one partition (offsets order every write),
            // compacted, kept forever.
            topics
                .entry(cfg.cluster.state_topic())
                .or_insert_with(|| stream_config::TopicConfig {
                    partitions: 1,
                    retention_ms: -1,
                    cleanup_policy: Some(stream_config::CleanupPolicy::Compact),
                    ..stream_config::TopicConfig::default()
                });
        }
    }
    let kafka = cfg.kafka.clone();
    // The cluster unreachable at start: nothing is known missing (they may exist).
    let missing = refused(&kafka, &topics, true).await.unwrap_or_default();
    let handle = KafkaHandle {
        embedded: None,
        missing: MissingTopics::default(),
    };
    handle.missing.set(missing.clone());
    if !missing.is_empty() {
        // Tried again until the cluster has them (rights granted, created by hand).
        let shared = handle.missing.clone();
        tokio::spawn(async move {
            let mut topics = topics;
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let still = shared.list();
                topics.retain(|t, _| still.iter().any(|m| &m.topic == t));
                // The cluster unreachable now: the list stands, tried again later.
                let Some(left) = refused(&kafka, &topics, false).await else {
                    continue;
                };
                let done = left.is_empty();
                shared.set(left);
                if done {
                    tracing::info!("every topic the configuration names exists now");
                    return;
                }
            }
        });
    }
    Ok(handle)
}

/// Creates what is missing of `topics`; returns the topics the broker refused, or
/// `None` when the cluster's metadata could not be read.
async fn refused(
    kafka: &stream_config::KafkaConfig,
    topics: &std::collections::BTreeMap<String, stream_config::TopicConfig>,
    log: bool,
) -> Option<Vec<MissingTopic>> {
    let mut missing = Vec::new();
    let client = producer::client_config(kafka);
    let created = producer::ensure_topics(
        &client,
        topics,
        kafka.compression_type,
        Duration::from_secs(15),
    );
    match created.await {
        Ok(o) => {
            for (topic, outcome) in o {
                if let producer::TopicOutcome::Refused(why) = outcome {
                    if log {
                        tracing::error!(%topic, %why, "the broker refused to create a topic the configuration names; records routed there are dead-lettered until it exists (tried again every 30 s)");
                    }
                    missing.push(MissingTopic { topic, why });
                }
            }
        }
        Err(e) => {
            if log {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "cannot create the topics the configuration names; continuing (they may exist)"
                );
            }
            return None;
        }
    }
    Some(missing)
}

/// The source types the built-in connectors provide.
pub fn source_types() -> Vec<String> {
    Registry::builtin().names()
}

/// Builds every source of `cfg` with the built-in connectors (`file` sources limited to
/// `file_roots` when given), so connector parameters are checked before anything starts;
/// one line per failing source.
pub fn check_sources(cfg: &StreamConfig, file_roots: Option<&[std::path::PathBuf]>) -> Vec<String> {
    let mut registry = Registry::builtin();
    if let Some(roots) = file_roots {
        registry.restrict_files_to(roots.to_vec());
    }
    let modes = ingestion_modes::ModeRegistry::builtin();
    let sources = cfg.sources.iter();
    let built =
        sources.filter_map(|(id, src)| registry.build(id, src).err().map(|e| e.to_string()));
    let moded = cfg.sources.iter().filter_map(|(id, src)| {
        let e = modes.build(id, &src.ingestion).err()?;
        Some(format!("sources.{id}.ingestion.mode: {e}"))
    });
    built.chain(moded).collect()
}

/// The ingestion modes built in (`batch`, `real_time`, `continuous_streaming`).
pub fn ingestion_modes() -> Vec<String> {
    ingestion_modes::ModeRegistry::builtin().names()
}
