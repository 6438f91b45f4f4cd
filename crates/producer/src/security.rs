//! `kafka.security` (TLS, SASL) as librdkafka properties, and a secret-free summary of
//! a client's security settings for the errors an operator reads.

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use stream_config::KafkaSecurity;

/// The context of the short-lived clients (topic administration, the lag probe): it
/// answers librdkafka's OAUTHBEARER token requests, like the producer's own context.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokenContext;

impl ClientContext for TokenContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        crate::oidc::token(config)
    }
}

impl ConsumerContext for TokenContext {}

/// True when the client authenticates with OAUTHBEARER.
pub(crate) fn uses_oauthbearer(c: &ClientConfig) -> bool {
    c.get("sasl.mechanism")
        .is_some_and(|m| m.eq_ignore_ascii_case("OAUTHBEARER"))
}

/// librdkafka's refusal of a property, with the value left out when the property is a
/// secret (librdkafka echoes the value it refused).
pub(crate) fn config_error(e: KafkaError) -> crate::Error {
    let e = match e {
        KafkaError::ClientConfig(res, desc, key, value)
            if stream_config::is_secret_key(&key) && !value.is_empty() =>
        {
            let desc = desc.replace(&value, stream_config::REDACTED);
            KafkaError::ClientConfig(res, desc, key, stream_config::REDACTED.to_owned())
        }
        other => other,
    };
    crate::Error::Config(Box::new(e))
}

/// `kafka.security` as librdkafka properties. Without a CA file the TLS protocols use
/// `ssl.ca.location=probe`: the OpenSSL built into this binary has no default CA path
/// of its own, so librdkafka looks in the usual system locations.
pub(crate) fn apply_security(c: &mut ClientConfig, s: &KafkaSecurity) {
    if !s.is_secured() {
        return;
    }
    c.set("security.protocol", s.protocol.as_str());
    if let Some(sasl) = &s.sasl {
        c.set("sasl.mechanism", sasl.mechanism.as_str());
        if let Some(user) = &sasl.username {
            c.set("sasl.username", user);
        }
        if let Some(password) = &sasl.password {
            c.set("sasl.password", password.expose());
        }
        if let Some(oidc) = &sasl.oidc {
            c.set(crate::oidc::CONFIG_KEY, crate::oidc::encode(oidc));
        }
    }
    if s.protocol.uses_tls() {
        let tls = s.tls.as_ref();
        let ca = tls.and_then(|t| t.ca_file.as_ref());
        c.set(
            "ssl.ca.location",
            ca.map_or_else(|| "probe".to_owned(), |p| p.display().to_string()),
        );
        if let Some(cert) = tls.and_then(|t| t.cert_file.as_ref()) {
            c.set("ssl.certificate.location", cert.display().to_string());
        }
        if let Some(key) = tls.and_then(|t| t.key_file.as_ref()) {
            c.set("ssl.key.location", key.display().to_string());
        }
        if let Some(pw) = tls.and_then(|t| t.key_password.as_ref()) {
            c.set("ssl.key.password", pw.expose());
        }
        let verify = tls.is_none_or(|t| t.verify_hostname);
        c.set(
            "ssl.endpoint.identification.algorithm",
            if verify { "https" } else { "none" },
        );
    }
}

