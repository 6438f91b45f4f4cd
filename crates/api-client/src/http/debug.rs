//! Hand-written `Debug` of the types that hold secrets (`Auth`, `HttpSpec`,
//! `HttpApiClient`): credentials, secret-looking headers, query parameters and body
//! members, and URL user-info tokens print as `***`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use stream_config::{is_secret_key, is_secret_name, REDACTED};

use super::spec::{Auth, HttpSpec};
use super::HttpApiClient;

/// A URL as it may be shown: user-info token and secret-looking query values replaced.
pub(super) fn shown_url(url: &str) -> String {
    stream_config::redact_url(url).unwrap_or_else(|| url.to_owned())
}

/// Headers or query parameters with the values of secret-looking names replaced.
fn shown_params(params: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    params
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_name(k) {
                REDACTED
            } else {
                v.as_str()
            };
            (k.as_str(), v)
        })
        .collect()
}

/// A JSON body with the values of secret-looking members replaced.
fn shown_body(body: &Value) -> Value {
    match body {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) || is_secret_name(k) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        shown_body(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shown_body).collect()),
        other => other.clone(),
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            Auth::Bearer { .. } => f.debug_struct("Bearer").field("token", &REDACTED).finish(),
            Auth::ApiKey { name, location, .. } => f
                .debug_struct("ApiKey")
                .field("name", name)
                .field("value", &REDACTED)
                .field("location", location)
                .finish(),
            Auth::Oauth2 {
                token_url,
                client_id,
                scope,
                ..
            } => f
                .debug_struct("Oauth2")
                .field("token_url", &shown_url(token_url))
                .field("client_id", client_id)
                .field("client_secret", &REDACTED)
                .field("scope", scope)
                .finish(),
        }
    }
}

impl fmt::Debug for HttpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSpec")
            .field("url", &shown_url(&self.url))
            .field("method", &self.method)
            .field("headers", &shown_params(&self.headers))
            .field("query", &shown_params(&self.query))
            .field("body", &self.body.as_ref().map(shown_body))
            .field("decoder", &self.decoder)
            .field("pagination", &self.pagination)
            .field("incremental", &self.incremental)
            .field("auth", &self.auth)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_pages", &self.max_pages)
            .field("max_retries", &self.max_retries)
            .field("retry_base_seconds", &self.retry_base_seconds)
            .field("max_retry_after_seconds", &self.max_retry_after_seconds)
            .field("user_agent", &self.user_agent)
            .field("dedup", &self.dedup)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown_seconds", &self.breaker_cooldown_seconds)
            .finish()
    }
}

impl fmt::Debug for HttpApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The spec's own Debug hides secrets by shape; `redact` also hides the ones a
        // connector declared (`with_secret`, e.g. a key in the URL path).
        let spec = self.redact(&format!("{:?}", self.spec));
        f.debug_struct("HttpApiClient")
            .field("source", &self.opts.source_id)
            .field("spec", &format_args!("{spec}"))
            .field("opts", &self.opts)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}
