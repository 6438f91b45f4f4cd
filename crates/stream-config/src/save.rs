//! Writing a configuration back to a file, atomically (a temporary file renamed over the
//! old one), in the format its extension names.

use std::path::Path;

use crate::error::{Error, Result};
use crate::load::Format;
use crate::model::StreamConfig;

/// Writes configuration JSON text as an operator sent it (`${VAR}` references stay
/// references) to `path`, atomically. JSON is also YAML, so the text serves a `.yaml`
/// file as well as a `.json` one.
pub fn save_json_text(text: &str, path: &Path) -> Result<()> {
    Format::from_path(path).ok_or_else(|| Error::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    write_atomically(text, path)
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
    write_atomically(&text, path)
}

/// `text` into a temporary file beside `path`, then renamed over it.
fn write_atomically(text: &str, path: &Path) -> Result<()> {
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
