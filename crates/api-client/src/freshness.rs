//! A source's freshness: the age of its newest record, from the records' own event time
//! where the connector knows it ([`EventTime`]: built in per connector, or
//! `custom_params.event_time`), else from the last successful fetch. The newest event
//! time is taken once per emitted batch (one field scan per record, nothing for a
//! source without an event time) and kept as an atomic maximum.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{EventTime, FetchSeq, Record};

/// Where a source's records keep their event time, and the newest seen.
#[derive(Debug)]
pub struct Freshness {
    event_time: Option<EventTime>,
    /// Newest event time seen, ms since the epoch; `i64::MIN` before any.
    newest_ms: AtomicI64,
}

/// A source's freshness at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct FreshnessView {
    /// The newest record's time (its event time, or the last successful fetch).
    pub newest_at: SystemTime,
    /// How old that is.
    pub age: Duration,
    /// `event_time` or `last_fetch`.
    pub basis: &'static str,
}

impl Freshness {
    /// A source whose records keep their event time as `event_time` says (none: its
    /// freshness is its last successful fetch).
    pub fn new(event_time: Option<EventTime>) -> Self {
        Self {
            event_time,
            newest_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// Takes the newest event time of an emitted batch.
    pub fn observe(&self, records: &[(FetchSeq, Record)]) {
        let Some(et) = &self.event_time else { return };
        if let Some(newest) = et.newest(records.iter().map(|(_, r)| r)) {
            self.newest_ms.fetch_max(newest, Ordering::Relaxed);
        }
    }

    /// The newest event time seen, else `last_fetch`; its age at `now` (zero for a time
    /// in the future: an upstream's clock ahead of ours).
    pub fn view(&self, last_fetch: Option<SystemTime>, now: SystemTime) -> Option<FreshnessView> {
        let ms = self.newest_ms.load(Ordering::Relaxed);
        let (newest_at, basis) = if ms != i64::MIN {
            let at = if ms >= 0 {
                UNIX_EPOCH.checked_add(Duration::from_millis(ms as u64))
            } else {
                UNIX_EPOCH.checked_sub(Duration::from_millis(ms.unsigned_abs()))
            };
            (at?, "event_time")
        } else {
            (last_fetch?, "last_fetch")
        };
        Some(FreshnessView {
            newest_at,
            age: now.duration_since(newest_at).unwrap_or_default(),
            basis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc3339;
    use serde_json::json;

    fn batch(values: &[serde_json::Value]) -> Vec<(FetchSeq, Record)> {
        values
            .iter()
            .map(|v| (FetchSeq(0), Record::from_value(v)))
            .collect()
    }

    #[test]
    fn event_time_wins_over_the_last_fetch_and_only_moves_forward() {
        let f = Freshness::new(EventTime::builtin("usgs_earthquakes"));
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let fetched = UNIX_EPOCH + Duration::from_secs(990);
        // Nothing seen yet: the last fetch, or nothing at all.
        assert_eq!(f.view(None, now), None);
        let v = f.view(Some(fetched), now).unwrap();
        assert_eq!((v.basis, v.age), ("last_fetch", Duration::from_secs(10)));

        f.observe(&batch(&[
            json!({"properties": {"updated": 400_000}}),
            json!({"properties": {"updated": 700_000}}),
            json!({"no": "time"}),
        ]));
        let v = f.view(Some(fetched), now).unwrap();
        assert_eq!(v.basis, "event_time");
        assert_eq!(v.age, Duration::from_secs(300));
        assert_eq!(rfc3339(v.newest_at), "1970-01-01T00:11:40.000Z");
        // An older batch does not move it back; a future time is age zero.
        f.observe(&batch(&[json!({"properties": {"updated": 100_000}})]));
        assert_eq!(f.view(None, now).unwrap().age, Duration::from_secs(300));
        f.observe(&batch(&[json!({"properties": {"updated": 2_000_000}})]));
        assert_eq!(f.view(None, now).unwrap().age, Duration::ZERO);
    }

    #[test]
    fn a_source_without_event_time_reads_its_last_fetch() {
        let f = Freshness::new(None);
        f.observe(&batch(&[json!({"properties": {"updated": 400_000}})]));
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let v = f
            .view(Some(UNIX_EPOCH + Duration::from_secs(999)), now)
            .unwrap();
        assert_eq!((v.basis, v.age), ("last_fetch", Duration::from_secs(1)));
    }
}
