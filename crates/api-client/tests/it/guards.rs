//! Guards on what an upstream sends: a far-future timestamp never becomes the
//! incremental cursor (it would skip every later record), and records dropped as
//! duplicates are counted per source.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use api_client::{Cursor, HttpApiClient, HttpSpec, Source};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::json;
use wiremock::matchers::{path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{client, opts};

/// Counters by name and `source` label (this test thread's recorder).
#[derive(Debug, Default)]
struct Counts(Mutex<HashMap<(String, String), Arc<AtomicU64>>>);

impl Counts {
    fn get(&self, name: &str, source: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(&(name.to_owned(), source.to_owned()))
            .map_or(0, |n| n.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let source = key
            .labels()
            .find(|l| l.key() == "source")
            .map(|l| l.value().to_owned())
            .unwrap_or_default();
        let n = self
            .0
            .lock()
            .unwrap()
            .entry((key.name().to_owned(), source))
            .or_default()
            .clone();
        Counter::from_arc(n)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn a_far_future_timestamp_is_not_taken_as_the_cursor() {
    let counts = Counts::default();
    let _recorder = metrics::set_default_local_recorder(&counts);
    let server = MockServer::start().await;
    // Within the default skew (300 s) of now: a plausible value, and the newest.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(60))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    Mock::given(path("/inc"))
        .and(query_param("since", "2026-01-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 1, "t": "2026-03-01T00:00:00Z"},
            {"id": 2, "t": "2999-12-31T00:00:00Z"},
            {"id": 3, "t": soon},
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/inc"))
        .and(query_param("since", soon.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    // The key's default, as a config without it gets.
    let spec: HttpSpec = serde_json::from_value(json!({
        "url": format!("{}/inc", server.uri()),
        "incremental": {"param": "since", "field": "/t", "initial": "2026-01-01T00:00:00Z"},
    }))
    .unwrap();
    assert_eq!(spec.max_cursor_skew_seconds, 300);
    let c = client(spec);

    let f = c.fetch(None).await.unwrap();

    assert_eq!(
        f.records.len(),
        3,
        "every record is kept, only the cursor ignores one"
    );
    assert_eq!(f.next_cursor, Some(Cursor(soon.clone())));
    assert_eq!(counts.get("api_cursor_values_ignored_total", "test"), 1);
    // The next poll asks for what came after the plausible newest value.
    c.fetch(f.next_cursor.as_ref()).await.unwrap();
}

#[test]
fn the_cursor_skew_has_a_range_named_in_its_error() {
    let mut spec = HttpSpec::get("http://127.0.0.1:9/x");
    spec.max_cursor_skew_seconds = u64::MAX;
    let err = HttpApiClient::new(spec, opts()).expect_err("a skew beyond a year");
    let message = err.to_string();
    assert!(
        message.contains("sources.test.custom_params.max_cursor_skew_seconds"),
        "{message}"
    );
    assert!(message.contains("between 0 and 31536000"), "{message}");
}

#[tokio::test]
async fn records_dropped_as_duplicates_are_counted_per_source() {
    let counts = Counts::default();
    let _recorder = metrics::set_default_local_recorder(&counts);
    let server = MockServer::start().await;
    Mock::given(path("/quakes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "q1"}, {"id": "q1"}, {"id": "q2"}
        ])))
        .mount(&server)
        .await;
    let mut spec = HttpSpec::get(format!("{}/quakes", server.uri()));
    spec.dedup = serde_json::from_value(json!({"keys": ["/id"]})).unwrap();
    let c = client(spec);

    let first = c.fetch(None).await.unwrap();
    assert_eq!(first.records.len(), 2);
    assert_eq!(counts.get("api_dedup_dropped_total", "test"), 1);
    let second = c.fetch(first.next_cursor.as_ref()).await.unwrap();
    assert!(second.records.is_empty());

    assert_eq!(counts.get("api_dedup_dropped_total", "test"), 4);
}
