//! `kafka.security`: how the producer authenticates to the cluster and encrypts the
//! connection — TLS (server verification, client certificates) and SASL (PLAIN,
//! SCRAM-SHA-256/512, OAUTHBEARER with OIDC client credentials). The producer maps it to
//! librdkafka properties; `kafka.librdkafka_options` still wins for anything else.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Diagnostic;
use crate::model::Secret;
use crate::path::KeyPath;
use crate::validate::Checker;

/// The `kafka.security` section. The default is plaintext without authentication (the
/// embedded broker's only mode).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSecurity {
    /// How connections are made: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    #[serde(default)]
    pub protocol: SecurityProtocol,
    /// Authentication; required by the two `SASL_*` protocols, refused by the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<SaslConfig>,
    /// TLS settings of the `SSL` and `SASL_SSL` protocols; without it the server's
    /// certificate is checked against the system's CA store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl KafkaSecurity {
    /// True when anything but plaintext without authentication is configured.
    pub fn is_secured(&self) -> bool {
        self.protocol != SecurityProtocol::Plaintext || self.sasl.is_some() || self.tls.is_some()
    }
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityProtocol {
    /// No encryption, no authentication.
    #[default]
    #[serde(rename = "PLAINTEXT", alias = "plaintext")]
    Plaintext,
    /// TLS; a client certificate (`tls.cert_file`) authenticates if the cluster asks.
    #[serde(rename = "SSL", alias = "ssl")]
    Ssl,
    /// SASL authentication over an unencrypted connection.
    #[serde(rename = "SASL_PLAINTEXT", alias = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL authentication over TLS: what managed clusters use.
    #[serde(rename = "SASL_SSL", alias = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's `security.protocol` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// True for `SSL` and `SASL_SSL`.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// True for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// `kafka.security.sasl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`.
    pub mechanism: SaslMechanism,
    /// The user (PLAIN and SCRAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password (PLAIN and SCRAM); write it as `${VAR}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// OIDC client credentials (OAUTHBEARER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// User and password in the clear (only ever over TLS).
    #[serde(rename = "PLAIN", alias = "plain")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
    /// A bearer token, fetched from an OIDC token endpoint with client credentials.
    #[serde(rename = "OAUTHBEARER", alias = "oauthbearer")]
    OauthBearer,
}

impl SaslMechanism {
    /// librdkafka's `sasl.mechanism` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OauthBearer => "OAUTHBEARER",
        }
    }
}

/// `kafka.security.sasl.oidc`: the OAuth 2.0 client-credentials grant librdkafka runs
/// against the token endpoint, refreshing the token before it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The identity provider's token endpoint (`https://…/oauth2/token`).
    pub token_endpoint_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret; write it as `${VAR}`.
    pub client_secret: Secret,
    /// Scope(s) to request, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `kafka.security.tls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that sign the brokers' certificates; default: the system's
    /// CA store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS); needs `key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Password of an encrypted `key_file`; write it as `${VAR}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_password: Option<Secret>,
    /// Check that the broker's certificate names the host connected to (default true).
    #[serde(default = "default_true")]
    pub verify_hostname: bool,
}

fn default_true() -> bool {
    true
}

impl KafkaSecurity {
    /// The rules of the section, each failure with its key path.
    pub(crate) fn check(&self, c: &mut Checker, path: KeyPath, embedded: bool) {
        let protocol = self.protocol.as_str();
        if embedded && self.is_secured() {
            c.fail(
                path.key("protocol"),
                "the embedded broker speaks plaintext only",
                "remove `kafka.security`, or point `kafka.bootstrap_servers` at the secured cluster",
            );
        }
        match (&self.sasl, self.protocol.uses_sasl()) {
            (None, true) => c.fail(
                path.key("sasl"),
                format!("protocol {protocol} needs a `sasl` section"),
                "add `sasl: { mechanism: SCRAM-SHA-512, username: …, password: ${KAFKA_PASSWORD} }`",
            ),
            (Some(_), false) => c.fail(
                path.key("sasl"),
                format!("`sasl` is set but protocol {protocol} does not authenticate"),
                "use `protocol: SASL_SSL` (or SASL_PLAINTEXT)",
            ),
            (Some(sasl), true) => sasl.check(c, path.key("sasl")),
            (None, false) => {}
        }
        if let Some(tls) = &self.tls {
            if !self.protocol.uses_tls() {
                c.fail(
                    path.key("tls"),
                    format!("`tls` is set but protocol {protocol} does not use TLS"),
                    "use `protocol: SSL` or `SASL_SSL`",
                );
            }
            tls.check(c, path.key("tls"));
        }
    }

