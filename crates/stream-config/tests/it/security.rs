//! `kafka.security`: a secured cluster's settings load, every misuse is an error naming
//! its key and line, and no secret reaches a dump.

use stream_config::{Format, Loader, SaslMechanism, SecurityProtocol, StreamConfig};

use crate::SOURCE_TYPES;

fn load(yaml: &str, env: &[(&str, &str)]) -> stream_config::Result<StreamConfig> {
    Loader::new()
        .with_source_types(SOURCE_TYPES.iter().copied())
        .with_env(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .load_str(yaml, Format::Yaml, "secure.yaml")
}

fn problems(yaml: &str) -> Vec<(String, Option<usize>, String)> {
    crate::problems_with(yaml, &[])
}

#[test]
fn sasl_ssl_with_scram_loads_and_its_secrets_never_reach_a_dump() {
    let dir = test_support::TempDir::new("sec-cfg");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let yaml = format!(
        "
kafka:
  bootstrap_servers: broker.example.com:9096
  security:
    protocol: SASL_SSL
    sasl:
      mechanism: SCRAM-SHA-512
      username: ingest
      password: ${{KAFKA_PASSWORD}}
    tls:
      ca_file: {}
",
        ca.display()
    );
    let cfg = load(&yaml, &[("KAFKA_PASSWORD", "hunter2-very-secret")]).expect("loads");
    let sec = &cfg.kafka.security;
    assert_eq!(sec.protocol, SecurityProtocol::SaslSsl);
    let sasl = sec.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
    assert_eq!(
        sasl.password.as_ref().unwrap().expose(),
        "hunter2-very-secret"
    );
    assert!(stream_config::warnings(&cfg).is_empty());

    let dump = stream_config::redacted_yaml(&cfg);
    assert!(!dump.contains("hunter2"), "{dump}");
    assert!(
        dump.contains("SCRAM-SHA-512") && dump.contains("ingest"),
        "{dump}"
    );
    assert!(!format!("{cfg:?}").contains("hunter2"));
    // Lower-case spellings are accepted too.
    let lower = yaml
        .replace("SASL_SSL", "sasl_ssl")
        .replace("SCRAM-SHA-512", "scram-sha-512");
    let again = load(&lower, &[("KAFKA_PASSWORD", "x")]).expect("loads");
    assert_eq!(again.kafka.security.protocol, SecurityProtocol::SaslSsl);
}

#[test]
fn oauthbearer_takes_oidc_client_credentials_and_redacts_the_secret() {
    let yaml = "
kafka:
  bootstrap_servers: pkc-1.example.cloud:9092
  security:
    protocol: SASL_SSL
    sasl:
      mechanism: OAUTHBEARER
      oidc:
        token_endpoint_url: https://idp.example.com/oauth2/token
        client_id: stream-manager
        client_secret: ${OIDC_SECRET}
        scope: kafka
";
    let cfg = load(yaml, &[("OIDC_SECRET", "oidc-s3cret-value")]).expect("loads");
    let oidc = cfg
        .kafka
        .security
        .sasl
        .as_ref()
        .unwrap()
        .oidc
        .as_ref()
        .unwrap();
    assert_eq!(oidc.client_id, "stream-manager");
    let dump = stream_config::redacted_yaml(&cfg);
    assert!(!dump.contains("oidc-s3cret-value"), "{dump}");
    assert!(
        dump.contains("https://idp.example.com/oauth2/token"),
        "{dump}"
    );
}

#[test]
fn an_unknown_mechanism_or_protocol_names_the_key_and_the_choices() {
    let p = problems(
        "kafka:\n  bootstrap_servers: b:9092\n  security:\n    protocol: SASL_TLS\n    sasl: { mechanism: SCRAM-SHA-1, username: u, password: p }\n",
    );
    let text = format!("{p:?}");
    assert!(
        p.iter()
            .any(|(path, line, msg)| path == "kafka.security.protocol"
                && *line == Some(4)
                && msg.contains("SASL_TLS")),
        "{text}"
    );
    // The first bad key stops deserialisation of the section, so the mechanism is
    // checked on its own.
    let p = problems(
        "kafka:\n  bootstrap_servers: b:9092\n  security:\n    protocol: SASL_SSL\n    sasl: { mechanism: SCRAM-SHA-1, username: u, password: p }\n",
    );
    assert!(
        p.iter()
            .any(|(path, line, msg)| path == "kafka.security.sasl.mechanism"
                && *line == Some(5)
                && msg.contains("unknown value `SCRAM-SHA-1`")
                && msg.contains("SCRAM-SHA-512")),
        "{p:?}"
    );
}

#[test]
fn every_misuse_is_reported_with_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "protocol: SASL_SSL",
            "kafka.security.sasl",
            "needs a `sasl` section",
        ),
        (
            "protocol: SSL\n    sasl: { mechanism: PLAIN, username: u, password: p }",
            "kafka.security.sasl",
            "does not authenticate",
        ),
        (
            "protocol: SASL_PLAINTEXT\n    sasl: { mechanism: PLAIN, username: u, password: p }\n    tls: { verify_hostname: false }",
            "kafka.security.tls",
            "does not use TLS",
        ),
        (
            "protocol: SASL_SSL\n    sasl: { mechanism: SCRAM-SHA-256, username: u }",
            "kafka.security.sasl.password",
            "SCRAM-SHA-256 needs a password",
        ),
        (
            "protocol: SASL_SSL\n    sasl: { mechanism: SCRAM-SHA-256, password: p }",
            "kafka.security.sasl.username",
            "needs a username",
        ),
        (
            "protocol: SASL_SSL\n    sasl: { mechanism: OAUTHBEARER }",
            "kafka.security.sasl.oidc",
            "OAUTHBEARER needs `oidc`",
        ),
        (
            "protocol: SASL_SSL\n    sasl: { mechanism: OAUTHBEARER, username: u, oidc: { token_endpoint_url: 'ftp://x', client_id: c, client_secret: s } }",
            "kafka.security.sasl.oidc.token_endpoint_url",
            "not an http(s) URL",
        ),
        (
            "protocol: SASL_SSL\n    sasl: { mechanism: PLAIN, username: u, password: p, oidc: { token_endpoint_url: 'https://x', client_id: c, client_secret: s } }",
            "kafka.security.sasl.oidc",
            "is for OAUTHBEARER",
        ),
        (
            "protocol: SSL\n    tls: { ca_file: /nonexistent/ca.pem }",
            "kafka.security.tls.ca_file",
            "cannot read /nonexistent/ca.pem",
        ),
        (
            "protocol: SSL\n    tls: { key_file: /nonexistent/client.key }",
            "kafka.security.tls.cert_file",
            "`key_file` needs its `cert_file`",
        ),
    ];
    for (security, path, message) in cases {
        let yaml = format!("kafka:\n  bootstrap_servers: b:9092\n  security:\n    {security}\n");
        let p = problems(&yaml);
        assert!(
            p.iter()
                .any(|(pp, line, m)| pp == path && line.is_some() && m.contains(message)),
            "expected {path}: {message} for\n{yaml}\ngot {p:?}"
        );
    }
}

#[test]
fn the_embedded_broker_refuses_security() {
    let p = problems(
        "kafka:\n  bootstrap_servers: embedded\n  security:\n    protocol: SASL_SSL\n    sasl: { mechanism: PLAIN, username: u, password: p }\n",
    );
    assert!(
        p.iter()
            .any(|(path, _, m)| path == "kafka.security.protocol" && m.contains("plaintext only")),
        "{p:?}"
    );
}

#[test]
fn plain_over_plaintext_and_unchecked_host_names_are_warned_about() {
    let cfg = load(
        "kafka:\n  bootstrap_servers: b:9092\n  security:\n    protocol: SASL_PLAINTEXT\n    sasl: { mechanism: PLAIN, username: u, password: p }\n",
        &[],
    )
    .expect("valid");
    let w = stream_config::warnings(&cfg);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].message.contains("unencrypted"), "{}", w[0]);
    let cfg = load(
        "kafka:\n  bootstrap_servers: b:9092\n  security:\n    protocol: SSL\n    tls: { verify_hostname: false }\n",
        &[],
    )
    .expect("valid");
    let w = stream_config::warnings(&cfg);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].path, "kafka.security.tls.verify_hostname");
}
