//! Dumps meant for people: secrets replaced by `***`.

use serde_yaml::Value;

use crate::model::StreamConfig;

/// What replaces a secret in dumps.
pub const REDACTED: &str = "***";

/// Key names (lowercase substrings, `_` and `-` left out) whose values are secrets
/// wherever they appear: in `custom_params`, header names such as `X-API-Key`,
/// `librdkafka_options`, or anywhere else.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "mapkey",
    "accesskey",
    "privatekey",
    "credential",
    "authorization",
];

/// True when a key's value must never be shown (`api_key`, `X-API-Key` and `apikey`
/// alike). A key ending in `url` (`token_endpoint_url`) names an address, not a
/// secret: its value is shown with the secrets inside it redacted.
pub fn is_secret_key(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !key.ends_with("url") && SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// The effective configuration as a YAML tree with every secret replaced by `***`:
/// values of secret-looking keys and passwords inside URLs.
pub fn redacted(cfg: &StreamConfig) -> Value {
    let mut tree = serde_yaml::to_value(cfg).unwrap_or(Value::Null);
    redact_tree(&mut tree);
    tree
}

/// The effective configuration as YAML text, secrets redacted.
pub fn redacted_yaml(cfg: &StreamConfig) -> String {
    serde_yaml::to_string(&redacted(cfg)).unwrap_or_default()
}

/// Replaces secrets in any YAML tree in place.
pub(crate) fn redact_tree(node: &mut Value) {
    match node {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                if k.as_str().is_some_and(is_secret_key) && !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                } else if k.as_str() == Some("auth") {
                    redact_auth(v);
                } else {
                    redact_tree(v);
                }
            }
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(redact_tree),
        Value::String(s) => {
            if let Some(clean) = redact_url(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

/// An `auth` section (of a source's `custom_params`): every value but its shape
/// (`type`, `location`, the key's `name`, a `username`, a token URL) is a credential.
fn redact_auth(node: &mut Value) {
    const SHAPE: &[&str] = &["type", "location", "name", "username", "token_url", "scope"];
    match node {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                if !k.as_str().is_some_and(|k| SHAPE.contains(&k)) && !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                }
            }
        }
        Value::Null => {}
        other => *other = Value::String(REDACTED.to_owned()),
    }
}

/// A URL with its password (and secret-looking query values) replaced, if it had any.
pub(crate) fn redact_url(s: &str) -> Option<String> {
    if !s.contains("://") {
        return None;
    }
    let mut url = url::Url::parse(s).ok()?;
    let mut changed = false;
    if url.password().is_some() {
        url.set_password(Some(REDACTED)).ok()?;
        changed = true;
    }
    if url.query_pairs().any(|(k, _)| is_secret_key(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_key(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    changed.then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Secret, SourceConfig};

    #[test]
    fn secrets_never_survive_a_dump() {
        let mut cfg = StreamConfig::default();
        cfg.server.admin_token = Some(Secret::new("tok-123456"));
        cfg.dlq.url = "postgres://app:pg-pass-987@db.local/dlq".to_owned();
        cfg.kafka
            .librdkafka_options
            .insert("sasl.password".to_owned(), "kafka-pass-555".to_owned());
        let mut src = SourceConfig::new("nasa_firms");
        src.custom_params
            .insert("map_key".to_owned(), "firms-key-777".into());
        src.custom_params
            .insert("url".to_owned(), "https://h/x?api_key=qk-111&day=1".into());
        cfg.sources.insert("firms".to_owned(), src);
        let mut web = SourceConfig::new("http_json");
        web.custom_params.insert(
            "auth".to_owned(),
            serde_json::json!({"type": "api_key", "name": "key", "value": "auth-val-222", "location": "header"}),
        );
        web.custom_params.insert(
            "headers".to_owned(),
            serde_json::json!({"X-API-Key": "hdr-333", "Accept": "application/json"}),
        );
        cfg.sources.insert("web".to_owned(), web);
        let text = redacted_yaml(&cfg);
        for secret in [
            "tok-123456",
            "pg-pass-987",
            "kafka-pass-555",
            "firms-key-777",
            "qk-111",
            "auth-val-222",
            "hdr-333",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in:\n{text}");
        }
        assert!(text.contains("postgres://app:***@db.local/dlq"), "{text}");
        assert!(text.contains("day=1"), "{text}");
        assert!(
            text.contains("api_key") && text.contains("application/json"),
            "shape stays: {text}"
        );
        assert!(format!("{:?}", cfg.server.admin_token).contains("***"));
    }

    #[test]
    fn an_address_named_after_a_token_is_shown_without_its_secrets() {
        assert!(!is_secret_key("token_endpoint_url"));
        assert!(!is_secret_key("sasl.oauthbearer.token.endpoint.url"));
        assert!(is_secret_key("client_secret") && is_secret_key("access_token"));
        let mut tree: Value = serde_yaml::from_str(
            "token_endpoint_url: https://idp/token?client_secret=cs-444&x=1\n",
        )
        .unwrap();
        redact_tree(&mut tree);
        let text = serde_yaml::to_string(&tree).unwrap();
        assert!(
            !text.contains("cs-444") && text.contains("https://idp/token"),
            "{text}"
        );
    }
}
