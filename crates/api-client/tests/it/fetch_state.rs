//! Fetch state advances only with the records it guards: each loss path of the source
//! edge, against a real local server whose endpoints fail on command.

use api_client::CursorSummary as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use api_client::{Cursor, Fetch, HttpSpec, Pagination, Source};
use serde_json::{json, Value};
use wiremock::matchers::{path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{client, fast};

/// Answers 503 while `down` is set, else `ok` (with an ETag), counting requests.
struct Switchable {
    down: Arc<AtomicBool>,
    ok: ResponseTemplate,
    hits: Arc<AtomicUsize>,
}

impl Respond for Switchable {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.hits.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            ResponseTemplate::new(503)
        } else {
            self.ok.clone()
        }
    }
}

fn ids(f: &Fetch) -> Vec<String> {
    f.records
        .iter()
        .map(|r| {
            r.pointer("/id")
                .or_else(|| r.pointer("/properties/id"))
                .or_else(|| r.pointer("/n"))
                .map(|v| v.to_string().trim_matches('"').to_owned())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn a_failing_page_keeps_the_pages_before_it_and_the_next_poll_resumes_there() {
    let server = MockServer::start().await;
    let down = Arc::new(AtomicBool::new(true));
    let page = |n: u32, items: Value, next: Option<&str>| {
        ResponseTemplate::new(200).set_body_json(json!({
            "data": items,
            "next": next.map(|p| format!("/items?page={p}")),
            "page": n,
        }))
    };
    Mock::given(path("/items"))
        .and(query_param_is_missing("page"))
        .respond_with(page(1, json!([{"n": 1}, {"n": 2}]), Some("2")))
        .mount(&server)
        .await;
    let page2_hits = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/items"))
        .and(query_param("page", "2"))
        .respond_with(Switchable {
            down: down.clone(),
            ok: page(2, json!([{"n": 3}]), Some("3")),
            hits: page2_hits.clone(),
        })
        .mount(&server)
        .await;
    Mock::given(path("/items"))
        .and(query_param("page", "3"))
        .respond_with(page(3, json!([{"n": 4}, {"n": 5}]), None))
        .mount(&server)
        .await;
    let mut spec = fast(HttpSpec::get(format!("{}/items", server.uri())));
    spec.max_retries = 1;
    spec.decoder = serde_json::from_value(json!({"type": "json", "pointer": "/data"})).unwrap();
    spec.pagination = Pagination::NextLink {
        pointer: "/next".into(),
    };
    let c = client(spec);

    // Page 2 fails past its retries: page 1's records are in hand and emitted.
    let first = c
        .fetch(None)
        .await
        .expect("a partial fetch is not an error");
    assert_eq!(ids(&first), ["1", "2"]);
    assert_eq!(first.failures.len(), 1, "{:?}", first.failures);
    assert!(first.failures[0].contains("page 2"), "{:?}", first.failures);
    assert_eq!(
        page2_hits.load(Ordering::SeqCst),
        2,
        "one try and one retry"
    );
    let state = first
        .next_cursor
        .clone()
        .expect("the resume point is state");
    assert!(
        state.summary().contains("resumes at"),
        "{}",
        state.summary()
    );

    // Still down: the resumed walk fails with nothing in hand, the state stays.
    assert!(c.fetch(Some(&state)).await.is_err());

    // Back up: the walk resumes at page 2 — nothing of page 1 again — and completes.
    down.store(false, Ordering::SeqCst);
    let resumed = c.fetch(Some(&state)).await.unwrap();
    assert_eq!(ids(&resumed), ["3", "4", "5"]);
    assert!(resumed.failures.is_empty());
    let done = resumed
        .next_cursor
        .expect("the walk completed: state changes");
    assert!(!done.summary().contains("resumes at"), "{}", done.summary());
    // The next poll starts over at page 1.
    let again = c.fetch(Some(&done)).await.unwrap();
    assert_eq!(ids(&again), ["1", "2", "3", "4", "5"]);
}

#[tokio::test]
async fn max_pages_is_never_silent_and_the_next_poll_continues() {
    let server = MockServer::start().await;
    for p in 1..=3u32 {
        let next = (p < 3).then(|| format!("/p?page={}", p + 1));
        let m = Mock::given(path("/p"));
        let m = if p == 1 {
            m.and(query_param_is_missing("page"))
        } else {
            m.and(query_param("page", p.to_string()))
        };
        m.respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [{"n": p}], "next": next})),
        )
        .mount(&server)
        .await;
    }
    let mut spec = HttpSpec::get(format!("{}/p", server.uri()));
    spec.decoder = serde_json::from_value(json!({"type": "json", "pointer": "/data"})).unwrap();
    spec.pagination = Pagination::NextLink {
        pointer: "/next".into(),
    };
    spec.max_pages = 2;
    let c = client(spec);
    let first = c.fetch(None).await.unwrap();
    assert_eq!(ids(&first), ["1", "2"]);
    let state = first.next_cursor.unwrap();
    assert!(state.summary().contains("page=3"), "{}", state.summary());
    let rest = c.fetch(Some(&state)).await.unwrap();
    assert_eq!(ids(&rest), ["3"], "continues from where it stopped");
}

