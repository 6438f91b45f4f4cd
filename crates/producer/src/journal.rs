//! The dead-letter journal: dead letters still held in memory at exit (the store was
//! unreachable) are written to a local file, one JSON object a line, and replayed into
//! the store at the next start. Nothing handed to the DLQ is dropped at exit.

use std::io::{BufRead as _, Write as _};
use std::path::Path;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{FailureReason, NewDeadLetter, OutgoingRecord};

/// One journal line. Bytes are base64, so any payload survives.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    id: String,
    source_id: String,
    topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    payload: String,
    headers: Vec<(String, String)>,
    reason: String,
    details: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Option<Bytes> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .map(Bytes::from)
}

/// Appends `letters` to the journal at `path` (created with its folder if missing) and
/// syncs it to disk.
pub(crate) fn append(path: &Path, letters: &[NewDeadLetter]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut out = Vec::new();
    for l in letters {
        let r = &l.record;
        let line = Line {
            id: r.id.to_string(),
            source_id: r.source_id.to_string(),
            topic: r.topic.to_string(),
            key: r.key.as_deref().map(b64),
            payload: b64(&r.payload),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), b64(v)))
                .collect(),
            reason: l.reason.as_str().to_owned(),
            details: l.details.clone(),
        };
        serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    file.write_all(&out)?;
    file.sync_all()
}

/// The dead letters in the journal at `path` (none when there is no journal). A line
/// that cannot be read is reported, never silently skipped.
pub(crate) fn read(path: &Path) -> std::io::Result<Vec<NewDeadLetter>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: line {}: {what}", path.display(), n + 1),
            )
        };
        let l: Line = serde_json::from_str(&line).map_err(|e| bad(&e.to_string()))?;
        let reason: FailureReason = l.reason.parse().map_err(|e: String| bad(&e))?;
        let mut record = OutgoingRecord::new(&l.topic, &l.source_id, Bytes::new());
        record.id = l.id.into();
        record.key = match l.key {
            Some(k) => Some(unb64(&k).ok_or_else(|| bad("key is not base64"))?),
            None => None,
        };
        record.payload = unb64(&l.payload).ok_or_else(|| bad("payload is not base64"))?;
        let mut headers = Vec::with_capacity(l.headers.len());
        for (k, v) in l.headers {
            let v = unb64(&v).ok_or_else(|| bad("a header is not base64"))?;
            headers.push((k.into(), v));
        }
        record.headers = headers.into();
        out.push(NewDeadLetter {
            record,
            reason,
            details: l.details,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_bytes() {
        let dir = std::env::temp_dir().join(format!("journal-test-{}", std::process::id()));
        let path = dir.join("sub/dlq-journal.jsonl");
        let mut r = OutgoingRecord::new("t", "src", Bytes::from_static(&[0, 159, 146, 150, b'\n']));
        r.key = Some(Bytes::from_static(b"k"));
        r.headers = std::sync::Arc::new([("h".into(), Bytes::from_static(b"\xff"))]);
        let letter = NewDeadLetter {
            record: r,
            reason: FailureReason::Shutdown,
            details: "d".into(),
        };
        append(&path, std::slice::from_ref(&letter)).unwrap();
        append(&path, std::slice::from_ref(&letter)).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back, vec![letter.clone(), letter]);
        std::fs::write(&path, "{not json\n").unwrap();
        let err = read(&path).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(read(&dir.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
