//! Before the pipeline starts: the Kafka cluster made ready (an embedded broker started,
//! or the configured topics created), and every source checked by building it.

use std::sync::Arc;

use api_client::Registry;
use stream_config::StreamConfig;

use crate::{component, Result};
pub use producer::{MissingTopic, MissingTopics, TopicCreator};

/// What `prepare_kafka` started. Keep it for the life of the process: dropping it stops an
/// embedded broker.
#[derive(Debug)]
pub struct KafkaHandle {
    embedded: Option<producer::EmbeddedBroker>,
    /// Creates topics on a real cluster (none with an embedded broker).
    creator: Option<Arc<TopicCreator>>,
    /// Refused topics, tried again every 30 s until none is left.
    missing: MissingTopics,
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

    /// What creates the topics a runtime update or a topic template names for the first
    /// time (give it to [`crate::Builder::topic_creator`]); none with an embedded broker.
    pub fn topic_creator(&self) -> Option<Arc<TopicCreator>> {
        self.creator.clone()
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
            creator: None,
            missing: Default::default(),
        });
    }
    if !cfg.kafka.create_topics {
        return Ok(KafkaHandle {
            embedded: None,
            creator: None,
            missing: MissingTopics::default(),
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
        // The workers' coordination topic (one partition per slot) and, on nothing but
        // Kafka, their state topic: the cluster crate's specs, with the defaults here.
        let state_on_kafka = !store::Database::is_shared(&cfg.dlq.url);
        for spec in crate::convert::cluster_settings(&cfg.cluster).topics(state_on_kafka) {
            topics.entry(spec.name).or_insert_with(|| {
                let mut topic = stream_config::TopicConfig {
                    partitions: spec.partitions,
                    ..stream_config::TopicConfig::default()
                };
                if spec.compacted {
                    topic.retention_ms = -1;
                    topic.cleanup_policy = Some(stream_config::CleanupPolicy::Compact);
                }
                topic
            });
        }
    }
    let missing = MissingTopics::default();
    let creator = TopicCreator::start(cfg.kafka.clone(), cfg.topics.clone(), missing.clone());
    creator.ensure_with(topics, true).await;
    Ok(KafkaHandle {
        embedded: None,
        creator: Some(creator),
        missing,
    })
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
