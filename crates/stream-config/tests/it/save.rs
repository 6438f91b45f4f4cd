//! `save`: a configuration written and loaded again is the same configuration.

use stream_config::{save, save_json_text, Loader};

#[test]
fn save_round_trips_through_yaml_and_json_and_refuses_unknown_extensions() {
    let dir = test_support::TempDir::new("stream-config-save");
    let cfg = Loader::new()
        .load_str(
            "queue_max_size: 9\nsources:\n  gen: { source_type: synthetic }\n",
            stream_config::Format::Yaml,
            "<test>",
        )
        .unwrap();
    for name in ["saved.yaml", "saved.json"] {
        let path = dir.path().join(name);
        save(&cfg, &path).unwrap();
        assert_eq!(Loader::new().load_file(&path).unwrap(), cfg, "{name}");
        assert!(
            !dir.path().join(format!("{name}.tmp")).exists(),
            "no temporary file is left behind"
        );
    }
    // JSON text as sent (a PUT body) serves a YAML file too.
    let yaml_file = dir.path().join("sent.yaml");
    save_json_text(
        r#"{"queue_max_size": 9, "sources": {"gen": {"source_type": "synthetic"}}}"#,
        &yaml_file,
    )
    .unwrap();
    assert_eq!(Loader::new().load_file(&yaml_file).unwrap(), cfg);
    let err = save(&cfg, &dir.path().join("saved.txt")).unwrap_err();
    assert!(err.to_string().contains("saved.txt"), "{err}");
}
