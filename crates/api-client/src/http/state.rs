//! An HTTP source's fetch state: everything it remembers about what it has handed over —
//! the incremental cursor, the validators of the last complete walk, where an
//! interrupted walk resumes, and the dedup window. It travels in the [`Cursor`], so it
//! advances exactly as cursors do: the next poll continues from the newest state handed
//! out, and the state is committed (and survives a restart) only once the records it
//! guards have settled. A failed fetch returns no state, so the next poll asks again.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::dedup::Window;
use crate::Cursor;

/// Conditional-request validators of the first page of a walk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Validators {
    /// The URL they belong to.
    pub(crate) url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_modified: Option<String>,
}

/// The state as persisted: `{"http_state": 1, …}` inside the cursor text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Persisted {
    http_state: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validators: Option<Validators>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume: Option<String>,
    /// Dedup identities, oldest first: little-endian u64s, base64 (read, no longer
    /// written).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    seen: String,
    /// Dedup identities, oldest first: each little-endian u64 as 11 characters of
    /// unpadded base64, so forgetting the oldest and adding new ones leaves the rest of
    /// the text as it was and a commit stores only the change (`state_delta.rs`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    ids: String,
}

/// Characters per identity in `ids`.
const ID_CHARS: usize = 11;

/// The decoded state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FetchState {
    /// The incremental cursor (the newest value of the incremental field).
    pub(crate) cursor: Option<String>,
    pub(crate) validators: Option<Validators>,
    /// The URL of the page an interrupted walk continues at.
    pub(crate) resume: Option<String>,
    pub(crate) seen: Window,
}

/// The fetch state last decoded or produced, with its cursor text: a poll from that
/// cursor (the usual case: the tracker hands back the newest state handed out) reuses it
/// instead of rebuilding a dedup window of up to a million identities from text.
#[derive(Debug, Default)]
pub(crate) struct StateCache(std::sync::Mutex<Option<(Cursor, FetchState)>>);

impl StateCache {
    /// The state `cursor` carries: the one remembered when `cursor` is its text, else
    /// decoded (and remembered).
    pub(crate) fn get(&self, cursor: Option<&Cursor>) -> FetchState {
        let Some(cursor) = cursor else {
            return FetchState::default();
        };
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match last.as_ref() {
            Some((text, state)) if text == cursor => state.clone(),
            _ => {
                let state = FetchState::decode(Some(cursor));
                *last = Some((cursor.clone(), state.clone()));
                state
            }
        }
    }

    /// `state` as a cursor, remembered with its text.
    pub(crate) fn encode(&self, state: FetchState) -> Cursor {
        let text = state.encode();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((text.clone(), state));
        text
    }
}

impl FetchState {
    /// The state a cursor carries. A plain cursor (written before fetch state existed, or
    /// by a source with nothing else to remember) is the incremental value alone.
    pub(crate) fn decode(cursor: Option<&Cursor>) -> Self {
        let Some(Cursor(text)) = cursor else {
            return Self::default();
        };
        match serde_json::from_str::<Persisted>(text) {
            Ok(p) if p.http_state == 1 => {
                use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
                let mut bytes = STANDARD.decode(p.seen.as_bytes()).unwrap_or_default();
                bytes.reserve(p.ids.len() / ID_CHARS * 8);
                // Into one buffer: an allocation per id was 20,000 a poll for a full window.
                let mut id_bytes = [0u8; 8];
                for id in p.ids.as_bytes().chunks_exact(ID_CHARS) {
                    if STANDARD_NO_PAD.decode_slice(id, &mut id_bytes) == Ok(8) {
                        bytes.extend_from_slice(&id_bytes);
                    }
                }
                let ids = bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
                Self {
                    cursor: p.cursor,
                    validators: p.validators,
                    resume: p.resume,
                    seen: Window::from_ids(ids),
                }
            }
            _ => Self {
                cursor: Some(text.clone()),
                ..Self::default()
            },
        }
    }

    /// The cursor text: plain when only an incremental value is kept (readable, and what
    /// earlier versions wrote), else the JSON state (also for an empty state, which must
    /// still replace a non-empty one).
    pub(crate) fn encode(&self) -> Cursor {
        let only_cursor =
            self.validators.is_none() && self.resume.is_none() && self.seen.is_empty();
        if let (true, Some(c)) = (only_cursor, &self.cursor) {
            return Cursor(c.clone());
        }
        let mut ids = String::new();
        for id in self.seen.ids() {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode_string(id.to_le_bytes(), &mut ids);
        }
        let p = Persisted {
            http_state: 1,
            cursor: self.cursor.clone(),
            validators: self.validators.clone(),
            resume: self.resume.clone(),
            seen: String::new(),
            ids,
        };
        Cursor(serde_json::to_string(&p).unwrap_or_else(|_| "{\"http_state\":1}".to_owned()))
    }
}

