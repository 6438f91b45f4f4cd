//! The ranges of an HTTP source's numeric `custom_params`, checked when the client is
//! built (so `validate` reports them with the key): nothing a config says can overflow
//! a `Duration`, an offset or an allocation later.

use super::spec::{HttpSpec, Pagination, MAX_CURSOR_SKEW_SECONDS};

/// The most a response may be (`max_response_bytes`): 4 GiB.
const MAX_RESPONSE_BYTES: u64 = 4 << 30;

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
