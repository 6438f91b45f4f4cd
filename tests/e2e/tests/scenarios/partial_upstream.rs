//! Scenario 8: a multi-endpoint source (NOAA: two stations and the state's alerts) whose
//! alerts endpoint fails for 10 s while the stations answer a new observation on every
//! poll. Counted by id: every record the upstream answered with 200 is in Kafka exactly
//! once — none lost to the failing sibling, none repeated after it recovers.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use e2e::{consume, json, serve, Config, Scene, Server, Storage};
use serde_json::json;
use test_support::poll_until;

struct Upstream {
    started: Instant,
    /// Every record id answered with 200 (observations and alerts).
    answered: Mutex<BTreeSet<String>>,
    observations: Mutex<HashMap<String, u64>>,
    alert_failures: Mutex<u64>,
}

const ALERTS_DOWN_FOR: Duration = Duration::from_secs(10);

async fn latest(State(s): State<Arc<Upstream>>, Path(station): Path<String>) -> Response {
    let n = {
        let mut obs = s.observations.lock().unwrap();
        let n = obs.entry(station.clone()).or_default();
        *n += 1;
        *n
    };
    let id = format!("{station}-obs-{n}");
    s.answered.lock().unwrap().insert(id.clone());
    Json(json!({
        "type": "Feature",
        "id": id,
        "properties": { "id": id, "station": station, "timestamp": format!("2026-11-30T10:{n:04}Z") },
        "geometry": null,
    }))
    .into_response()
}

async fn alerts(State(s): State<Arc<Upstream>>) -> Response {
    let elapsed = s.started.elapsed();
    if elapsed < ALERTS_DOWN_FOR {
        *s.alert_failures.lock().unwrap() += 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    // One more active alert every second after recovery; earlier ones stay listed.
    let count = 1 + (elapsed - ALERTS_DOWN_FOR).as_secs();
    let features: Vec<_> = (0..count)
        .map(|i| {
            let id = format!("alert-{i}");
            s.answered.lock().unwrap().insert(id.clone());
            json!({ "type": "Feature", "id": id,
                    "properties": { "id": id, "sent": format!("2026-11-30T11:{i:02}:00Z") },
                    "geometry": null })
        })
        .collect();
    Json(json!({ "type": "FeatureCollection", "features": features })).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_upstream_failure() {
    let scene = Scene::new("partial_upstream");
    let tansu = scene.tansu(Storage::Memory).await;
    let upstream = Arc::new(Upstream {
        started: Instant::now(),
        answered: Mutex::new(BTreeSet::new()),
        observations: Mutex::new(HashMap::new()),
        alert_failures: Mutex::new(0),
    });
    let addr = serve(
        axum::Router::new()
            .route("/stations/{station}/observations/latest", get(latest))
            .route("/alerts/active", get(alerts))
            .with_state(upstream.clone()),
    )
    .await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "topics": { "e2e-weather": { "partitions": 2 } },
            "routing": { "fallback_topic": "e2e-weather" },
        }))
        .source(
            "noaa",
            json!({
                "source_type": "noaa_weather",
                "rate_limit_per_minute": 6000,
                "timeout_seconds": 2,
                "ingestion": { "mode": "real_time", "polling_interval_seconds": 1 },
                "custom_params": {
                    "base_url": format!("http://{addr}"),
                    "stations": ["KSAC", "KRDD"],
                    "state": "CA",
                },
            }),
        );
    let mut server = Server::start(&scene, &config).await;

    // While alerts fail: the stream reports the failing part, and observations flow.
    let mut info = serde_json::Value::Null;
    poll_until(
        ALERTS_DOWN_FOR,
        "the alerts failure is reported",
        async || {
            info = server.get("/streams/noaa").await.1;
            info["failing"] == true
        },
    )
    .await;
    let parts = info["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 3, "{info}");
    let alert_part = parts
        .iter()
        .find(|p| p["name"].as_str().unwrap().contains("/alerts/active"))
        .expect("the alerts part");
    assert_eq!(alert_part["last_status"], "503", "{info}");
    assert!(
        alert_part["consecutive_failures"].as_u64().unwrap() >= 1,
        "{info}"
    );
    assert!(
        info["records_processed"].as_u64().unwrap() >= 4,
        "observations arrived while alerts failed: {info}"
    );

    // Alerts recover; let everything run a while, then stop and drain.
    tokio::time::sleep(ALERTS_DOWN_FOR).await;
    server.stop_stream("noaa").await;
    server.wait_drained(Duration::from_secs(30)).await;
    let (_, info) = server.get("/streams/noaa").await;
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));

    let answered = upstream.answered.lock().unwrap().clone();
    assert!(
        answered.iter().any(|id| id.starts_with("alert-")),
        "alerts recovered"
    );
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-weather"],
        answered.len(),
        Duration::from_secs(60),
    )
    .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in &records {
        let v = json(c);
        let id = v["properties"]["id"]
            .as_str()
            .expect("record id")
            .to_owned();
        *seen.entry(id).or_default() += 1;
    }
    let missing: Vec<_> = answered
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "answered with 200 but not in Kafka: {missing:?}"
    );
    assert!(repeated.is_empty(), "in Kafka more than once: {repeated:?}");
    assert_eq!(seen.len(), answered.len(), "nothing else arrived");
    println!(
        "partial_upstream: {} records answered with 200 ({} observations, {} alerts), {} received, 0 lost, 0 duplicated; {} alert requests failed; stream: {}",
        answered.len(),
        answered.iter().filter(|i| i.contains("-obs-")).count(),
        answered.iter().filter(|i| i.starts_with("alert-")).count(),
        records.len(),
        upstream.alert_failures.lock().unwrap(),
        info["records_processed"]
    );
}
