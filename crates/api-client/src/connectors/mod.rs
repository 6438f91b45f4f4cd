//! The built-in connectors and the registry that builds sources by `source_type`.

mod file;
mod noaa;
mod noaa_fields;
mod noaa_state;
mod public_apis;
mod synthetic;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::http::limits::HttpLimits;
use crate::http::{ClientOptions, HttpApiClient, HttpSpec};
use crate::{Cursor, Error, Fetch, PartStatus, Source, SourceSpec};

pub(crate) use file::FileSource;
pub(crate) use noaa_state::summary as sweep_summary;
pub use synthetic::{SyntheticParams, SyntheticSource};

/// Builds a source from its id, its spec and what the registry knows.
pub(crate) type Factory =
    Arc<dyn Fn(&str, &SourceSpec, &Context) -> Result<Arc<dyn Source>, Error> + Send + Sync>;

/// What the registry knows beyond a source's own configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// The admin API's address: no HTTP source requests it unless allowed explicitly.
    admin: Option<std::net::SocketAddr>,
    /// The generic HTTP limits taken off the source's `custom_params` (built-in HTTP
    /// connectors only, see [`take_http_limits`]).
    limits: HttpLimits,
}

impl Context {
    /// The HTTP client options of source `id`.
    pub(crate) fn options(&self, id: &str, spec: &SourceSpec) -> ClientOptions {
        ClientOptions {
            admin_address: self.admin,
            limits: self.limits.clone(),
            ..ClientOptions::from_source(id, spec)
        }
    }
}

/// The built-in connectors that take the generic HTTP limits ([`HttpLimits`]) beside
/// their own parameters (`http_json` has them in its own [`HttpSpec`]).
pub(crate) const TAKE_HTTP_LIMITS: [&str; 5] = [
    "noaa_weather",
    "nasa_firms",
    "usgs_earthquakes",
    "airnow",
    "purpleair",
];

/// `factory`, reading the generic HTTP limit keys off `custom_params` first: the
/// connector's own parameter struct sees the rest, and every client it builds through
/// [`Context::options`] gets the limits (checked there with `http_json`'s ranges and
/// messages). One place for every built-in connector, so none can drift.
fn take_http_limits(factory: Factory) -> Factory {
    Arc::new(move |id: &str, spec: &SourceSpec, ctx: &Context| {
        let (limits, own) = split_http_limits(id, spec)?;
        let ctx = Context {
            limits,
            ..ctx.clone()
        };
        factory(id, &own, &ctx)
    })
}

/// The generic HTTP limits among `spec`'s parameters, and `spec` without them.
fn split_http_limits(id: &str, spec: &SourceSpec) -> Result<(HttpLimits, SourceSpec), Error> {
    let mut own = spec.clone();
    let mut generic = SourceSpec::new(&spec.source_type);
    for key in HttpLimits::KEYS {
        if let Some(v) = own.params.remove(key) {
            generic.params.insert(key.to_owned(), v);
        }
    }
    Ok((params(id, &generic)?, own))
}

/// Source types by name. [`Registry::builtin`] has the eight built-in connectors; a
/// library user adds their own with [`Registry::register`].
#[derive(Clone)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
    context: Context,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("types", &self.names())
            .finish()
    }
}

impl Registry {
    /// No source types.
    pub fn empty() -> Self {
        Self {
            factories: BTreeMap::new(),
            context: Context::default(),
        }
    }

