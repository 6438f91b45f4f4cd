//! Scenario 9: a secured cluster — tansu requiring SCRAM authentication behind a TLS
//! front (`socat`, mutual TLS) — and four servers against it:
//! - the right password, CA and client certificate: every record delivered, the
//!   password nowhere in `GET /config` or the log;
//! - a wrong password: `/ready` 503 naming SCRAM-SHA-256 and the user, nothing sent,
//!   every record dead-lettered with its reason once its delivery timeout passed;
//! - a CA that did not sign the broker's certificate: `/ready` 503 naming the
//!   certificate check and the CA file;
//! - OAUTHBEARER: the token comes from a local OIDC endpoint by the client-credentials
//!   grant (checked at the endpoint); tansu 0.6 has no OAUTHBEARER, so the broker's
//!   refusal, naming the mechanism, is what `/ready` reports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Json;
use base64::Engine as _;
use e2e::{consume_with, json, serve, Config, Scene, Server, Storage};
use serde_json::{json, Value};
use test_support::tls::TlsFront;
use test_support::{make_ca, make_cert, poll_until, CertUse};

const ITEMS: usize = 40;
const USER: &str = "ingest";
const PASSWORD: &str = "scram-pw-81723";
const TOPIC: &str = "secured";

/// The upstream every server polls: `ITEMS` items, once.
async fn items() -> Json<Value> {
    let items: Vec<Value> = (0..ITEMS)
        .map(|i| json!({ "id": format!("s-{i}"), "value": i }))
        .collect();
    Json(json!({ "items": items }))
}

/// What the OIDC endpoint was asked: (Authorization header, form body).
type TokenRequests = Arc<Mutex<Vec<(String, String)>>>;

async fn token(State(seen): State<TokenRequests>, headers: HeaderMap, body: String) -> Json<Value> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push((auth, body));
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"sub":"svc-ingest","exp":4102444800}"#);
    Json(json!({
        "access_token": format!("eyJhbGciOiJub25lIn0.{claims}.sig"),
        "token_type": "bearer",
        "expires_in": 3600,
    }))
}

fn config(bootstrap: &str, scene: &Scene, name: &str, upstream: &str, security: Value) -> Config {
    Config::new(
        bootstrap,
        &format!("sqlite://{}/{name}.db", scene.dir().display()),
    )
    .with(json!({
        "kafka": { "security": security, "message_timeout_ms": 6000, "max_retries": 0 },
        "topics": { TOPIC: { "partitions": 1 } },
        "routing": { "fallback_topic": TOPIC },
    }))
    .source(
        "web",
        json!({
            "source_type": "http_json",
            "topic": TOPIC,
            "ingestion": { "mode": "real_time", "polling_interval_seconds": 1 },
            "custom_params": {
                "url": upstream,
                "decoder": { "type": "json", "pointer": "/items" },
                "dedup": { "keys": ["/id"] },
            },
        }),
    )
}

