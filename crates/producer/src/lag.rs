//! `KafkaLagProbe`: consumer lag of watched groups, for the throttling crate.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use throttling::{Lag, LagProbe};

use crate::security::TokenContext;
use tokio::time::Instant;

/// Reads, for each watched consumer group, its committed offsets on the watched topics
/// against the partitions' high watermarks. A topic where the group has committed
/// nothing is not one it consumes and counts 0. Partition lag below 0 (stale
/// watermarks) counts as 0. Readings are cached for `cache_for`, so probing is cheap.
pub struct KafkaLagProbe {
    config: ClientConfig,
    groups: Vec<String>,
    topics: Vec<String>,
    timeout: Duration,
    cache_for: Duration,
    cache: Mutex<Option<(Instant, Lag)>>,
}

impl std::fmt::Debug for KafkaLagProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLagProbe")
            .field("groups", &self.groups)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl KafkaLagProbe {
    /// A probe for `groups` on `topics`, connecting with `config` (bootstrap servers and
    /// security settings; group ids are set per group).
    pub fn new(config: ClientConfig, groups: Vec<String>, topics: Vec<String>) -> Self {
        Self {
            config,
            groups,
            topics,
            timeout: Duration::from_secs(5),
            cache_for: Duration::from_secs(5),
            cache: Mutex::new(None),
        }
    }

    /// How long a reading is reused.
    pub fn with_cache(mut self, cache_for: Duration) -> Self {
        self.cache_for = cache_for;
        self
    }

    fn read(
        config: ClientConfig,
        groups: &[String],
        topics: &[String],
        timeout: Duration,
    ) -> Result<Lag, throttling::Error> {
        let unavailable =
            |e: rdkafka::error::KafkaError| throttling::Error::ProbeUnavailable(e.into());
        let mut lag = Lag::default();
        for group in groups {
            let mut c = config.clone();
            c.set("group.id", group).set("enable.auto.commit", "false");
            let consumer: BaseConsumer<TokenContext> =
                c.create_with_context(TokenContext).map_err(unavailable)?;
            if crate::security::uses_oauthbearer(&c) {
                // Serves librdkafka's first token request, queued when the client was made.
                let _ = consumer.poll(Duration::ZERO);
            }
            for topic in topics {
                let md = consumer
                    .fetch_metadata(Some(topic), timeout)
                    .map_err(unavailable)?;
                let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                    continue;
                };
                let mut tpl = TopicPartitionList::new();
                for p in t.partitions() {
                    tpl.add_partition(topic, p.id());
                }
                let committed = consumer
                    .committed_offsets(tpl, timeout)
                    .map_err(unavailable)?;
                let mut topic_lag = 0i64;
                for e in committed.elements() {
                    let Offset::Offset(done) = e.offset() else {
                        continue;
                    };
                    let (_, high) = consumer
                        .fetch_watermarks(topic, e.partition(), timeout)
                        .map_err(unavailable)?;
                    topic_lag += (high - done).max(0);
                }
                *lag.by_topic.entry(topic.clone()).or_default() += topic_lag;
                lag.total += topic_lag;
            }
        }
        Ok(lag)
    }
}

#[async_trait]
impl LagProbe for KafkaLagProbe {
    async fn lag(&self) -> Result<Lag, throttling::Error> {
        if let Some((at, lag)) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < self.cache_for {
                return Ok(lag.clone());
            }
        }
        let (config, groups, topics, timeout) = (
            self.config.clone(),
            self.groups.clone(),
            self.topics.clone(),
            self.timeout,
        );
        let lag =
            tokio::task::spawn_blocking(move || Self::read(config, &groups, &topics, timeout))
                .await
                .map_err(|e| throttling::Error::ProbeUnavailable(e.into()))??;
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), lag.clone()));
        Ok(lag)
    }
}
