//! The routes the operator console needs besides the data API: the page and its assets
//! (no token, strict CSP), `GET /whoami`, one page of `GET /streams` searched by id,
//! `GET /config/warnings`; each as documented in the OpenAPI document.

use reqwest::Method;
use serde_json::Value;

use crate::api::{call, start_server_config, READ_TOKEN, TOKEN};
use crate::summary::{conforms, get_json, openapi, server_section};

/// The CSP the page and its assets carry.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Six synthetic sources (one disabled, one with a cache longer than its interval, which
/// `validate` warns about) behind the admin and read tokens.
fn config(dir: &test_support::TempDir, server: &str) -> String {
    let mut sources = String::new();
    for id in ["alpha", "beta", "gamma", "Beta_two", "delta"] {
        sources.push_str(&format!(
            "  {id}:\n    source_type: synthetic\n    ingestion: {{ mode: real_time, polling_interval_seconds: 1 }}\n    custom_params: {{ records_per_second: 5 }}\n"
        ));
    }
    sources.push_str("  off:\n    source_type: synthetic\n    enabled: false\n    cache_ttl_seconds: 30\n    ingestion: { mode: real_time, polling_interval_seconds: 1 }\n");
    format!(
        "kafka: {{ bootstrap_servers: embedded, linger_ms: 5 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
{sources}{server}",
        dir = dir.path().display()
    )
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// The page loads without a token and holds no data; it and its assets carry the CSP,
/// nosniff and no cookie. `/whoami` tells admin from read; no or a wrong token is 401.
/// `/streams` pages and searches (case-insensitive, by status) and keeps its plain list
/// without parameters. Fails on the old code: no `/ui`, no `/whoami`, no paging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_whoami_and_paged_streams() {
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-ui-api");
    let cfg = config(&dir, &server_section(port));
    let s = start_server_config(dir, port, &cfg);
    let client = reqwest::Client::new();
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let resp = client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} needs no token");
        let h = resp.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}: {:?}",
            h["content-type"]
        );
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.get("set-cookie").is_none(), "{path}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains(TOKEN) && !body.contains("alpha"), "{path}");
        if path == "/ui" {
            // No inline script or style: the CSP would block them.
            assert!(
                !body.contains("<script>") && !body.contains("style="),
                "{body}"
            );
            assert!(body.contains(r#"<script src="/ui/app.js""#), "{body}");
        }
    }

    let (code, v) = get_json(&s, "/whoami", Some(TOKEN)).await;
    assert_eq!((code, v["role"].as_str()), (200, Some("admin")), "{v}");
    let (code, v) = get_json(&s, "/whoami", Some(READ_TOKEN)).await;
    assert_eq!((code, v["role"].as_str()), (200, Some("read")), "{v}");
    assert_eq!(v["can_change"], false);
    assert_eq!(get_json(&s, "/whoami", None).await.0, 401);
    assert_eq!(get_json(&s, "/whoami", Some("wrong")).await.0, 401);

    let (code, page) = get_json(&s, "/streams?limit=2&offset=1", Some(READ_TOKEN)).await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["total"], 6);
    assert_eq!(page["matched"], 6);
    // Id order (byte order: `Beta_two` sorts before the lowercase ids).
    assert_eq!(ids(&page), ["alpha", "beta"], "{page}");
    assert_eq!(page["by_status"]["running"], 5, "{page}");
    assert_eq!(page["by_status"]["disabled"], 1, "{page}");
    let spec = openapi(&s).await;
    conforms(
        &spec,
        &spec["components"]["schemas"]["StreamPage"],
        &page,
        "page",
    );
    let (_, page) = get_json(&s, "/streams?q=BETA", Some(TOKEN)).await;
    assert_eq!(ids(&page), ["Beta_two", "beta"], "{page}");
    assert_eq!(
        (page["matched"].as_u64(), page["total"].as_u64()),
        (Some(2), Some(6))
    );
    let (_, page) = get_json(&s, "/streams?status=disabled", Some(TOKEN)).await;
    assert_eq!(ids(&page), ["off"], "{page}");
    let (_, page) = get_json(&s, "/streams?q=nothing-like-it", Some(TOKEN)).await;
    assert_eq!((page["matched"].as_u64(), ids(&page).len()), (Some(0), 0));
    for bad in ["limit=0", "limit=1001", "status=sleeping"] {
        let (code, v) = get_json(&s, &format!("/streams?{bad}"), Some(TOKEN)).await;
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    // Without parameters: the whole list, as before.
    let (_, all) = get_json(&s, "/streams", Some(TOKEN)).await;
    assert_eq!(all.as_array().unwrap().len(), 6, "{all}");

    let (code, w) = get_json(&s, "/config/warnings", Some(READ_TOKEN)).await;
    assert_eq!(code, 200, "{w}");
    let paths: Vec<&str> = w["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["sources.off.cache_ttl_seconds"], "{w}");
    assert!(w["warnings"][0]["hint"].is_string(), "{w}");
    assert_eq!(get_json(&s, "/config/warnings", None).await.0, 401);

    // The overview's queue figures: by priority against the caps.
    let (_, summary) = get_json(&s, "/metrics/summary?streams=false", Some(TOKEN)).await;
    assert_eq!(summary["queue"]["max_size"], 10_000, "{summary}");
    assert!(
        summary["queue"]["by_priority"]["critical"].is_u64(),
        "{summary}"
    );
    assert_eq!(summary["streams"], serde_json::json!({}), "{summary}");
    conforms(
        &spec,
        &spec["components"]["schemas"]["Summary"],
        &summary,
        "summary",
    );
}

/// Without a token configured (loopback) the page's role is `open`: every action, as
/// the API allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_role_is_open() {
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-ui-open");
    let server = format!("server: {{ listen: '127.0.0.1:{port}' }}\n");
    let cfg = config(&dir, &server);
    let s = start_server_config(dir, port, &cfg);
    let (code, body) = call(Method::GET, &format!("{}/whoami", s.base), None, None).await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["role"].as_str(), v["can_change"].as_bool()),
        (Some("open"), Some(true))
    );
}
