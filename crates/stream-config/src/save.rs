//! Writing a configuration back to a file, atomically (a temporary file renamed over the
//! old one), in the format its extension names.

use std::path::Path;

use crate::error::{Error, Result};
use crate::load::Format;
use crate::model::StreamConfig;

/// Writes configuration text (as an operator sent it: `${VAR}` references stay
/// references) to `path`, atomically; text in the other format than the path's extension
/// is converted.
pub fn save_text(text: &str, format: Format, path: &Path) -> Result<()> {
    let want = Format::from_path(path).ok_or_else(|| Error::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let text = match (format, want) {
        (Format::Yaml, Format::Json) => {
            let v: serde_json::Value =
                serde_yaml::from_str(text).map_err(|e| Error::Serialize(e.to_string()))?;
            serde_json::to_string_pretty(&v).map_err(|e| Error::Serialize(e.to_string()))?
        }
        // JSON is YAML: written as sent.
        _ => text.to_owned(),
    };
    write_atomically(&text, path)
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
