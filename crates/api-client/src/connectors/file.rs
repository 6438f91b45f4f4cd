//! `file`: replays an NDJSON, CSV or GeoJSON file, optionally looping.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use crate::decode::Decoder;
use crate::Record;
use crate::{Cursor, Error, Fetch, Rejected, Source};

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FileFormat {
    /// One JSON value per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
    /// A GeoJSON FeatureCollection.
    Geojson,
}

/// Parameters of the `file` connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileParams {
    /// The file (relative to the working directory).
    pub path: PathBuf,
    /// Format (by extension when absent: `.ndjson`/`.jsonl`, `.csv`, `.geojson`/`.json`).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// Records per fetch (the replay rate is this per polling interval).
    #[serde(default = "default_per_fetch")]
    pub records_per_fetch: usize,
    /// Start again from the top after the last record.
    #[serde(default, rename = "loop")]
    pub looping: bool,
}

fn default_per_fetch() -> usize {
    1000
}

/// Replays a file. The cursor is the index of the next record (with `loop`, `cycle:index`).
#[derive(Debug)]
pub(crate) struct FileSource {
    records: Vec<Record>,
    rejected: Vec<Rejected>,
    params: FileParams,
}

impl FileSource {
    /// Reads and decodes the file now, so a bad path is a configuration error. With
    /// `roots`, the file must lie under one of them (after resolving `..` and links).
    pub(crate) fn new(
        id: &str,
        params: FileParams,
        roots: Option<&[PathBuf]>,
    ) -> Result<Self, Error> {
        let bad = |message: String| Error::Config {
            path: format!("sources.{id}.custom_params.path"),
            message,
        };
        if let Some(roots) = roots {
            stream_config::resolve_under_roots(&params.path, roots, "file sources may read")
                .map_err(bad)?;
        }
        let body = std::fs::read(&params.path)
            .map_err(|e| bad(format!("cannot read `{}`: {e}", params.path.display())))?;
        let ext = params
            .path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let format = match (params.format, ext.as_str()) {
            (Some(f), _) => f,
            (None, "ndjson" | "jsonl") => FileFormat::Ndjson,
            (None, "csv") => FileFormat::Csv,
            (None, "geojson" | "json") => FileFormat::Geojson,
            (None, other) => {
                return Err(bad(format!(
                    "cannot tell the format of `.{other}` files; set `format`"
                )))
            }
        };
        let decoder = match format {
            FileFormat::Ndjson => Decoder::Ndjson,
            FileFormat::Csv => Decoder::Csv,
            FileFormat::Geojson => Decoder::Geojson,
        };
        let decoded = decoder
            .decode(&body)
            .map_err(|e| bad(format!("`{}`: {e}", params.path.display())))?;
        Ok(Self {
            records: decoded.records,
            rejected: decoded.rejected,
            params,
        })
    }
}

#[async_trait]
impl Source for FileSource {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, Error> {
        let (cycle, index) = match cursor.map(|c| c.0.as_str()) {
            None => (0u64, 0usize),
            Some(c) => match c.split_once(':') {
                Some((cy, ix)) => (cy.parse().unwrap_or(0), ix.parse().unwrap_or(0)),
                None => (0, c.parse().unwrap_or(0)),
            },
        };
        let (mut cycle, mut index) = (cycle, index.min(self.records.len()));
        if index >= self.records.len() && self.params.looping && !self.records.is_empty() {
            cycle += 1;
            index = 0;
        }
        let end = index
            .saturating_add(self.params.records_per_fetch.max(1))
            .min(self.records.len());
        let records = self.records[index..end].to_vec();
        // Undecodable lines are reported once, with the first fetch.
        let rejected = if cursor.is_none() {
            self.rejected.clone()
        } else {
            Vec::new()
        };
        Ok(Fetch {
            changed: !records.is_empty() || !rejected.is_empty(),
            next_cursor: Some(Cursor(if self.params.looping {
                format!("{cycle}:{end}")
            } else {
                end.to_string()
            })),
            records,
            rejected,
            failures: Vec::new(),
        })
    }
}
