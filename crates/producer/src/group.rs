//! Group membership for workers sharing sources: a Kafka consumer in a consumer group on
//! a coordination topic whose partitions are slots. It reads no records; Kafka's group
//! coordinator decides which member owns which partitions (cooperative-sticky: a join or
//! leave moves as few as it can), and this module reports the decisions as events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::Error;

/// What the group decided for this member.
#[derive(Debug)]
pub enum GroupEvent {
    /// These slots are now this member's.
    Assigned(Vec<u32>),
    /// These slots are taken away. Stop what they cover and settle it, then send on
    /// `done`: the group waits for it (up to the handover timeout) before another member
    /// gets them. `lost` is true when the membership itself was lost (a session timeout:
    /// another member may already own them).
    Revoked {
        /// The slots.
        slots: Vec<u32>,
        /// The membership was lost rather than the slots handed over.
        lost: bool,
        /// Send once the slots' sources are stopped and settled.
        done: mpsc::Sender<()>,
    },
}

/// The settings of a membership.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// The consumer group.
    pub group_id: String,
    /// The coordination topic (one partition per slot).
    pub topic: String,
    /// This member's name (`group.instance.id` is not used: a restarted worker rejoins).
    pub worker_id: String,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// How long a revoke waits for the manager to settle the slots' sources.
    pub handover_timeout: Duration,
}

/// A running membership: leaves the group when dropped (its slots are revoked first).
pub struct GroupMember {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember").finish_non_exhaustive()
    }
}

struct GroupContext {
    events: UnboundedSender<GroupEvent>,
    handover: Duration,
    worker: String,
}

impl ClientContext for GroupContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::forward_log("group", level, fac, log_message);
    }

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        crate::oidc::token(config)
    }
}

fn slots(tpl: &rdkafka::TopicPartitionList) -> Vec<u32> {
    tpl.elements()
        .iter()
        .filter_map(|e| u32::try_from(e.partition()).ok())
        .collect()
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let slots = slots(tpl);
            if slots.is_empty() {
                return;
            }
            let lost = consumer.assignment_lost();
            tracing::info!(worker = %self.worker, ?slots, lost, "slots revoked");
            let (done, wait) = mpsc::channel();
            let sent = self.events.send(GroupEvent::Revoked { slots, lost, done });
            // Nobody listening (the manager has stopped): nothing to settle.
            if sent.is_ok() && wait.recv_timeout(self.handover).is_err() {
                tracing::warn!(
                    worker = %self.worker,
                    timeout_s = self.handover.as_secs_f64(),
                    "revoked slots not settled within the handover timeout; letting them go"
                );
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let slots = slots(tpl);
                if !slots.is_empty() {
                    tracing::info!(worker = %self.worker, ?slots, "slots assigned");
                    let _ = self.events.send(GroupEvent::Assigned(slots));
                }
            }
            Rebalance::Error(e) => {
                tracing::warn!(worker = %self.worker, error = %e, "group rebalance failed")
            }
            Rebalance::Revoke(_) => {}
        }
    }
}

impl GroupMember {
    /// Joins `settings.group_id` with `config` (bootstrap servers and security of the
    /// `kafka` section). Events arrive on the returned receiver; the member polls the
    /// group on its own thread until dropped.
    pub fn join(
        config: &ClientConfig,
        settings: &GroupSettings,
    ) -> Result<(Self, UnboundedReceiver<GroupEvent>), Error> {
        // The whole client configuration (bootstrap, security, `librdkafka_options`),
        // as the lag probe and the state log use it; the producer-only properties in it
        // are ignored by a consumer.
        let mut c = config.clone();
        c.set("group.id", &settings.group_id)
            .set("client.id", &settings.worker_id)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (settings.session_timeout.as_millis() / 5)
                    .max(100)
                    .to_string(),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "latest");
        let (tx, rx) = unbounded_channel();
        let context = GroupContext {
            events: tx,
            handover: settings.handover_timeout,
            worker: settings.worker_id.clone(),
        };
        let consumer: BaseConsumer<GroupContext> = c
            .create_with_context(context)
            .map_err(crate::security::config_error)?;
        consumer
            .subscribe(&[&settings.topic])
            .map_err(|e| Error::kafka("joining the worker group", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("group member".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                        tracing::debug!(error = %e, "worker group poll");
                    }
                }
                // Leave the group: the revoke of every slot runs here (it finds the
                // manager gone or settles), then the coordinator rebalances at once
                // instead of after a session timeout.
                consumer.unsubscribe();
                let _ = consumer.poll(Duration::from_millis(100));
            })
            .map_err(|e| Error::kafka("starting the worker group thread", e))?;
        Ok((
            Self {
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// Leaves the group and waits for the thread to finish.
    pub fn leave(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        self.shutdown();
    }
}