    /// What is valid but risky.
    pub(crate) fn warnings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if self.protocol == SecurityProtocol::SaslPlaintext
            && matches!(&self.sasl, Some(s) if s.mechanism == SaslMechanism::Plain)
        {
            out.push(
                Diagnostic::new(
                    "kafka.security.protocol",
                    "SASL PLAIN over SASL_PLAINTEXT sends the password unencrypted",
                )
                .with_hint("use `protocol: SASL_SSL`, or SCRAM"),
            );
        }
        if self.tls.as_ref().is_some_and(|t| !t.verify_hostname) {
            out.push(
                Diagnostic::new(
                    "kafka.security.tls.verify_hostname",
                    "broker certificates are not checked against the broker's host name",
                )
                .with_hint("turn it back on once the certificates name the brokers"),
            );
        }
        out
    }
}

impl SaslConfig {
    fn check(&self, c: &mut Checker, path: KeyPath) {
        let mechanism = self.mechanism.as_str();
        let blank = |s: Option<&str>| s.is_none_or(|s| s.trim().is_empty());
        if self.mechanism == SaslMechanism::OauthBearer {
            for (key, set) in [
                ("username", self.username.is_some()),
                ("password", self.password.is_some()),
            ] {
                if set {
                    c.fail(
                        path.key(key),
                        format!("{mechanism} does not use `{key}`"),
                        "give the client credentials in `oidc`",
                    );
                }
            }
            let Some(oidc) = &self.oidc else {
                c.fail(
                    path.key("oidc"),
                    format!("{mechanism} needs `oidc`"),
                    "add `oidc: { token_endpoint_url: https://…/token, client_id: …, client_secret: ${OIDC_SECRET} }`",
                );
                return;
            };
            let p = path.key("oidc");
            match url::Url::parse(&oidc.token_endpoint_url) {
                Ok(u) if matches!(u.scheme(), "https" | "http") => {}
                _ => c.fail(
                    p.key("token_endpoint_url"),
                    format!("`{}` is not an http(s) URL", oidc.token_endpoint_url),
                    "use the identity provider's token endpoint, e.g. `https://idp.example.com/oauth2/token`",
                ),
            }
            if blank(Some(&oidc.client_id)) {
                c.fail(p.key("client_id"), "must not be empty", "");
            }
            if blank(Some(oidc.client_secret.expose())) {
                c.fail(
                    p.key("client_secret"),
                    "must not be empty",
                    "write it as `${OIDC_CLIENT_SECRET}` and set the variable",
                );
            }
            return;
        }
        if self.oidc.is_some() {
            c.fail(
                path.key("oidc"),
                format!("`oidc` is for OAUTHBEARER, not {mechanism}"),
                "remove it, or use `mechanism: OAUTHBEARER`",
            );
        }
        if blank(self.username.as_deref()) {
            c.fail(
                path.key("username"),
                format!("{mechanism} needs a username"),
                "",
            );
        }
        if blank(self.password.as_ref().map(Secret::expose)) {
            c.fail(
                path.key("password"),
                format!("{mechanism} needs a password"),
                "write it as `${KAFKA_PASSWORD}` and set the variable",
            );
        }
    }
}

impl TlsConfig {
    fn check(&self, c: &mut Checker, path: KeyPath) {
        for (key, file) in [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ] {
            let Some(file) = file else { continue };
            match std::fs::File::open(file) {
                Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => {}
                Ok(_) => c.fail(
                    path.key(key),
                    format!("{} is not a file", file.display()),
                    "give the path of a PEM file",
                ),
                Err(e) => c.fail(
                    path.key(key),
                    format!("cannot read {}: {e}", file.display()),
                    "give the path of a PEM file (a relative path is taken from the server's working directory)",
                ),
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => c.fail(path.key("key_file"), "`cert_file` needs its `key_file`", ""),
            (None, Some(_)) => c.fail(
                path.key("cert_file"),
                "`key_file` needs its `cert_file`",
                "",
            ),
            _ => {}
        }
        if self.key_password.is_some() && self.key_file.is_none() {
            c.fail(
                path.key("key_password"),
                "`key_password` is set without a `key_file`",
                "",
            );
        }
    }
}
