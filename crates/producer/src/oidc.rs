//! OAUTHBEARER tokens from an OIDC token endpoint (the OAuth 2.0 client-credentials
//! grant) for the librdkafka clients this crate makes.
//!
//! librdkafka has an OIDC client of its own, but only when it is built with libcurl, and
//! rdkafka-sys's configure build cannot link the libcurl that `curl-sys` bundles (it
//! looks for `libcurl.a` where `curl-sys` does not put it), so a machine without
//! libcurl's development files would silently build without it. Instead the settings
//! travel in `sasl.oauthbearer.config`, which librdkafka hands untouched to the token
//! refresh callback ([`token`]); librdkafka asks again at 80 % of a token's lifetime.
//! Tokens are cached per settings, so the several clients of one process share one.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rdkafka::client::OAuthToken;
use serde::{Deserialize, Serialize};
use stream_config::OidcConfig;

/// The librdkafka property that carries the settings to the callback.
pub(crate) const CONFIG_KEY: &str = "sasl.oauthbearer.config";

/// How long one token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The lifetime assumed when the endpoint states none (neither `expires_in` nor a JWT
/// `exp`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Serialize, Deserialize)]
struct Settings {
    token_endpoint_url: String,
    client_id: String,
    client_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// `kafka.security.sasl.oidc` as the value of [`CONFIG_KEY`].
pub(crate) fn encode(oidc: &OidcConfig) -> String {
    serde_json::to_string(&Settings {
        token_endpoint_url: oidc.token_endpoint_url.clone(),
        client_id: oidc.client_id.clone(),
        client_secret: oidc.client_secret.expose().to_owned(),
        scope: oidc.scope.clone(),
    })
    .unwrap_or_default()
}

/// The token endpoint named by a client configuration's [`CONFIG_KEY`], for messages.
pub(crate) fn endpoint(config: &str) -> Option<String> {
    serde_json::from_str::<Settings>(config)
        .ok()
        .map(|s| s.token_endpoint_url)
}

type Cache = Mutex<HashMap<String, (OAuthToken, Instant)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// A token for the settings in `config` (the [`CONFIG_KEY`] value): from the cache
/// until half its lifetime has passed, else from the endpoint. Errors name the endpoint
/// and what it answered, never the secret.
pub(crate) fn token(config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    let config = config.ok_or(
        "SASL mechanism OAUTHBEARER needs kafka.security.sasl.oidc (token endpoint and client credentials)",
    )?;
    let settings: Settings = serde_json::from_str(config).map_err(|_| {
        "sasl.oauthbearer.config is not this build's OIDC settings: configure OAUTHBEARER with kafka.security.sasl.oidc"
    })?;
    // One request at a time (the lock is held through the fetch): the clients of a
    // process ask together at start, and all but the first find the token cached.
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some((token, fresh_until)) = cache.get(config) {
        if Instant::now() < *fresh_until {
            return Ok(clone(token));
        }
    }
    // On its own thread: librdkafka may call from any thread, including one inside a
    // tokio runtime, where reqwest's blocking client must not run.
    let fetched = std::thread::scope(|s| s.spawn(|| fetch(&settings)).join())
        .map_err(|_| "the OIDC token request panicked")?
        .map_err(|e| -> Box<dyn std::error::Error> { e })?;
    let lifetime_left = Duration::from_millis(
        (fetched.lifetime_ms - now_ms())
            .max(0)
            .try_into()
            .unwrap_or(0),
    );
    cache.insert(
        config.to_owned(),
        (clone(&fetched), Instant::now() + lifetime_left / 2),
    );
    drop(cache);
    tracing::info!(
        endpoint = %settings.token_endpoint_url,
        principal = %fetched.principal_name,
        lifetime_s = lifetime_left.as_secs(),
        "fetched an OAUTHBEARER token"
    );
    Ok(fetched)
}

fn clone(t: &OAuthToken) -> OAuthToken {
    OAuthToken {
        token: t.token.clone(),
        principal_name: t.principal_name.clone(),
        lifetime_ms: t.lifetime_ms,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<f64>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<f64>,
}

fn fetch(s: &Settings) -> Result<OAuthToken, Box<dyn std::error::Error + Send + Sync>> {
    let url = &s.token_endpoint_url;
    let client = reqwest::blocking::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &s.scope {
        form.push(("scope", scope));
    }
    let response = client
        .post(url)
        .basic_auth(&s.client_id, Some(&s.client_secret))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .map_err(|e| format!("OIDC token request to {url} failed: {e}"))?;
    let status = response.status();
    let body = response.text().unwrap_or_default();
    if !status.is_success() {
        let said: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let said: String = said.chars().take(200).collect();
        return Err(format!("OIDC token endpoint {url} answered HTTP {status}: {said}").into());
    }
    let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| {
        format!("OIDC token endpoint {url} answered without a JSON `access_token`: {e}")
    })?;
    let claims = jwt_claims(&parsed.access_token);
    let lifetime_ms = match (parsed.expires_in, claims.as_ref().and_then(|c| c.exp)) {
        (Some(secs), _) => now_ms() + (secs * 1000.0) as i64,
        (None, Some(exp)) => (exp * 1000.0) as i64,
        (None, None) => now_ms() + DEFAULT_LIFETIME.as_millis() as i64,
    };
    let principal_name = claims
        .and_then(|c| c.sub)
        .unwrap_or_else(|| s.client_id.clone());
    Ok(OAuthToken {
        token: parsed.access_token,
        principal_name,
        lifetime_ms,
    })
}

/// The claims of a JWT (unverified: the broker verifies); `None` for an opaque token.
fn jwt_claims(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_come_from_the_jwt_payload_and_opaque_tokens_have_none() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"svc-ingest","exp":1900000000}"#);
        let c = jwt_claims(&format!("eyJhbGciOiJub25lIn0.{payload}.sig")).unwrap();
        assert_eq!(c.sub.as_deref(), Some("svc-ingest"));
        assert_eq!(c.exp, Some(1_900_000_000.0));
        assert!(jwt_claims("opaque-token").is_none());
    }

    #[test]
    fn settings_round_trip_and_a_foreign_config_is_a_clear_error() {
        let oidc = OidcConfig {
            token_endpoint_url: "https://idp/token".into(),
            client_id: "c".into(),
            client_secret: stream_config::Secret::new("s"),
            scope: None,
        };
        assert_eq!(
            endpoint(&encode(&oidc)).as_deref(),
            Some("https://idp/token")
        );
        let err = token(Some("principal=admin")).err().unwrap().to_string();
        assert!(err.contains("kafka.security.sasl.oidc"), "{err}");
        let err = token(None).err().unwrap().to_string();
        assert!(err.contains("OAUTHBEARER"), "{err}");
    }
}
