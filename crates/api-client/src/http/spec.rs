//! What a source asks of an HTTP API, as configured (`custom_params`): URL, method,
//! auth, pagination, incremental cursor, limits.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::decode::Decoder;
use crate::dedup::DedupSpec;

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET.
    #[default]
    Get,
    /// POST (with `body`).
    Post,
}

/// How the next page is found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One page.
    #[default]
    None,
    /// The next page's URL at a JSON pointer (absolute, or relative to the page).
    NextLink {
        /// e.g. `/pagination/next`.
        pointer: String,
    },
    /// The `Link: <…>; rel="next"` response header.
    LinkHeader,
    /// A token at a JSON pointer, sent back as a query parameter.
    Cursor {
        /// Where the token is, e.g. `/meta/next_token`.
        pointer: String,
        /// The query parameter that carries it.
        param: String,
    },
    /// Offset and limit query parameters; stops at a short page.
    Offset {
        /// Offset parameter name.
        #[serde(default = "default_offset_param")]
        offset_param: String,
        /// Limit parameter name.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Records per page.
        limit: u64,
    },
}

fn default_offset_param() -> String {
    "offset".to_owned()
}
fn default_limit_param() -> String {
    "limit".to_owned()
}

/// An incremental cursor: the newest value of `field` seen, sent as `param`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// Query parameter, e.g. `since`.
    pub param: String,
    /// JSON pointer to the record field whose newest value becomes the cursor.
    pub field: String,
    /// Value used before any cursor was committed.
    #[serde(default)]
    pub initial: Option<String>,
}

/// Authentication. Values usually come from `${VAR}`s; they never appear in logs (`Debug`
/// prints `***` for them).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// HTTP basic.
    Basic {
        /// User.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Token.
        token: String,
    },
    /// An API key in a header or the query.
    ApiKey {
        /// Header or parameter name.
        name: String,
        /// The key.
        value: String,
        /// `header` (default) or `query`.
        #[serde(default)]
        location: KeyLocation,
    },
    /// OAuth2 client credentials; the token is refreshed before it expires.
    Oauth2 {
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: String,
        /// Scope, if the server wants one.
        #[serde(default)]
        scope: Option<String>,
    },
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    /// A request header.
    #[default]
    Header,
    /// A query parameter.
    Query,
}

/// Everything about one HTTP source; `http_json`'s `custom_params` deserialize into it.
/// `Debug` prints `***` for credentials and secret-looking headers, parameters and
/// URL user-info.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// The URL of the first page.
    pub url: String,
    /// Method.
    #[serde(default)]
    pub method: Method,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON body (POST).
    #[serde(default)]
    pub body: Option<Value>,
    /// How the body becomes records.
    #[serde(default)]
    pub decoder: Decoder,
    /// How the next page is found.
    #[serde(default)]
    pub pagination: Pagination,
    /// Incremental cursor.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// How far past now (seconds) an incremental value that reads as a timestamp may be
    /// and still become the cursor. The upstream's clock skew is tolerated; a value
    /// beyond (a bad clock, a placeholder such as `2999-12-31`) would skip every later
    /// record, so it is ignored for the cursor (its record is kept), counted
    /// (`api_cursor_values_ignored_total`) and warned about. Numbers and other text are
    /// not timestamps and are not checked. 0 to 31,536,000 (a year); default 300.
    #[serde(default = "default_max_cursor_skew_seconds")]
    pub max_cursor_skew_seconds: u64,
    /// Authentication.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Largest response accepted (after decompression): a safety limit against an
    /// upstream that never stops, not a memory bound (a body is decoded as it arrives,
    /// in bounded memory). 1 B – 64 GiB, default 256 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Most pages in one fetch.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// Retries of a request after network errors, 5xx and 429.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First retry wait; doubles per retry (with jitter), at least `Retry-After`.
    #[serde(default = "default_retry_base_seconds")]
    pub retry_base_seconds: f64,
    /// The longest `Retry-After` honoured: an upstream cannot park the source for longer
    /// (a longer one is capped, and logged).
    #[serde(default = "default_max_retry_after_seconds")]
    pub max_retry_after_seconds: f64,
    /// `User-Agent` (some APIs, like api.weather.gov, reject requests without one).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Drop records already seen within a window.
    #[serde(default)]
    pub dedup: Option<DedupSpec>,
    /// Consecutive failed fetches that open the circuit breaker.
    #[serde(default = "default_breaker_threshold")]
    pub breaker_threshold: u32,
    /// How long the breaker stays open before a probe.
    #[serde(default = "default_breaker_cooldown_seconds")]
    pub breaker_cooldown_seconds: f64,
}

