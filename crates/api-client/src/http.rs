//! `HttpApiClient`: a polite, robust poller of one HTTP API.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::TokioClock;
use async_trait::async_trait;
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::decode::Decoder;
use crate::dedup::{Dedup, DedupSpec};
use crate::metrics as m;
use crate::source::{Cursor, Fetch, Source, SourceError};

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

/// Authentication. Values usually come from `${VAR}`s; they never appear in logs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Authentication.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Largest response accepted (after decompression).
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

fn default_max_response_bytes() -> u64 {
    8 * 1024 * 1024
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
            auth: None,
            max_response_bytes: default_max_response_bytes(),
            max_pages: default_max_pages(),
            max_retries: default_max_retries(),
            retry_base_seconds: default_retry_base_seconds(),
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
}

impl ClientOptions {
    /// From a source's configuration.
    pub fn from_source(source_id: &str, cfg: &stream_config::SourceConfig) -> Self {
        Self {
            source_id: source_id.to_owned(),
            rate_limit_per_minute: cfg.rate_limit_per_minute,
            timeout: Duration::from_secs_f64(cfg.timeout_seconds.max(0.001)),
            cache_ttl: Duration::from_secs(cfg.cache_ttl_seconds),
        }
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

#[derive(Debug, Default)]
struct Validators {
    url: String,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

/// Polls one HTTP API. See the crate docs for what it guarantees.
#[derive(Debug)]
pub struct HttpApiClient {
    spec: HttpSpec,
    opts: ClientOptions,
    client: reqwest::Client,
    clock: TokioClock,
    limiter: Limiter,
    breaker: CircuitBreaker,
    validators: Mutex<Validators>,
    cache: Mutex<Option<(String, Instant)>>,
    dedup: Option<Dedup>,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    secrets: Vec<String>,
}

/// Why one request attempt failed.
enum Attempt {
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    Fatal(SourceError),
}

impl HttpApiClient {
    /// A client for `spec`. Fails on an unparseable URL or header.
    pub fn new(spec: HttpSpec, opts: ClientOptions) -> Result<Self, SourceError> {
        let config_err = |key: &str, message: String| SourceError::Config {
            path: format!("sources.{}.custom_params.{key}", opts.source_id),
            message,
        };
        Url::parse(&spec.url)
            .map_err(|e| config_err("url", format!("`{}` is not a URL: {e}", spec.url)))?;
        for (k, v) in &spec.headers {
            HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| config_err("headers", format!("header name `{k}`: {e}")))?;
            HeaderValue::from_str(v)
                .map_err(|e| config_err("headers", format!("header `{k}` value: {e}")))?;
        }
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .user_agent(spec.user_agent.clone().unwrap_or_else(|| {
                format!(
                    "stream-manager/{} ({})",
                    env!("CARGO_PKG_VERSION"),
                    opts.source_id
                )
            }))
            .build()
            .map_err(|e| config_err("", format!("HTTP client: {e}")))?;
        let per_minute = opts.rate_limit_per_minute.max(1);
        let burst = NonZeroU32::new((per_minute / 10).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(Duration::from_secs(60) / per_minute)
            .expect("positive period")
            .allow_burst(burst);
        let clock = TokioClock::start();
        let mut secrets = Vec::new();
        match &spec.auth {
            Some(Auth::Basic { password, .. }) => secrets.push(password.clone()),
            Some(Auth::Bearer { token }) => secrets.push(token.clone()),
            Some(Auth::ApiKey { value, .. }) => secrets.push(value.clone()),
            Some(Auth::Oauth2 { client_secret, .. }) => secrets.push(client_secret.clone()),
            None => {}
        }
        for (k, v) in spec.query.iter().chain(spec.headers.iter()) {
            if stream_config::is_secret_key(k) {
                secrets.push(v.clone());
            }
        }
        secrets.retain(|s| !s.is_empty());
        Ok(Self {
            breaker: CircuitBreaker::new(
                spec.breaker_threshold,
                Duration::from_secs_f64(spec.breaker_cooldown_seconds.max(0.0)),
            ),
            dedup: spec.dedup.clone().map(Dedup::new),
            limiter: RateLimiter::direct_with_clock(quota, clock),
            clock,
            validators: Mutex::new(Validators::default()),
            cache: Mutex::new(None),
            token: tokio::sync::Mutex::new(None),
            client,
            spec,
            opts,
            secrets,
        })
    }

    /// Treats `secret` as a secret: it is replaced by `***` in every message.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        let s = secret.into();
        if !s.is_empty() {
            self.secrets.push(s);
        }
        self
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            out = out.replace(s.as_str(), stream_config::REDACTED);
        }
        out
    }

    async fn rate_limit(&self) {
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
    }

    async fn bearer_token(&self, refresh: bool) -> Result<Option<String>, SourceError> {
        let Some(Auth::Oauth2 {
            token_url,
            client_id,
            client_secret,
            scope,
        }) = &self.spec.auth
        else {
            return Ok(None);
        };
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = &*cached {
            if !refresh && Instant::now() < *expires {
                return Ok(Some(token.clone()));
            }
        }
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.clone()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s.clone()));
        }
        self.rate_limit().await;
        let resp = self
            .client
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                SourceError::Unavailable(
                    self.redact(&format!("OAuth2 token request: {}", e.without_url())),
                )
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(SourceError::Status {
                status: status.as_u16(),
                message: "OAuth2 token endpoint refused the client credentials".to_owned(),
            });
        }
        let body: Value = resp.json().await.map_err(|e| {
            SourceError::Decode(format!("OAuth2 token response: {}", e.without_url()))
        })?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                SourceError::Decode("OAuth2 token response has no access_token".to_owned())
            })?
            .to_owned();
        let ttl = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        // Refresh a little before expiry.
        let expires = Instant::now() + Duration::from_secs(ttl.saturating_sub(30).max(1));
        *cached = Some((token.clone(), expires));
        Ok(Some(token))
    }

    fn request(&self, url: &Url, first_page: bool, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = match self.spec.method {
            Method::Get => self.client.get(url.clone()),
            Method::Post => self.client.post(url.clone()),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &self.spec.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        match &self.spec.auth {
            Some(Auth::Basic { username, password }) => {
                req = req.basic_auth(username, Some(password))
            }
            Some(Auth::Bearer { token }) => req = req.bearer_auth(token),
            Some(Auth::ApiKey {
                name,
                value,
                location: KeyLocation::Header,
            }) => {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    headers.insert(k, v);
                }
            }
            Some(Auth::ApiKey {
                name,
                value,
                location: KeyLocation::Query,
            }) => {
                req = req.query(&[(name, value)]);
            }
            Some(Auth::Oauth2 { .. }) => {
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
            }
            None => {}
        }
        if first_page {
            let v = self.validators.lock().unwrap_or_else(|e| e.into_inner());
            if v.url == url.as_str() {
                if let Some(etag) = &v.etag {
                    headers.insert(reqwest::header::IF_NONE_MATCH, etag.clone());
                }
                if let Some(lm) = &v.last_modified {
                    headers.insert(reqwest::header::IF_MODIFIED_SINCE, lm.clone());
                }
            }
        }
        if let Some(body) = &self.spec.body {
            req = req.json(body);
        }
        req.headers(headers)
    }

    /// One request with retries; returns the response (2xx or 304) and its body.
    async fn get_page(
        &self,
        url: &Url,
        first_page: bool,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), SourceError> {
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            self.rate_limit().await;
            let token = self.bearer_token(false).await?;
            let started = Instant::now();
            let result = self.request(url, first_page, token.as_deref()).send().await;
            let outcome = match result {
                Ok(resp) => {
                    let status = resp.status();
                    metrics::counter!(m::REQUESTS, "source" => self.opts.source_id.clone(), "status" => status.as_u16().to_string())
                        .increment(1);
                    metrics::histogram!(m::LATENCY, "source" => self.opts.source_id.clone())
                        .record(started.elapsed().as_secs_f64());
                    if status.is_success() || status == StatusCode::NOT_MODIFIED {
                        let headers = resp.headers().clone();
                        let body = if status == StatusCode::NOT_MODIFIED {
                            Vec::new()
                        } else {
                            self.read_body(resp).await?
                        };
                        return Ok((status, headers, body));
                    }
                    if status == StatusCode::UNAUTHORIZED
                        && !refreshed
                        && matches!(self.spec.auth, Some(Auth::Oauth2 { .. }))
                    {
                        refreshed = true;
                        self.bearer_token(true).await?;
                        continue;
                    }
                    let retry_after = retry_after(resp.headers());
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        Attempt::Retry {
                            message: format!("HTTP {status}"),
                            retry_after,
                        }
                    } else {
                        Attempt::Fatal(SourceError::Status {
                            status: status.as_u16(),
                            message: status.canonical_reason().unwrap_or("error").to_owned(),
                        })
                    }
                }
                Err(e) => {
                    metrics::counter!(m::REQUESTS, "source" => self.opts.source_id.clone(), "status" => "error").increment(1);
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else {
                        "request failed"
                    };
                    Attempt::Retry {
                        message: self.redact(&format!("{kind}: {}", e.without_url())),
                        retry_after: None,
                    }
                }
            };
            match outcome {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry {
                    message,
                    retry_after,
                } => {
                    if attempt >= self.spec.max_retries {
                        return Err(SourceError::Unavailable(format!(
                            "{message} (after {} retries)",
                            self.spec.max_retries
                        )));
                    }
                    attempt += 1;
                    metrics::counter!(m::RETRIES, "source" => self.opts.source_id.clone())
                        .increment(1);
                    let backoff = self.backoff(attempt);
                    let wait = retry_after.map_or(backoff, |ra| ra.max(backoff));
                    tracing::debug!(source = %self.opts.source_id, attempt, ?wait, "{message}; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// `retry_base × 2^(attempt-1)`, equal jitter, capped at 60 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = Duration::from_secs_f64(self.spec.retry_base_seconds.max(0.0))
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(Duration::from_secs(60));
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    async fn read_body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, SourceError> {
        let limit = self.spec.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(SourceError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            SourceError::Unavailable(self.redact(&format!("reading body: {}", e.without_url())))
        })? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(SourceError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        metrics::counter!(m::BYTES, "source" => self.opts.source_id.clone())
            .increment(body.len() as u64);
        Ok(body)
    }

    fn first_url(&self, cursor: Option<&Cursor>) -> Result<Url, SourceError> {
        let mut url = Url::parse(&self.spec.url).map_err(|e| SourceError::Config {
            path: format!("sources.{}.custom_params.url", self.opts.source_id),
            message: e.to_string(),
        })?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &self.spec.query {
                q.append_pair(k, v);
            }
            if let Some(inc) = &self.spec.incremental {
                if let Some(value) = cursor.map(|c| c.0.clone()).or_else(|| inc.initial.clone()) {
                    q.append_pair(&inc.param, &value);
                }
            }
            if let Pagination::Offset {
                offset_param,
                limit_param,
                limit,
            } = &self.spec.pagination
            {
                q.append_pair(offset_param, "0");
                q.append_pair(limit_param, &limit.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    fn next_url(
        &self,
        current: &Url,
        headers: &HeaderMap,
        json: Option<&Value>,
        page_len: usize,
    ) -> Option<Url> {
        match &self.spec.pagination {
            Pagination::None => None,
            Pagination::NextLink { pointer } => {
                let link = json?.pointer(pointer)?.as_str()?;
                (!link.is_empty())
                    .then(|| current.join(link).ok())
                    .flatten()
            }
            Pagination::LinkHeader => {
                let header = headers.get(reqwest::header::LINK)?.to_str().ok()?;
                header.split(',').find_map(|part| {
                    let (target, params) = part.split_once(';')?;
                    let is_next = params.split(';').any(|p| {
                        p.trim()
                            .replace(' ', "")
                            .eq_ignore_ascii_case("rel=\"next\"")
                            || p.trim() == "rel=next"
                    });
                    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
                    is_next.then(|| current.join(target).ok()).flatten()
                })
            }
            Pagination::Cursor { pointer, param } => {
                let token = json?.pointer(pointer)?;
                let token = match token {
                    Value::String(s) if !s.is_empty() => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some(with_param(current, param, &token))
            }
            Pagination::Offset {
                offset_param,
                limit,
                ..
            } => {
                if (page_len as u64) < *limit {
                    return None;
                }
                let offset: u64 = current
                    .query_pairs()
                    .find(|(k, _)| k == offset_param.as_str())
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                Some(with_param(
                    current,
                    offset_param,
                    &(offset + limit).to_string(),
                ))
            }
        }
    }

    fn newest_cursor(&self, records: &[Value], old: Option<&Cursor>) -> Option<Cursor> {
        let inc = self.spec.incremental.as_ref()?;
        let mut newest: Option<String> = old.map(|c| c.0.clone());
        for r in records {
            let Some(v) = r.pointer(&inc.field) else {
                continue;
            };
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            let newer = match &newest {
                None => true,
                Some(cur) => match (v.parse::<f64>(), cur.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a > b,
                    _ => v > *cur,
                },
            };
            if newer {
                newest = Some(v);
            }
        }
        newest.map(Cursor)
    }

    async fn fetch_pages(&self, cursor: Option<&Cursor>) -> Result<Fetch, SourceError> {
        let first = self.first_url(cursor)?;
        let cache_key = first.to_string();
        if !self.opts.cache_ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((key, at)) = &*cache {
                if *key == cache_key && at.elapsed() < self.opts.cache_ttl {
                    metrics::counter!(m::CACHE_HITS, "source" => self.opts.source_id.clone())
                        .increment(1);
                    return Ok(Fetch::unchanged());
                }
            }
        }
        let mut fetch = Fetch {
            changed: true,
            ..Fetch::default()
        };
        let mut url = first.clone();
        for page in 0..self.spec.max_pages.max(1) {
            let (status, headers, body) = self.get_page(&url, page == 0).await?;
            if status == StatusCode::NOT_MODIFIED {
                metrics::counter!(m::NOT_MODIFIED, "source" => self.opts.source_id.clone())
                    .increment(1);
                self.remember(&cache_key);
                return Ok(Fetch::unchanged());
            }
            if page == 0 {
                let mut v = self.validators.lock().unwrap_or_else(|e| e.into_inner());
                *v = Validators {
                    url: first.to_string(),
                    etag: headers.get(reqwest::header::ETAG).cloned(),
                    last_modified: headers.get(reqwest::header::LAST_MODIFIED).cloned(),
                };
            }
            let decoded = self.spec.decoder.decode(&body)?;
            let page_len = decoded.records.len();
            let next = self.next_url(&url, &headers, decoded.json.as_ref(), page_len);
            fetch.records.extend(decoded.records);
            fetch.rejected.extend(decoded.rejected);
            match next {
                Some(n) if n != url => url = n,
                _ => break,
            }
        }
        if let Some(d) = &self.dedup {
            fetch.records = d.filter(std::mem::take(&mut fetch.records));
        }
        fetch.next_cursor = self.newest_cursor(&fetch.records, cursor);
        fetch.changed = !fetch.records.is_empty() || !fetch.rejected.is_empty();
        metrics::counter!(m::RECORDS, "source" => self.opts.source_id.clone())
            .increment(fetch.records.len() as u64);
        self.remember(&cache_key);
        Ok(fetch)
    }

    fn remember(&self, key: &str) {
        if !self.opts.cache_ttl.is_zero() {
            *self.cache.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((key.to_owned(), Instant::now()));
        }
    }
}

fn with_param(url: &Url, param: &str, value: &str) -> Url {
    let mut next = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(param, value);
    next
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate(v)?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(s: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, se] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s))
}

#[async_trait]
impl Source for HttpApiClient {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, SourceError> {
        if let Err(wait) = self.breaker.allow() {
            return Err(SourceError::BreakerOpen {
                retry_in_seconds: wait.as_secs().max(1),
            });
        }
        let result = self.fetch_pages(cursor).await;
        match &result {
            Ok(_) => self.breaker.success(),
            Err(SourceError::Config { .. }) => {}
            Err(_) => self.breaker.failure(),
        }
        metrics::gauge!(m::BREAKER, "source" => self.opts.source_id.clone())
            .set(f64::from(self.breaker.state().as_number()));
        result.map_err(|e| match e {
            SourceError::Unavailable(msg) => SourceError::Unavailable(self.redact(&msg)),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        let t = httpdate("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert!(httpdate("yesterday").is_none());
    }

    #[test]
    fn link_header_and_offsets() {
        let spec = HttpSpec {
            pagination: Pagination::LinkHeader,
            ..HttpSpec::get("http://h/x")
        };
        let c = HttpApiClient::new(spec, opts()).unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<http://h/x?page=1>; rel=\"prev\", </x?page=3>; rel=\"next\"",
            ),
        );
        let cur = Url::parse("http://h/x?page=2").unwrap();
        assert_eq!(
            c.next_url(&cur, &h, None, 10).unwrap().as_str(),
            "http://h/x?page=3"
        );
        let spec = HttpSpec {
            pagination: Pagination::Offset {
                offset_param: "o".into(),
                limit_param: "l".into(),
                limit: 2,
            },
            ..HttpSpec::get("http://h/x")
        };
        let c = HttpApiClient::new(spec, opts()).unwrap();
        let first = c.first_url(None).unwrap();
        assert_eq!(first.as_str(), "http://h/x?o=0&l=2");
        assert_eq!(
            c.next_url(&first, &h, None, 2).unwrap().as_str(),
            "http://h/x?l=2&o=2"
        );
        assert!(
            c.next_url(&first, &h, None, 1).is_none(),
            "a short page is the last"
        );
    }

    fn opts() -> ClientOptions {
        ClientOptions {
            source_id: "t".into(),
            rate_limit_per_minute: 6000,
            timeout: Duration::from_secs(5),
            cache_ttl: Duration::ZERO,
        }
    }
}
