//! `HttpApiClient`'s credentials against a real local server: API keys, basic, bearer
//! and header auth, OAuth2 tokens (reused, refreshed, expiry clamped), and credentials
//! sent only to their own origin.

use api_client::{Auth, HttpSpec, KeyLocation, Pagination, Source};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{client, fast, opts};

#[tokio::test]
async fn api_key_in_query_never_shows_in_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/k"))
        .and(query_param("API_KEY", "sekret-123"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let mut spec = fast(HttpSpec::get(format!("{}/k", server.uri())));
    spec.auth = Some(Auth::ApiKey {
        name: "API_KEY".into(),
        value: "sekret-123".into(),
        location: KeyLocation::Query,
    });
    spec.max_retries = 0;
    let err = client(spec).fetch(None).await.unwrap_err();
    assert!(!err.to_string().contains("sekret-123"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    // A connection error (the URL with the key is in reqwest's error) is redacted too.
    let port = test_support::free_port().unwrap();
    let mut spec = fast(HttpSpec::get(format!(
        "http://127.0.0.1:{port}/k?API_KEY=sekret-123"
    )));
    spec.max_retries = 0;
    let err = client(spec)
        .with_secret("sekret-123")
        .fetch(None)
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("sekret-123"), "{err:?}");
}

#[tokio::test]
async fn basic_bearer_and_header_keys() {
    let server = MockServer::start().await;
    Mock::given(path("/basic"))
        .and(header("authorization", "Basic dXNlcjpwdw=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    Mock::given(path("/bearer"))
        .and(header("authorization", "Bearer tok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    Mock::given(path("/hdr"))
        .and(header("x-api-key", "k1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    for (p, auth) in [
        (
            "/basic",
            Auth::Basic {
                username: "user".into(),
                password: "pw".into(),
            },
        ),
        (
            "/bearer",
            Auth::Bearer {
                token: "tok".into(),
            },
        ),
        (
            "/hdr",
            Auth::ApiKey {
                name: "X-API-Key".into(),
                value: "k1".into(),
                location: KeyLocation::Header,
            },
        ),
    ] {
        let mut spec = HttpSpec::get(format!("{}{p}", server.uri()));
        spec.auth = Some(auth);
        spec.max_retries = 0;
        assert_eq!(
            client(spec).fetch(None).await.unwrap().records.len(),
            1,
            "{p}"
        );
    }
}

/// `GET /data` of `server`, with OAuth2 client credentials from its `/token`.
fn oauth2_data_spec(server: &MockServer) -> HttpSpec {
    let mut spec = HttpSpec::get(format!("{}/data", server.uri()));
    spec.auth = Some(Auth::Oauth2 {
        token_url: format!("{}/token", server.uri()),
        client_id: "id".into(),
        client_secret: "shh".into(),
        scope: None,
    });
    spec
}

#[tokio::test]
async fn oauth2_token_is_fetched_reused_and_refreshed_on_401() {
    let server = MockServer::start().await;
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = issued.clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": format!("t{n}"), "expires_in": 3600}))
        })
        .mount(&server)
        .await;
    // The first token is revoked server-side: 401, then the refreshed one works.
    Mock::given(path("/data"))
        .and(header("authorization", "Bearer t1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path("/data"))
        .and(header("authorization", "Bearer t2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    let c = client(oauth2_data_spec(&server));
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 1);
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 1);
    assert_eq!(
        issued.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one refresh, then reused"
    );
}

/// An upstream's `expires_in` near `u64::MAX` overflowed the token's expiry `Instant`:
/// the poll panicked, every time. It is clamped (a token is refreshed at least daily).
#[tokio::test]
async fn an_oauth2_expires_in_of_u64_max_is_clamped_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "t", "expires_in": u64::MAX})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/data"))
        .and(header("authorization", "Bearer t"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1, 2])))
        .mount(&server)
        .await;
    let c = client(oauth2_data_spec(&server));
    for _ in 0..2 {
        assert_eq!(c.fetch(None).await.unwrap().records.len(), 2);
    }
}

#[tokio::test]
async fn credentials_are_sent_only_to_their_origin() {
    let home = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/feed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"n": 1}],
            "next": format!("{}/more", elsewhere.uri()),
        })))
        .mount(&home)
        .await;
    Mock::given(path("/more"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"n": 2}]})))
        .mount(&elsewhere)
        .await;
    let mut spec = HttpSpec::get(format!("{}/feed", home.uri()));
    spec.decoder = serde_json::from_value(json!({"type": "json", "pointer": "/data"})).unwrap();
    spec.pagination = Pagination::NextLink {
        pointer: "/next".into(),
    };
    spec.auth = Some(Auth::Bearer {
        token: "tok-123".into(),
    });
    spec.headers.insert("X-API-Key".into(), "key-456".into());
    spec.headers
        .insert("Accept".into(), "application/json".into());
    let allowed = vec![elsewhere.address().to_string()];
    let o = api_client::ClientOptions {
        allowed_hosts: allowed,
        ..opts()
    };
    let f = api_client::HttpApiClient::new(spec, o)
        .unwrap()
        .fetch(None)
        .await
        .unwrap();
    assert_eq!(f.records.len(), 2);
    let at_home = &home.received_requests().await.unwrap()[0];
    assert_eq!(
        at_home.headers.get("authorization").unwrap(),
        "Bearer tok-123"
    );
    assert_eq!(at_home.headers.get("x-api-key").unwrap(), "key-456");
    let away = &elsewhere.received_requests().await.unwrap()[0];
    assert!(
        away.headers.get("authorization").is_none(),
        "{:?}",
        away.headers
    );
    assert!(
        away.headers.get("x-api-key").is_none(),
        "{:?}",
        away.headers
    );
    assert_eq!(away.headers.get("accept").unwrap(), "application/json");
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_when_credentials_are_configured() {
    let home = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/feed"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/x", elsewhere.uri())),
        )
        .mount(&home)
        .await;
    let mut spec = HttpSpec::get(format!("{}/feed", home.uri()));
    spec.headers.insert("X-API-Key".into(), "key-456".into());
    spec.max_retries = 0;
    // Even to a host the allow-list names: the key header would follow the redirect.
    let o = api_client::ClientOptions {
        allowed_hosts: vec![elsewhere.address().to_string()],
        ..opts()
    };
    let err = api_client::HttpApiClient::new(spec, o)
        .unwrap()
        .fetch(None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another origin"), "{err}");
    assert!(!err.to_string().contains("key-456"), "{err}");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "nothing reached it"
    );
}