/// 256 MiB: the largest real feeds named in #25 with room to grow (a FIRMS `world` VIIRS
/// day is 50–100 MB of CSV, USGS `all_month` 15–25 MB of GeoJSON); since bodies are
/// decoded as they arrive, memory does not grow with it.
fn default_max_response_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_max_pages() -> u32 {
    20
}
fn default_max_retries() -> u32 {
    3
}
fn default_retry_base_seconds() -> f64 {
    0.5
}
fn default_max_retry_after_seconds() -> f64 {
    600.0
}
fn default_max_cursor_skew_seconds() -> u64 {
    300
}
/// The most `max_cursor_skew_seconds` may be: a year.
pub(crate) const MAX_CURSOR_SKEW_SECONDS: u64 = 365 * 86_400;
fn default_breaker_threshold() -> u32 {
    5
}
fn default_breaker_cooldown_seconds() -> f64 {
    30.0
}

impl HttpSpec {
    /// A GET of `url` with every other key at its default.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: Method::Get,
            headers: BTreeMap::new(),
            query: BTreeMap::new(),
            body: None,
            decoder: Decoder::default(),
            pagination: Pagination::None,
            incremental: None,
            max_cursor_skew_seconds: default_max_cursor_skew_seconds(),
            auth: None,
            max_response_bytes: default_max_response_bytes(),
            max_pages: default_max_pages(),
            max_retries: default_max_retries(),
            retry_base_seconds: default_retry_base_seconds(),
            max_retry_after_seconds: default_max_retry_after_seconds(),
            user_agent: None,
            dedup: None,
            breaker_threshold: default_breaker_threshold(),
            breaker_cooldown_seconds: default_breaker_cooldown_seconds(),
        }
    }
}

/// Per-source settings that come from the source's own config keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// Source id (metric label).
    pub source_id: String,
    /// Requests per minute, pages and retries included.
    pub rate_limit_per_minute: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// An identical request within this long is answered "nothing new" without going out.
    pub cache_ttl: Duration,
    /// Hosts besides the configured origin that redirects and next-page links may reach
    /// (`sources.<id>.allowed_hosts`: `host`, `host:port`, `*.domain`).
    pub allowed_hosts: Vec<String>,
    /// The admin API's own address (`server.listen`): never requested unless
    /// `allowed_hosts` names it with its port. The [`crate::Registry`] sets it.
    pub admin_address: Option<std::net::SocketAddr>,
    /// Generic limits put over the spec's own (a built-in connector's `custom_params`
    /// keys of [`HttpLimits`](super::limits::HttpLimits)); the [`crate::Registry`] sets
    /// them.
    pub limits: super::limits::HttpLimits,
}

impl ClientOptions {
    /// From a source's spec.
    pub fn from_source(source_id: &str, spec: &crate::SourceSpec) -> Self {
        Self {
            source_id: source_id.to_owned(),
            allowed_hosts: spec.allowed_hosts.clone(),
            admin_address: None,
            limits: Default::default(),
            rate_limit_per_minute: spec.rate_limit_per_minute,
            timeout: spec.timeout,
            cache_ttl: spec.cache_ttl,
        }
    }
}
