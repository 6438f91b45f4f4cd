//! Runtime configuration changes.

use std::sync::Arc;

use stream_config::StreamConfig;

use crate::builder::compile_priority_rules;
use crate::{component, convert, Result, StreamManager};

impl StreamManager {
    /// Validates `next` and applies it: routing and priority rules swap at once; only
    /// streams whose configuration changed restart; removed streams stop, new ones start.
    /// Queue and Kafka settings take effect at the next restart. Returns the ids of the
    /// streams that were (re)started or stopped.
    pub async fn apply_config(&self, next: StreamConfig) -> Result<Vec<String>> {
        self.loader.validate(&next, "<update>")?;
        let rules = compile_priority_rules(&next)?;
        let old = self.shared.config();
        // `reload` compiles first and changes nothing on error.
        self.shared
            .resolver
            .reload(convert::routing_rules(&next))
            .map_err(component("routing"))?;
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
