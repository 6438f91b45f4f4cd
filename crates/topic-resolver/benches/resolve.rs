//! Resolutions per second with 50 rules of mixed strategies.

use std::fmt::Write as _;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use topic_resolver::{RecordView, Resolver};

/// 20 content rules, 10 custom mappings, 20 patterns.
fn fifty_rules() -> Resolver {
    let mut y = String::from("routing:\n  content_rules:\n");
    for i in 0..20 {
        let rule = match i % 5 {
            0 => format!("{{ field: /properties/code, operator: eq, value: code{i}, topic: rule-{i} }}"),
            1 => format!("{{ field: /properties/level, operator: gt, value: {}, topic: rule-{i} }}", 1000 + i),
            2 => format!("{{ field: /properties/kind, operator: in, value: [k{i}, j{i}], topic: rule-{i} }}"),
            3 => format!("{{ field: /properties/name, operator: matches, value: '^zz{i}', topic: rule-{i} }}"),
            _ => format!("{{ field: /properties/flag{i}, operator: exists, topic: rule-{i} }}"),
        };
        writeln!(y, "    - {rule}").unwrap();
    }
    y.push_str("  custom_mappings:\n");
    for i in 0..10 {
        writeln!(y, "    mapped_{i}: topic-mapped-{i}").unwrap();
    }
    y.push_str("  pattern_mappings:\n");
    for i in 0..20 {
        writeln!(
            y,
            "    - {{ pattern: '^group{i}_\\d+$', topic: pattern-{i} }}"
        )
        .unwrap();
    }
    // The sources records come from are configured, as in the running system.
    y.push_str("sources:\n");
    let unique: std::collections::BTreeSet<String> = source_ids().into_iter().collect();
    for id in unique {
        writeln!(y, "  {id}: {{ source_type: bench }}").unwrap();
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        routing: topic_resolver::Rules,
        sources: std::collections::BTreeMap<String, Source>,
    }
    #[derive(serde::Deserialize)]
    struct Source {
        source_type: String,
    }
    let doc: Doc = serde_yaml::from_str(&y).unwrap();
    let mut rules = doc.routing;
    rules.source_types = doc
        .sources
        .into_iter()
        .map(|(id, s)| (id, s.source_type))
        .collect();
    Resolver::new(rules).unwrap()
}

/// A mix that walks every content rule, then hits mappings, patterns or the fallback.
fn source_ids() -> Vec<String> {
    (0..64)
        .map(|i| match i % 4 {
            0 => format!("mapped_{}", i % 10),
            1 => format!("group{}_{}", i % 20, i),
            2 => format!("group19_{i}"),
            _ => format!("unknown_{i}"),
        })
        .collect()
}

fn resolve(c: &mut Criterion) {
    let r = fifty_rules();
    let value =
        json!({"properties": {"code": "other", "level": 3, "kind": "x", "name": "station"}});
    let sources = source_ids();
    let mut g = c.benchmark_group("resolver");
    g.throughput(Throughput::Elements(1));
    g.bench_function("resolve_50_rules_mixed", |b| {
        let mut n = 0;
        b.iter(|| {
            n = (n + 1) & 63;
            std::hint::black_box(r.resolve(&RecordView {
                source_id: &sources[n],
                source_type: "bench",
                value: &value,
            }))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = resolve
}
criterion_main!(benches);
