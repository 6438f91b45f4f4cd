//! The operator console in a real browser (headless Chromium over WebDriver, see
//! `browser.rs`) against the server binary: what the page lists, what its buttons do
//! through the API, what each token sees. Each test saves a screenshot under the target
//! directory's `ui-screenshots/` for a person to look at.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::{json, Value};

use crate::api::{start_server_config, Server, READ_TOKEN, TOKEN};
use crate::browser::Browser;
use crate::console::upstream;
use crate::summary::{get_json, server_section};

/// A server with two synthetic sources, one `http_json` source whose records carry an
/// event time two minutes old (`timed`), and one whose upstream answers an undecodable
/// line once an hour (`bad`: one dead letter, `decode_error`), on `bootstrap`.
fn start(name: &str, bootstrap: &str) -> Server {
    let old = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 120_000;
    let timed = upstream("application/json", format!(r#"[{{"id":1,"at":{old}}}]"#));
    let bad = upstream("application/x-ndjson", "not json\n".to_owned());
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new(name);
    let config = format!(
        "kafka: {{ bootstrap_servers: '{bootstrap}', linger_ms: 5 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
  gen:
    source_type: synthetic
    ingestion: {{ mode: real_time, polling_interval_seconds: 0.5 }}
    custom_params: {{ records_per_second: 20 }}
  gen_slow:
    source_type: synthetic
    priority: low
    ingestion: {{ mode: real_time, polling_interval_seconds: 1 }}
    custom_params: {{ records_per_second: 2 }}
  timed:
    source_type: http_json
    ingestion: {{ mode: real_time, polling_interval_seconds: 1 }}
    custom_params:
      url: 'http://127.0.0.1:{timed}/items'
      event_time: {{ pointer: /at, format: epoch_ms }}
  bad:
    source_type: http_json
    ingestion: {{ mode: real_time, polling_interval_seconds: 3600 }}
    custom_params: {{ url: 'http://127.0.0.1:{bad}/items', decoder: {{ type: ndjson }} }}
{server}",
        dir = dir.path().display(),
        server = server_section(port)
    );
    start_server_config(dir, port, &config)
}

/// Waits for the dead letter of `bad`; its row id.
async fn dead_letter(s: &Server) -> i64 {
    let mut id = 0;
    test_support::poll_until(Duration::from_secs(30), "a dead letter", async || {
        let (_, v) = get_json(s, "/dlq?source_id=bad", Some(TOKEN)).await;
        id = v["items"][0]["id"].as_i64().unwrap_or(0);
        id > 0
    })
    .await;
    id
}

/// The texts of the cells with `class` in the sources table, by row id.
async fn column(b: &Browser, class: &str) -> Value {
    b.eval(&format!(
        "const out = {{}}; for (const tr of document.querySelectorAll('#sources-table tbody tr')) \
         out[tr.dataset.id] = tr.querySelector('.{class}').textContent; return out;"
    ))
    .await
}

/// Every configured source has a row; the freshness of `timed` (from its records' own
/// time, two minutes old) moves as the page refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sources_table_lists_every_source_with_a_freshness_that_moves() {
    let s = start("ui-sources", "embedded");
    let b = Browser::start(1280, 800).await;
    b.open_console(&s.base, Some(TOKEN)).await;
    b.click("#tab-sources").await;
    b.wait_until(
        "four rows and timed's event-time freshness",
        "const f = document.querySelector('#sources-table tr[data-id=timed] .freshness'); \
         return document.querySelectorAll('#sources-table tbody tr').length === 4 \
         && f !== null && f.textContent.includes('min');",
    )
    .await;
    let first = column(&b, "freshness").await;
    let ids: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(ids, ["bad", "gen", "gen_slow", "timed"], "{first}");
    let timed = first["timed"].as_str().unwrap().to_owned();
    assert!(timed.starts_with("2 min"), "two minutes old: {first}");
    b.wait_until(
        "timed's freshness moving",
        &format!(
            "return document.querySelector('#sources-table tr[data-id=timed] .freshness').textContent !== {};",
            json!(timed)
        ),
    )
    .await;
    let later = column(&b, "freshness").await;
    assert!(
        later["timed"].as_str().unwrap() > timed.as_str(),
        "{timed} then {later}"
    );
    assert_eq!(
        b.eval("return document.querySelector('#source-range').textContent;")
            .await,
        "1–4 of 4 sources"
    );
    b.screenshot("sources").await;
    // Phone width: the page does not scroll sideways (the table scrolls in its box).
    b.client.set_window_size(390, 844).await.unwrap();
    b.wait_until(
        "no sideways scroll at phone width",
        "return document.documentElement.scrollWidth <= window.innerWidth;",
    )
    .await;
    b.screenshot("sources-phone").await;
    b.close().await;
}

/// The pause button of `gen` pauses it: the API says `paused`, the row too, and the row
/// then offers resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_source_from_the_page_changes_its_status_in_the_api() {
    let s = start("ui-pause", "embedded");
    let b = Browser::start(1280, 800).await;
    b.open_console(&s.base, Some(TOKEN)).await;
    b.click("#tab-sources").await;
    b.click("#sources-table tr[data-id=gen] button[data-action=pause]")
        .await;
    test_support::poll_until(Duration::from_secs(15), "gen paused", async || {
        get_json(&s, "/streams/gen", Some(TOKEN)).await.1["status"] == "paused"
    })
    .await;
    b.wait_until(
        "gen's row paused with a resume button",
        "const tr = document.querySelector('#sources-table tr[data-id=gen]'); \
         return tr.dataset.status === 'paused' && tr.querySelector('button[data-action=resume]') !== null;",
    )
    .await;
    let (_, other) = get_json(&s, "/streams/gen_slow", Some(TOKEN)).await;
    assert_eq!(other["status"], "running", "only gen: {other}");
    b.screenshot("pause").await;
    b.close().await;
}

