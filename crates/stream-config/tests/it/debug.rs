//! `Debug` of every configuration type that carries a secret shows none of them: a
//! `{:?}` in a log line or a panic message never carries a credential. Each secret-bearing
//! field holds a distinct marker; no marker may appear in any `Debug` output.

use stream_config::{Format, Loader, StreamConfig};

/// Every place a configuration holds a secret, each with its own marker `leak-N`.
const YAML: &str = "
kafka:
  bootstrap_servers: broker:9093
  security:
    protocol: sasl_ssl
    sasl:
      mechanism: plain
      username: app
      password: leak-01
  librdkafka_options:
    sasl.password: leak-04
    ssl.key.password: leak-05
dlq:
  url: postgres://app:leak-06@db.example/dlq
server:
  listen: 127.0.0.1:8080
  admin_token: leak-07
  read_token: leak-08
sources:
  keyed:
    source_type: airnow
    custom_params: { api_key: leak-09 }
  read_key:
    source_type: purpleair
    custom_params: { api_key: leak-10, sensor_index: 1 }
  firms:
    source_type: nasa_firms
    custom_params: { map_key: leak-11 }
  basic:
    source_type: http_json
    custom_params:
      url: https://h.example/a
      auth: { type: basic, username: u, password: leak-12 }
  bearer:
    source_type: http_json
    custom_params:
      url: https://h.example/b
      auth: { type: bearer, token: leak-13 }
  header_key:
    source_type: http_json
    custom_params:
      url: https://h.example/c
      auth: { type: api_key, name: X-Key, value: leak-14, location: header }
  oauth:
    source_type: http_json
    custom_params:
      url: https://h.example/d
      auth: { type: oauth2, token_url: https://h.example/token, client_id: c, client_secret: leak-15 }
  in_url:
    source_type: http_json
    custom_params:
      url: 'https://user:leak-16@h.example/e?api_key=leak-17'
      headers: { Authorization: Bearer leak-18, Accept: text/csv }
";
const MARKERS: usize = 18;

fn config() -> StreamConfig {
    let mut cfg: StreamConfig = Loader::new()
        .load_str(YAML, Format::Yaml, "<test>")
        .unwrap_or_else(|e| panic!("the test config loads: {e}"));
    // OAUTHBEARER's client secret (validation refuses it beside a SASL password) and the
    // TLS key's password (validation reads the key file) are set here, not in the YAML.
    cfg.kafka.security.tls = Some(
        serde_json::from_value(serde_json::json!({
            "key_file": "/etc/stream/client.key",
            "key_password": "leak-03",
        }))
        .unwrap(),
    );
    let sasl = cfg.kafka.security.sasl.as_mut().unwrap();
    sasl.oidc = Some(
        serde_json::from_value(serde_json::json!({
            "token_endpoint_url": "https://idp.example/token",
            "client_id": "stream",
            "client_secret": "leak-02",
        }))
        .unwrap(),
    );
    // Every marker made it into the configuration (none dropped by the loader, so none
    // is missing from the output below for that reason).
    let plain = serde_json::to_string(&cfg).unwrap();
    for n in 1..=MARKERS {
        assert!(
            plain.contains(&format!("leak-{n:02}")),
            "leak-{n:02} is in the loaded config"
        );
    }
    cfg
}

fn assert_no_secret(what: &str, text: &str) {
    for n in 1..=MARKERS {
        let marker = format!("leak-{n:02}");
        assert!(!text.contains(&marker), "{what}: {marker} in {text}");
    }
}

#[test]
fn debug_of_every_config_type_with_a_secret_shows_none() {
    let cfg = config();
    assert_no_secret("StreamConfig", &format!("{cfg:?}"));
    assert_no_secret("StreamConfig {:#?}", &format!("{cfg:#?}"));
    assert_no_secret("KafkaConfig", &format!("{:?}", cfg.kafka));
    assert_no_secret("KafkaSecurity", &format!("{:?}", cfg.kafka.security));
    let sasl = cfg.kafka.security.sasl.as_ref().unwrap();
    assert_no_secret("SaslConfig", &format!("{sasl:?}"));
    assert_no_secret("OidcConfig", &format!("{:?}", sasl.oidc.as_ref().unwrap()));
    let tls = cfg.kafka.security.tls.as_ref().unwrap();
    assert_no_secret("TlsConfig", &format!("{tls:?}"));
    assert_no_secret("DlqConfig", &format!("{:?}", cfg.dlq));
    assert_no_secret("ServerConfig", &format!("{:?}", cfg.server));
    for (id, src) in &cfg.sources {
        assert_no_secret(&format!("SourceConfig {id}"), &format!("{src:?}"));
    }
    // What is not secret is still shown.
    let text = format!("{cfg:?}");
    for shown in ["text/csv", "sasl.password", "db.example", "X-Key", "stream"] {
        assert!(text.contains(shown), "{shown} in {text}");
    }
}

#[test]
fn debug_of_a_loader_shows_the_environment_names_not_their_values() {
    let loader = Loader::new().with_env([
        ("AIRNOW_API_KEY".to_owned(), "leak-19".to_owned()),
        (
            "STREAM__KAFKA__LIBRDKAFKA_OPTIONS__SASL.PASSWORD".to_owned(),
            "leak-20".to_owned(),
        ),
    ]);
    let text = format!("{loader:?}");
    assert!(
        !text.contains("leak-19") && !text.contains("leak-20"),
        "{text}"
    );
    assert!(text.contains("AIRNOW_API_KEY"), "{text}");
}
