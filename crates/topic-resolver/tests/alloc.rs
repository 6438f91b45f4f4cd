//! The static-topic path allocates nothing. Alone in its test binary because it counts
//! every allocation of the process.

use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use stream_config::{Format, Loader};
use topic_resolver::{Record, Resolver, Strategy};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[test]
fn static_topic_resolution_does_not_allocate() {
    let cfg = Loader::new()
        .load_str(
            "routing:\n  content_rules:\n    - { field: /sev, operator: in, value: [high, critical], topic: alerts }\n    - { field: /name, operator: matches, value: '^fire', topic: fires }\n  custom_mappings: { noaa: weather }\n  pattern_mappings:\n    - { pattern: '^sensor_\\d+', topic: sensors }\n",
            Format::Yaml,
            "<alloc>",
        )
        .unwrap();
    let resolver = Resolver::from_config(&cfg).unwrap();
    let records = [
        ("noaa", json!({"sev": "low"}), Strategy::CustomMapping),
        ("sensor_1", json!({"name": "smoke"}), Strategy::Pattern),
        ("x", json!({"sev": "critical"}), Strategy::ContentRule),
        ("x", json!({"name": "fire-7"}), Strategy::ContentRule),
        ("x", json!({}), Strategy::Fallback),
    ];
    // Warm up (lazy regex caches, thread-locals).
    for (id, v, _) in &records {
        resolver.resolve(&Record {
            source_id: id,
            source_type: "t",
            value: v,
        });
    }
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        for (id, v, strategy) in &records {
            let d = resolver.resolve(&Record {
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
