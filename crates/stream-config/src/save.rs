//! Writing a configuration back to a file, atomically (a temporary file renamed over the
//! old one), in the format its extension names.

use std::path::Path;

use crate::error::{Error, Result};
use crate::load::Format;
use crate::model::StreamConfig;

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
