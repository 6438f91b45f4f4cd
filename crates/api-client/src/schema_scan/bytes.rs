//! Byte-level reads of the fast path: what a run of string content holds, and the
//! value of a short number without the general float parser.

/// The number `±mantissa × 10^scale` when its mantissa is exact (at most 15 digits,
/// the caller's check) and its scale within ±22, as one IEEE operation on two exact
/// values (`m × 10^e` or `m / 10^-e`), which rounds correctly: the value `str::parse`
/// and `serde_json` give, without their general path. `None` for anything else (the
/// caller parses the text).
pub(crate) fn exact_f64(negative: bool, mantissa: u64, scale: i32) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    if mantissa >= 1 << 53 {
        return None;
    }
    let m = mantissa as f64;
    let v = match scale {
        0..=22 => m * POW10[scale as usize],
        -22..=-1 => m / POW10[(-scale) as usize],
        _ => return None,
    };
    Some(if negative { -v } else { v })
}

/// What a run of string content holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// Printable ASCII only.
    Ascii,
    /// A byte below 0x20 (a control character: not allowed in a JSON string).
    Control,
    /// No control character, some bytes above 0x7F (UTF-8 still to check).
    Wide,
}

/// Classifies `bytes` by their least byte and the OR of all, 32 lanes at a time with no
/// early exit: a loop the compiler vectorises (a short-circuiting `any` it does not; on
/// a 2 KB string that was most of a record's check).
pub(crate) fn classify(bytes: &[u8]) -> Run {
    if bytes.len() < 32 {
        // Most strings: too short for the lanes to pay for their reduction.
        let (least, any) = bytes
            .iter()
            .fold((u8::MAX, 0u8), |(lo, or), &b| (lo.min(b), or | b));
        return verdict(least, any);
    }
    let mut lo = [u8::MAX; 32];
    let mut or = [0u8; 32];
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        for j in 0..32 {
            lo[j] = lo[j].min(chunk[j]);
            or[j] |= chunk[j];
        }
    }
    let rest = chunks.remainder();
    let least = rest
        .iter()
        .fold(lo.into_iter().fold(u8::MAX, u8::min), |m, &b| m.min(b));
    let any = rest
        .iter()
        .fold(or.into_iter().fold(0, |a, b| a | b), |a, &b| a | b);
    verdict(least, any)
}

fn verdict(least: u8, any: u8) -> Run {
    if least < 0x20 {
        Run::Control
    } else if any >= 0x80 {
        Run::Wide
    } else {
        Run::Ascii
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn exact_numbers_equal_the_parsers_value() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..200_000 {
            let width: u32 = rng.random_range(1..10);
            let int: u64 = rng.random_range(0..10u64.pow(width));
            let frac_len = rng.random_range(0..8usize);
            let frac: String = (0..frac_len)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            let mut text = format!("{}{int}", if rng.random_bool(0.3) { "-" } else { "" });
            if !frac.is_empty() {
                text = format!("{text}.{frac}");
            }
            if rng.random_bool(0.2) {
                text = format!("{text}e{}", rng.random_range(-30..30i32));
            }
            let want: f64 = text.parse().unwrap();
            if let Some(got) = decimal(&text) {
                assert_eq!(got.to_bits(), want.to_bits(), "{text}");
            }
        }
        // The fast cases it must take, and what it must leave to the parser.
        assert_eq!(decimal("38.5123"), Some(38.5123));
        assert_eq!(decimal("-121.4932"), Some(-121.4932));
        assert_eq!(decimal("1E+2"), Some(100.0));
        assert_eq!(exact_f64(false, 1 << 53, 0), None);
        assert_eq!(decimal("1e23"), None);
        assert_eq!(decimal("1e-23"), None);
    }

    /// `text` as the scanner reads it: the digits as one integer, the power of ten.
    fn decimal(text: &str) -> Option<f64> {
        let (negative, text) = match text.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, text),
        };
        let (digits, exp) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all = format!("{int}{frac}");
        if all.len() > 15 {
            return None;
        }
        let scale = exp.trim_start_matches('+').parse::<i32>().unwrap() - frac.len() as i32;
        exact_f64(negative, all.parse().unwrap(), scale)
    }

    #[test]
    fn runs_are_classified_by_their_bytes() {
        let long = "a".repeat(100);
        assert_eq!(classify(long.as_bytes()), Run::Ascii);
        assert_eq!(classify(format!("{long}é").as_bytes()), Run::Wide);
        assert_eq!(
            classify(format!("{long}\t{long}é").as_bytes()),
            Run::Control
        );
        assert_eq!(classify(b""), Run::Ascii);
    }
}
