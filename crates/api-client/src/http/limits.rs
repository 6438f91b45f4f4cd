//! The ranges of an HTTP source's numeric `custom_params`, checked when the client is
//! built (so `validate` reports them with the key): nothing a config says can overflow
//! a `Duration`, an offset or an allocation later. Also [`HttpLimits`]: the generic
//! limit keys every built-in connector takes beside its own parameters.

use serde::Deserialize;

use super::spec::{HttpSpec, Pagination, MAX_CURSOR_SKEW_SECONDS};

/// The generic HTTP limits: `http_json`'s keys that every built-in HTTP connector
/// (`noaa_weather`, `nasa_firms`, `usgs_earthquakes`, `airnow`, `purpleair`) also takes
/// in its `custom_params`, beside its own parameters, with the same defaults, ranges and
/// errors. The registry takes these keys off before the connector reads
/// the rest, and every client the connector builds gets them through
/// [`ClientOptions::limits`](super::ClientOptions). A key left out keeps the
/// connector's value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpLimits {
    /// Largest response accepted (after decompression), a safety limit (bodies are
    /// decoded as they arrive, so memory does not grow with it): 1 B – 64 GiB, default
    /// 256 MiB.
    pub max_response_bytes: Option<u64>,
    /// Most pages in one fetch: 1 – 100,000, default 20.
    pub max_pages: Option<u32>,
    /// Retries of a request after network errors, 5xx and 429: 0 – 100, default 3.
    pub max_retries: Option<u32>,
    /// First retry wait, doubled per retry: 0 – 3,600 s, default 0.5.
    pub retry_base_seconds: Option<f64>,
    /// The longest `Retry-After` honoured: 0 – 86,400 s, default 600.
    pub max_retry_after_seconds: Option<f64>,
    /// Consecutive failed fetches that open the circuit breaker: 1 – 1,000,000,
    /// default 5.
    pub breaker_threshold: Option<u32>,
    /// How long the breaker stays open before a probe: 0 – 86,400 s, default 30.
    pub breaker_cooldown_seconds: Option<f64>,
    /// How far past now an incremental timestamp may be and still become the cursor:
    /// 0 – 31,536,000 s, default 300.
    pub max_cursor_skew_seconds: Option<u64>,
}

impl HttpLimits {
    /// The keys, as they are written in `custom_params`.
    pub const KEYS: [&'static str; 8] = [
        "max_response_bytes",
        "max_pages",
        "max_retries",
        "retry_base_seconds",
        "max_retry_after_seconds",
        "breaker_threshold",
        "breaker_cooldown_seconds",
        "max_cursor_skew_seconds",
    ];

    /// `spec` with every limit given here put over the spec's own, then checked.
    pub(super) fn checked(&self, mut spec: HttpSpec) -> Result<HttpSpec, (&'static str, String)> {
        fn set<T: Copy>(to: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *to = v;
            }
        }
        set(&mut spec.max_response_bytes, self.max_response_bytes);
        set(&mut spec.max_pages, self.max_pages);
        set(&mut spec.max_retries, self.max_retries);
        set(&mut spec.retry_base_seconds, self.retry_base_seconds);
        set(
            &mut spec.max_retry_after_seconds,
            self.max_retry_after_seconds,
        );
        set(&mut spec.breaker_threshold, self.breaker_threshold);
        set(
            &mut spec.breaker_cooldown_seconds,
            self.breaker_cooldown_seconds,
        );
        set(
            &mut spec.max_cursor_skew_seconds,
            self.max_cursor_skew_seconds,
        );
        spec.check_ranges()?;
        Ok(spec)
    }
}

/// The most `max_response_bytes` may be: 64 GiB (a safety limit, not an allocation).
const MAX_RESPONSE_BYTES: u64 = 64 << 30;

