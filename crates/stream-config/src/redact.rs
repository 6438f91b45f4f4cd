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

/// Whole names (lowercase, `_` `-` `.` left out) of request headers and query
/// parameters that carry credentials although no part of [`SECRET_KEY_PARTS`] says so.
const SECRET_NAMES: &[&str] = &[
    "key",
    "sig",
    "appid",
    "appkey",
    "auth",
    "pass",
    "pwd",
    "jwt",
    "session",
    "sessionid",
];

/// Words of a header or query parameter name (split at `-`, `_`, `.`) that make it a
/// credential: `Ocp-Apim-Subscription-Key`, `X-Auth-User`, `Set-Cookie`, `X-Amz-Signature`.
const SECRET_WORDS: &[&str] = &[
    "key",
    "sig",
    "auth",
    "cookie",
    "signature",
    "session",
    "credentials",
    "pwd",
    "jwt",
];

/// True when a request header or query parameter named `name` carries a credential: by
/// [`is_secret_key`], or by shape (`key`, `appid`, `sig`, `Cookie`,
/// `Ocp-Apim-Subscription-Key`, `X-Auth-Token`, `X-Amz-Signature`…). Broader than
/// [`is_secret_key`], which also judges config keys (`partition_key` is not a secret).
pub fn is_secret_name(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    is_secret_key(name)
        || SECRET_NAMES.contains(&squashed.as_str())
        || ["cookie", "signature", "subscriptionkey"]
            .iter()
            .any(|part| squashed.contains(part))
        || name
            .split(['-', '_', '.'])
            .any(|w| SECRET_WORDS.contains(&w.to_ascii_lowercase().as_str()))
}

/// True when `text` holds a private key in PEM form (`-----BEGIN … PRIVATE KEY-----`),
/// e.g. an inline `ssl.key.pem` among `librdkafka_options`.
pub fn has_private_key(text: &str) -> bool {
    text.contains("-----BEGIN") && text.contains("PRIVATE KEY")
}

/// True when a value at the key path `keys` may be a credential: a secret-looking key
/// on the way, or a section of them (`auth`, `headers`, `query`, `body`,
/// `librdkafka_options`).
pub fn may_hold_secret<'a>(mut keys: impl Iterator<Item = &'a str>) -> bool {
    keys.any(|k| {
        is_secret_key(k)
            || matches!(
                k,
                "auth" | "headers" | "query" | "body" | "librdkafka_options"
            )
    })
}

/// A deserializer's message with the values it quotes (`invalid type: string "…"`,
/// ``integer `…` ``) replaced by `***`, for a value that may be a credential.
pub fn hide_values(message: &str) -> String {
    let re = regex::Regex::new(
        r#"(string|integer|floating point|boolean|char|unit variant) ("[^"]*"|`[^`]*`)"#,
    )
    .expect("static regex");
    re.replace_all(message, "$1 ***").into_owned()
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
                } else if matches!(k.as_str(), Some("headers" | "query")) {
                    // Request headers and query parameters: judged by shape as well.
                    if let Value::Mapping(params) = v {
                        for (name, value) in params.iter_mut() {
                            if name.as_str().is_some_and(is_secret_name) && !value.is_null() {
                                *value = Value::String(REDACTED.to_owned());
                            }
                        }
                    }
                    redact_tree(v);
                } else {
                    redact_tree(v);
                }
            }
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(redact_tree),
        Value::String(s) => {
            if has_private_key(s) {
                *s = REDACTED.to_owned();
            } else if let Some(clean) = redact_url(s) {
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

/// A URL with its user-info token (the password, or a user name without one, as in
/// `https://ghp_tok@host`) and secret-looking query values replaced, if it had any.
pub fn redact_url(s: &str) -> Option<String> {
    if !s.contains("://") {
        return None;
    }
    let mut url = url::Url::parse(s).ok()?;
    let mut changed = false;
    if url.password().is_some() {
        url.set_password(Some(REDACTED)).ok()?;
        changed = true;
    } else if !url.username().is_empty() && matches!(url.scheme(), "http" | "https") {
        url.set_username(REDACTED).ok()?;
        changed = true;
    }
    if url.query_pairs().any(|(k, _)| is_secret_name(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_name(&k) {
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
    fn secrets_are_recognised_by_shape_as_well_as_by_name() {
        let mut cfg = StreamConfig::default();
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEpem-secret-1\n-----END PRIVATE KEY-----\n";
        cfg.kafka
            .librdkafka_options
            .insert("ssl.key.pem".to_owned(), pem.to_owned());
        let mut web = SourceConfig::new("http_json");
        web.custom_params.insert(
            "headers".to_owned(),
            serde_json::json!({
                "Cookie": "sid=cookie-secret-2",
                "Ocp-Apim-Subscription-Key": "apim-secret-3",
                "X-Request-Kind": "shown-4",
            }),
        );
        web.custom_params.insert(
            "query".to_owned(),
            serde_json::json!({"key": "key-secret-5", "appid": "appid-secret-6", "sig": "sig-secret-7", "keyword": "fire"}),
        );
        web.custom_params.insert(
            "url".to_owned(),
            "https://tok-secret-8@h.example/x?appid=url-secret-9".into(),
        );
        web.custom_params.insert(
            "base_url".to_owned(),
            "https://u:pw-secret-10@h.example/".into(),
        );
        cfg.sources.insert("web".to_owned(), web);
        let text = redacted_yaml(&cfg);
        for n in 1..=10 {
            if n != 4 {
                assert!(
                    !text.contains(&format!("secret-{n}")),
                    "secret-{n} leaked in:\n{text}"
                );
            }
        }
        for shown in [
            "shown-4",
            "keyword: fire",
            "Ocp-Apim-Subscription-Key",
            "https://u:***@h.example/",
        ] {
            assert!(text.contains(shown), "{shown} missing in:\n{text}");
        }
        assert!(is_secret_name("X-Auth-Token") && is_secret_name("X-Amz-Signature"));
        assert!(
            !is_secret_name("Accept") && !is_secret_name("X-Design") && !is_secret_name("limit")
        );
    }

    #[test]
    fn a_mistyped_secret_is_not_echoed_by_the_loader() {
        let yaml = "server: { admin_token: 12345678 }\nkafka: { librdkafka_options: { ssl.key.password: 87654321 } }\nqueue_max_size: abc\n";
        let err = crate::Loader::new()
            .load_str(yaml, crate::Format::Yaml, "t.yaml")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains("12345678") && !text.contains("87654321"),
            "{text}"
        );
        assert!(
            text.contains("server.admin_token") && text.contains("ssl.key.password"),
            "{text}"
        );
        assert!(
            text.contains("\"abc\""),
            "other values are still quoted: {text}"
        );
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
