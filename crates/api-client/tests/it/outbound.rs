//! Outbound requests stay where the config sent them (issue 22): redirects and next-page
//! links stay on the configured origin unless `allowed_hosts` lists the host, the admin
//! API's own address only with an entry naming its port, a refusal is an error (counted),
//! and no `Referer` is ever sent. Real servers on 127.0.0.1 (wiremock), one per "host".

use std::net::SocketAddr;

use api_client::{
    ClientOptions, Decoder, Error, HttpApiClient, HttpSpec, Method, Pagination, Source,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::opts;

fn addr(server: &MockServer) -> SocketAddr {
    *server.address()
}

fn with(allowed: &[String], admin: Option<SocketAddr>) -> ClientOptions {
    ClientOptions {
        allowed_hosts: allowed.to_vec(),
        admin_address: admin,
        ..opts()
    }
}

/// A server answering `/data` with one record, so a followed hop would yield it.
async fn target() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/data"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"leak": "admin config"}])))
        .mount(&server)
        .await;
    server
}

/// `/feed` answers `302 Location: <to>`.
async fn redirecting_to(to: String) -> MockServer {
    let home = MockServer::start().await;
    Mock::given(path("/feed"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", to))
        .mount(&home)
        .await;
    home
}

fn refused_count(snapshots: &Snapshotter, reason: &str) -> u64 {
    snapshots
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| k.key().name() == "api_requests_refused_total")
        .filter(|(k, ..)| k.key().labels().any(|l| l.value() == reason))
        .map(|(.., v)| match v {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn a_redirect_to_another_port_on_loopback_is_refused_unless_allowed() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let other = target().await;
    let home = redirecting_to(format!("{}/data", other.uri())).await;
    let spec = HttpSpec {
        max_retries: 0,
        ..HttpSpec::get(format!("{}/feed", home.uri()))
    };

    let c = HttpApiClient::new(spec.clone(), with(&[], None)).unwrap();
    let err = c
        .fetch(None)
        .await
        .expect_err("a refused hop is an error, not an empty fetch");
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("not the configured origin") && text.contains("allowed_hosts"),
        "{text}"
    );
    assert!(
        other.received_requests().await.unwrap().is_empty(),
        "nothing reached it"
    );
    let part = &c.parts()[0];
    assert_eq!(part.last_status.as_deref(), Some("refused"));
    assert!(
        part.last_error.as_deref().unwrap().contains("refused"),
        "{part:?}"
    );
    assert_eq!(refused_count(&snapshots, "other_origin"), 1);

    let allowed = [format!("127.0.0.1:{}", addr(&other).port())];
    let c = HttpApiClient::new(spec, with(&allowed, None)).unwrap();
    let f = c.fetch(None).await.expect("an allowed host is followed");
    assert_eq!(f.records.len(), 1);
}

#[tokio::test]
async fn a_redirect_to_the_admin_address_is_refused_even_when_its_host_is_allowed() {
    // The source itself is on loopback and the allow-list names 127.0.0.1 (any port):
    // the admin API's address still needs an entry with its port.
    let admin = target().await;
    let home = redirecting_to(format!("http://localhost:{}/data", addr(&admin).port())).await;
    let spec = HttpSpec {
        max_retries: 0,
        ..HttpSpec::get(format!("{}/feed", home.uri()))
    };
    for allowed in [vec![], vec!["127.0.0.1".to_owned(), "localhost".to_owned()]] {
        let c = HttpApiClient::new(spec.clone(), with(&allowed, Some(addr(&admin)))).unwrap();
        let err = c.fetch(None).await.expect_err("refused");
        assert!(
            err.to_string().contains("own admin API"),
            "{allowed:?}: {err}"
        );
    }
    assert!(
        admin.received_requests().await.unwrap().is_empty(),
        "the admin API saw nothing"
    );

    let explicit = [format!("localhost:{}", addr(&admin).port())];
    let c = HttpApiClient::new(spec, with(&explicit, Some(addr(&admin)))).unwrap();
    assert_eq!(
        c.fetch(None).await.unwrap().records.len(),
        1,
        "named with its port: allowed"
    );
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_and_the_post_body_stays_home() {
    let home = MockServer::start().await;
    let elsewhere = target().await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"n": 1}],
            "next": format!("{}/data", elsewhere.uri()),
        })))
        .mount(&home)
        .await;
    let spec = HttpSpec {
        method: Method::Post,
        body: Some(json!({"query": "body-only-for-home"})),
        decoder: Decoder::Json {
            pointer: "/data".into(),
        },
        pagination: Pagination::NextLink {
            pointer: "/next".into(),
        },
        ..HttpSpec::get(format!("{}/search", home.uri()))
    };
    let c = HttpApiClient::new(spec, with(&[], None)).unwrap();
    let f = c.fetch(None).await.unwrap();
    assert_eq!(f.records.len(), 1, "the page in hand is emitted");
    assert_eq!(f.failures.len(), 1, "{f:?}");
    assert!(
        f.failures[0].contains("next-page link") && f.failures[0].contains("refused"),
        "{f:?}"
    );
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "no request, no body"
    );
    let part = &c.parts()[0];
    assert_eq!(part.consecutive_failures, 1, "{part:?}");
    assert!(
        part.last_error.as_deref().unwrap().contains("refused"),
        "{part:?}"
    );
    // Nothing to resume at: the next poll starts over at the configured URL.
    let again = c.fetch(f.next_cursor.as_ref()).await.unwrap();
    assert_eq!(again.failures.len(), 1);
    assert_eq!(home.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn no_referer_reaches_a_redirect_target() {
    let home = target().await;
    Mock::given(path("/feed"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/data"))
        .mount(&home)
        .await;
    let c = HttpApiClient::new(
        HttpSpec::get(format!("{}/feed?day=1", home.uri())),
        with(&[], None),
    )
    .unwrap();
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 1);
    let requests = home.received_requests().await.unwrap();
    let at_target = requests
        .iter()
        .find(|r| r.url.path() == "/data")
        .expect("followed");
    assert!(
        at_target.headers.get("referer").is_none(),
        "{:?}",
        at_target.headers
    );
}

#[tokio::test]
async fn the_registry_hands_the_admin_address_to_http_json() {
    let admin = target().await;
    let home = redirecting_to(format!("{}/data", admin.uri())).await;
    let mut cfg = stream_config::SourceConfig::new("http_json");
    cfg.allowed_hosts = vec!["127.0.0.1".into()];
    cfg.custom_params
        .insert("url".into(), format!("{}/feed", home.uri()).into());
    cfg.custom_params.insert("max_retries".into(), 0.into());
    // Without the admin address the allow-list lets the hop through…
    let open = api_client::Registry::builtin().build("web", &cfg).unwrap();
    assert_eq!(open.fetch(None).await.unwrap().records.len(), 1);
    // …with it (as the manager's builder sets it from `server.listen`) it is refused.
    let mut registry = api_client::Registry::builtin();
    registry.set_admin_address(addr(&admin));
    let guarded = registry.build("web", &cfg).unwrap();
    let err = guarded.fetch(None).await.unwrap_err();
    assert!(err.to_string().contains("own admin API"), "{err}");
    assert_eq!(
        admin.received_requests().await.unwrap().len(),
        1,
        "only the open client's"
    );
}

/// Page 2 redirects off the allowed hosts: the fetch fails there, and the next poll
/// starts over at page 1 without its validators (resuming at page 2 would be refused at
/// every poll; page 1's ETag would answer 304 and page 2 would never be tried again).
#[tokio::test]
async fn a_refused_redirect_on_a_later_page_starts_the_next_poll_over() {
    let home = MockServer::start().await;
    let elsewhere = target().await;
    Mock::given(path("/p1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"v1\"")
                .set_body_json(json!({"data": [{"n": 1}], "next": "/p2"})),
        )
        .mount(&home)
        .await;
    Mock::given(path("/p2"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/data", elsewhere.uri())),
        )
        .mount(&home)
        .await;
    let spec = HttpSpec {
        decoder: Decoder::Json {
            pointer: "/data".into(),
        },
        pagination: Pagination::NextLink {
            pointer: "/next".into(),
        },
        ..HttpSpec::get(format!("{}/p1", home.uri()))
    };
    let c = HttpApiClient::new(spec, with(&[], None)).unwrap();
    let f = c.fetch(None).await.unwrap();
    assert_eq!(f.records.len(), 1, "page 1 is emitted");
    assert_eq!(f.failures.len(), 1, "{f:?}");
    let _ = c.fetch(f.next_cursor.as_ref()).await.unwrap();
    let asked: Vec<(String, bool)> = home
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.url.path().to_owned(),
                r.headers.contains_key("if-none-match"),
            )
        })
        .collect();
    let to = |p: &str| (p.to_owned(), false);
    assert_eq!(asked, vec![to("/p1"), to("/p2"), to("/p1"), to("/p2")]);
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

/// The last page links to itself with the API key the upstream echoes back: that is
/// the page it is on, fetched once (the key-free URL was compared with the raw link).
#[tokio::test]
async fn a_self_link_that_echoes_the_key_ends_the_walk() {
    let home = MockServer::start().await;
    let me = format!("{}/items?api_key=k-123", home.uri());
    Mock::given(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"n": 1}],
            "next": me,
        })))
        .mount(&home)
        .await;
    let spec = HttpSpec {
        decoder: Decoder::Json {
            pointer: "/data".into(),
        },
        pagination: Pagination::NextLink {
            pointer: "/next".into(),
        },
        query: [("api_key".to_owned(), "k-123".to_owned())].into(),
        ..HttpSpec::get(format!("{}/items", home.uri()))
    };
    let c = HttpApiClient::new(spec, with(&[], None)).unwrap();
    let f = c.fetch(None).await.unwrap();
    assert_eq!(f.records.len(), 1);
    assert!(f.failures.is_empty(), "{f:?}");
    assert_eq!(home.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sources_sharing_a_client_keep_their_own_user_agent_timeout_and_refusals() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let server = MockServer::start().await;
    Mock::given(path("/data"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"n": 1}])))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"n": 1}]))
                .set_delay(std::time::Duration::from_millis(600)),
        )
        .mount(&server)
        .await;
    let away = target().await;
    Mock::given(path("/feed"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/data", away.uri())),
        )
        .mount(&server)
        .await;
    // Same origin, same rules: one shared client underneath.
    let source = |id: &str, at: &str, timeout_ms: u64| {
        let o = ClientOptions {
            source_id: id.into(),
            timeout: std::time::Duration::from_millis(timeout_ms),
            ..opts()
        };
        let spec = HttpSpec {
            max_retries: 0,
            ..HttpSpec::get(format!("{}{at}", server.uri()))
        };
        HttpApiClient::new(spec, o).unwrap()
    };
    let (a, b) = (source("a", "/data", 5_000), source("b", "/data", 5_000));
    a.fetch(None).await.unwrap();
    b.fetch(None).await.unwrap();
    let agents: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("user-agent")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(agents.len(), 2);
    assert!(
        agents[0].ends_with("(a)") && agents[1].ends_with("(b)"),
        "{agents:?}"
    );
    // Each its own timeout.
    let (quick, patient) = (source("q", "/slow", 200), source("p", "/slow", 5_000));
    let err = quick.fetch(None).await.expect_err("200 ms is too short");
    assert!(err.to_string().contains("timed out"), "{err}");
    patient.fetch(None).await.expect("5 s is long enough");
    // A redirect refused by the shared policy is counted and named for its source.
    let (c, d) = (source("c", "/feed", 5_000), source("d", "/feed", 5_000));
    let err = c.fetch(None).await.expect_err("refused").to_string();
    assert!(err.contains("sources.c.allowed_hosts"), "{err}");
    let err = d.fetch(None).await.expect_err("refused").to_string();
    assert!(err.contains("sources.d.allowed_hosts"), "{err}");
    // (One snapshot: taking one resets the debugging recorder's counters.)
    let snapshot = snapshots.snapshot().into_vec();
    let by_source = |id: &str| {
        snapshot
            .iter()
            .filter(|(k, ..)| k.key().name() == "api_requests_refused_total")
            .filter(|(k, ..)| {
                k.key()
                    .labels()
                    .any(|l| l.key() == "source" && l.value() == id)
            })
            .map(|(.., v)| match v {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum::<u64>()
    };
    assert_eq!((by_source("c"), by_source("d")), (1, 1));
    assert!(away.received_requests().await.unwrap().is_empty());
}