#[tokio::test]
async fn a_failing_endpoint_never_costs_its_siblings_records() {
    // NOAA: a station observation that answers, and alerts that fail for a while.
    let server = MockServer::start().await;
    let obs = |ts: &str| {
        json!({
            "type": "Feature",
            "properties": {"id": format!("obs-{ts}"), "station": "KSAC", "timestamp": ts},
            "geometry": null
        })
    };
    let obs_body = Arc::new(std::sync::Mutex::new(obs("t1")));
    let body = obs_body.clone();
    Mock::given(path("/stations/KSAC/observations/latest"))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(200).set_body_json(body.lock().unwrap().clone())
        })
        .mount(&server)
        .await;
    let alerts_down = Arc::new(AtomicBool::new(true));
    let alert_hits = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/alerts/active"))
        .respond_with(Switchable {
            down: alerts_down.clone(),
            ok: ResponseTemplate::new(200).insert_header("etag", "\"a1\"").set_body_json(json!({
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "id": "alert-1",
                    "properties": {"id": "alert-1", "sent": "2026-11-30T10:00:00Z"}, "geometry": null}]
            })),
            hits: alert_hits.clone(),
        })
        .mount(&server)
        .await;
    let mut cfg = stream_config::SourceConfig::new("noaa_weather");
    cfg.rate_limit_per_minute = 60_000;
    cfg.cache_ttl_seconds = 0;
    cfg.custom_params = json!({
        "base_url": server.uri(), "stations": ["KSAC"], "state": "CA",
    })
    .as_object()
    .unwrap()
    .clone()
    .into_iter()
    .collect();
    let s = api_client::Registry::builtin().build("noaa", &cfg).unwrap();

    // Alerts fail, retrying with the default backoff (3 retries, at least 1.75 s of waits
    // in all, longer than the 1 s a poll waits for the other parts): the observation is
    // not held up by them. Counted, not timed: the poll returns while the alerts are
    // still being retried, so their failure is not in it yet.
    let f1 = s.fetch(None).await.expect("one part answered");
    assert_eq!(ids(&f1), ["obs-t1"]);
    let tried = alert_hits.load(Ordering::SeqCst);
    assert!(
        f1.failures.is_empty() && (1..4).contains(&tried),
        "the poll returned while the alerts were still being retried \
         ({tried} of 4 attempts made; failures {:?})",
        f1.failures
    );
    // New observations keep arriving, one per poll (each poll waits for the alerts for
    // its grace: no sleep here), until the alerts part has given up and reported its
    // failure, after every retry.
    let mut cursor = f1.next_cursor.clone();
    let mut reported = false;
    for k in 2..=40 {
        *obs_body.lock().unwrap() = obs(&format!("t{k}"));
        let f = s.fetch(cursor.as_ref()).await.unwrap();
        assert_eq!(ids(&f), [format!("obs-t{k}")], "poll {k}");
        let alerts_failed = f.failures.iter().any(|m| m.starts_with("alerts CA"));
        if let Some(c) = f.next_cursor {
            cursor = Some(c);
        }
        if alerts_failed {
            let why = f.failures.join("; ");
            assert!(why.contains("after 3 retries"), "{why}");
            reported = true;
            break;
        }
    }
    assert!(reported, "the alerts failure was reported");
    assert_eq!(
        alert_hits.load(Ordering::SeqCst),
        4,
        "one fetch of the alerts: the first attempt and 3 retries"
    );
    let parts = s.parts();
    assert_eq!(parts.len(), 2);
    let alerts = parts
        .iter()
        .find(|p| p.name.contains("/alerts/active"))
        .unwrap();
    assert_eq!(alerts.last_status.as_deref(), Some("503"));
    assert!(alerts.consecutive_failures >= 1, "{alerts:?}");
    let station = parts.iter().find(|p| p.name.contains("KSAC")).unwrap();
    assert_eq!(
        (station.last_status.as_deref(), station.consecutive_failures),
        (Some("200"), 0)
    );

    // Alerts recover: the very next poll asks them again and carries their record; the
    // observation (unchanged) is not repeated.
    alerts_down.store(false, Ordering::SeqCst);
    let f = s.fetch(cursor.as_ref()).await.unwrap();
    assert_eq!(
        ids(&f),
        ["alert-1"],
        "the alert arrives at the first poll after the endpoint recovered: {:?}",
        f.failures
    );
    assert_eq!(alert_hits.load(Ordering::SeqCst), 5);
    let f3_cursor = f.next_cursor.or(cursor);

    // Every part failing is an error, with every state kept.
    let dead = api_client::Registry::builtin()
        .build("noaa", &{
            let mut c = cfg.clone();
            c.custom_params
                .insert("base_url".into(), json!("http://127.0.0.1:9"));
            c
        })
        .unwrap();
    assert!(dead.fetch(f3_cursor.as_ref()).await.is_err());
}

