//! `KafkaLagProbe`: consumer lag of watched groups, for the throttling crate. The groups
//! are given, or discovered: every group the cluster lists (ListGroups) that has
//! committed offsets (OffsetFetch) on the watched topics, refreshed periodically.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use throttling::{Lag, LagProbe};

use crate::security::TokenContext;
use tokio::time::Instant;

/// Properties `client_config` sets that a consumer does not take (plus statistics,
/// which nothing reads on the probe's clients).
const PRODUCER_ONLY: &[&str] = &[
    "compression.type",
    "batch.num.messages",
    "linger.ms",
    "acks",
    "enable.idempotence",
    "message.timeout.ms",
    "queue.buffering.max.kbytes",
    "statistics.interval.ms",
];

/// How often a discovering probe lists the cluster's groups again.
pub const DISCOVERY_REFRESH: Duration = Duration::from_secs(30);

/// Which groups a probe watches.
#[derive(Debug, Clone)]
enum Watch {
    /// Exactly these (a group without commits on the topics counts 0).
    Listed(Vec<String>),
    /// Those the cluster lists, but `exclude`, with commits on the topics.
    Discovered {
        exclude: BTreeSet<String>,
        refresh: Duration,
        lister: Lister,
    },
}

/// Where discovery gets the candidate group names.
#[derive(Debug, Clone)]
enum Lister {
    /// Kafka's ListGroups (`KafkaLagProbe::list_groups`).
    Kafka,
    /// A fixed list, for tests on librdkafka's mock cluster (it has no ListGroups).
    #[cfg(test)]
    Fixed(Vec<String>),
}

/// What the last listing found, and when.
#[derive(Debug, Default)]
struct Discovered {
    at: Option<Instant>,
    /// The listed groups (but the excluded) that had commits on the topics.
    groups: Vec<String>,
    /// The last listing's failure (kept until a listing succeeds).
    error: Option<String>,
}

/// Reads, for each watched consumer group, its committed offsets on the watched topics
/// against the partitions' high watermarks. A topic where the group has committed
/// nothing is not one it consumes and counts 0. Partition lag below 0 (stale
/// watermarks) counts as 0. Readings are cached for `cache_for`, so probing is cheap.
/// Each reading names its groups with their lag (`Lag::by_group`).
pub struct KafkaLagProbe {
    config: ClientConfig,
    watch: Watch,
    topics: Vec<String>,
    timeout: Duration,
    cache_for: Duration,
    cache: Mutex<Option<(Instant, Lag)>>,
    discovered: Mutex<Discovered>,
}

