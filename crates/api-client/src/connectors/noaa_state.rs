//! The fetch state of a NOAA state sweep (`noaa.rs`): the station list, the position,
//! the newest observation emitted per station, kept in the cursor under `stations XX`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Most stations kept (the cursor stays bounded whatever the upstream lists).
pub(crate) const MAX_STATIONS: usize = 10_000;

/// The sweep's fetch state, kept in the cursor under `stations XX`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SweepState {
    /// Marks the text as a sweep (for [`summary`]).
    pub(crate) noaa_sweep: u8,
    /// Station ids in order, each with the timestamp (Unix seconds) of the newest
    /// observation emitted for it (0: none yet).
    #[serde(default)]
    pub(crate) stations: Vec<(String, i64)>,
    /// The next station to ask (index into `stations`); 0 starts a sweep.
    #[serde(default)]
    pub(crate) pos: usize,
    /// When the list was last fetched, Unix seconds.
    #[serde(default)]
    pub(crate) listed_at: i64,
    /// Sweeps completed.
    #[serde(default)]
    pub(crate) sweeps: u64,
    /// When the current sweep began, Unix milliseconds.
    #[serde(default)]
    pub(crate) sweep_started_ms: i64,
    /// How long the last complete sweep took, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_sweep_ms: Option<i64>,
}

impl SweepState {
    /// A stored sweep, checked: ids that could not come from us are dropped, the list is
    /// bounded and the position within it.
    pub(crate) fn decode(text: Option<&String>) -> Self {
        let mut s = text
            .and_then(|t| serde_json::from_str::<SweepState>(t).ok())
            .unwrap_or_default();
        s.stations.retain(|(id, _)| valid_id(id));
        s.stations.truncate(MAX_STATIONS);
        if s.pos > s.stations.len() {
            s.pos = 0;
        }
        s.noaa_sweep = 1;
        s
    }

    /// Takes a new station list, keeping what is known of stations still listed and the
    /// position (by station id: the sweep goes on at the first station not yet reached).
    pub(crate) fn relist(&mut self, ids: Vec<String>, now: i64) {
        let next = self.stations.get(self.pos).map(|(id, _)| id.clone());
        let pos_done = self.pos > 0 && next.is_none();
        let seen: HashMap<String, i64> = std::mem::take(&mut self.stations).into_iter().collect();
        self.stations = ids
            .into_iter()
            .map(|id| {
                let t = seen.get(&id).copied().unwrap_or(0);
                (id, t)
            })
            .collect();
        self.pos = match next {
            Some(id) if self.pos > 0 => self.stations.partition_point(|(s, _)| *s < id),
            _ if pos_done => self.stations.len(),
            _ => 0,
        };
        self.listed_at = now;
    }
}

/// NWS station ids are short and plain (`KSAC`, `CI093`, `SFOC1`); anything else is not
/// put into a URL path.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What an operator sees of a sweep's cursor (`/streams`' `cursor`), if `text` is one.
pub(crate) fn summary(text: &str) -> Option<String> {
    let s: SweepState = serde_json::from_str(text)
        .ok()
        .filter(|s: &SweepState| s.noaa_sweep == 1)?;
    Some(format!(
        "station {} of {}, {} sweeps done",
        s.pos,
        s.stations.len(),
        s.sweeps
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_new_list_keeps_what_is_known_and_the_position_by_id() {
        let mut s = SweepState::default();
        s.relist(ids(&["A", "C", "E", "G"]), 10);
        assert_eq!(s.pos, 0);
        s.stations[1].1 = 100;
        s.pos = 2; // A and C done; E next
        s.relist(ids(&["A", "B", "C", "D", "F", "G"]), 20);
        assert_eq!(
            s.stations[2],
            ("C".to_owned(), 100),
            "C's last observation is kept"
        );
        assert_eq!(
            s.stations[s.pos].0, "F",
            "E is gone: the sweep goes on at F"
        );
        assert_eq!(s.listed_at, 20);
        let text = serde_json::to_string(&SweepState {
            noaa_sweep: 1,
            ..s.clone()
        })
        .unwrap();
        let back = SweepState::decode(Some(&text));
        assert_eq!(back.stations, s.stations);
        assert_eq!(back.pos, s.pos);
        assert_eq!(
            summary(&text).as_deref(),
            Some("station 4 of 6, 0 sweeps done")
        );
    }

    #[test]
    fn a_stored_sweep_is_checked_before_it_is_used() {
        let text = r#"{"noaa_sweep":1,"stations":[["KSAC",1],["../x",2],["K?Q",3]],"pos":9}"#;
        let s = SweepState::decode(Some(&text.to_owned()));
        assert_eq!(s.stations, vec![("KSAC".to_owned(), 1)]);
        assert_eq!(s.pos, 0);
        assert!(valid_id("SFOC1") && !valid_id("") && !valid_id("a/b"));
    }
}
