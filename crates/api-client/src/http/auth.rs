//! Credentials: static auth (basic, bearer, API key), OAuth2 client credentials with
//! token refresh, conditional-request validators, and redaction of every secret the
//! source was configured with.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use super::spec::{Auth, HttpSpec, KeyLocation, Method};
use super::state::Validators;
use super::HttpApiClient;
use crate::Error;

/// The secret values of `spec`: its auth, query parameters (in `query` or the URL) and
/// headers whose names say they are secret (by name or shape: `key`, `sig`, `Cookie`,
/// `Ocp-Apim-Subscription-Key`…), the URL's user-info token, and secret-looking members
/// of the body.
pub(super) fn secrets_of(spec: &HttpSpec) -> Vec<String> {
    let mut secrets: Vec<String> = secret_params(spec).into_iter().map(|(_, v)| v).collect();
    if let Ok(url) = Url::parse(&spec.url) {
        match url.password() {
            Some(p) => secrets.push(p.to_owned()),
            None if !url.username().is_empty() => secrets.push(url.username().to_owned()),
            None => {}
        }
    }
    if let Some(body) = &spec.body {
        body_secrets(body, &mut secrets);
    }
    match &spec.auth {
        Some(Auth::Basic { password, .. }) => secrets.push(password.clone()),
        Some(Auth::Bearer { token }) => secrets.push(token.clone()),
        Some(Auth::ApiKey { value, .. }) => secrets.push(value.clone()),
        Some(Auth::Oauth2 { client_secret, .. }) => secrets.push(client_secret.clone()),
        None => {}
    }
    for (k, v) in &spec.headers {
        if stream_config::is_secret_name(k) {
            secrets.push(v.clone());
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

fn body_secrets(body: &Value, out: &mut Vec<String>) {
    match body {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if stream_config::is_secret_key(k) => out.push(s.clone()),
                    other => body_secrets(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| body_secrets(v, out)),
        _ => {}
    }
}

/// The secret query parameters of `spec` (secret-looking names in `query` or in the
/// URL's own query). They are never part of a URL the client keeps (a resume point,
/// validators, the cache key): [`HttpApiClient::request`] adds them to each request for
/// the configured origin, so nothing persisted or shown carries them.
pub(super) fn secret_params(spec: &HttpSpec) -> Vec<(String, String)> {
    let in_url: Vec<(String, String)> = Url::parse(&spec.url)
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    in_url
        .into_iter()
        .chain(spec.query.iter().map(|(k, v)| (k.clone(), v.clone())))
        .filter(|(k, v)| stream_config::is_secret_name(k) && !v.is_empty())
        .collect()
}

/// `text` with each of `secrets` replaced by `***`.
pub(super) fn redact_with(secrets: &[String], text: &str) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        out = out.replace(s.as_str(), stream_config::REDACTED);
    }
    out
}

impl HttpApiClient {
    /// Treats `secret` as a secret: it is replaced by `***` in every message.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        let s = secret.into();
        if !s.is_empty() {
            self.secrets.push(s);
        }
        self
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        redact_with(&self.secrets, text)
    }

    /// `url` without its user-info and secret query parameters (those of
    /// [`secret_params`], and any whose value is a secret of this source, as an upstream
    /// may echo a key in its links): what the client keeps, persists and shows.
    pub(super) fn public_url(&self, url: &Url) -> Url {
        if !url.username().is_empty() || url.password().is_some() {
            let mut bare = url.clone();
            let _ = bare.set_username("");
            let _ = bare.set_password(None);
            return self.public_url(&bare);
        }
        let names = &self.secret_params;
        let secret = |k: &str, v: &str| {
            names.iter().any(|(n, _)| n == k) || self.secrets.iter().any(|s| s == v)
        };
        if !url.query_pairs().any(|(k, v)| secret(&k, &v)) {
            return url.clone();
        }
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, v)| !secret(k, v))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut out = url.clone();
        if kept.is_empty() {
            out.set_query(None);
        } else {
            out.query_pairs_mut().clear().extend_pairs(kept);
        }
        out
    }

    /// The OAuth2 bearer token (`None` without OAuth2). The token request is boxed, so a
    /// source without OAuth2 carries none of it in its poll's future.
    pub(super) async fn token(&self, refresh: bool) -> Result<Option<String>, Error> {
        if !matches!(self.spec.auth, Some(Auth::Oauth2 { .. })) {
            return Ok(None);
        }
        Box::pin(self.bearer_token(refresh)).await
    }

    pub(super) async fn bearer_token(&self, refresh: bool) -> Result<Option<String>, Error> {
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
        let turn = self.client.turn().await;
        let resp = self
            .client
            .client
            .post(token_url)
            .timeout(self.opts.timeout)
            .header(reqwest::header::USER_AGENT, self.user_agent.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| match super::outbound::refusal_in(&e) {
                // Refused by the (shared) client's redirect policy or resolver: counted
                // and worded here, for this source.
                Some(refused) => Error::Refused(self.redact(&self.outbound.explain(&refused))),
                None => Error::Unavailable(
                    self.redact(&format!("OAuth2 token request: {}", e.without_url())),
                ),
            })?;
        drop(turn);
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::Status {
                status: status.as_u16(),
                message: "OAuth2 token endpoint refused the client credentials".to_owned(),
            });
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| Error::Decode(format!("OAuth2 token response: {}", e.without_url())))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Decode("OAuth2 token response has no access_token".to_owned()))?
            .to_owned();
        let ttl = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        // Refresh a little before expiry. An upstream's `expires_in` is clamped: near
        // `u64::MAX` it overflowed the `Instant` (a panic at every poll); a token is
        // refreshed at least daily.
        let expires = Instant::now() + Duration::from_secs(ttl.saturating_sub(30).clamp(1, 86_400));
        *cached = Some((token.clone(), expires));
        Ok(Some(token))
    }

    pub(super) fn request(
        &self,
        url: &Url,
        conditional: Option<&Validators>,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        // Credentials go only to the origin they were configured for: a next-page link
        // to another host gets no auth, no API key and no secret-looking header.
        let configured = Some(&self.configured);
        let same_origin = configured.is_some_and(|u| u.origin() == url.origin());
        let mut target = url.clone();
        if let Some(c) = configured.filter(|_| same_origin && url.username().is_empty()) {
            // The URL's user-info, kept out of every stored URL (reqwest sends it as
            // basic auth).
            let _ = target.set_username(c.username());
            let _ = target.set_password(c.password());
        }
        let mut req = match self.spec.method {
            Method::Get => self.client.client.get(target),
            Method::Post => self.client.client.post(target),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &self.spec.headers {
            if !same_origin
                && (stream_config::is_secret_name(k) || k.eq_ignore_ascii_case("authorization"))
            {
                continue;
            }
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        let auth = if same_origin {
            // The secret query parameters, kept out of every stored URL, go to their origin.
            let present: Vec<String> = match self.secret_params.is_empty() {
                true => Vec::new(),
                false => url.query_pairs().map(|(k, _)| k.into_owned()).collect(),
            };
            for (k, v) in &self.secret_params {
                if !present.contains(k) {
                    req = req.query(&[(k, v)]);
                }
            }
            self.spec.auth.as_ref()
        } else {
            None
        };
        match auth {
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
        if let Some(v) = conditional.filter(|v| v.url == self.redact(url.as_str())) {
            let mut set = |name, value: &Option<String>| {
                if let Some(value) = value.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
                    headers.insert(name, value);
                }
            };
            set(reqwest::header::IF_NONE_MATCH, &v.etag);
            set(reqwest::header::IF_MODIFIED_SINCE, &v.last_modified);
        }
        if let Some(body) = &self.spec.body {
            req = req.json(body);
        }
        // The client may be shared: this source's User-Agent and timeout go here.
        headers
            .entry(reqwest::header::USER_AGENT)
            .or_insert_with(|| self.user_agent.clone());
        req.timeout(self.opts.timeout).headers(headers)
    }
}
