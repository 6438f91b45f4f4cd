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
}

impl KafkaHandle {
    /// True when an in-process broker serves this process.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }
}

/// Readies Kafka for `cfg`. With `bootstrap_servers: embedded`, starts the in-process
/// broker with every static topic (4 partitions unless the `topics` section says
/// otherwise) and points `cfg` at it. Otherwise creates the `topics` section on the
/// cluster; a failure is logged, not fatal (the topics may exist, or the broker may come
/// up later).
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
        });
    }
    let mut topics = cfg.topics.clone();
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
    let outcomes = producer::ensure_topics(
        &producer::client_config(&cfg.kafka),
        &topics,
        cfg.kafka.compression_type,
        Duration::from_secs(15),
    )
    .await;
    match outcomes {
        Ok(o) => {
            for (topic, outcome) in o {
                if let producer::TopicOutcome::Refused(why) = outcome {
                    tracing::error!(%topic, %why, "the broker refused to create a configured topic");
                }
            }
        }
        Err(e) => {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "cannot create configured topics; continuing (they may exist)"
            )
        }
    }
    Ok(KafkaHandle { embedded: None })
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
    cfg.sources
        .iter()
        .filter_map(|(id, src)| registry.build(id, src).err())
        .map(|e| e.to_string())
        .collect()
}