/// A dead letter replayed from the page, to another topic, reaches Kafka (librdkafka's
/// mock cluster, consumed here); the confirmation names the one row it touches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_replayed_from_the_page_reaches_kafka() {
    let mock: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).unwrap();
    for topic in ["demo", "replayed"] {
        mock.create_topic(topic, 1, 1).unwrap();
    }
    let s = start("ui-replay", &mock.bootstrap_servers());
    let id = dead_letter(&s).await;
    let b = Browser::start(1280, 800).await;
    b.open_console(&s.base, Some(TOKEN)).await;
    b.click("#tab-dlq").await;
    let row = format!("#dlq-table tr[data-id='{id}']");
    b.wait_for(&row).await;
    b.wait_for("#dlq-topic")
        .await
        .send_keys("replayed")
        .await
        .unwrap();
    b.click(&format!("{row} button[data-action=replay]")).await;
    let text = b.wait_for("#confirm-text").await.text().await.unwrap();
    assert!(
        text.contains("Replay 1 row") && text.contains("topic replayed"),
        "{text}"
    );
    b.screenshot("replay-confirm").await;
    b.click("#confirm-no").await;
    // The payload, on demand.
    b.click(&format!("{row} .link-button")).await;
    let payload = b.wait_for("#payload").await.text().await.unwrap();
    assert!(payload.ends_with("not json"), "{payload}");
    b.click(&format!("{row} button[data-action=replay]")).await;
    b.wait_for("#confirm-yes").await;
    b.click("#confirm-yes").await;
    let bootstrap = mock.bootstrap_servers();
    let got = tokio::task::spawn_blocking(move || {
        test_support::kafka::consume(&bootstrap, &["replayed"], 1, Duration::from_secs(30))
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].payload, b"not json", "{got:?}");
    b.wait_until(
        "the row replayed",
        &format!("return document.querySelector(\"{row}\").dataset.status === 'replayed';"),
    )
    .await;
    let message = b.wait_for("#message").await.text().await.unwrap();
    assert!(message.contains("1 replayed"), "{message}");
    b.screenshot("replayed").await;
    // Purging the settled rows says how many it deletes: the replayed one.
    b.click("#dlq-purge").await;
    let text = b.wait_for("#confirm-text").await.text().await.unwrap();
    assert!(text.contains("Delete 1 settled row(s)"), "{text}");
    b.click("#confirm-yes").await;
    test_support::poll_until(Duration::from_secs(15), "the row purged", async || {
        get_json(&s, "/dlq/stats", Some(TOKEN)).await.1["total"] == 0
    })
    .await;
    b.wait_until(
        "the table empty",
        "return document.querySelectorAll('#dlq-table tbody tr').length === 0;",
    )
    .await;
    b.close().await;
}

/// The read-only token sees the sources and the dead letters and no action button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_only_token_shows_no_action_buttons() {
    let s = start("ui-read", "embedded");
    dead_letter(&s).await;
    let b = Browser::start(1280, 800).await;
    b.open_console(&s.base, Some(READ_TOKEN)).await;
    b.click("#tab-sources").await;
    b.wait_until(
        "four rows",
        "return document.querySelectorAll('#sources-table tbody tr').length === 4;",
    )
    .await;
    let buttons = "return document.querySelectorAll('button.action, button[data-action]').length;";
    assert_eq!(b.eval(buttons).await, 0);
    let role = b.wait_for("#role").await.text().await.unwrap();
    assert!(role.contains("read-only"), "{role}");
    b.screenshot("read-only-sources").await;
    b.click("#tab-dlq").await;
    b.wait_until(
        "the dead letter",
        "return document.querySelectorAll('#dlq-table tbody tr').length === 1;",
    )
    .await;
    assert_eq!(b.eval(buttons).await, 0);
    assert_eq!(
        b.eval("return document.getElementById('dlq-topic');").await,
        Value::Null
    );
    b.screenshot("read-only-dlq").await;
    b.close().await;
}

