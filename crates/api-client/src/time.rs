//! Date arithmetic in one place, on chrono: ISO-8601 timestamps for records and cursors,
//! HTTP dates (`Retry-After`).

use std::time::SystemTime;

use chrono::{DateTime, Utc};

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn iso8601(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Now, as ISO-8601.
pub(crate) fn iso8601_now() -> String {
    iso8601(SystemTime::now())
}

/// A timestamp in text: RFC 3339 (`2026-03-01T12:00:00Z`, `…+02:00`), ISO-8601
/// without a zone (`2026-03-01T12:00:00`, `2026-03-01 12:00:00.5`, read as UTC), or a
/// date (`2026-03-01`, its midnight UTC). Anything else is not a timestamp.
pub(crate) fn timestamp(s: &str) -> Option<SystemTime> {
    use chrono::{NaiveDate, NaiveDateTime};
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.into());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().into());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().into())
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate).
pub(crate) fn http_date(s: &str) -> Option<SystemTime> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(SystemTime::from)
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let when = http_date(v)?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(std::time::Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn known_instants() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_millis(784_111_777_250)),
            "1994-11-06T08:49:37.250Z"
        );
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn timestamps_in_text() {
        let at = |s| timestamp(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(at("1994-11-06T08:49:37Z"), Some(784_111_777));
        assert_eq!(at("1994-11-06T10:49:37+02:00"), Some(784_111_777));
        assert_eq!(at("1994-11-06T08:49:37.250"), Some(784_111_777));
        assert_eq!(at("1994-11-06 08:49:37"), Some(784_111_777));
        assert_eq!(at("1994-11-06"), Some(784_080_000));
        assert!(timestamp("2999-12-31T23:59:59Z").is_some());
        for not in ["17", "1994", "yesterday", "", "1994-13-01"] {
            assert_eq!(timestamp(not), None, "{not}");
        }
    }

    #[test]
    fn http_dates_parse() {
        let t = http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 784_111_777);
        assert!(http_date("yesterday").is_none());
    }
}
