//! One page of the streams, searched by id, for the operator console at thousands of
//! sources: the streams lock is held to pick the page's ids and build their figures
//! only (a page of 50 out of 10,000), never for every stream.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::streams::{StreamInfo, StreamStatus};
use crate::StreamManager;

/// What `GET /streams?q=&status=&offset=&limit=` asks for.
#[derive(Debug, Clone, Default)]
pub struct StreamQuery {
    /// Only ids containing this text (case-insensitive); empty for all.
    pub q: String,
    /// Only streams with this status.
    pub status: Option<StreamStatus>,
    /// Matching streams to skip (in id order).
    pub offset: usize,
    /// Matching streams to return.
    pub limit: usize,
}

/// One page of streams and the counts around it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamPage {
    /// Streams configured, whatever the query.
    pub total: usize,
    /// Streams the query matches (before paging).
    pub matched: usize,
    /// As asked.
    pub offset: usize,
    /// As asked.
    pub limit: usize,
    /// Every configured stream counted by status (`running`, `paused`, …).
    pub by_status: BTreeMap<&'static str, usize>,
    /// The page, in id order.
    pub items: Vec<StreamInfo>,
}

impl StreamManager {
    /// One page of the streams matching `query` (ids in order).
    pub async fn stream_page(&self, query: &StreamQuery) -> StreamPage {
        let needle = query.q.to_lowercase();
        let streams = self.streams.lock().await;
        let mut by_status = BTreeMap::new();
        let mut matched = 0;
        let mut items = Vec::new();
        for (id, s) in streams.iter() {
            *by_status.entry(s.status.as_str()).or_insert(0) += 1;
            let hit = query.status.is_none_or(|st| st == s.status)
                && (needle.is_empty() || id.to_lowercase().contains(&needle));
            if !hit {
                continue;
            }
            if matched >= query.offset && items.len() < query.limit {
                items.push(s.info(id));
            }
            matched += 1;
        }
        StreamPage {
            total: streams.len(),
            matched,
            offset: query.offset,
            limit: query.limit,
            by_status,
            items,
        }
    }
}
