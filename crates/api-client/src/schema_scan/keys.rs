//! The keys of an object schema, found by a record's key in one or two probes of an
//! open-addressed table (a binary search over 14 names and their compares was a
//! quarter of a sensor reading's check).

use super::key_tag;

/// A key of an object schema: its `properties` node and its bit in `required`.
#[derive(Debug)]
pub(crate) struct Key {
    /// [`key_tag`] of the name: a probe compares integers and reads one name.
    pub tag: u64,
    pub name: Box<str>,
    pub node: Option<usize>,
    pub required_bit: u64,
}

/// The keys, and a table of their positions (plus one; 0 is empty) at least twice as
/// large as their number, indexed by the top bits of the tag times a constant.
#[derive(Debug, Default)]
pub(crate) struct KeyTable {
    keys: Vec<Key>,
    slots: Box<[u32]>,
    shift: u32,
}

impl KeyTable {
    pub(crate) fn new(mut keys: Vec<Key>) -> Self {
        for k in &mut keys {
            k.tag = key_tag(k.name.as_bytes());
        }
        if keys.is_empty() {
            return Self::default();
        }
        let bits = (keys.len() * 2).next_power_of_two().trailing_zeros().max(2);
        let mut slots = vec![0u32; 1 << bits].into_boxed_slice();
        let shift = 64 - bits;
        let mask = slots.len() - 1;
        for (i, k) in keys.iter().enumerate() {
            let mut s = slot_of(k.tag, shift);
            while slots[s] != 0 {
                s = (s + 1) & mask;
            }
            slots[s] = i as u32 + 1;
        }
        Self { keys, slots, shift }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key named `name`.
    #[inline]
    pub(crate) fn find(&self, name: &[u8]) -> Option<&Key> {
        if self.keys.is_empty() {
            return None;
        }
        let tag = key_tag(name);
        let mask = self.slots.len() - 1;
        let mut s = slot_of(tag, self.shift);
        loop {
            let i = self.slots[s];
            if i == 0 {
                return None;
            }
            let k = &self.keys[i as usize - 1];
            // The tag holds all of a name shorter than eight bytes, and the first
            // seven of a longer one.
            if k.tag == tag && (name.len() < 8 || k.name.as_bytes()[7..] == name[7..]) {
                return Some(k);
            }
            s = (s + 1) & mask;
        }
    }
}

#[inline]
fn slot_of(tag: u64, shift: u32) -> usize {
    (tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        Key {
            tag: 0,
            name: name.into(),
            node: None,
            required_bit: 0,
        }
    }

    #[test]
    fn every_key_is_found_and_nothing_else() {
        // Names sharing their first seven bytes and length differ only past the tag.
        let names: Vec<String> = (0..200)
            .map(|i| format!("precipitationLast{i:03}"))
            .chain(["", "a", "ab", "type", "id"].map(String::from))
            .collect();
        let table = KeyTable::new(names.iter().map(|n| key(n)).collect());
        for n in &names {
            assert_eq!(table.find(n.as_bytes()).map(|k| &*k.name), Some(n.as_str()));
        }
        for absent in [
            "precipitationLast200",
            "b",
            "typ",
            "types",
            "precipitationLast",
        ] {
            assert!(table.find(absent.as_bytes()).is_none(), "{absent}");
        }
        assert!(KeyTable::default().find(b"x").is_none());
    }
}
