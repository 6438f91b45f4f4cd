//! Secrets never leave through a side door (issue 22, item 5). Distinct secrets are
//! planted in every place a configuration can hold one — query parameters (in `query` and
//! in the URL), headers, each kind of `auth`, URL user-info, a JSON body,
//! `librdkafka_options` (a password and an inline PEM key) and `dlq.url` — and every
//! output channel is searched for them: `Debug`, the persisted fetch state and its
//! summary (`/streams`), the part's status, redacted dumps, error strings and our log
//! lines at every level. The secrets still reach the upstream, on every page.

use api_client::CursorSummary as _;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use api_client::{params, Auth, HttpSpec, Registry, SourceSpec};
use serde_json::{json, Value};
use stream_config::{SourceConfig, StreamConfig};
use wiremock::matchers::{header_exists, path, path_regex, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRETS: &[&str] = &[
    "kafka-pw-s01",
    "pem-key-s02",
    "dlq-pw-s03",
    "userinfo-s04",
    "url-key-s05",
    "q-key-s06",
    "q-appid-s07",
    "q-sig-s08",
    "cookie-s09",
    "apim-s10",
    "xkey-s11",
    "auth-value-s12",
    "basic-pw-s13",
    "bearer-s14",
    "oauth-cs-s15",
    "body-cs-s16",
    "firms-key-s17",
];

fn assert_clean(channel: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s} leaked through {channel}:\n{text}");
    }
}

fn source(params: Value) -> SourceConfig {
    let mut cfg = SourceConfig::new("http_json");
    cfg.rate_limit_per_minute = 60_000;
    cfg.custom_params = params
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    cfg
}

fn config(base: &str, port: u16) -> StreamConfig {
    let mut cfg = StreamConfig::default();
    let rd = &mut cfg.kafka.librdkafka_options;
    rd.insert("sasl.password".into(), "kafka-pw-s01".into());
    rd.insert(
        "ssl.key.pem".into(),
        "-----BEGIN PRIVATE KEY-----\npem-key-s02\n-----END PRIVATE KEY-----\n".into(),
    );
    cfg.dlq.url = "postgres://app:dlq-pw-s03@db.internal/dlq".into();
    let web = source(json!({
        "url": format!("http://user:userinfo-s04@127.0.0.1:{port}/feed?api_key=url-key-s05&day=1"),
        "query": {"key": "q-key-s06", "appid": "q-appid-s07", "sig": "q-sig-s08", "lang": "en"},
        "headers": {"Cookie": "sid=cookie-s09", "Ocp-Apim-Subscription-Key": "apim-s10", "X-API-Key": "xkey-s11"},
        "auth": {"type": "api_key", "name": "token", "value": "auth-value-s12", "location": "query"},
        "decoder": {"type": "json", "pointer": "/data"},
        "pagination": {"type": "next_link", "pointer": "/next"},
        "max_pages": 1,
        "max_retries": 0,
    }));
    cfg.sources.insert("web".into(), web);
    let auths = [
        json!({"type": "basic", "username": "u", "password": "basic-pw-s13"}),
        json!({"type": "bearer", "token": "bearer-s14"}),
        json!({"type": "oauth2", "token_url": format!("{base}/token"), "client_id": "c", "client_secret": "oauth-cs-s15"}),
    ];
    for (i, auth) in auths.into_iter().enumerate() {
        let src = source(json!({
            "url": format!("{base}/broken"), "auth": auth, "max_retries": 0,
            "method": "POST", "body": {"client_secret": "body-cs-s16", "q": 1},
        }));
        cfg.sources.insert(format!("auth{i}"), src);
    }
    cfg
}