#[tokio::test]
async fn a_restart_with_the_committed_state_re_emits_nothing() {
    let server = MockServer::start().await;
    Mock::given(path("/quakes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "q1"}, {"id": "q2"}])))
        .mount(&server)
        .await;
    let mut spec = HttpSpec::get(format!("{}/quakes", server.uri()));
    spec.dedup = serde_json::from_value(json!({"keys": ["/id"]})).unwrap();
    let first = client(spec.clone()).fetch(None).await.unwrap();
    assert_eq!(ids(&first), ["q1", "q2"]);
    let committed: Cursor = first.next_cursor.unwrap();
    // A new process: a new client, the committed state loaded from the store.
    let after_restart = client(spec).fetch(Some(&committed)).await.unwrap();
    assert!(
        after_restart.records.is_empty(),
        "{:?}",
        after_restart.records
    );
}

/// The client remembers the state it decoded or produced last, to spare rebuilding a
/// dedup window at every poll: a poll from any other cursor (none, or an older committed
/// one after a failure) still reads the state that cursor carries.
#[tokio::test]
async fn a_poll_reads_the_state_of_its_cursor_not_the_last_one_made() {
    let server = MockServer::start().await;
    Mock::given(path("/quakes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "q1"}, {"id": "q2"}])))
        .mount(&server)
        .await;
    let mut spec = HttpSpec::get(format!("{}/quakes", server.uri()));
    spec.dedup = serde_json::from_value(json!({"keys": ["/id"]})).unwrap();
    let c = client(spec);
    let first = c.fetch(None).await.unwrap();
    assert_eq!(ids(&first), ["q1", "q2"]);
    let seen: Cursor = first.next_cursor.unwrap();
    let again = c.fetch(Some(&seen)).await.unwrap();
    assert!(again.records.is_empty(), "{:?}", again.records);
    // From no state: both records again, though the client holds a window with them.
    let from_scratch = c.fetch(None).await.unwrap();
    assert_eq!(ids(&from_scratch), ["q1", "q2"]);
    // And the remembered state again once its cursor is handed back.
    let once_more = c.fetch(Some(&seen)).await.unwrap();
    assert!(once_more.records.is_empty(), "{:?}", once_more.records);
}
