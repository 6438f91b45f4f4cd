//! `HttpApiClient`: a polite, robust poller of one HTTP API. What it is asked to do is
//! `spec.rs`; credentials and redaction `auth.rs`; page and cursor arithmetic
//! `paging.rs`; requests, retries, limits and the fetch itself here.

mod auth;
mod body;
mod debug;
pub(crate) mod limits;
mod meters;
mod outbound;
mod paging;
mod shared;
mod spec;
mod state;

pub(crate) use state::summary as cursor_summary;
use state::{FetchState, StateCache, Validators};

pub use spec::{Auth, ClientOptions, HttpSpec, Incremental, KeyLocation, Method, Pagination};

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
use tokio::time::Instant;

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::metrics as m;
use crate::{ChunkSender, Cursor, Error, Fetch, PartStatus, Source};

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// Polls one HTTP API. See the crate docs for what it guarantees. `Debug` shows no
/// secret (`debug.rs`).
pub struct HttpApiClient {
    spec: HttpSpec,
    outbound: std::sync::Arc<outbound::Outbound>,
    /// What is read of the options after construction (the rest went into the outbound
    /// rules, the limiter and the checked spec).
    opts: Kept,
    /// Shared with every source whose client would be built alike (`shared.rs`).
    client: std::sync::Arc<shared::Shared>,
    /// Sent unless the spec's headers set one.
    user_agent: HeaderValue,
    clock: TokioClock,
    limiter: std::sync::Arc<Limiter>,
    breaker: CircuitBreaker,
    cache: Mutex<Option<(String, Instant)>>,
    decoded: StateCache,
    status: Mutex<PartStatus>,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    secrets: Vec<String>,
    meters: meters::Meters,
    /// `spec.url` parsed, and its secret query parameters: read once, not per request.
    configured: Url,
    secret_params: Vec<(String, String)>,
}

/// The options a client reads per poll: kept alone, not the whole `ClientOptions` (its
/// hosts, limits and address are read once, at construction; a client exists per source).
#[derive(Debug)]
struct Kept {
    source_id: String,
    timeout: Duration,
    cache_ttl: Duration,
}

/// Why one request attempt failed.
enum Attempt {
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    Fatal(Error),
}