/// `/ready` once it answers 503 for Kafka; its body as text.
async fn not_ready(server: &Server, what: &str) -> String {
    let body = Mutex::new(String::new());
    poll_until(Duration::from_secs(40), what, || async {
        let (status, b) = server.get("/ready").await;
        let text = b.to_string();
        let done = status == 503 && text.contains("kafka");
        *body.lock().unwrap() = text;
        done
    })
    .await;
    body.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_cluster() {
    let scene = Scene::new("secured");
    let tls = scene.dir().join("tls");
    let ca = make_ca(&tls, "ca").unwrap();
    let other_ca = make_ca(&tls, "other-ca").unwrap();
    let (server_crt, server_key) = make_cert(&tls, "ca", "broker", CertUse::Server).unwrap();
    let (client_crt, client_key) = make_cert(&tls, "ca", "client", CertUse::Client).unwrap();

    let mut tansu = scene.tansu(Storage::Sqlite).await;
    tansu.create_user(USER, PASSWORD, "scram256").unwrap();
    let front_log = scene.dir().join("socat.log");
    scene.watch_log(front_log.clone());
    let front = TlsFront::start(
        &server_crt,
        &server_key,
        Some(&ca),
        tansu.port(),
        &front_log,
    )
    .unwrap();
    tansu.require_authentication(Some(front.port())).unwrap();
    let bootstrap = format!("127.0.0.1:{}", front.port());

    let upstream = serve(axum::Router::new().route("/items", get(items))).await;
    let upstream = format!("http://{upstream}/items");
    let seen = TokenRequests::default();
    let idp = serve(
        axum::Router::new()
            .route("/oauth2/token", post(token))
            .with_state(seen.clone()),
    )
    .await;

    let tls_section = |ca: &std::path::Path| {
        json!({
            "ca_file": ca,
            "cert_file": client_crt,
            "key_file": client_key,
        })
    };
    let scram = |password_var: &str, ca: &std::path::Path| {
        json!({
            "protocol": "SASL_SSL",
            "sasl": {
                "mechanism": "SCRAM-SHA-256",
                "username": USER,
                "password": format!("${{{password_var}}}"),
            },
            "tls": tls_section(ca),
        })
    };
    let good = Server::start_named(
        &scene,
        "good",
        &config(
            &bootstrap,
            &scene,
            "good",
            &upstream,
            scram("KAFKA_PASSWORD", &ca),
        ),
        &[("KAFKA_PASSWORD", PASSWORD)],
    )
    .await;
    let wrong_password = Server::start_named(
        &scene,
        "wrong-password",
        &config(
            &bootstrap,
            &scene,
            "wrong-password",
            &upstream,
            scram("KAFKA_PASSWORD", &ca),
        ),
        &[("KAFKA_PASSWORD", "not-the-password")],
    )
    .await;
    let wrong_ca = Server::start_named(
        &scene,
        "wrong-ca",
        &config(
            &bootstrap,
            &scene,
            "wrong-ca",
            &upstream,
            scram("KAFKA_PASSWORD", &other_ca),
        ),
        &[("KAFKA_PASSWORD", PASSWORD)],
    )
    .await;
    let oauth = Server::start_named(
        &scene,
        "oauth",
        &config(
            &bootstrap,
            &scene,
            "oauth",
            &upstream,
            json!({
                "protocol": "SASL_SSL",
                "sasl": {
                    "mechanism": "OAUTHBEARER",
                    "oidc": {
                        "token_endpoint_url": format!("http://{idp}/oauth2/token"),
                        "client_id": "stream-manager",
                        "client_secret": "${OIDC_SECRET}",
                        "scope": "kafka.write",
                    },
                },
                "tls": tls_section(&ca),
            }),
        ),
        &[("OIDC_SECRET", "oidc-secret-5521")],
    )
    .await;

    // The right credentials: every item arrives, once.
    let verifier = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", USER),
        ("sasl.password", PASSWORD),
        ("ssl.ca.location", ca.to_str().unwrap()),
        ("ssl.certificate.location", client_crt.to_str().unwrap()),
        ("ssl.key.location", client_key.to_str().unwrap()),
    ];
    let records = consume_with(
        &verifier,
        &bootstrap,
        &[TOPIC],
        ITEMS,
        Duration::from_secs(60),
    )
    .await;
    let mut ids: Vec<String> = records
        .iter()
        .map(|c| json(c)["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ITEMS, "every item over SASL_SSL + SCRAM + mTLS");
    assert_eq!(records.len(), ITEMS, "each once");
    let (status, ready) = good.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    let (_, cfg) = good.get("/config").await;
    let cfg = cfg.to_string();
    assert!(
        !cfg.contains(PASSWORD) && cfg.contains("SCRAM-SHA-256"),
        "{cfg}"
    );

    // A wrong password: not ready, and why; nothing sent; every record dead-lettered
    // with its reason once the delivery timeout passed (none silently dropped).
    let body = not_ready(&wrong_password, "wrong password: /ready 503").await;
    assert!(
        body.contains("SCRAM-SHA-256") && body.contains(USER) && body.contains("uthentication"),
        "the error names the mechanism and the user: {body}"
    );
    poll_until(
        Duration::from_secs(60),
        "wrong password: records dead-lettered",
        || async {
            let (_, stats) = wrong_password.get("/dlq/stats").await;
            stats["pending"].as_i64() == Some(ITEMS as i64)
        },
    )
    .await;
    let (_, stats) = wrong_password.get("/dlq/stats").await;
    assert!(
        stats["by_reason"].as_array().is_some_and(|r| !r.is_empty()),
        "each dead letter has its reason: {stats}"
    );
    let m = wrong_password.metrics().await;
    assert_eq!(m.value("stream_producer_sent_total", &[]), 0.0, "{stats}");

    // A CA that did not sign the broker's certificate.
    let body = not_ready(&wrong_ca, "wrong CA: /ready 503").await;
    assert!(
        body.contains("certificate verify failed") && body.contains("other-ca.pem"),
        "the error names the check and the CA file: {body}"
    );

    // OAUTHBEARER: the client-credentials grant reached the endpoint.
    let body = not_ready(&oauth, "OAUTHBEARER: /ready 503 (tansu has no OAUTHBEARER)").await;
    assert!(body.contains("OAUTHBEARER"), "{body}");
    let requests = seen.lock().unwrap().clone();
    assert!(
        !requests.is_empty(),
        "the OIDC endpoint was asked for a token"
    );
    let (auth, form) = &requests[0];
    let basic = base64::engine::general_purpose::STANDARD.encode("stream-manager:oidc-secret-5521");
    assert_eq!(auth, &format!("Basic {basic}"));
    assert!(
        form.contains("grant_type=client_credentials") && form.contains("scope=kafka.write"),
        "{form}"
    );
    for s in [&good, &wrong_password, &wrong_ca, &oauth] {
        let log = s.log_tail(10_000);
        assert!(
            !log.contains(PASSWORD)
                && !log.contains("not-the-password")
                && !log.contains("oidc-secret-5521"),
            "a secret in the log"
        );
    }
    println!(
        "secured: {ITEMS}/{ITEMS} delivered over SASL_SSL+SCRAM-SHA-256+mTLS; wrong password → 503 + {ITEMS} dead-lettered; wrong CA → 503; OAUTHBEARER token fetched {} time(s)",
        requests.len()
    );
    drop(front);
}
