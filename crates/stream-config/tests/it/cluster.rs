//! `cluster`: the section loads with its defaults, and every misuse is an error naming
//! its key and line.

use stream_config::{Format, Loader};

fn problems(yaml: &str) -> Vec<(String, Option<usize>, String)> {
    crate::problems_with(yaml, &[])
}

#[test]
fn a_cluster_loads_with_its_defaults() {
    let cfg = Loader::new()
        .load_str(
            "kafka: { bootstrap_servers: 'k1:9092' }\ndlq: { url: 'postgres://u@db/sm' }\ncluster: { enabled: true, group_id: fires }\n",
            Format::Yaml,
            "cluster.yaml",
        )
        .expect("loads");
    assert!(cfg.cluster.enabled);
    assert_eq!(cfg.cluster.slots, 64);
    assert_eq!(cfg.cluster.coordination_topic(), "fires.slots");
    assert_eq!(cfg.cluster.session_timeout_ms, 10_000);
    assert_eq!(cfg.cluster.state_topic(), "fires.state");
    let kafka_only = Loader::new()
        .load_str(
            "kafka: { bootstrap_servers: 'k1:9092' }\ncluster: { enabled: true }\n",
            Format::Yaml,
            "cluster.yaml",
        )
        .expect("a cluster needs nothing but Kafka");
    assert!(
        kafka_only.dlq.url.starts_with("sqlite://"),
        "without a dlq.url the store is the embedded one: fetch state goes to the state topic"
    );
    let off = Loader::new()
        .load_str("sources: {}\n", Format::Yaml, "single.yaml")
        .expect("loads");
    assert!(!off.cluster.enabled, "single-process mode is the default");
}

#[test]
fn each_misuse_names_its_key_and_line() {
    let cases = [
        (
            "kafka: { bootstrap_servers: embedded }\ncluster:\n  enabled: true\n",
            "cluster.enabled",
            "embedded broker",
        ),
        (
            "kafka: { bootstrap_servers: 'k:9092' }\ndlq: { url: 'postgres://db/x' }\ncluster:\n  enabled: true\n  slots: 0\n",
            "cluster.slots",
            "between 1 and 1024",
        ),
        (
            "kafka: { bootstrap_servers: 'k:9092' }\ndlq: { url: 'postgres://db/x' }\ncluster:\n  enabled: true\n  group_id: 'no spaces'\n",
            "cluster.group_id",
            "invalid character ` `",
        ),
        (
            "kafka: { bootstrap_servers: 'k:9092' }\ndlq: { url: 'postgres://db/x' }\ncluster:\n  enabled: true\n  session_timeout_ms: 10\n",
            "cluster.session_timeout_ms",
            "between 1000 and 300000",
        ),
    ];
    for (yaml, path, message) in cases {
        let p = problems(yaml);
        assert!(
            p.iter()
                .any(|(pp, line, m)| pp == path && line.is_some() && m.contains(message)),
            "expected {path}: {message} for\n{yaml}\ngot {p:?}"
        );
    }
}
