//! Metric names of the sources (the server adds its namespace prefix). Label `source` is
//! the source id.

pub(crate) const REQUESTS: &str = "api_requests_total";
pub(crate) const LATENCY: &str = "api_request_duration_seconds";
pub(crate) const BYTES: &str = "api_response_bytes_total";
pub(crate) const CACHE_HITS: &str = "api_cache_hits_total";
pub(crate) const RETRIES: &str = "api_retries_total";
pub(crate) const BREAKER: &str = "api_breaker_state";
pub(crate) const PAGE_FAILURES: &str = "api_page_failures_total";
pub(crate) const MAX_PAGES: &str = "api_max_pages_reached_total";
pub(crate) const DEDUP_DROPPED: &str = "api_dedup_dropped_total";
pub(crate) const CURSOR_IGNORED: &str = "api_cursor_values_ignored_total";
pub(crate) const REFUSED: &str = "api_requests_refused_total";

/// Registers the help text of every source metric with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "Upstream HTTP requests, by source and status (`error` when no response came)."
    );
    describe_histogram!(
        LATENCY,
        Unit::Seconds,
        "Upstream request duration, by upstream host (the source's configured URL's host and port): one series per upstream, however many sources poll it."
    );
    describe_counter!(
        BYTES,
        Unit::Bytes,
        "Upstream response body bytes, by source."
    );
    describe_counter!(
        CACHE_HITS,
        Unit::Count,
        "Polls answered from the response cache without a request, by source."
    );
    describe_counter!(RETRIES, Unit::Count, "Upstream request retries, by source.");
    describe_counter!(
        DEDUP_DROPPED,
        Unit::Count,
        "Records dropped as already seen within the dedup window, by source."
    );
    describe_counter!(
        CURSOR_IGNORED,
        Unit::Count,
        "Incremental cursor values ignored as timestamps beyond now + max_cursor_skew_seconds (the records are kept), by source."
    );
    describe_counter!(
        REFUSED,
        Unit::Count,
        "Outbound requests refused (redirects, next-page links, resolved names), by source and reason: other_origin, admin_address, loopback, link_local, metadata, credentials, scheme, resolved_address."
    );
    describe_gauge!(
        BREAKER,
        "Circuit breaker state by source: 0 closed, 1 half-open, 2 open; a source's series appears the first time its breaker leaves closed."
    );
}
