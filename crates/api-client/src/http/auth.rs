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
use crate::source::Error;

/// The secret values of `spec`: its auth, and query parameters and headers whose names
/// say they are secret.
pub(super) fn secrets_of(spec: &HttpSpec) -> Vec<String> {
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
    secrets
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
        let resp = self
            .client
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                Error::Unavailable(
                    self.redact(&format!("OAuth2 token request: {}", e.without_url())),
                )
            })?;
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
        let mut req = match self.spec.method {
            Method::Get => self.client.get(url.clone()),
            Method::Post => self.client.post(url.clone()),
        };
        let mut headers = HeaderMap::new();
        // Credentials go only to the origin they were configured for: a next-page link
        // to another host gets no auth, no API key and no secret-looking header.
        let same_origin = Url::parse(&self.spec.url).is_ok_and(|u| u.origin() == url.origin());
        for (k, v) in &self.spec.headers {
            if !same_origin
                && (stream_config::is_secret_key(k) || k.eq_ignore_ascii_case("authorization"))
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
        if let Some(v) = conditional.filter(|v| v.url == url.as_str()) {
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
        req.headers(headers)
    }
}
