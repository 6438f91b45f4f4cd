//! Runtime updates: validate first, swap atomically, notify subscribers.

use stream_config::{ConfigManager, Format, Loader, SourceConfig, StreamConfig};

#[tokio::test]
async fn valid_update_is_seen_by_subscribers_and_bad_one_changes_nothing() {
    let manager = ConfigManager::new(Loader::new(), StreamConfig::default()).unwrap();
    let mut rx = manager.subscribe();

    let mut next = StreamConfig::default();
    next.sources
        .insert("s".into(), SourceConfig::new("synthetic"));
    manager.update(next.clone()).unwrap();
    rx.changed().await.unwrap();
    assert_eq!(**rx.borrow_and_update(), next);

    let mut bad = next.clone();
    bad.queue_max_size = 0;
    bad.throttling.min_send_rate = 5000.0;
    let err = manager.update(bad).unwrap_err();
    assert_eq!(err.diagnostics().unwrap().items.len(), 2, "{err}");
    assert_eq!(*manager.current(), next);
    assert!(!rx.has_changed().unwrap());

    let err = manager
        .update_from_str("queue_max_size: -1\n", Format::Yaml)
        .unwrap_err();
    assert!(err.to_string().contains("queue_max_size"), "{err}");
    assert_eq!(*manager.current(), next);
}

#[test]
fn reload_and_save_round_trip_through_a_file() {
    let dir = std::env::temp_dir().join(format!("stream-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.yaml");
    std::fs::write(&path, "queue_max_size: 7\n").unwrap();
    let manager = ConfigManager::from_file(Loader::new(), &path).unwrap();
    assert_eq!(manager.current().queue_max_size, 7);

    std::fs::write(&path, "queue_max_size: 9\n").unwrap();
    let previous = manager.reload().unwrap();
    assert_eq!(previous.queue_max_size, 7);
    assert_eq!(manager.current().queue_max_size, 9);

    std::fs::write(&path, "queue_max_size: nine\n").unwrap();
    assert!(manager.reload().is_err());
    assert_eq!(manager.current().queue_max_size, 9);

    let saved = dir.join("saved.json");
    manager.save_to_file(&saved).unwrap();
    let again = Loader::new().load_file(&saved).unwrap();
    assert_eq!(again, *manager.current());
    std::fs::remove_dir_all(&dir).unwrap();
}
