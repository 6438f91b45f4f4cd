//! The dead-letter journal: dead letters still held in memory at exit (the store was
//! unreachable) are written to a local file, one JSON object a line, and replayed into
//! the store at the next start. Nothing handed to the DLQ is dropped at exit.
//!
//! A line that cannot be read (torn by a crash mid-write, or edited by hand) never holds
//! up the others: it is set aside, byte for byte, in `<journal>.rejected` beside the
//! journal, warned about and counted (`dlq_journal_rejected_lines_total`), and every
//! good line is replayed.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

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
        .read(true)
        .open(path)?;
    let mut out = Vec::new();
    // A torn last line (no newline) must not swallow the first letter written now.
    if ends_torn(&mut file)? {
        out.push(b'\n');
    }
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

/// The file is not empty and its last byte is not a newline.
fn ends_torn(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Seek as _, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// What a journal holds: the dead letters of its good lines, and the lines that could
/// not be read.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) letters: Vec<NewDeadLetter>,
    pub(crate) rejected: Vec<Rejected>,
}

impl Journal {
    /// Neither letters nor unreadable lines (no journal, or only blank lines).
    pub(crate) fn is_empty(&self) -> bool {
        self.letters.is_empty() && self.rejected.is_empty()
    }
}

/// A journal line that could not be read: its 1-based number, its bytes, and why.
#[derive(Debug)]
pub(crate) struct Rejected {
    pub(crate) line: usize,
    pub(crate) bytes: Vec<u8>,
    pub(crate) why: String,
}

/// Where the unreadable lines of the journal at `path` are set aside.
pub(crate) fn rejected_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".rejected");
    PathBuf::from(name)
}

/// The journal at `path` (empty when there is none). A line that cannot be read is
/// returned as [`Rejected`], never silently skipped, and never stops the lines after
/// it from being read.
pub(crate) fn read(path: &Path) -> std::io::Result<Journal> {
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Journal::default()),
        Err(e) => return Err(e),
    };
    let mut out = Journal::default();
    for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse(raw) {
            Ok(letter) => out.letters.push(letter),
            Err(why) => out.rejected.push(Rejected {
                line: n + 1,
                bytes: raw.to_vec(),
                why,
            }),
        }
    }
    Ok(out)
}

/// One journal line as a dead letter, or why it is not one.
fn parse(raw: &[u8]) -> Result<NewDeadLetter, String> {
    let l: Line = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let reason: FailureReason = l.reason.parse()?;
    let mut record = OutgoingRecord::new(&l.topic, &l.source_id, Bytes::new());
    record.id = l.id.into();
    record.key = match l.key {
        Some(k) => Some(unb64(&k).ok_or("key is not base64")?),
        None => None,
    };
    record.payload = unb64(&l.payload).ok_or("payload is not base64")?;
    let mut headers = Vec::with_capacity(l.headers.len());
    for (k, v) in l.headers {
        let v = unb64(&v).ok_or("a header is not base64")?;
        headers.push((k.into(), v));
    }
    record.headers = headers.into();
    Ok(NewDeadLetter {
        record,
        reason,
        details: l.details,
    })
}

/// The journal at `path` has been stored: its unreadable lines are appended to
/// `<path>.rejected` (synced; warned about and counted), then the journal is removed.
/// On error the journal stays, so nothing is lost; a retry may append the same rejected
/// lines again, which only repeats what an operator has to look at.
pub(crate) fn finish(path: &Path, journal: &Journal) -> std::io::Result<()> {
    if !journal.rejected.is_empty() {
        let aside = rejected_path(path);
        let mut out = Vec::new();
        for r in &journal.rejected {
            out.extend_from_slice(&r.bytes);
            out.push(b'\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&aside)?;
        file.write_all(&out)?;
        file.sync_all()?;
        metrics::counter!(crate::metrics::DLQ_JOURNAL_REJECTED)
            .increment(journal.rejected.len() as u64);
        for r in &journal.rejected {
            tracing::warn!(
                journal = %path.display(),
                line = r.line,
                error = %r.why,
                set_aside = %aside.display(),
                "an unreadable dead-letter journal line was set aside (inspect it there); the other lines are stored"
            );
        }
    }
    std::fs::remove_file(path)
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
        assert_eq!(back.letters, vec![letter.clone(), letter]);
        assert!(back.rejected.is_empty());
        std::fs::write(&path, "{not json\n").unwrap();
        let bad = read(&path).unwrap();
        assert!(bad.letters.is_empty());
        assert_eq!(bad.rejected[0].line, 1);
        assert_eq!(bad.rejected[0].bytes, b"{not json");
        assert!(read(&dir.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_letter_appended_after_a_torn_line_starts_a_line_of_its_own() {
        let dir = std::env::temp_dir().join(format!("journal-torn-{}", std::process::id()));
        let path = dir.join("dlq-journal.jsonl");
        std::fs::create_dir_all(&dir).unwrap();
        // A crash cut the last line short: no newline at the end.
        std::fs::write(&path, "{\"id\":\"torn").unwrap();
        let letter = NewDeadLetter {
            record: OutgoingRecord::new("t", "src", Bytes::from_static(b"p")),
            reason: FailureReason::Shutdown,
            details: "d".into(),
        };
        append(&path, std::slice::from_ref(&letter)).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.letters, vec![letter], "the new letter is whole");
        assert_eq!(back.rejected.len(), 1);
        assert_eq!(back.rejected[0].bytes, b"{\"id\":\"torn");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