/// What a client configuration uses to connect — protocol, mechanism, user, CA — for
/// authentication and TLS errors; `None` for plaintext. Never contains a secret.
pub(crate) fn describe_security(c: &ClientConfig) -> Option<String> {
    let protocol = c.get("security.protocol")?.to_ascii_uppercase();
    if protocol == "PLAINTEXT" {
        return None;
    }
    let mut out = format!("security.protocol {protocol}");
    if protocol.starts_with("SASL") {
        let mechanism = c.get("sasl.mechanism").unwrap_or("GSSAPI");
        out.push_str(&format!(", SASL mechanism {mechanism}"));
        if let Some(user) = c.get("sasl.username") {
            out.push_str(&format!(", username `{user}`"));
        }
        if let Some(url) = c
            .get(crate::oidc::CONFIG_KEY)
            .and_then(crate::oidc::endpoint)
        {
            out.push_str(&format!(", OIDC token endpoint {url}"));
        }
    }
    if protocol.ends_with("SSL") {
        match c.get("ssl.ca.location") {
            Some("probe") | None => out.push_str(", system CA store"),
            Some(ca) => out.push_str(&format!(", CA file {ca}")),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_config::{
        KafkaConfig, OidcConfig, SaslConfig, SaslMechanism, Secret, SecurityProtocol, TlsConfig,
    };

    fn scram() -> KafkaSecurity {
        KafkaSecurity {
            protocol: SecurityProtocol::SaslSsl,
            sasl: Some(SaslConfig {
                mechanism: SaslMechanism::ScramSha256,
                username: Some("alice".into()),
                password: Some(Secret::new("pw-123")),
                oidc: None,
            }),
            tls: Some(TlsConfig {
                ca_file: Some("/etc/kafka/ca.pem".into()),
                cert_file: None,
                key_file: None,
                key_password: None,
                verify_hostname: true,
            }),
        }
    }

    #[test]
    fn plaintext_sets_nothing() {
        let c = crate::client_config(&KafkaConfig::default());
        assert_eq!(c.get("security.protocol"), None);
        assert_eq!(describe_security(&c), None);
    }

    #[test]
    fn scram_over_tls_maps_to_librdkafka_and_options_still_win() {
        let mut cfg = KafkaConfig {
            security: scram(),
            ..KafkaConfig::default()
        };
        let c = crate::client_config(&cfg);
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "alice"),
            ("sasl.password", "pw-123"),
            ("ssl.ca.location", "/etc/kafka/ca.pem"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ] {
            assert_eq!(c.get(k), Some(v), "{k}");
        }
        let described = describe_security(&c).unwrap();
        assert_eq!(
            described,
            "security.protocol SASL_SSL, SASL mechanism SCRAM-SHA-256, username `alice`, CA file /etc/kafka/ca.pem"
        );
        cfg.librdkafka_options
            .insert("sasl.mechanism".into(), "SCRAM-SHA-512".into());
        assert_eq!(
            crate::client_config(&cfg).get("sasl.mechanism"),
            Some("SCRAM-SHA-512")
        );
    }

    #[test]
    fn tls_without_a_ca_file_probes_the_system_store() {
        let cfg = KafkaConfig {
            security: KafkaSecurity {
                protocol: SecurityProtocol::Ssl,
                sasl: None,
                tls: None,
            },
            ..KafkaConfig::default()
        };
        let c = crate::client_config(&cfg);
        assert_eq!(c.get("ssl.ca.location"), Some("probe"));
        assert_eq!(
            describe_security(&c).as_deref(),
            Some("security.protocol SSL, system CA store")
        );
    }

    #[test]
    fn a_refused_secret_is_not_echoed() {
        let mut c = ClientConfig::new();
        c.set("ssl.key.password", "kp-998877")
            .set("linger.ms", "not-a-number-55");
        let err = match c.create::<rdkafka::producer::BaseProducer>() {
            Err(e) => config_error(e),
            Ok(_) => panic!("an invalid linger.ms must be refused"),
        };
        let text = format!("{:?}", std::error::Error::source(&err));
        assert!(
            text.contains("not-a-number-55"),
            "a non-secret value is shown: {text}"
        );
        let refused = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"kp-998877\" for configuration property".into(),
            "sasl.password".into(),
            "kp-998877".into(),
        );
        let text = format!("{:?} {}", config_error(refused), "");
        assert!(
            !text.contains("kp-998877") && text.contains("sasl.password"),
            "{text}"
        );
    }

    /// librdkafka refuses TLS, SCRAM and OAUTHBEARER properties it was not built for,
    /// so a client that accepts them proves the build (OpenSSL is in).
    #[test]
    fn this_build_of_librdkafka_speaks_tls_scram_and_oauthbearer() {
        let oidc = KafkaSecurity {
            protocol: SecurityProtocol::SaslSsl,
            sasl: Some(SaslConfig {
                mechanism: SaslMechanism::OauthBearer,
                username: None,
                password: None,
                oidc: Some(OidcConfig {
                    token_endpoint_url: "https://idp.invalid/token".into(),
                    client_id: "c".into(),
                    client_secret: Secret::new("s"),
                    scope: Some("kafka".into()),
                }),
            }),
            tls: None,
        };
        for security in [scram(), oidc] {
            let mut security = security;
            if let Some(tls) = &mut security.tls {
                tls.ca_file = None;
            }
            let cfg = KafkaConfig {
                bootstrap_servers: "127.0.0.1:1".into(),
                security,
                ..KafkaConfig::default()
            };
            if let Err(e) = crate::KafkaProducer::new(&cfg) {
                panic!("{e}: {:?}", std::error::Error::source(&e));
            }
        }
    }
}