/// Our crates' log lines at every level, as text.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("api_client=trace,stream_config=trace")
        .with_ansi(false)
        .with_writer(move || Writer(sink.clone()))
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn planted_secrets_reach_the_upstream_and_no_output_channel() {
    let (logs, _guard) = capture_logs();
    let server = MockServer::start().await;
    // Page 1 links page 2 and echoes two keys back, as some APIs do.
    Mock::given(path("/feed"))
        .and(query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"n": 1}],
            "next": "/feed?page=2&api_key=url-key-s05&key=q-key-s06",
        })))
        .mount(&server)
        .await;
    Mock::given(path("/feed"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"n": 2}]})))
        .mount(&server)
        .await;
    Mock::given(path("/broken"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down"))
        .mount(&server)
        .await;
    let csv = "latitude,longitude,acq_date,acq_time,satellite\n1.5,2.5,2026-12-01,0100,N\n";
    Mock::given(path_regex("^/api/area/csv/firms-key-s17/"))
        .and(header_exists("if-none-match"))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path_regex("^/api/area/csv/firms-key-s17/"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"v1\"")
                .set_body_string(csv),
        )
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let cfg = config(&server.uri(), server.address().port());

    // Dumps and Debug of the configuration.
    assert_clean("redacted_yaml", &stream_config::redacted_yaml(&cfg));
    assert_clean("Debug of StreamConfig", &format!("{cfg:?}"));
    assert_clean(
        "Debug of SourceConfig",
        &format!("{:?}", cfg.sources["web"]),
    );
    let spec_of = |id: &str| SourceSpec::from(&cfg.sources[id]);
    assert_clean("Debug of SourceSpec", &format!("{:?}", spec_of("web")));

    let registry = Registry::builtin();
    let web = registry.build("web", &cfg.sources["web"]).unwrap();
    assert_clean("Debug of the client", &format!("{web:?}"));
    let spec: HttpSpec = params("web", &spec_of("web")).unwrap();
    assert_clean("Debug of HttpSpec", &format!("{spec:?}"));
    for id in ["auth0", "auth1", "auth2"] {
        let spec: HttpSpec = params(id, &spec_of(id)).unwrap();
        let auth: Auth = spec.auth.clone().unwrap();
        assert_clean("Debug of Auth", &format!("{auth:?} {spec:?}"));
    }

    // Page 1; max_pages stops the walk, so the state holds a resume point.
    let first = web.fetch(None).await.unwrap();
    assert_eq!(first.records.len(), 1);
    let state = first.next_cursor.clone().expect("a resume point is kept");
    assert!(state.0.contains("page=2"), "{state}");
    assert_clean("the persisted fetch state", &state.0);
    assert_clean("the fetch state summary (/streams)", &state.summary());
    // It resumes at page 2 with every secret parameter sent again.
    let second = web.fetch(Some(&state)).await.unwrap();
    assert_eq!(second.records.len(), 1);
    let requests = server.received_requests().await.unwrap();
    let page2 = requests
        .iter()
        .find(|r| r.url.query().is_some_and(|q| q.contains("page=2")))
        .expect("page 2 asked");
    for (k, v) in [
        ("api_key", "url-key-s05"),
        ("key", "q-key-s06"),
        ("appid", "q-appid-s07"),
        ("sig", "q-sig-s08"),
        ("token", "auth-value-s12"),
    ] {
        let sent: Vec<_> = page2.url.query_pairs().filter(|(n, _)| n == k).collect();
        assert_eq!(sent.len(), 1, "{k} once on page 2: {}", page2.url);
        assert_eq!(sent[0].1, v);
    }
    assert_eq!(
        page2.headers.get("ocp-apim-subscription-key").unwrap(),
        "apim-s10"
    );
    // The URL's user-info goes as basic auth ("user:userinfo-s04").
    let basic = page2.headers.get("authorization").unwrap();
    assert_eq!(basic, "Basic dXNlcjp1c2VyaW5mby1zMDQ=");
    assert_clean("the part status", &format!("{:?}", web.parts()));

    // Error strings, and the part status after a failure.
    for id in ["auth0", "auth1", "auth2"] {
        let src = registry.build(id, &cfg.sources[id]).unwrap();
        let err = src.fetch(None).await.unwrap_err();
        assert_clean("an error", &format!("{err} {err:?}"));
        assert_clean(
            "the part status after an error",
            &format!("{:?}", src.parts()),
        );
    }
    let mut bad = cfg.sources["web"].clone();
    bad.custom_params.insert(
        "url".into(),
        "http://user:userinfo-s04@[::1/feed?api_key=url-key-s05".into(),
    );
    let err = registry.build("web", &bad).unwrap_err();
    assert_clean("a configuration error", &err.to_string());
    let mut typo = cfg.sources["web"].clone();
    typo.custom_params
        .insert("headers".into(), json!({"X-API-Key": 98_765_432}));
    typo.custom_params.insert(
        "auth".into(),
        json!({"type": "basic", "username": "u", "password": 24_681_357}),
    );
    for (key, value) in [("headers", "98765432"), ("auth", "24681357")] {
        let mut one = cfg.sources["web"].clone();
        one.custom_params
            .insert(key.into(), typo.custom_params[key].clone());
        let err = registry.build("web", &one).unwrap_err().to_string();
        assert!(err.contains(key), "names the key: {err}");
        assert!(!err.contains(value), "{value} echoed: {err}");
    }

    // A key in the URL's path (FIRMS) stays out of the persisted validators.
    let mut firms = SourceConfig::new("nasa_firms");
    firms.custom_params = json!({"base_url": server.uri(), "map_key": "firms-key-s17"})
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    let firms = registry.build("firms", &firms).unwrap();
    let f = firms.fetch(None).await.unwrap();
    assert_eq!(f.records.len(), 1);
    let state = f
        .next_cursor
        .expect("validators and the dedup window are kept");
    assert!(state.0.contains("\"etag\""), "{state}");
    assert_clean("the persisted FIRMS state", &state.0);
    assert_clean(
        "Debug of the FIRMS client",
        &format!("{firms:?} {:?}", firms.parts()),
    );
    let again = firms.fetch(Some(&state)).await.unwrap();
    assert!(!again.changed, "the stored validators still match: 304");

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the walk logged (max_pages reached)");
    assert_clean("our log lines", &logs);
}
