//! Runtime configuration: one validated config at a time, swapped atomically, watched by
//! subscribers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::load::{Format, Loader};
use crate::model::StreamConfig;

/// Holds the current validated configuration and hands out subscriptions to it. Every
/// change is validated first; a rejected change leaves the current config untouched.
#[derive(Debug)]
pub struct ConfigManager {
    loader: Loader,
    path: Option<PathBuf>,
    tx: watch::Sender<Arc<StreamConfig>>,
}

impl ConfigManager {
    /// Manages a configuration built in code, after validating it.
    pub fn new(loader: Loader, config: StreamConfig) -> Result<Self> {
        loader.validate(&config, "<config>")?;
        Ok(Self {
            loader,
            path: None,
            tx: watch::Sender::new(Arc::new(config)),
        })
    }

    /// Loads the file and remembers it for [`ConfigManager::reload`].
    pub fn from_file(loader: Loader, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let config = loader.load_file(&path)?;
        Ok(Self {
            loader,
            path: Some(path),
            tx: watch::Sender::new(Arc::new(config)),
        })
    }

    /// The current configuration.
    pub fn current(&self) -> Arc<StreamConfig> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every accepted change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<StreamConfig>> {
        self.tx.subscribe()
    }

    /// The file this manager reloads from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Replaces the configuration if it is valid; returns the previous one.
    pub fn update(&self, config: StreamConfig) -> Result<Arc<StreamConfig>> {
        self.loader.validate(&config, "<update>")?;
        Ok(self.tx.send_replace(Arc::new(config)))
    }

    /// Parses, overrides and validates text, then swaps it in; returns the previous config.
    pub fn update_from_str(&self, text: &str, format: Format) -> Result<Arc<StreamConfig>> {
        let config = self.loader.load_str(text, format, "<update>")?;
        Ok(self.tx.send_replace(Arc::new(config)))
    }

    /// Reads the file again and swaps it in if valid; returns the previous config.
    pub fn reload(&self) -> Result<Arc<StreamConfig>> {
        let Some(path) = &self.path else {
            return Err(Error::Io {
                path: PathBuf::from("<none>"),
                action: "cannot reload",
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "this configuration was not loaded from a file",
                ),
            });
        };
        let config = self.loader.load_file(path)?;
        Ok(self.tx.send_replace(Arc::new(config)))
    }

    /// Writes the current configuration (secrets included: it is the operator's file)
    /// as YAML or JSON by extension, atomically (temporary file, then rename).
    pub fn save_to_file(&self, path: impl AsRef<Path>) -> Result<()> {
        save(&self.current(), path.as_ref())
    }

    /// The effective configuration with secrets redacted, as YAML.
    pub fn effective_redacted(&self) -> String {
        crate::redact::redacted_yaml(&self.current())
    }
}

/// Writes a configuration as YAML or JSON (by extension), atomically.
pub fn save(config: &StreamConfig, path: &Path) -> Result<()> {
    let format = Format::from_path(path).ok_or_else(|| Error::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let text = match format {
        Format::Yaml => {
            serde_yaml::to_string(config).map_err(|e| Error::Serialize(e.to_string()))?
        }
        Format::Json => {
            serde_json::to_string_pretty(config).map_err(|e| Error::Serialize(e.to_string()))?
        }
    };
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("cfg")
    ));
    let io = |action, source| Error::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    std::fs::write(&tmp, text).map_err(|e| io("cannot write config file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("cannot replace config file", e))
}
