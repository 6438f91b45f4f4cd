//! The built-in connectors and the registry that builds sources by `source_type`.

mod file;
mod public_apis;
mod synthetic;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use stream_config::SourceConfig;

use crate::http::{ClientOptions, HttpApiClient, HttpSpec};
use crate::source::{Cursor, Error, Fetch, Source};

pub(crate) use file::FileSource;
pub use synthetic::{SyntheticParams, SyntheticSource};

/// Builds a source from its id and configuration.
pub(crate) type Factory =
    Arc<dyn Fn(&str, &SourceConfig) -> Result<Arc<dyn Source>, Error> + Send + Sync>;

/// Source types by name. [`Registry::builtin`] has the eight built-in connectors; a
/// library user adds their own with [`Registry::register`].
#[derive(Clone)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
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
        }
    }

    /// The built-in connectors: `http_json`, `noaa_weather`, `nasa_firms`,
    /// `usgs_earthquakes`, `airnow`, `purpleair`, `synthetic`, `file`.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register("http_json", |id, cfg| {
            let spec: HttpSpec = params(id, cfg)?;
            Ok(Arc::new(HttpApiClient::new(
                spec,
                ClientOptions::from_source(id, cfg),
            )?))
        });
        r.register("noaa_weather", public_apis::noaa_weather);
        r.register("nasa_firms", public_apis::nasa_firms);
        r.register("usgs_earthquakes", public_apis::usgs_earthquakes);
        r.register("airnow", public_apis::airnow);
        r.register("purpleair", public_apis::purpleair);
        r.register("synthetic", |id, cfg| {
            Ok(Arc::new(SyntheticSource::new(params(id, cfg)?)))
        });
        r.register("file", |id, cfg| {
            Ok(Arc::new(FileSource::new(id, params(id, cfg)?)?))
        });
        r
    }

    /// Adds (or replaces) a source type.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(&str, &SourceConfig) -> Result<Arc<dyn Source>, Error> + Send + Sync + 'static,
    ) {
        self.factories.insert(name.to_owned(), Arc::new(factory));
    }

    /// The known type names.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// Builds the source `id`; its `custom_params` are checked by the connector.
    pub fn build(&self, id: &str, cfg: &SourceConfig) -> Result<Arc<dyn Source>, Error> {
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
        factory(id, cfg)
    }
}

/// Deserializes a connector's `custom_params`, naming the exact key on error.
pub fn params<T: DeserializeOwned>(id: &str, cfg: &SourceConfig) -> Result<T, Error> {
    let value = serde_json::Value::Object(cfg.custom_params.clone().into_iter().collect());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            format!("sources.{id}.custom_params")
        } else {
            format!("sources.{id}.custom_params.{inner}")
        };
        Error::Config {
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// Several sources polled as one (e.g. NOAA observations of many stations and alerts):
/// records concatenated; one failing part fails the fetch so nothing is half-committed.
#[derive(Debug)]
pub(crate) struct MultiSource {
    parts: Vec<Arc<dyn Source>>,
}

impl MultiSource {
    /// Polls `parts` in order.
    pub(crate) fn new(parts: Vec<Arc<dyn Source>>) -> Self {
        Self { parts }
    }
}

#[async_trait]
impl Source for MultiSource {
    async fn fetch(&self, _cursor: Option<&Cursor>) -> Result<Fetch, Error> {
        let mut all = Fetch::unchanged();
        for part in &self.parts {
            let f = part.fetch(None).await?;
            all.changed |= f.changed;
            all.records.extend(f.records);
            all.rejected.extend(f.rejected);
        }
        Ok(all)
    }
}
