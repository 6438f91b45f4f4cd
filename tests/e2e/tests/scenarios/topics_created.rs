//! Topics the service creates on a broker that creates none by itself (tansu): those a
//! topic template resolves to, the first time it does, and those a runtime update
//! names. Every record arrives; none is dead-lettered as `unknown_topic`.

use std::time::Duration;

use e2e::{committed_seq, consume, sequences, tally, Config, Scene, Server, Storage};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_created() {
    let scene = Scene::new("topics_created");
    let tansu = scene.tansu(Storage::Memory).await;
    let config = Config::new(&tansu.bootstrap(), &scene.sqlite_url())
        .with(json!({
            "throttling": { "max_send_rate": 10000 },
            "routing": {
                // Named by a template only: known when a record first resolves to it.
                "pattern_mappings": [{ "pattern": "^syn", "topic": "e2e-t-{source_id}" }],
                "fallback_topic": "e2e-t-default",
            },
        }))
        .synthetic("syn_a", 200, 1)
        .synthetic("syn_b", 200, 2);
    let mut server = Server::start(&scene, &config).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A runtime update adds a source whose topic only the update names.
    let mut next = server.config_json();
    next["sources"]["late"] = json!({
        "source_type": "synthetic",
        "topic": "e2e-t-late",
        "ingestion": {
            "mode": "continuous_streaming",
            "polling_interval_seconds": 0.1,
            "buffer_size": 200,
            "buffer_flush_interval_seconds": 0.5,
        },
        "custom_params": { "records_per_second": 200, "seed": 3, "alert_probability": 0 },
    });
    let (status, body) = server.put("/config", next).await;
    assert_eq!(status, 200, "PUT /config: {body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.sigterm(Duration::from_secs(60)).await, Some(0));

    let mut expected = 0;
    let mut counts = Vec::new();
    for source in ["syn_a", "syn_b", "late"] {
        let n = committed_seq(&scene.sqlite_url(), source).await;
        assert!(n >= 100, "{source} emitted only {n}");
        expected += n as usize;
        counts.push((source, n));
    }
    let records = consume(
        &tansu.bootstrap(),
        &["e2e-t-syn_a", "e2e-t-syn_b", "e2e-t-late"],
        expected,
        Duration::from_secs(60),
    )
    .await;
    for (source, n) in &counts {
        let want = match *source {
            "late" => "e2e-t-late".to_owned(),
            s => format!("e2e-t-{s}"),
        };
        let mine: Vec<_> = records
            .iter()
            .filter(|c| e2e::header(c, "source_id") == Some(source))
            .cloned()
            .collect();
        assert!(mine.iter().all(|c| c.topic == want), "{source} → {want}");
        let t = tally(&sequences(&mine, source), *n);
        assert!(
            t.missing.is_empty() && t.duplicates.is_empty() && t.unexpected.is_empty(),
            "{source}: {}",
            t.summary()
        );
    }
    assert_eq!(records.len(), expected, "nothing else arrived");
    println!(
        "topics_created: {counts:?} records on 3 topics the broker did not have (2 templated, 1 from a runtime update), all delivered, 0 dead-lettered"
    );
}