/// A wrong token: a clear message, the sign-in form again, no data anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_shows_a_clear_message_and_no_data() {
    let s = start("ui-wrong", "embedded");
    let b = Browser::start(1280, 800).await;
    b.open_console(&s.base, Some("not-the-token")).await;
    b.wait_until(
        "the refusal",
        "return document.getElementById('message').className === 'error';",
    )
    .await;
    let text = b.wait_for("#message").await.text().await.unwrap();
    assert!(
        text.contains("Wrong token") && text.contains("401"),
        "{text}"
    );
    b.wait_for("#token").await;
    // Not laid out at all (display: none), not merely flagged hidden.
    let shown = b
        .eval(
            "return [document.getElementById('app').offsetParent, document.getElementById('tabs').offsetParent, \
             document.querySelectorAll('tbody tr').length, sessionStorage.getItem('token')];",
        )
        .await;
    assert_eq!(shown, json!([null, null, 0, null]));
    let page = b.client.source().await.unwrap();
    assert!(!page.contains("gen_slow"), "no source id in the page");
    b.screenshot("wrong-token").await;
    b.close().await;
}

/// The console with many synthetic sources: the Sources tab shows the first page of 50
/// rows and the total, the search box finds the last source alone, the Overview counts
/// them all. 1,000 sources by default; the measurement of BENCHMARKS.md ("Operator
/// console at 10,000 sources") sets `UI_SOURCES=10000` and reads what it prints (how
/// long the page takes to each of those, what the API's answers weigh) with
/// `cargo nextest run -p stream-server --test it ui::the_console_ --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_searches_and_counts_many_sources() {
    let n: usize = std::env::var("UI_SOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=99_999).contains(n))
        .unwrap_or(1_000);
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("ui-many");
    let mut config = format!(
        "kafka: {{ bootstrap_servers: embedded, linger_ms: 20 }}
dlq: {{ url: 'sqlite://{dir}/dlq.db' }}
routing: {{ fallback_topic: demo }}
sources:
",
        dir = dir.path().display()
    );
    for i in 0..n {
        config.push_str(&format!(
            "  synthetic_{i:05}: {{ source_type: synthetic, ingestion: {{ mode: real_time, polling_interval_seconds: 60 }}, custom_params: {{ records_per_second: 1 }} }}\n"
        ));
    }
    config.push_str(&server_section(port));
    let s = start_server_config(dir, port, &config);
    test_support::poll_until(
        Duration::from_secs(120),
        "every stream running",
        async || {
            let (_, v) = get_json(&s, "/streams?limit=1", Some(TOKEN)).await;
            v["by_status"]["running"] == n
        },
    )
    .await;
    for path in [
        "/streams?limit=50",
        "/streams",
        "/metrics/summary?streams=false",
        "/ready",
    ] {
        let started = std::time::Instant::now();
        let (_, body) = crate::api::call(
            reqwest::Method::GET,
            &format!("{}{path}", s.base),
            Some(TOKEN),
            None,
        )
        .await;
        println!(
            "ui-{n}: GET {path}: {} bytes in {} ms",
            body.len(),
            started.elapsed().as_millis()
        );
    }
    let b = Browser::start(1280, 900).await;
    let started = std::time::Instant::now();
    b.client
        .goto(&format!("{}/ui#sources", s.base))
        .await
        .unwrap();
    b.wait_for("#token").await.send_keys(TOKEN).await.unwrap();
    let typed = std::time::Instant::now();
    b.click("#login-go").await;
    b.wait_until(
        "the first page of rows",
        "return document.querySelectorAll('#sources-table tbody tr').length === 50;",
    )
    .await;
    let shown = typed.elapsed();
    let range = b
        .eval("return document.querySelector('#source-range').textContent;")
        .await;
    assert_eq!(range, format!("1–50 of {n} sources"));
    let search = std::time::Instant::now();
    b.wait_for("#source-q")
        .await
        .send_keys(&format!("{:05}", n - 1))
        .await
        .unwrap();
    b.wait_until(
        "the search hit",
        &format!(
            "const r = document.querySelectorAll('#sources-table tbody tr'); \
             return r.length === 1 && r[0].dataset.id === 'synthetic_{:05}';",
            n - 1
        ),
    )
    .await;
    let found = search.elapsed();
    b.client.set_window_size(1280, 900).await.unwrap();
    b.eval("document.getElementById('source-q').value = ''; document.getElementById('source-q').dispatchEvent(new Event('input'));").await;
    b.wait_until(
        "the first page again",
        "return document.querySelectorAll('#sources-table tbody tr').length === 50;",
    )
    .await;
    b.screenshot("many-sources").await;
    let overview = std::time::Instant::now();
    b.click("#tab-overview").await;
    b.wait_until(
        "the overview's counts",
        &format!(
            "return document.getElementById('source-counts').textContent.includes('{n} configured');"
        ),
    )
    .await;
    println!(
        "ui-{n}: page load to sign-in form {} ms; sign-in to 50 rows {} ms; search to the hit {} ms (250 ms of it the typing pause); overview {} ms",
        (typed - started).as_millis(),
        shown.as_millis(),
        found.as_millis(),
        overview.elapsed().as_millis()
    );
    b.close().await;
}
