//! `HttpApiClient` against a real local server: pagination, conditional requests,
//! retries, limits, breaker, cache, incremental cursors, rate limits (credentials:
//! `auth.rs`).

use std::time::{Duration, Instant};

use api_client::{BreakerState, Cursor, Decoder, HttpSpec, Incremental, Pagination, Source};
use serde_json::json;
use wiremock::matchers::{
    header, header_exists, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{client, fast, opts};

fn page(items: serde_json::Value, next: Option<String>) -> serde_json::Value {
    json!({"data": items, "pagination": {"next": next}})
}

#[tokio::test]
async fn follows_next_links_across_three_pages() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([{"n": 1}, {"n": 2}]),
            Some(format!("{base}/items?page=2")),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(json!([{"n": 3}]), Some("/items?page=3".into()))),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([{"n": 4}]), None)))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(HttpSpec {
        decoder: Decoder::Json {
            pointer: "/data".into(),
        },
        pagination: Pagination::NextLink {
            pointer: "/pagination/next".into(),
        },
        ..HttpSpec::get(format!("{base}/items"))
    });
    let f = c.fetch(None).await.unwrap();
    let ns: Vec<i64> = f
        .records
        .iter()
        .map(|r| r.to_value()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, vec![1, 2, 3, 4]);
    assert!(f.changed);
}