impl HttpApiClient {
    /// A client for `spec`. Fails on an unparseable URL or header.
    pub fn new(spec: HttpSpec, opts: ClientOptions) -> Result<Self, Error> {
        let config_err = |key: &str, message: String| Error::Config {
            path: format!("sources.{}.custom_params.{key}", opts.source_id),
            message,
        };
        let configured = Url::parse(&spec.url)
            // The URL itself is not echoed: it may hold a key or a user-info token.
            .map_err(|e| config_err("url", format!("not a URL: {e}")))?;
        let spec =
            (opts.limits.checked(spec)).map_err(|(key, message)| config_err(key, message))?;
        for (k, v) in &spec.headers {
            HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| config_err("headers", format!("header name `{k}`: {e}")))?;
            HeaderValue::from_str(v)
                .map_err(|e| config_err("headers", format!("header `{k}` value: {e}")))?;
        }
        let outbound = std::sync::Arc::new(outbound::for_spec(&spec, &opts)?);
        // A redirect to another origin is refused when the source has credentials
        // (reqwest drops `Authorization` there, but not an API key header or parameter).
        let has_credentials = spec.auth.is_some()
            || spec
                .headers
                .keys()
                .chain(spec.query.keys())
                .any(|k| stream_config::is_secret_name(k));
        let user_agent = spec.user_agent.clone().unwrap_or_else(|| {
            format!(
                "stream-manager/{} ({})",
                env!("CARGO_PKG_VERSION"),
                opts.source_id
            )
        });
        let user_agent = HeaderValue::from_str(&user_agent)
            .map_err(|e| config_err("user_agent", format!("not a header value: {e}")))?;
        // The redirect policy and the resolver judge by the rules alone; the source
        // counts and words a refusal itself (`Outbound::explain`), so the client can be
        // shared. Timeout and User-Agent are set on each request.
        let key = format!("{}|{has_credentials}", outbound.sharing_key());
        let rules = outbound.clone();
        let client = shared::client(key, || {
            reqwest::Client::builder()
                .redirect(outbound::redirect_policy(rules.clone(), has_credentials))
                .dns_resolver(std::sync::Arc::new(outbound::GuardedResolver(rules)))
                .referer(false)
                .build()
        })
        .map_err(|e| config_err("", format!("HTTP client: {e}")))?;
        let per_minute = opts.rate_limit_per_minute.max(1);
        let burst = NonZeroU32::new((per_minute / 10).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(Duration::from_secs(60) / per_minute)
            .expect("positive period")
            .allow_burst(burst);
        let clock = TokioClock::start();
        let secrets = auth::secrets_of(&spec);
        Ok(Self {
            meters: meters::Meters::new(&opts.source_id, &configured),
            secret_params: auth::secret_params(&spec),
            configured,
            breaker: CircuitBreaker::new(
                spec.breaker_threshold,
                stream_config::seconds(spec.breaker_cooldown_seconds),
            ),
            limiter: std::sync::Arc::new(RateLimiter::direct_with_clock(quota, clock)),
            clock,
            cache: Mutex::new(None),
            decoded: StateCache::default(),
            status: Mutex::new(PartStatus::default()),
            token: tokio::sync::Mutex::new(None),
            client,
            user_agent,
            spec,
            outbound,
            opts: Kept {
                source_id: opts.source_id,
                timeout: opts.timeout,
                cache_ttl: opts.cache_ttl,
            },
            secrets,
        })
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    async fn rate_limit(&self) {
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
    }

    /// One request with retries; returns the response (2xx or 304) and its body.
    pub(crate) async fn get_page(
        &self,
        url: &Url,
        conditional: Option<&Validators>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), Error> {
        let (status, headers, resp) = self.get_response(url, conditional).await?;
        let body = match resp {
            Some(resp) => self.read_body(resp).await?,
            None => Vec::new(),
        };
        Ok((status, headers, body))
    }

    /// One request with retries; returns the answer (2xx or 304) with its body still
    /// to read (none for a 304).
    async fn get_response(
        &self,
        url: &Url,
        conditional: Option<&Validators>,
    ) -> Result<(StatusCode, HeaderMap, Option<reqwest::Response>), Error> {
        if let Err(why) = self.outbound.check(url) {
            self.note_status("refused");
            let refused = self.outbound.refused("request", url, why);
            return Err(Error::Refused(self.redact(&refused)));
        }
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            self.rate_limit().await;
            let token = self.token(false).await?;
            let (result, started) = {
                let _turn = self.client.turn().await;
                let started = Instant::now();
                // Boxed: allocated only once a turn is granted, so a poll waiting for
                // one holds a small future (10,000 sources due together wait at once).
                let sent = Box::pin(self.request(url, conditional, token.as_deref()).send());
                (sent.await, started)
            };
            let outcome = match result {
                Ok(resp) => {
                    let status = resp.status();
                    self.note_status(status.as_str());
                    self.meters.requests(Some(status.as_u16())).increment(1);
                    (self.meters.latency()).record(started.elapsed().as_secs_f64());
                    if status.is_success() || status == StatusCode::NOT_MODIFIED {
                        let headers = resp.headers().clone();
                        let body = (status != StatusCode::NOT_MODIFIED).then_some(resp);
                        return Ok((status, headers, body));
                    }
                    if status == StatusCode::UNAUTHORIZED
                        && !refreshed
                        && matches!(self.spec.auth, Some(Auth::Oauth2 { .. }))
                    {
                        refreshed = true;
                        self.token(true).await?;
                        continue;
                    }
                    let retry_after = crate::time::retry_after(resp.headers());
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        Attempt::Retry {
                            message: format!("HTTP {status}"),
                            retry_after,
                        }
                    } else {
                        Attempt::Fatal(Error::Status {
                            status: status.as_u16(),
                            message: status.canonical_reason().unwrap_or("error").to_owned(),
                        })
                    }
                }
                Err(e) => {
                    self.meters.requests(None).increment(1);
                    if let Some(refused) = outbound::refusal_in(&e) {
                        self.note_status("refused");
                        let refused = self.outbound.explain(&refused);
                        return Err(Error::Refused(self.redact(&refused)));
                    }
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else if e.is_redirect() {
                        "redirect refused"
                    } else {
                        "request failed"
                    };
                    self.note_status(kind);
                    // The error and its causes (URLs left out, secrets redacted).
                    let redirect = e.is_redirect();
                    let e = e.without_url();
                    let mut message = format!("{kind}: {e}");
                    let mut cause = std::error::Error::source(&e);
                    while let Some(c) = cause {
                        message.push_str(&format!(": {c}"));
                        cause = c.source();
                    }
                    let message = self.redact(&message);
                    if redirect {
                        // Retrying cannot change where the upstream redirects.
                        Attempt::Fatal(Error::Unavailable(message))
                    } else {
                        Attempt::Retry {
                            message,
                            retry_after: None,
                        }
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
                        return Err(Error::Unavailable(format!(
                            "{message} (after {} retries)",
                            self.spec.max_retries
                        )));
                    }
                    attempt += 1;
                    metrics::counter!(m::RETRIES, "source" => self.opts.source_id.clone())
                        .increment(1);
                    let backoff = self.backoff(attempt);
                    let cap = stream_config::seconds(self.spec.max_retry_after_seconds);
                    let retry_after = retry_after.map(|ra| {
                        if ra > cap {
                            tracing::warn!(
                                source = %self.opts.source_id,
                                asked = ?ra,
                                honoured = ?cap,
                                "Retry-After longer than max_retry_after_seconds; capped"
                            );
                        }
                        ra.min(cap)
                    });
                    let wait = retry_after.map_or(backoff, |ra| ra.max(backoff));
                    tracing::debug!(source = %self.opts.source_id, attempt, ?wait, "{message}; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// `retry_base × 2^(attempt-1)`, equal jitter, capped at 60 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = stream_config::seconds(self.spec.retry_base_seconds)
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(Duration::from_secs(60));
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    async fn fetch_pages(
        &self,
        cursor: Option<&Cursor>,
        out: Option<&ChunkSender>,
    ) -> Result<Fetch, Error> {
        let state = self.decoded.get(cursor);
        let incremental = state.cursor.clone().map(Cursor);
        // Secret parameters stay out of every URL kept (`request` adds them).
        let first =
            paging::first_url_from(self.configured.clone(), &self.spec, incremental.as_ref());
        let first = self.public_url(&first);
        // An interrupted walk continues where it stopped, unconditionally.
        let (start, resuming) = match &state.resume {
            Some(r) => {
                let at = Url::parse(r).map_err(|e| Error::Io(format!("stored resume URL: {e}")))?;
                match self.outbound.check(&at) {
                    Ok(()) => (self.public_url(&at), true),
                    // Stored before the rules were narrowed: the walk starts over.
                    Err(why) => {
                        self.outbound.refused("stored resume point", &at, why);
                        (first.clone(), false)
                    }
                }
            }
            None => (first.clone(), false),
        };
        let cache_key = if self.opts.cache_ttl.is_zero() {
            String::new() // no cache: no key to compare
        } else {
            start.to_string()
        };
        if !resuming && !self.opts.cache_ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((key, at)) = &*cache {
                if *key == cache_key && at.elapsed() < self.opts.cache_ttl {
                    metrics::counter!(m::CACHE_HITS, "source" => self.opts.source_id.clone())
                        .increment(1);
                    self.note_status("cached");
                    return Ok(Fetch::unchanged());
                }
            }
        }
        let mut next_state = FetchState {
            resume: None,
            ..state.clone()
        };
        let mut h = body::Handing::new(out);
        // Pointers the next page is read from, kept while the body streams past.
        let capture: Vec<String> = match &self.spec.pagination {
            Pagination::NextLink { pointer } | Pagination::Cursor { pointer, .. } => {
                vec![pointer.clone()]
            }
            _ => Vec::new(),
        };
        let mut url = start;
        let mut page = 0u32;
        loop {
            let conditional = (!resuming && page == 0)
                .then_some(state.validators.as_ref())
                .flatten();
            let answer = match self.get_response(&url, conditional).await {
                Ok(a) => a,
                // Nothing in hand: the whole fetch failed, the state stays as it was.
                Err(e) if page == 0 => return Err(e),
                // Pages before this one are in hand: they are emitted, and the next poll
                // resumes at this page.
                Err(e) => {
                    self.interrupted(&mut h.fetch, &mut next_state, &url, page, &e);
                    break;
                }
            };
            let (status, headers, body) = answer;
            if status == StatusCode::NOT_MODIFIED && page == 0 {
                self.remember(&cache_key);
                return Ok(Fetch::unchanged());
            }
            if page == 0 && !resuming {
                let text = |h| {
                    headers
                        .get(h)
                        .and_then(|v: &HeaderValue| v.to_str().ok())
                        .map(str::to_owned)
                };
                let etag = text(reqwest::header::ETAG);
                let last_modified = text(reqwest::header::LAST_MODIFIED);
                next_state.validators =
                    (etag.is_some() || last_modified.is_some()).then(|| Validators {
                        // Redacted: a key in the path (FIRMS) is not persisted.
                        url: self.redact(first.as_str()),
                        etag,
                        last_modified,
                    });
            }
            let mut decoder = self.spec.decoder.stream(&capture);
            h.page_len = 0;
            let read = match body {
                // Boxed, as the request above: only a poll reading a body holds it.
                Some(body) => {
                    Box::pin(self.read_page(body, &mut decoder, &mut next_state, &mut h)).await
                }
                None => Ok(()),
            };
            match read {
                Ok(()) => {}
                // Nothing in hand: the whole fetch failed, the state stays as it was.
                Err(e) if page == 0 && h.decoded == 0 => return Err(e),
                // Records of a body that failed half way were handed on: they settle, the
                // state stays (but for the dedup window), the next poll asks again.
                Err(e) if page == 0 => {
                    self.cut_short(&mut h.fetch, &mut next_state, &state, &e);
                    break;
                }
                Err(e) => {
                    self.interrupted(&mut h.fetch, &mut next_state, &url, page, &e);
                    break;
                }
            }
            // Without secrets: a link echoing the key still names the page it is on.
            let next = paging::next_url(
                &self.spec.pagination,
                &url,
                &headers,
                &|p| decoder.value_at(p),
                h.page_len,
            )
            .map(|n| self.public_url(&n));
            page += 1;
            // A link off the allowed hosts ends the walk as a failure of this fetch: the
            // pages in hand are emitted; the next poll starts over.
            let why = next.as_ref().filter(|n| **n != url);
            if let Some((n, why)) = why.and_then(|n| Some((n, self.outbound.check(n).err()?))) {
                let refused = Error::Refused(self.outbound.refused("next-page link", n, why));
                self.note_status("refused");
                h.fetch
                    .failures
                    .push(self.redact(&format!("after page {page}: {refused}")));
                next_state.validators = None;
                break;
            }
            match next {
                Some(n) if n != url && page >= self.spec.max_pages.max(1) => {
                    // Never silent, never lost: the next poll continues from here.
                    metrics::counter!(m::MAX_PAGES, "source" => self.opts.source_id.clone())
                        .increment(1);
                    tracing::warn!(
                        source = %self.opts.source_id,
                        max_pages = self.spec.max_pages,
                        "max_pages reached; the next poll continues from the next page"
                    );
                    next_state.resume = Some(n.to_string());
                    break;
                }
                Some(n) if n != url => url = n,
                _ => break,
            }
        }
        let mut fetch = h.fetch;
        if next_state != state {
            fetch.next_cursor = Some(self.decoded.encode(next_state));
        }
        fetch.changed = h.kept > 0;
        if fetch.failures.is_empty() {
            self.remember(&cache_key);
        }
        Ok(fetch)
    }

    fn note_status(&self, status: &str) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .note(status);
    }

    /// Shares `other`'s rate limiter: the parts of one source draw on one budget
    /// (`rate_limit_per_minute` is per source).
    pub(crate) fn share_rate_limit(mut self, other: &HttpApiClient) -> Self {
        self.limiter = other.limiter.clone();
        self.clock = other.clock;
        self
    }

    fn remember(&self, key: &str) {
        if !self.opts.cache_ttl.is_zero() {
            *self.cache.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((key.to_owned(), Instant::now()));
        }
    }
}

#[async_trait]
impl Source for HttpApiClient {
    async fn fetch(&self, cursor: Option<&Cursor>) -> Result<Fetch, Error> {
        self.fetch_with(cursor, None).await
    }

    async fn fetch_streaming(
        &self,
        cursor: Option<&Cursor>,
        out: &ChunkSender,
    ) -> Result<Fetch, Error> {
        self.fetch_with(cursor, Some(out)).await
    }

    fn parts(&self) -> Vec<PartStatus> {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Redacted when asked, so secrets added after construction count too.
        status.name = self.redact(&debug::shown_url(&self.spec.url));
        vec![status]
    }
}

impl HttpApiClient {
    /// A fetch through the breaker, its outcome noted in the part's status.
    async fn fetch_with(
        &self,
        cursor: Option<&Cursor>,
        out: Option<&ChunkSender>,
    ) -> Result<Fetch, Error> {
        let result = match self.breaker.allow() {
            Err(wait) => {
                self.note_status("breaker open");
                Err(Error::BreakerOpen {
                    retry_in_seconds: wait.as_secs().max(1),
                })
            }
            Ok(()) => {
                let result = self.fetch_pages(cursor, out).await;
                match &result {
                    Ok(f) if f.failures.is_empty() => self.breaker.success(),
                    Err(Error::Config { .. }) => {}
                    Ok(_) | Err(_) => self.breaker.failure(),
                }
                self.meters.breaker(self.breaker.state().as_number());
                result.map_err(|e| match e {
                    Error::Unavailable(msg) => Error::Unavailable(self.redact(&msg)),
                    other => other,
                })
            }
        };
        let failure = match &result {
            Ok(f) => f.failures.last().cloned(),
            Err(e) => Some(e.to_string()),
        };
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match failure {
            Some(message) => {
                status.consecutive_failures += 1;
                status.last_error = Some(message);
            }
            None => status.consecutive_failures = 0,
        }
        result
    }
}
