//! Runtime configuration changes.

use std::sync::Arc;

use stream_config::StreamConfig;

use crate::builder::compile_priority_rules;
use crate::{component, convert, Error, Result, StreamManager};

/// Runtime configuration updates (`PUT /config`, SIGHUP), by outcome: `applied`,
/// `refused` (invalid: nothing changed), `needs_restart`.
pub const CONFIG_UPDATES: &str = "config_updates_total";

/// An update that passed every check, with its new and changed sources built.
struct Checked {
    rules: Vec<(topic_resolver::Predicate, queue::Priority)>,
    routing: topic_resolver::Rules,
    built: Vec<(
        String,
        stream_config::SourceConfig,
        Arc<dyn api_client::Source>,
    )>,
    contracts: api_client::Contracts,
}

impl StreamManager {
    /// Everything `apply_config` checks before it changes anything.
    fn check_update(&self, next: &StreamConfig) -> Result<Checked> {
        self.loader.validate(next, "<update>")?;
        let keys = self.shared.config().restart_only_changes(next);
        if !keys.is_empty() {
            return Err(Error::NeedsRestart { keys });
        }
        let rules = compile_priority_rules(next)?;
        let routing = convert::routing_rules(next);
        topic_resolver::Resolver::check(&routing).map_err(component("routing"))?;
        // Every schema compiled now: a broken one changes nothing.
        let contracts = self
            .shared
            .contracts()
            .recompile(next)
            .map_err(crate::component("contracts"))?;
        let old = self.shared.config();
        // New and changed sources, built now (and used below): a bad one changes nothing.
        let mut built = Vec::new();
        for (id, src) in &next.sources {
            if old.sources.get(id) != Some(src) {
                let source = self.build_source(id, src)?;
                (self.modes.build(id, &src.ingestion))
                    .map_err(component(format!("ingestion of sources.{id}")))?;
                built.push((id.clone(), src.clone(), source));
            }
        }
        Ok(Checked {
            rules,
            routing,
            built,
            contracts,
        })
    }

    /// Checks `next` in full, then applies it: routing and priority rules swap at once;
    /// only streams whose configuration changed restart; removed streams stop, new ones
    /// start; the queue's bounds and strategy and the throttles' settings change in
    /// place. Kafka settings take effect at the next restart. Returns the ids
    /// of the streams that were (re)started or stopped.
    ///
    /// Nothing changes unless everything checks: the configuration's rules, the routing
    /// and priority rules compiled, and every new or changed source built with its
    /// connector parameters and ingestion schedule. Concurrent calls run one at a time.
    pub async fn apply_config(&self, next: StreamConfig) -> Result<Vec<String>> {
        let outcome = self.apply_config_once(next).await;
        let label = match &outcome {
            Ok(_) => "applied",
            Err(Error::NeedsRestart { .. }) => "needs_restart",
            Err(_) => "refused",
        };
        metrics::counter!(CONFIG_UPDATES, "outcome" => label).increment(1);
        outcome
    }

    async fn apply_config_once(&self, next: StreamConfig) -> Result<Vec<String>> {
        let _one_at_a_time = self.reload_lock.lock().await;
        // Every check, and every new source built, before anything changes. A panic
        // there (a value no range caught, a library user's connector) refuses the
        // update like any other error: the running configuration goes on and nothing
        // queued is touched (a SIGHUP reload runs inside the main future, where a
        // panic used to end the process without draining).
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.check_update(&next)
        }))
        .map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            tracing::error!(panic = %what, "checking a configuration update panicked; nothing changed");
            Error::Component {
                component: "configuration update".to_owned(),
                source: format!("checking it panicked ({what}); nothing was changed").into(),
            }
        })?;
        let Checked {
            rules,
            routing,
            built,
            contracts,
        } = checked?;
        let old = self.shared.config();
        // Topics the update names for the first time exist before its records go there.
        if let Some(creator) = &self.shared.topics {
            creator.ensure(next.static_topics()).await;
        }
        self.shared
            .resolver
            .reload(routing)
            .map_err(component("routing"))?;
        self.shared.delivery.set_dlq_enabled(next.enable_dlq);
        self.shared
            .throttle
            .reconfigure(convert::throttle_settings(&next.throttling));
        self.shared
            .critical_throttle
            .reconfigure(convert::critical_throttle_settings(&next.throttling));
        // A smaller queue under `drop_oldest` evicts its excess now: dead-lettered like
        // any eviction, so nothing queued is lost.
        let evicted = self.shared.queue.reconfigure(convert::queue_config(&next));
        self.shared
            .dead_letter_items(
                &evicted,
                producer::FailureReason::QueueOverflow,
                "evicted when the queue was made smaller (drop_oldest)",
            )
            .await;
        self.shared
            .reconfigure(Arc::new(next.clone()), rules, contracts);
        let mut touched = Vec::new();
        for id in old.sources.keys() {
            if !next.sources.contains_key(id) {
                self.remove_stream(id).await;
                touched.push(id.clone());
            }
        }
        for (id, src, source) in built {
            if old.sources.contains_key(&id) {
                self.remove_stream(&id).await;
            }
            let run = src.enabled;
            self.add_stream(&id, &src, source, run).await?;
            touched.push(id);
        }
        Ok(touched)
    }
}