impl std::fmt::Debug for KafkaLagProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLagProbe")
            .field("watch", &self.watch)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl KafkaLagProbe {
    /// A probe for `groups` on `topics`, connecting with `config` (bootstrap servers and
    /// security settings; group ids are set per group).
    pub fn new(config: ClientConfig, groups: Vec<String>, topics: Vec<String>) -> Self {
        Self::with_watch(config, Watch::Listed(groups), topics)
    }

    /// A probe watching every consumer group with committed offsets on `topics`, but
    /// those in `exclude` (the service's own groups): the groups are listed with Kafka's
    /// ListGroups every [`DISCOVERY_REFRESH`], and a listed group counts once it has an
    /// offset committed on one of `topics`. While the cluster refuses the listing
    /// (an old broker, no `DESCRIBE` right on groups) every reading fails with its
    /// error and the throttle stays as it is.
    pub fn discovering(config: ClientConfig, topics: Vec<String>, exclude: Vec<String>) -> Self {
        Self::with_watch(
            config,
            Watch::Discovered {
                exclude: exclude.into_iter().collect(),
                refresh: DISCOVERY_REFRESH,
                lister: Lister::Kafka,
            },
            topics,
        )
    }

    fn with_watch(mut config: ClientConfig, watch: Watch, topics: Vec<String>) -> Self {
        // The probe's clients are consumers: librdkafka warns (CONFWARN) about every
        // producer property at each client's creation, several times a minute here.
        for key in PRODUCER_ONLY {
            config.remove(key);
        }
        Self {
            config,
            watch,
            topics,
            timeout: Duration::from_secs(5),
            cache_for: Duration::from_secs(5),
            cache: Mutex::new(None),
            discovered: Mutex::new(Discovered::default()),
        }
    }

    /// How long a reading is reused.
    pub fn with_cache(mut self, cache_for: Duration) -> Self {
        self.cache_for = cache_for;
        self
    }

    /// How often a discovering probe lists the groups again (default
    /// [`DISCOVERY_REFRESH`]); no effect on a probe of given groups.
    pub fn with_refresh(mut self, every: Duration) -> Self {
        if let Watch::Discovered { refresh, .. } = &mut self.watch {
            *refresh = every;
        }
        self
    }

    /// The group names Kafka's ListGroups returns, from every broker. On a plaintext
    /// cluster ListGroups is sent directly (`list_groups.rs`: librdkafka's listing adds
    /// DescribeGroups, which tansu 0.6 fails); with TLS or SASL through librdkafka.
    fn list_groups(
        config: &ClientConfig,
        topics: &[String],
        timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let consumer = metadata_consumer(config).map_err(|e| e.to_string())?;
        let plaintext = config
            .get("security.protocol")
            .is_none_or(|p| p.eq_ignore_ascii_case("plaintext"));
        if !plaintext {
            let list = consumer
                .fetch_group_list(None, timeout)
                .map_err(|e| e.to_string())?;
            return Ok(list.groups().iter().map(|g| g.name().to_owned()).collect());
        }
        // The brokers (one topic's metadata names them all without listing every topic).
        let md = consumer
            .fetch_metadata(topics.first().map(String::as_str), timeout)
            .map_err(|e| e.to_string())?;
        let brokers: Vec<String> = md
            .brokers()
            .iter()
            .map(|b| format!("{}:{}", b.host(), b.port()))
            .collect();
        let client_id = config.get("client.id").unwrap_or("stream-manager");
        crate::list_groups::list_groups(&brokers, client_id, timeout)
    }

    /// Reads the lag of `groups` on `topics`. With `committed_only`, a group that has
    /// no offset committed on any of the topics is left out of the reading.
    fn read(
        config: &ClientConfig,
        groups: &[String],
        topics: &[String],
        timeout: Duration,
        committed_only: bool,
    ) -> Result<Lag, KafkaError> {
        let mut lag = Lag::default();
        // The partitions and their high watermarks, read once for every group.
        let meta = metadata_consumer(config)?;
        let mut partitions = TopicPartitionList::new();
        let mut high = BTreeMap::new();
        for topic in topics {
            let md = meta.fetch_metadata(Some(topic), timeout)?;
            let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                continue;
            };
            lag.by_topic.insert(topic.clone(), 0);
            for p in t.partitions() {
                partitions.add_partition(topic, p.id());
                let (_, h) = meta.fetch_watermarks(topic, p.id(), timeout)?;
                high.insert((topic.clone(), p.id()), h);
            }
        }
        for group in groups {
            let mut c = config.clone();
            c.set("group.id", group).set("enable.auto.commit", "false");
            let consumer: BaseConsumer<TokenContext> = c.create_with_context(TokenContext)?;
            if crate::security::uses_oauthbearer(&c) {
                // Serves librdkafka's first token request, queued when the client was made.
                let _ = consumer.poll(Duration::ZERO);
            }
            let committed = if partitions.count() == 0 {
                TopicPartitionList::new()
            } else {
                consumer.committed_offsets(partitions.clone(), timeout)?
            };
            let mut group_lag = 0i64;
            let mut any = false;
            for e in committed.elements() {
                let Offset::Offset(done) = e.offset() else {
                    continue;
                };
                any = true;
                let h = high
                    .get(&(e.topic().to_owned(), e.partition()))
                    .copied()
                    .unwrap_or(done);
                let l = (h - done).max(0);
                *lag.by_topic.entry(e.topic().to_owned()).or_default() += l;
                group_lag += l;
            }
            if any || !committed_only {
                lag.by_group.insert(group.clone(), group_lag);
                lag.total += group_lag;
            }
        }
        Ok(lag)
    }

    /// The groups to read now: the given ones, or the discovered ones (listed again
    /// when the last listing is older than the refresh interval; then `true`). `Err`
    /// while the listing fails.
    async fn groups(&self) -> Result<(Vec<String>, bool), throttling::Error> {
        let (exclude, refresh, lister) = match &self.watch {
            Watch::Listed(groups) => return Ok((groups.clone(), false)),
            Watch::Discovered {
                exclude,
                refresh,
                lister,
            } => (exclude, *refresh, lister),
        };
        {
            let d = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
            if d.at.is_some_and(|at| at.elapsed() < refresh) {
                return match &d.error {
                    Some(e) => Err(listing_failed(e.clone())),
                    None => Ok((d.groups.clone(), false)),
                };
            }
        }
        let listed = match lister {
            Lister::Kafka => {
                let (config, topics, timeout) =
                    (self.config.clone(), self.topics.clone(), self.timeout);
                tokio::task::spawn_blocking(move || Self::list_groups(&config, &topics, timeout))
                    .await
                    .map_err(|e| throttling::Error::ProbeUnavailable(e.into()))?
            }
            #[cfg(test)]
            Lister::Fixed(names) => Ok(names.clone()),
        };
        let mut d = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        d.at = Some(Instant::now());
        match listed {
            Ok(names) => {
                let mut names: Vec<String> =
                    names.into_iter().filter(|g| !exclude.contains(g)).collect();
                names.sort();
                names.dedup();
                d.groups = names;
                d.error = None;
                Ok((d.groups.clone(), true))
            }
            Err(e) => {
                // The caller logs it (the lag checker: once, until the failure changes).
                d.error = Some(e.clone());
                Err(listing_failed(e))
            }
        }
    }
}

