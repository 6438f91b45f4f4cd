//! Ingestion modes as a trait, and the registry that builds them by name: the three
//! built-in ones beside any a program using the crates registers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use stream_config::IngestionConfig;

use crate::modes::{ModeContext, ModeSpec, StopReport};
use crate::schedule::Error;

/// An ingestion mode: when a source is polled and how its records are handed on. It
/// runs until the stream is stopped, polling through [`ModeContext::poll`] (one fetch,
/// its cursor registered) and handing records on with [`ModeContext::emit`]. Every
/// record a poll returns must be emitted: a fetch's cursor is committed only once all
/// its records are settled. `run` returns soon after [`ModeContext::is_stopping`].
///
/// # Adding a new ingestion mode
///
/// The seed's four steps ("extend `IngestionMode`, implement `start()` and `stop()`,
/// register in `IngestionModeFactory`, update config validation") become three: implement
/// this trait (`run` is `start`; returning once the context says it is stopping is
/// `stop`), register a factory by name in a [`ModeRegistry`] and hand it to the manager
/// (`StreamManager::builder(cfg).ingestion_modes(modes)`), and name it in the config,
/// `ingestion: { mode: <name> }`. Validation needs no change: a loader given the
/// registry's names ([`stream_config::Loader::with_ingestion_modes`], which the
/// manager's builder does) refuses a name nobody registered, listing those that are.
///
/// ```rust
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use api_client::{CursorTracker, MemoryCursorStore, Registry};
/// use ingestion_modes::{start_mode, Emitted, IngestionMode, ModeContext, ModeRegistry, StopReport};
/// use stream_config::{Format, Loader};
///
/// // 1. The mode: every `every`, up to `polls` fetches back to back (a quick catch-up
/// //    on a backlog), each emitted as it comes.
/// #[derive(Debug)]
/// struct Burst {
///     every: Duration,
///     polls: u32,
/// }
///
/// #[async_trait::async_trait]
/// impl IngestionMode for Burst {
///     fn name(&self) -> &str {
///         "burst"
///     }
///
///     async fn run(&self, ctx: &ModeContext) -> StopReport {
///         loop {
///             for _ in 0..self.polls {
///                 let Some(batch) = ctx.poll().await else { break };
///                 if ctx.emit(batch).await.is_err() {
///                     return StopReport::default(); // the pipeline is gone
///                 }
///             }
///             if !ctx.sleep(self.every).await {
///                 return StopReport::default(); // stopped
///             }
///         }
///     }
/// }
///
/// // 2. Registered by name, beside the built-in modes. (Its settings come from the
/// //    source's `ingestion` section; `stream_config::seconds` never panics.)
/// let mut modes = ModeRegistry::builtin();
/// modes.register("burst", |_id, ing| {
///     let every = stream_config::seconds(ing.polling_interval_seconds);
///     Ok(Arc::new(Burst { every, polls: 3 }) as Arc<dyn IngestionMode>)
/// });
/// assert_eq!(modes.names(), ["batch", "burst", "continuous_streaming", "real_time"]);
///
/// // 3. Named by the config, checked by validation against the registered names.
/// let yaml = "
/// sources:
///   sensors:
///     source_type: synthetic
///     ingestion: { mode: burst, polling_interval_seconds: 60 }
///     custom_params: { records_per_second: 5 }
/// ";
/// let loader = Loader::new().with_ingestion_modes(modes.names());
/// let cfg = loader.load_str(yaml, Format::Yaml, "burst.yaml").unwrap();
/// let typo = loader.load_str(&yaml.replace("burst", "bursty"), Format::Yaml, "typo.yaml");
/// let message = typo.unwrap_err().to_string();
/// assert!(message.contains("sources.sensors.ingestion.mode"), "{message}");
/// assert!(message.contains("registered: batch, burst, continuous_streaming, real_time"), "{message}");
///
/// // Running it: a burst stops at the first poll that brings nothing (the synthetic
/// // source has just been read), then waits a minute.
/// let src = &cfg.sources["sensors"];
/// let source = Registry::builtin().build("sensors", src).unwrap();
/// let store = Arc::new(MemoryCursorStore::default());
/// let tracker = Arc::new(CursorTracker::load("sensors", store).await.unwrap());
/// let mode = modes.build("sensors", &src.ingestion).unwrap();
/// let (tx, mut rx) = tokio::sync::mpsc::channel::<Emitted>(16);
/// tokio::time::sleep(Duration::from_secs(1)).await; // one second of synthetic readings
/// let handle = start_mode("sensors", mode, source, tracker, Arc::new(tx), Duration::ZERO);
/// let first = rx.recv().await.unwrap();
/// assert!(!first.records.is_empty());
/// tokio::time::sleep(Duration::from_secs(30)).await;
/// assert_eq!(handle.stats().polls, 2, "one with records, one empty, then a pause");
/// tokio::time::sleep(Duration::from_secs(31)).await;
/// assert_eq!(handle.stats().polls, 4, "the next burst a minute later");
/// assert_eq!(handle.stats().empty_polls, 2);
/// handle.stop(Duration::from_secs(1)).await;
/// # }
/// ```
#[async_trait]
pub trait IngestionMode: Send + Sync + fmt::Debug {
    /// The mode's name (the `mode` label of its metrics).
    fn name(&self) -> &str;

    /// Polls and emits until the stream stops.
    async fn run(&self, ctx: &ModeContext) -> StopReport;
}

/// Builds a mode for source `id` from its `ingestion` section.
pub type ModeFactory =
    Arc<dyn Fn(&str, &IngestionConfig) -> Result<Arc<dyn IngestionMode>, Error> + Send + Sync>;

/// Ingestion modes by name. [`ModeRegistry::builtin`] has `batch`, `real_time` and
/// `continuous_streaming`; a program adds its own with [`ModeRegistry::register`], and
/// a source selects one with `ingestion.mode: <name>`.
#[derive(Clone)]
pub struct ModeRegistry {
    factories: BTreeMap<String, ModeFactory>,
}

impl fmt::Debug for ModeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModeRegistry")
            .field("modes", &self.names())
            .finish()
    }
}

impl Default for ModeRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ModeRegistry {
    /// The three built-in modes.
    pub fn builtin() -> Self {
        let mut r = Self {
            factories: BTreeMap::new(),
        };
        for name in ["batch", "real_time", "continuous_streaming"] {
            r.register(name, |_, cfg| {
                Ok(Arc::new(ModeSpec::from_config(cfg)?) as Arc<dyn IngestionMode>)
            });
        }
        r
    }

    /// Adds (or replaces) the mode `name`.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(&str, &IngestionConfig) -> Result<Arc<dyn IngestionMode>, Error>
            + Send
            + Sync
            + 'static,
    ) {
        self.factories.insert(name.to_owned(), Arc::new(factory));
    }

    /// The registered names.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// The mode `cfg.mode` names, for source `id`.
    pub fn build(&self, id: &str, cfg: &IngestionConfig) -> Result<Arc<dyn IngestionMode>, Error> {
        let name = cfg.mode.name();
        let factory = self.factories.get(name).ok_or_else(|| Error::UnknownMode {
            name: name.to_owned(),
            known: self.names().join(", "),
        })?;
        factory(id, cfg)
    }
}