/// What an operator sees of a cursor: the incremental value of an HTTP fetch state (and
/// a resume point, if a walk was interrupted), each part's for a multi-endpoint source,
/// or the cursor itself.
pub(crate) fn summary(cursor: &Cursor) -> String {
    if let Some(sweep) = crate::connectors::sweep_summary(&cursor.0) {
        return sweep;
    }
    if let Ok(m) = serde_json::from_str::<crate::connectors::MultiState>(&cursor.0) {
        return m
            .parts
            .into_iter()
            .map(|(label, c)| (label, summary(&Cursor(c))))
            .filter(|(_, s)| !s.is_empty())
            .map(|(label, s)| format!("{label}: {s}"))
            .collect::<Vec<_>>()
            .join("; ");
    }
    match serde_json::from_str::<Persisted>(&cursor.0) {
        Ok(p) if p.http_state == 1 => {
            let mut out = p.cursor.unwrap_or_default();
            if let Some(r) = p.resume {
                // A state written before secrets were kept out of it: shown redacted.
                let r = stream_config::redact_url(&r).unwrap_or(r);
                out.push_str(&format!(" (resumes at {r})"));
            }
            out
        }
        _ => cursor.0.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_plain_cursors() {
        assert_eq!(FetchState::decode(None), FetchState::default());
        let plain = FetchState::decode(Some(&Cursor("2026-11-30T12:00:00Z".into())));
        assert_eq!(plain.cursor.as_deref(), Some("2026-11-30T12:00:00Z"));
        assert_eq!(plain.encode(), Cursor("2026-11-30T12:00:00Z".into()));
        let empty = FetchState::default().encode();
        assert_eq!(FetchState::decode(Some(&empty)), FetchState::default());
        let full = FetchState {
            cursor: Some("17".into()),
            validators: Some(Validators {
                url: "http://h/x".into(),
                etag: Some("\"v1\"".into()),
                last_modified: None,
            }),
            resume: Some("http://h/x?page=3".into()),
            seen: Window::from_ids([1, u64::MAX, 42]),
        };
        let cursor = full.encode();
        assert_eq!(FetchState::decode(Some(&cursor)), full);
        assert_eq!(summary(&cursor), "17 (resumes at http://h/x?page=3)");
        // A window written before identities were stored one by one still reads.
        let legacy = format!(
            "{{\"http_state\":1,\"cursor\":\"17\",\"seen\":\"{}\"}}",
            base64::engine::general_purpose::STANDARD
                .encode([1u64, 42].map(u64::to_le_bytes).concat())
        );
        let read = FetchState::decode(Some(&Cursor(legacy)));
        assert_eq!(read.seen, Window::from_ids([1, 42]));
        assert!(
            read.encode().0.contains("\"ids\":\"AQAAAAAAAAA"),
            "{}",
            read.encode()
        );
        // JSON that is not ours is a plain cursor.
        let other = Cursor("{\"offset\":3}".into());
        assert_eq!(
            FetchState::decode(Some(&other)).cursor.as_deref(),
            Some("{\"offset\":3}")
        );
    }

    #[test]
    fn a_sliding_window_changes_only_at_its_ends_so_a_commit_is_small() {
        let state = |cursor: u64, ids: std::ops::Range<u64>| FetchState {
            cursor: Some(cursor.to_string()),
            seen: Window::from_ids(ids.map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
            ..FetchState::default()
        };
        let (old, new) = (state(1, 0..20_000).encode(), state(2, 10..20_010).encode());
        let delta = stream_contracts::state_delta::diff(&old.0, &new.0);
        assert!(old.0.len() > 220_000, "{}", old.0.len());
        assert!(
            delta.len() < 10 * 11 + 150,
            "{} bytes: {delta}",
            delta.len()
        );
        let applied = stream_contracts::state_delta::apply(&old.0, &delta).map(Cursor);
        assert_eq!(FetchState::decode(applied.as_ref()), state(2, 10..20_010));
    }
}