    /// The built-in connectors: `http_json`, `noaa_weather`, `nasa_firms`,
    /// `usgs_earthquakes`, `airnow`, `purpleair`, `synthetic`, `file`.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register_with_context("http_json", |id, cfg, ctx| {
            let spec: HttpSpec = params(id, cfg)?;
            Ok(Arc::new(HttpApiClient::new(spec, ctx.options(id, cfg))?))
        });
        r.register_with_context("noaa_weather", public_apis::noaa_weather);
        r.register_with_context("nasa_firms", public_apis::nasa_firms);
        r.register_with_context("usgs_earthquakes", public_apis::usgs_earthquakes);
        r.register_with_context("airnow", public_apis::airnow);
        r.register_with_context("purpleair", public_apis::purpleair);
        for name in TAKE_HTTP_LIMITS {
            if let Some(f) = r.factories.get(name).cloned() {
                r.factories.insert(name.to_owned(), take_http_limits(f));
            }
        }
        r.register("synthetic", |id, cfg| {
            let p: SyntheticParams = params(id, cfg)?;
            p.check(id)?;
            Ok(Arc::new(SyntheticSource::new(p)))
        });
        r.register("file", |id, cfg| {
            Ok(Arc::new(FileSource::new(id, params(id, cfg)?, None)?))
        });
        r
    }

    /// `file` sources may read only files under `roots` (checked after resolving `..`
    /// and symbolic links); without this call they may read any file.
    pub fn restrict_files_to(&mut self, roots: Vec<std::path::PathBuf>) {
        self.register("file", move |id, cfg| {
            Ok(Arc::new(FileSource::new(
                id,
                params(id, cfg)?,
                Some(&roots),
            )?))
        });
    }

    /// The built-in HTTP connectors never request `addr` (the admin API's own address,
    /// `server.listen`) unless a source's `allowed_hosts` names it with its port.
    pub fn set_admin_address(&mut self, addr: std::net::SocketAddr) {
        self.context.admin = Some(addr);
    }

    /// Adds (or replaces) a source type.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(&str, &SourceSpec) -> Result<Arc<dyn Source>, Error> + Send + Sync + 'static,
    ) {
        self.register_with_context(name, move |id, cfg, _| factory(id, cfg));
    }

    fn register_with_context(
        &mut self,
        name: &str,
        factory: impl Fn(&str, &SourceSpec, &Context) -> Result<Arc<dyn Source>, Error>
            + Send
            + Sync
            + 'static,
    ) {
        self.factories.insert(name.to_owned(), Arc::new(factory));
    }

    /// The known type names.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// Builds the source `id` from its spec (or its configuration, which converts into
    /// one); its parameters are checked by the connector.
    pub fn build(&self, id: &str, spec: impl Into<SourceSpec>) -> Result<Arc<dyn Source>, Error> {
        let cfg = spec.into();
        let factory = self
            .factories
            .get(&cfg.source_type)
            .ok_or_else(|| Error::Config {
                path: format!("sources.{id}.source_type"),
                message: format!(
                    "unknown source type `{}`; known: {}",
                    cfg.source_type,
                    self.names().join(", ")
                ),
            })?;
        // `event_time` is the pipeline's (freshness), not the connector's: checked
        // here, then taken off so no connector's own parameters need to know it.
        if cfg.params.contains_key(crate::EVENT_TIME_KEY) {
            crate::EventTime::for_source(id, &cfg)?;
            let mut own = cfg;
            own.params.remove(crate::EVENT_TIME_KEY);
            return factory(id, &own, &self.context);
        }
        factory(id, &cfg, &self.context)
    }
}

/// Deserializes a connector's parameters (`custom_params`), naming the exact key on error.
pub fn params<T: DeserializeOwned>(id: &str, spec: &SourceSpec) -> Result<T, Error> {
    let value = serde_json::Value::Object(spec.params.clone().into_iter().collect());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            format!("sources.{id}.custom_params")
        } else {
            format!("sources.{id}.custom_params.{inner}")
        };
        let mut message = e.into_inner().to_string();
        // Under a key that may hold a credential, the offending value is not echoed.
        let secretish = inner.split('.').any(|seg| {
            stream_config::is_secret_name(seg)
                || matches!(seg, "auth" | "headers" | "query" | "body" | "url")
        });
        if secretish {
            message = stream_config::hide_values(&message);
        }
        Error::Config { path, message }
    })
}

/// Several endpoints polled as one source (e.g. NOAA observations of many stations and
/// alerts). The parts are independent: each is fetched concurrently with its own fetch
/// state, kept in this source's cursor under the part's label; a part that fails keeps
/// its state (so the next poll asks it again) and never discards the records of the
/// others. Nor does a slow part delay them: a poll waits for the parts until
/// [`PART_GRACE`] after the first one answered; a part still working then (retrying a
/// failing endpoint, say) goes on in the background and its answer joins a later poll.
/// The fetch fails only when every part that answered failed.
#[derive(Debug)]
pub(crate) struct MultiSource {
    parts: Vec<(String, Arc<dyn Source>)>,
    /// The parts' fetches still running, and which part each task is (dropping the set
    /// aborts them: work nobody will collect never advanced any state).
    running: tokio::sync::Mutex<(PartTasks, HashMap<tokio::task::Id, usize>)>,
}

