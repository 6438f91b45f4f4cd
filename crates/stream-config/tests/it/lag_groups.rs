//! `throttling.consumer_groups`: absent (discover the groups), `[]` (lag throttling off)
//! and a list (exactly those) stay distinct through loading, saving, the redacted dump
//! and validation.

use stream_config::{redacted, save, Format, Loader, StreamConfig};

use crate::problems_with;

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap()
}

fn load(yaml: &str) -> StreamConfig {
    Loader::new()
        .load_str(yaml, Format::Yaml, "test.yaml")
        .unwrap()
}

#[test]
fn absent_empty_and_listed_groups_load_as_three_different_settings() {
    assert_eq!(
        load("throttling: { target_consumer_lag: 10 }\n")
            .throttling
            .consumer_groups,
        None,
        "absent: discovered"
    );
    assert_eq!(load("{}\n").throttling.consumer_groups, None);
    assert_eq!(
        load("throttling: { consumer_groups: [] }\n")
            .throttling
            .consumer_groups,
        Some(vec![]),
        "[]: off"
    );
    assert_eq!(
        load("throttling: { consumer_groups: [analytics, archive] }\n")
            .throttling
            .consumer_groups,
        Some(vec!["analytics".to_owned(), "archive".to_owned()])
    );
}

#[test]
fn each_setting_survives_save_and_load_and_shows_as_itself_in_the_dump() {
    let dir = test_support::TempDir::new("stream-config-lag-groups");
    for (yaml, dumped) in [
        ("{}\n", None),
        ("throttling: { consumer_groups: [] }\n", Some(yaml("[]"))),
        (
            "throttling: { consumer_groups: [analytics] }\n",
            Some(yaml("[analytics]")),
        ),
    ] {
        let cfg = load(yaml);
        for name in ["c.yaml", "c.json"] {
            let path = dir.path().join(name);
            save(&cfg, &path).unwrap();
            assert_eq!(
                Loader::new().load_file(&path).unwrap(),
                cfg,
                "{yaml} through {name}"
            );
        }
        let dump = redacted(&cfg);
        assert_eq!(
            dump["throttling"].get("consumer_groups").cloned(),
            dumped,
            "{yaml}: absent stays absent (discovery), [] stays []"
        );
    }
}

#[test]
fn an_empty_group_name_is_an_error_naming_its_index() {
    let problems = problems_with("throttling:\n  consumer_groups: [ok, \" \"]\n", &[]);
    assert!(
        problems
            .iter()
            .any(|(path, line, msg)| path == "throttling.consumer_groups[1]"
                && *line == Some(2)
                && msg.contains("empty")),
        "{problems:?}"
    );
}