impl HttpSpec {
    /// Each numeric parameter in its range; on error the key and the message.
    pub(super) fn check_ranges(&self) -> Result<(), (&'static str, String)> {
        fn int(key: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), (&'static str, String)> {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("must be between {lo} and {hi}, got {v}")))
            }
        }
        fn float(
            key: &'static str,
            v: f64,
            lo: f64,
            hi: f64,
        ) -> Result<(), (&'static str, String)> {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err((
                    key,
                    format!("must be between {lo} and {hi} seconds, got {v}"),
                ))
            }
        }
        int(
            "max_response_bytes",
            self.max_response_bytes,
            1,
            MAX_RESPONSE_BYTES,
        )?;
        int("max_pages", self.max_pages.into(), 1, 100_000)?;
        int("max_retries", self.max_retries.into(), 0, 100)?;
        float("retry_base_seconds", self.retry_base_seconds, 0.0, 3_600.0)?;
        float(
            "max_retry_after_seconds",
            self.max_retry_after_seconds,
            0.0,
            86_400.0,
        )?;
        int(
            "breaker_threshold",
            self.breaker_threshold.into(),
            1,
            1_000_000,
        )?;
        float(
            "breaker_cooldown_seconds",
            self.breaker_cooldown_seconds,
            0.0,
            86_400.0,
        )?;
        int(
            "max_cursor_skew_seconds",
            self.max_cursor_skew_seconds,
            0,
            MAX_CURSOR_SKEW_SECONDS,
        )?;
        if let Pagination::Offset { limit, .. } = &self.pagination {
            int("pagination.limit", *limit, 1, 1_000_000)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_override_the_spec_and_are_checked_alike() {
        let spec = HttpSpec::get("http://127.0.0.1/");
        assert_eq!(
            HttpLimits::default().checked(spec.clone()),
            Ok(spec.clone())
        );
        let raised = HttpLimits {
            max_response_bytes: Some(64 << 20),
            breaker_threshold: Some(2),
            ..HttpLimits::default()
        };
        let got = raised.checked(spec.clone()).expect("in range");
        assert_eq!(
            (got.max_response_bytes, got.breaker_threshold),
            (64 << 20, 2)
        );
        assert_eq!(got.max_retries, spec.max_retries);
        let zero = HttpLimits {
            max_response_bytes: Some(0),
            ..HttpLimits::default()
        };
        let (key, message) = zero.checked(spec).expect_err("out of range");
        assert_eq!(key, "max_response_bytes");
        assert!(message.starts_with("must be between 1 and"), "{message}");
    }

    #[test]
    fn every_numeric_parameter_has_a_range() {
        let ok = HttpSpec::get("http://127.0.0.1/");
        assert_eq!(ok.check_ranges(), Ok(()));
        type Set = fn(&mut HttpSpec);
        let cases: [(&str, Set); 9] = [
            ("max_response_bytes", |s| s.max_response_bytes = 0),
            ("max_pages", |s| s.max_pages = 0),
            ("max_retries", |s| s.max_retries = u32::MAX),
            ("retry_base_seconds", |s| s.retry_base_seconds = 1e20),
            ("max_retry_after_seconds", |s| {
                s.max_retry_after_seconds = f64::NAN
            }),
            ("breaker_threshold", |s| s.breaker_threshold = 0),
            ("max_cursor_skew_seconds", |s| {
                s.max_cursor_skew_seconds = u64::MAX
            }),
            ("breaker_cooldown_seconds", |s| {
                s.breaker_cooldown_seconds = f64::INFINITY
            }),
            ("pagination.limit", |s| {
                s.pagination = Pagination::Offset {
                    offset_param: "o".into(),
                    limit_param: "l".into(),
                    limit: u64::MAX,
                }
            }),
        ];
        for (key, set) in cases {
            let mut spec = ok.clone();
            set(&mut spec);
            let (got, message) = spec.check_ranges().expect_err(key);
            assert_eq!(got, key, "{message}");
            assert!(message.starts_with("must be between"), "{message}");
        }
    }
}