#[tokio::test]
async fn cursor_token_and_offset_pagination() {
    let server = MockServer::start().await;
    Mock::given(path("/c"))
        .and(query_param_is_missing("token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"rows": [1, 2], "next": "abc"})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/c"))
        .and(query_param("token", "abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"rows": [3], "next": ""})))
        .mount(&server)
        .await;
    let c = client(HttpSpec {
        decoder: Decoder::Json {
            pointer: "/rows".into(),
        },
        pagination: Pagination::Cursor {
            pointer: "/next".into(),
            param: "token".into(),
        },
        ..HttpSpec::get(format!("{}/c", server.uri()))
    });
    assert_eq!(
        c.fetch(None).await.unwrap().records,
        vec![json!(1), json!(2), json!(3)]
    );

    for (offset, rows) in [
        ("0", json!([1, 2])),
        ("2", json!([3, 4])),
        ("4", json!([5])),
    ] {
        Mock::given(path("/o"))
            .and(query_param("offset", offset))
            .and(query_param("limit", "2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(rows))
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(HttpSpec {
        pagination: Pagination::Offset {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            limit: 2,
        },
        ..HttpSpec::get(format!("{}/o", server.uri()))
    });
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 5);
}

#[tokio::test]
async fn etag_304_means_nothing_new_and_no_decode() {
    let server = MockServer::start().await;
    Mock::given(path("/feed"))
        .and(header("if-none-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/feed"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"v1\"")
                .set_body_json(json!([{"a": 1}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(HttpSpec::get(format!("{}/feed", server.uri())));
    let first = c.fetch(None).await.unwrap();
    assert_eq!(first.records.len(), 1);
    // The validators travel in the fetch state the first fetch handed over.
    let second = c.fetch(first.next_cursor.as_ref()).await.unwrap();
    assert!(!second.changed && second.records.is_empty(), "{second:?}");
    assert_eq!(second.next_cursor, None, "a 304 keeps the state as it was");
}

#[tokio::test]
async fn last_modified_is_sent_back() {
    let server = MockServer::start().await;
    let stamp = "Wed, 25 Nov 2026 10:00:00 GMT";
    // (wiremock's `header` matcher splits values at commas, which dates contain.)
    Mock::given(path("/lm"))
        .and(header_exists("if-modified-since"))
        .respond_with(ResponseTemplate::new(304))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/lm"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("last-modified", stamp)
                .set_body_json(json!([1])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(HttpSpec::get(format!("{}/lm", server.uri())));
    let first = c.fetch(None).await.unwrap();
    assert!(first.changed);
    assert!(!c.fetch(first.next_cursor.as_ref()).await.unwrap().changed);
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent[1].headers.get("if-modified-since").unwrap(), stamp);
}

#[tokio::test]
async fn http_429_waits_at_least_retry_after() {
    let server = MockServer::start().await;
    Mock::given(path("/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/busy"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    let c = client(fast(HttpSpec::get(format!("{}/busy", server.uri()))));
    let started = Instant::now();
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retry_after_of_a_day_is_capped() {
    let server = MockServer::start().await;
    Mock::given(path("/park"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "86400"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/park"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    let mut spec = fast(HttpSpec::get(format!("{}/park", server.uri())));
    spec.max_retry_after_seconds = 0.5;
    let c = client(spec);
    let started = Instant::now();
    let f = tokio::time::timeout(Duration::from_secs(10), c.fetch(None))
        .await
        .expect("not parked for a day");
    assert_eq!(f.unwrap().records.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/flaky"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/flaky"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1, 2])))
        .mount(&server)
        .await;
    let c = client(fast(HttpSpec::get(format!("{}/flaky", server.uri()))));
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/nope"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let c = client(fast(HttpSpec::get(format!("{}/nope", server.uri()))));
    assert!(matches!(
        c.fetch(None).await,
        Err(api_client::Error::Status { status: 404, .. })
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn slower_than_the_timeout_fails_after_retries() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(2))
                .set_body_json(json!([1])),
        )
        .mount(&server)
        .await;
    let mut o = opts();
    o.timeout = Duration::from_millis(200);
    let mut spec = fast(HttpSpec::get(format!("{}/slow", server.uri())));
    spec.max_retries = 1;
    let c = api_client::HttpApiClient::new(spec, o).unwrap();
    let err = c.fetch(None).await.unwrap_err();
    assert!(
        matches!(&err, api_client::Error::Unavailable(m) if m.contains("timed out")),
        "{err}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn invalid_bodies_are_decode_errors_and_bad_lines_are_rejected_alone() {
    let server = MockServer::start().await;
    Mock::given(path("/bad"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"unterminated\": "))
        .mount(&server)
        .await;
    Mock::given(path("/nd"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"a\":1}\n<html>oops</html>\n{\"a\":2}\n"),
        )
        .mount(&server)
        .await;
    let c = client(HttpSpec::get(format!("{}/bad", server.uri())));
    assert!(matches!(
        c.fetch(None).await,
        Err(api_client::Error::Decode(_))
    ));
    let c = client(HttpSpec {
        decoder: Decoder::Ndjson,
        ..HttpSpec::get(format!("{}/nd", server.uri()))
    });
    let f = c.fetch(None).await.unwrap();
    assert_eq!(f.records.len(), 2);
    assert_eq!(f.rejected.len(), 1);
    assert_eq!(f.rejected[0].excerpt, "<html>oops</html>");
}

#[tokio::test]
async fn a_body_over_the_limit_is_an_error_not_an_allocation() {
    let server = MockServer::start().await;
    let big = format!("[{}1]", "1,".repeat(100_000));
    Mock::given(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string(big))
        .mount(&server)
        .await;
    let mut spec = HttpSpec::get(format!("{}/big", server.uri()));
    spec.max_response_bytes = 10_000;
    let err = client(spec).fetch(None).await.unwrap_err();
    assert!(
        matches!(err, api_client::Error::TooLarge { limit: 10_000 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn breaker_opens_after_failures_and_closes_after_a_good_probe() {
    let server = MockServer::start().await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    let mut spec = fast(HttpSpec::get(format!("{}/down", server.uri())));
    spec.max_retries = 0;
    spec.breaker_threshold = 2;
    spec.breaker_cooldown_seconds = 0.3;
    let c = client(spec);
    assert!(matches!(
        c.fetch(None).await,
        Err(api_client::Error::Unavailable(_))
    ));
    assert!(matches!(
        c.fetch(None).await,
        Err(api_client::Error::Unavailable(_))
    ));
    assert_eq!(c.breaker_state(), BreakerState::Open);
    assert!(matches!(
        c.fetch(None).await,
        Err(api_client::Error::BreakerOpen { .. })
    ));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "no request while open"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 1);
    assert_eq!(c.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn cached_response_is_never_re_emitted() {
    let server = MockServer::start().await;
    Mock::given(path("/c"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"a": 1}])))
        .mount(&server)
        .await;
    let mut o = opts();
    o.cache_ttl = Duration::from_secs(60);
    let c =
        api_client::HttpApiClient::new(HttpSpec::get(format!("{}/c", server.uri())), o).unwrap();
    assert_eq!(c.fetch(None).await.unwrap().records.len(), 1);
    let again = c.fetch(None).await.unwrap();
    assert!(
        again.records.is_empty() && !again.changed,
        "the cache answers 'nothing new'"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn incremental_cursor_sends_the_newest_value_seen() {
    let server = MockServer::start().await;
    Mock::given(path("/inc"))
        .and(query_param("since", "2026-01-01"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"t": "2026-03-01"}, {"t": "2026-02-01"}])),
        )
        .mount(&server)
        .await;
    Mock::given(path("/inc"))
        .and(query_param("since", "2026-03-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let mut spec = HttpSpec::get(format!("{}/inc", server.uri()));
    spec.incremental = Some(Incremental {
        param: "since".into(),
        field: "/t".into(),
        initial: Some("2026-01-01".into()),
    });
    let c = client(spec);
    let f = c.fetch(None).await.unwrap();
    assert_eq!(f.next_cursor, Some(Cursor("2026-03-01".into())));
    let f2 = c.fetch(f.next_cursor.as_ref()).await.unwrap();
    assert!(f2.records.is_empty() && !f2.changed);
    assert_eq!(
        f2.next_cursor, None,
        "an empty delta keeps the cursor (None: unchanged)"
    );
}

#[tokio::test]
async fn rate_limit_spaces_requests_pages_included() {
    let server = MockServer::start().await;
    Mock::given(path("/r"))
        .and(header_exists("user-agent"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .mount(&server)
        .await;
    let mut o = opts();
    o.rate_limit_per_minute = 600; // 10/s, burst 60 → the 61st request waits 100 ms
    let c =
        api_client::HttpApiClient::new(HttpSpec::get(format!("{}/r", server.uri())), o).unwrap();
    let started = Instant::now();
    for _ in 0..63 {
        c.fetch(None).await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}