fn listing_failed(why: String) -> throttling::Error {
    throttling::Error::ProbeUnavailable(format!("listing consumer groups failed: {why}").into())
}

/// A client for metadata, watermarks and group listing: no group id, so it joins nothing.
fn metadata_consumer(config: &ClientConfig) -> Result<BaseConsumer<TokenContext>, KafkaError> {
    let consumer: BaseConsumer<TokenContext> = config.create_with_context(TokenContext)?;
    if crate::security::uses_oauthbearer(config) {
        let _ = consumer.poll(Duration::ZERO);
    }
    Ok(consumer)
}

#[async_trait]
impl LagProbe for KafkaLagProbe {
    async fn lag(&self) -> Result<Lag, throttling::Error> {
        if let Some((at, lag)) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < self.cache_for {
                return Ok(lag.clone());
            }
        }
        let (groups, listed) = self.groups().await?;
        let discovering = matches!(self.watch, Watch::Discovered { .. });
        let (config, topics, timeout) = (self.config.clone(), self.topics.clone(), self.timeout);
        let lag = tokio::task::spawn_blocking(move || {
            Self::read(&config, &groups, &topics, timeout, discovering)
        })
        .await
        .map_err(|e| throttling::Error::ProbeUnavailable(e.into()))?
        .map_err(|e| throttling::Error::ProbeUnavailable(e.into()))?;
        if listed {
            // Until the next listing, only the groups with commits on the topics are read.
            self.discovered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .groups = lag.by_group.keys().cloned().collect();
        }
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), lag.clone()));
        Ok(lag)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::consumer::CommitMode;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

    use super::*;

    fn config(bootstrap: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap);
        c
    }

    fn produce(bootstrap: &str, topic: &str, n: usize) {
        let p: BaseProducer = config(bootstrap).create().unwrap();
        for i in 0..n {
            let key = i.to_string();
            p.send(BaseRecord::to(topic).key(&key).payload("x"))
                .unwrap();
        }
        p.flush(Duration::from_secs(10)).unwrap();
    }

    fn commit(bootstrap: &str, group: &str, topic: &str, offset: i64) {
        let mut c = config(bootstrap);
        c.set("group.id", group);
        let consumer: BaseConsumer = c.create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
            .unwrap();
        consumer.commit(&tpl, CommitMode::Sync).unwrap();
    }

    fn probe(bootstrap: &str, listed: &[&str], refresh: Duration) -> KafkaLagProbe {
        KafkaLagProbe::with_watch(
            config(bootstrap),
            Watch::Discovered {
                exclude: ["stream-manager".to_owned()].into(),
                refresh,
                lister: Lister::Fixed(listed.iter().map(|g| (*g).to_owned()).collect()),
            },
            vec!["ours".to_owned()],
        )
        .with_cache(Duration::ZERO)
    }

    // librdkafka's mock cluster has no ListGroups: the listing is given here (the e2e
    // `lag_discovery` scenario lists on tansu); what runs for real is everything after
    // it: the exclusions, OffsetFetch per group, watermarks, and the refresh.
    #[tokio::test]
    async fn discovery_keeps_the_listed_groups_with_commits_on_our_topics() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("ours", 1, 1).unwrap();
        mock.create_topic("theirs", 1, 1).unwrap();
        let b = mock.bootstrap_servers();
        produce(&b, "ours", 50);
        produce(&b, "theirs", 5);
        commit(&b, "analytics", "ours", 20);
        commit(&b, "elsewhere", "theirs", 1);
        commit(&b, "stream-manager", "ours", 0);
        let listed = ["analytics", "elsewhere", "idle", "stream-manager"];

        let p = probe(&b, &listed, Duration::from_secs(3600));
        let lag = p.lag().await.unwrap();
        assert_eq!(
            lag.by_group,
            BTreeMap::from([("analytics".to_owned(), 30)]),
            "commits elsewhere, none at all, or our own group: not watched"
        );
        assert_eq!(lag.total, 30);
        assert_eq!(lag.by_topic["ours"], 30);

        // A group that starts committing on our topics joins at the next listing.
        commit(&b, "elsewhere", "ours", 45);
        assert_eq!(
            p.lag().await.unwrap().by_group.len(),
            1,
            "not before the refresh"
        );
        let fresh = probe(&b, &listed, Duration::ZERO);
        let lag = fresh.lag().await.unwrap();
        assert_eq!(
            lag.by_group,
            BTreeMap::from([("analytics".to_owned(), 30), ("elsewhere".to_owned(), 5)])
        );
        assert_eq!(lag.total, 35);
    }

    #[tokio::test(start_paused = true)]
    async fn the_groups_are_listed_again_every_refresh_interval() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("ours", 1, 1).unwrap();
        let b = mock.bootstrap_servers();
        produce(&b, "ours", 10);
        commit(&b, "analytics", "ours", 4);
        let p = probe(&b, &["analytics", "late"], DISCOVERY_REFRESH);
        let watched = |lag: Lag| lag.by_group.into_keys().collect::<Vec<_>>();
        assert_eq!(watched(p.lag().await.unwrap()), ["analytics"]);
        commit(&b, "late", "ours", 9);
        tokio::time::advance(DISCOVERY_REFRESH - Duration::from_secs(1)).await;
        assert_eq!(
            watched(p.lag().await.unwrap()),
            ["analytics"],
            "a second before the next listing"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let lag = p.lag().await.unwrap();
        assert_eq!(
            lag.by_group,
            BTreeMap::from([("analytics".to_owned(), 6), ("late".to_owned(), 1)]),
            "at the listing"
        );
    }

    #[tokio::test]
    async fn given_groups_are_read_even_without_commits() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("ours", 1, 1).unwrap();
        let b = mock.bootstrap_servers();
        produce(&b, "ours", 10);
        let p = KafkaLagProbe::new(config(&b), vec!["idle".into()], vec!["ours".into()]);
        let lag = p.lag().await.unwrap();
        assert_eq!(lag.by_group, BTreeMap::from([("idle".to_owned(), 0)]));
    }
}