type PartTasks = tokio::task::JoinSet<(usize, Result<Fetch, Error>)>;

/// How long a poll waits for the other parts once the first one answered.
pub(crate) const PART_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl MultiSource {
    /// Polls `parts`, each under a label unique within this source.
    pub(crate) fn new(parts: Vec<(String, Arc<dyn Source>)>) -> Self {
        Self {
            parts,
            running: tokio::sync::Mutex::new((PartTasks::new(), HashMap::new())),
        }
    }

    fn decode(cursor: Option<&Cursor>) -> BTreeMap<String, String> {
        cursor
            .and_then(|c| serde_json::from_str::<MultiState>(&c.0).ok())
            .map(|m| m.parts)
            .unwrap_or_default()
    }
}

/// The cursor of a [`MultiSource`]: each part's cursor by label.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct MultiState {
    pub(crate) parts: BTreeMap<String, String>,
}

#[async_trait]
impl Source for MultiSource {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, Error> {
        let states = Self::decode(cursor);
        let mut guard = self.running.lock().await;
        let (tasks, running) = &mut *guard;
        for (i, (label, part)) in self.parts.iter().enumerate() {
            if !running.values().any(|&r| r == i) {
                let part = part.clone();
                let from = states.get(label).cloned().map(Cursor);
                let task = tasks.spawn(async move { (i, part.fetch(from.as_ref()).await) });
                running.insert(task.id(), i);
            }
        }
        // The first answer, however long it takes; then at most PART_GRACE for the rest.
        let mut answers: Vec<(usize, Result<Fetch, Error>)> = Vec::new();
        let mut deadline = None;
        while !running.is_empty() {
            let next = match deadline {
                None => tasks.join_next_with_id().await,
                Some(d) => match tokio::time::timeout_at(d, tasks.join_next_with_id()).await {
                    Ok(next) => next,
                    Err(_) => break, // still working: collected by a later poll
                },
            };
            deadline.get_or_insert_with(|| tokio::time::Instant::now() + PART_GRACE);
            match next {
                Some(Ok((id, answer))) => {
                    running.remove(&id);
                    answers.push(answer);
                }
                Some(Err(e)) => {
                    if let Some(i) = running.remove(&e.id()) {
                        let label = &self.parts[i].0;
                        let died = Error::Io(format!("the fetch task of {label} died: {e}"));
                        answers.push((i, Err(died)));
                    }
                }
                None => break,
            }
        }
        drop(guard);
        answers.sort_by_key(|(i, _)| *i);
        let mut all = Fetch::default();
        let mut next = states.clone();
        let answered = answers.len();
        let (mut failed, mut last_error) = (0, None);
        for (i, result) in answers {
            let label = &self.parts[i].0;
            match result {
                Ok(f) => {
                    all.changed |= f.changed;
                    all.records.extend(f.records);
                    all.rejected.extend(f.rejected);
                    all.failures
                        .extend(f.failures.into_iter().map(|m| format!("{label}: {m}")));
                    if let Some(c) = f.next_cursor {
                        next.insert(label.clone(), c.0);
                    }
                }
                Err(e) => {
                    all.failures.push(format!("{label}: {e}"));
                    failed += 1;
                    last_error = Some(e);
                }
            }
        }
        if let Some(e) = last_error.filter(|_| failed == answered) {
            // Every part that answered failed: nothing is in hand, every state stays.
            return Err(e);
        }
        next.retain(|label, _| self.parts.iter().any(|(l, _)| l == label));
        if next != states {
            all.next_cursor = serde_json::to_string(&MultiState { parts: next })
                .ok()
                .map(Cursor);
        }
        Ok(all)
    }

    fn parts(&self) -> Vec<PartStatus> {
        self.parts.iter().flat_map(|(_, p)| p.parts()).collect()
    }
}
