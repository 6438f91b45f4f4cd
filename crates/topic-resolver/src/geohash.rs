//! Geohash encoding: a stable, process-independent cell id for a coordinate.

const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// The geohash of (`lat`, `lon`) with `precision` characters (1-12), or `None` for
/// coordinates out of range or not finite.
pub fn geohash(lat: f64, lon: f64, precision: u8) -> Option<String> {
    let in_range = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
    if !in_range {
        return None;
    }
    let precision = usize::from(precision.clamp(1, 12));
    let (mut lat_lo, mut lat_hi) = (-90.0f64, 90.0f64);
    let (mut lon_lo, mut lon_hi) = (-180.0f64, 180.0f64);
    let mut out = String::with_capacity(precision);
    let mut bits = 0u8;
    let mut bit_count = 0;
    let mut even = true;
    while out.len() < precision {
        let (lo, hi, v) = if even {
            (&mut lon_lo, &mut lon_hi, lon)
        } else {
            (&mut lat_lo, &mut lat_hi, lat)
        };
        let mid = (*lo + *hi) / 2.0;
        bits <<= 1;
        if v >= mid {
            bits |= 1;
            *lo = mid;
        } else {
            *hi = mid;
        }
        even = !even;
        bit_count += 1;
        if bit_count == 5 {
            out.push(BASE32[usize::from(bits)] as char);
            bits = 0;
            bit_count = 0;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::geohash;

    #[test]
    fn known_geohashes() {
        // Reference values from the geohash definition's worked examples.
        assert_eq!(
            geohash(57.64911, 10.40744, 11).as_deref(),
            Some("u4pruydqqvj")
        );
        assert_eq!(geohash(42.6, -5.6, 5).as_deref(), Some("ezs42"));
        assert_eq!(geohash(37.7749, -122.4194, 6).as_deref(), Some("9q8yyk"));
        assert_eq!(geohash(91.0, 0.0, 5), None);
        assert_eq!(geohash(f64::NAN, 0.0, 5), None);
    }
}
