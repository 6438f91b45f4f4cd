//! The static-topic path allocates nothing. Alone in its test binary because it counts
//! every allocation of the process.

use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use topic_resolver::{RecordView, Resolver, Rules, Strategy};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[test]
fn static_topic_resolution_does_not_allocate() {
    let rules: Rules = serde_yaml::from_str(
        "content_rules:\n  - { field: /sev, operator: in, value: [high, critical], topic: alerts }\n  - { field: /name, operator: matches, value: '^fire', topic: fires }\ncustom_mappings: { noaa: weather }\npattern_mappings:\n  - { pattern: '^sensor_\\d+', topic: sensors }\n",
    )
    .unwrap();
    let resolver = Resolver::new(rules).unwrap();
    let records = [
        ("noaa", json!({"sev": "low"}), Strategy::CustomMapping),
        ("sensor_1", json!({"name": "smoke"}), Strategy::Pattern),
        ("x", json!({"sev": "critical"}), Strategy::ContentRule),
        ("x", json!({"name": "fire-7"}), Strategy::ContentRule),
        ("x", json!({}), Strategy::Fallback),
    ];
    // Warm up (lazy regex caches, thread-locals).
    for (id, v, _) in &records {
        resolver.resolve(&RecordView {
            source_id: id,
            source_type: "t",
            value: v,
        });
    }
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        for (id, v, strategy) in &records {
            let d = resolver.resolve(&RecordView {
                source_id: id,
                source_type: "t",
                value: v,
            });
            assert_eq!(d.strategy, *strategy);
        }
    }
    let stats = region.change();
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
