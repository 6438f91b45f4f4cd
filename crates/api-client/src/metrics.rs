//! Metric names of the sources (the server adds its namespace prefix). Label `source` is
//! the source id.

pub(crate) const REQUESTS: &str = "api_requests_total";
pub(crate) const LATENCY: &str = "api_request_duration_seconds";
pub(crate) const BYTES: &str = "api_response_bytes_total";
pub(crate) const RECORDS: &str = "api_records_total";
pub(crate) const NOT_MODIFIED: &str = "api_not_modified_total";
pub(crate) const CACHE_HITS: &str = "api_cache_hits_total";
pub(crate) const RETRIES: &str = "api_retries_total";
pub(crate) const BREAKER: &str = "api_breaker_state";
