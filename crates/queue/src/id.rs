//! A record's identity: a unique, time-ordered message id.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A unique, time-ordered message id: 48 bits of milliseconds since the epoch, then a
/// per-process random-ish tag and a counter. Printed as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u128);

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl MessageId {
    /// A new id, unique within this process and (with overwhelming probability) across
    /// processes.
    pub fn generate() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            & 0xFFFF_FFFF_FFFF;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = process_tag();
        MessageId(
            (u128::from(millis) << 80) | (u128::from(tag) << 48) | u128::from(n & 0xFFFF_FFFF_FFFF),
        )
    }
}

/// 32 bits that differ between processes: the pid mixed with the start time.
fn process_tag() -> u32 {
    use std::sync::OnceLock;
    static TAG: OnceLock<u32> = OnceLock::new();
    *TAG.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut x = u64::from(std::process::id()) << 32 | u64::from(nanos);
        // splitmix64 finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31)) as u32
    })
}

impl MessageId {
    /// The 32 hex digits as a `String`, in one allocation of exactly 32 bytes
    /// (`to_string` grows its buffer while padding: three allocations).
    pub fn to_hex(self) -> String {
        self.hex().as_str().to_owned()
    }

    /// The 32 hex digits, on the stack (for callers that store them their own way).
    pub fn hex(self) -> HexId {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = DIGITS[((self.0 >> ((31 - i) * 4)) & 0xf) as usize];
        }
        HexId(out)
    }
}

/// A [`MessageId`]'s 32 hex digits, without an allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexId([u8; 32]);

impl HexId {
    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for HexId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for HexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ordered_within_a_process() {
        let ids: Vec<MessageId> = (0..10_000).map(|_| MessageId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids[0].to_string().len(), 32);
        assert!(ids.iter().all(|id| id.to_hex() == id.to_string()));
        assert_eq!(MessageId(0xab).to_hex(), format!("{:032x}", 0xab));
    }
}
