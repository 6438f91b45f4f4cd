//! Errors: one problem is a [`Diagnostic`]; loading returns all of them at once.

use std::fmt;
use std::path::PathBuf;

/// A position in a config file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem in a configuration: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Key path such as `sources.noaa_weather_ca.ingestion.mode` (empty for the whole file).
    pub path: String,
    /// Line and column in the file, when the problem comes from a file.
    pub location: Option<Location>,
    /// Environment variable that set the value, when an override did.
    pub env_var: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at a key path.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            location: None,
            env_var: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds advice.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a file position.
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = self.location {
            write!(f, "line {loc}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "`{}`: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(var) = &self.env_var {
            write!(f, " (value set by environment variable {var})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one configuration, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The file (or `<string>`, `<update>`) the configuration came from.
    pub origin: String,
    /// The problems, at least one.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            let key = |d: &Diagnostic| (d.location.is_none(), d.location, d.path.clone());
            key(a).cmp(&key(b))
        });
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.items.len();
        write!(
            f,
            "{}: {n} configuration error{}",
            self.origin,
            if n == 1 { "" } else { "s" }
        )?;
        for item in &self.items {
            write!(f, "\n  {}", self.origin)?;
            match item.location {
                Some(loc) => write!(f, ":{loc}: ")?,
                None => f.write_str(": ")?,
            }
            let located = Diagnostic {
                location: None,
                ..item.clone()
            };
            write!(f, "{located}")?;
        }
        Ok(())
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. `cannot read config file`.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The file name does not say whether it is YAML or JSON.
    #[error("{path}: unknown config format; name the file `*.yaml`, `*.yml` or `*.json`")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The configuration is invalid; every problem is listed.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// The configuration could not be written as YAML.
    #[error("cannot serialize config: {0}")]
    Serialize(String),
}

impl Error {
    /// The problems, when the error is an invalid configuration.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            Error::Invalid(d) => Some(d),
            _ => None,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
