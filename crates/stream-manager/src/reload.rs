//! Runtime configuration changes.

use std::sync::Arc;

use stream_config::StreamConfig;

use crate::builder::compile_priority_rules;
use crate::{component, convert, Result, StreamManager};

impl StreamManager {
    /// Checks `next` in full, then applies it: routing and priority rules swap at once;
    /// only streams whose configuration changed restart; removed streams stop, new ones
    /// start. Queue and Kafka settings take effect at the next restart. Returns the ids
    /// of the streams that were (re)started or stopped.
    ///
    /// Nothing changes unless everything checks: the configuration's rules, the routing
    /// and priority rules compiled, and every new or changed source built with its
    /// connector parameters and ingestion schedule. Concurrent calls run one at a time.
    pub async fn apply_config(&self, next: StreamConfig) -> Result<Vec<String>> {
        let _one_at_a_time = self.reload_lock.lock().await;
        self.loader.validate(&next, "<update>")?;
        let rules = compile_priority_rules(&next)?;
        let routing = convert::routing_rules(&next);
        topic_resolver::Resolver::check(&routing).map_err(component("routing"))?;
        let old = self.shared.config();
        for (id, src) in &next.sources {
            if old.sources.get(id) != Some(src) {
                self.registry
                    .build(id, src)
                    .map_err(component(format!("source {id}")))?;
                ingestion_modes::ModeSpec::from_config(&src.ingestion)
                    .map_err(component(format!("ingestion of sources.{id}")))?;
            }
        }
        self.shared
            .resolver
            .reload(routing)
            .map_err(component("routing"))?;
        self.shared.delivery.set_dlq_enabled(next.enable_dlq);
        *self
            .shared
            .priority_rules
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(next.clone());
        let mut touched = Vec::new();
        for id in old.sources.keys() {
            if !next.sources.contains_key(id) {
                self.remove_stream(id).await;
                touched.push(id.clone());
            }
        }
        for (id, src) in &next.sources {
            match old.sources.get(id) {
                Some(prev) if prev == src => {}
                Some(_) => {
                    self.remove_stream(id).await;
                    self.add_stream(id, src.clone(), src.enabled).await?;
                    touched.push(id.clone());
                }
                None => {
                    self.add_stream(id, src.clone(), src.enabled).await?;
                    touched.push(id.clone());
                }
            }
        }
        Ok(touched)
    }
}
