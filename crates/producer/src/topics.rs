//! Topics made to exist before records go to them: those the configuration names, at
//! start and with every runtime update, and templated ones the first time one resolves
//! to a new name. A topic the cluster refuses is kept in [`MissingTopics`] (named by
//! `/ready`) and tried again every 30 s.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use stream_config::{KafkaConfig, TopicConfig};

/// Most topic names one process creates or remembers: a template that resolves to a
/// new name per record (a record's id, a timestamp) must not create topics without end.
pub(crate) const MAX_KNOWN_TOPICS: usize = 10_000;

/// How often refused topics are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(30);

/// The topics the configuration names that the cluster refused to create, as they
/// stand (a handle shared with the task that tries them again).
#[derive(Debug, Clone, Default)]
pub struct MissingTopics(Arc<Mutex<Vec<MissingTopic>>>);

impl MissingTopics {
    /// The topics still missing.
    pub fn list(&self) -> Vec<MissingTopic> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, topics: Vec<MissingTopic>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = topics;
    }

    fn add(&self, topics: Vec<MissingTopic>) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for t in topics {
            list.retain(|m| m.topic != t.topic);
            list.push(t);
        }
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

/// Creates topics on a real cluster before records go to them (an embedded broker has
/// none to create: it makes a topic when first asked for it).
#[derive(Debug)]
pub struct TopicCreator {
    kafka: KafkaConfig,
    /// The `topics` section: settings of the topics it lists; others get its defaults.
    settings: BTreeMap<String, TopicConfig>,
    /// Every topic created, found, refused or given up on: not asked for again here.
    known: RwLock<HashSet<String>>,
    missing: MissingTopics,
    /// One creation request at a time (two sources resolving the same new name wait
    /// for one answer).
    creating: tokio::sync::Mutex<()>,
    /// The cap was reached (warned once).
    capped: std::sync::atomic::AtomicBool,
}

impl TopicCreator {
    /// A creator for the cluster of `kafka`, with the `topics` section's settings, that
    /// keeps refusals in `missing` and tries them again every 30 s while it lives (a
    /// task on the current tokio runtime).
    pub fn start(
        kafka: KafkaConfig,
        settings: BTreeMap<String, TopicConfig>,
        missing: MissingTopics,
    ) -> Arc<Self> {
        let creator = Arc::new(Self {
            kafka,
            settings,
            known: RwLock::new(HashSet::new()),
            missing,
            creating: tokio::sync::Mutex::new(()),
            capped: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(retry_refused(Arc::downgrade(&creator)));
        creator
    }

    /// True when `topic` needs nothing more from this creator.
    pub fn is_known(&self, topic: &str) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
    }

    /// The topics refused so far (shared with `/ready`).
    pub fn missing(&self) -> MissingTopics {
        self.missing.clone()
    }

    /// Makes each of `topics` not asked for yet exist, with its settings from the
    /// `topics` section or that section's defaults.
    pub async fn ensure(&self, topics: impl IntoIterator<Item = String>) {
        let wanted = topics
            .into_iter()
            .map(|t| {
                let settings = self.settings.get(&t).cloned().unwrap_or_default();
                (t, settings)
            })
            .collect();
        self.ensure_with(wanted, false).await;
    }

    /// Like [`Self::ensure`] with the settings given. `at_start`: a cluster that cannot
    /// be reached leaves nothing missing (the topics may exist; the producer will say).
    pub async fn ensure_with(&self, mut wanted: BTreeMap<String, TopicConfig>, at_start: bool) {
        wanted.retain(|t, _| !self.is_known(t));
        if wanted.is_empty() {
            return;
        }
        let _one = self.creating.lock().await;
        let room = {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            wanted.retain(|t, _| !known.contains(t));
            MAX_KNOWN_TOPICS.saturating_sub(known.len())
        };
        if wanted.len() > room {
            if !self.capped.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::error!(
                    cap = MAX_KNOWN_TOPICS,
                    "more topic names than this process creates; records for new ones are dead-lettered as unknown_topic unless the topics exist (a topic template that resolves to a new name per record?)"
                );
            }
            while wanted.len() > room {
                wanted.pop_last();
            }
        }
        if wanted.is_empty() {
            return;
        }
        let refused = refused(&self.kafka, &wanted, true).await;
        {
            let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
            known.extend(wanted.keys().cloned());
        }
        match refused {
            Some(refused) => self.missing.add(refused),
            None if at_start => {}
            None => self.missing.add(
                wanted
                    .into_keys()
                    .map(|topic| MissingTopic {
                        topic,
                        why: "the cluster could not be reached to create it".to_owned(),
                    })
                    .collect(),
            ),
        }
    }
}

/// Tries the refused topics again every 30 s, as long as the creator lives; a topic
/// created meanwhile by someone else counts as there.
async fn retry_refused(creator: Weak<TopicCreator>) {
    loop {
        tokio::time::sleep(RETRY_EVERY).await;
        let Some(c) = creator.upgrade() else { return };
        let still = c.missing.list();
        if still.is_empty() {
            continue;
        }
        let topics = still
            .iter()
            .map(|m| {
                let settings = c.settings.get(&m.topic).cloned().unwrap_or_default();
                (m.topic.clone(), settings)
            })
            .collect();
        let _one = c.creating.lock().await;
        // The cluster unreachable now: the list stands, tried again later.
        if let Some(left) = refused(&c.kafka, &topics, false).await {
            if left.is_empty() {
                tracing::info!("every topic the configuration names exists now");
            }
            c.missing.set(left);
        }
    }
}

/// Creates what is missing of `topics`; returns the topics the broker refused, or
/// `None` when the cluster's metadata could not be read.
async fn refused(
    kafka: &KafkaConfig,
    topics: &BTreeMap<String, TopicConfig>,
    log: bool,
) -> Option<Vec<MissingTopic>> {
    let mut missing = Vec::new();
    let client = crate::client_config(kafka);
    let created = crate::ensure_topics(
        &client,
        topics,
        kafka.compression_type,
        Duration::from_secs(15),
    );
    match created.await {
        Ok(o) => {
            for (topic, outcome) in o {
                match outcome {
                    crate::TopicOutcome::Refused(why) => {
                        if log {
                            tracing::error!(%topic, %why, "the broker refused to create a topic the configuration names; records routed there are dead-lettered until it exists (tried again every 30 s)");
                        }
                        missing.push(MissingTopic { topic, why });
                    }
                    // `ensure_topics` logged the creation.
                    crate::TopicOutcome::Created | crate::TopicOutcome::Existed => {}
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
