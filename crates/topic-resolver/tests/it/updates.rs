//! Runtime changes swap the whole rule set; invalid ones change nothing.

use std::sync::Arc;

use serde_json::json;
use topic_resolver::{ContentRule, Operator as RuleOperator, Rules};
use topic_resolver::{Error, RecordView, Resolver, Strategy};

use crate::config;

fn topic(r: &Resolver, source_id: &str) -> (String, Strategy) {
    let v = json!({"level": "red"});
    let d = r.resolve(&RecordView {
        source_id,
        source_type: "t",
        value: &v,
    });
    (d.topic.to_string(), d.strategy)
}

#[test]
fn add_and_remove_every_kind_of_rule() {
    let r = Resolver::new(Rules::default()).unwrap();
    assert_eq!(
        topic(&r, "s1"),
        ("wildfire-default".into(), Strategy::Fallback)
    );

    r.add_pattern_mapping("^s\\d", "by-pattern").unwrap();
    assert_eq!(topic(&r, "s1").1, Strategy::Pattern);
    r.add_custom_mapping("s1", "by-mapping").unwrap();
    assert_eq!(
        topic(&r, "s1"),
        ("by-mapping".into(), Strategy::CustomMapping)
    );
    r.add_content_rule(ContentRule {
        field: "/level".into(),
        operator: RuleOperator::Eq,
        value: json!("red"),
        topic: "red-alerts".into(),
    })
    .unwrap();
    // The seed's order: the custom mapping still wins; the rule beats the pattern.
    assert_eq!(
        topic(&r, "s1"),
        ("by-mapping".into(), Strategy::CustomMapping)
    );
    assert!(r.remove_custom_mapping("s1").unwrap());
    assert_eq!(
        topic(&r, "s1"),
        ("red-alerts".into(), Strategy::ContentRule)
    );
    assert!(r.remove_content_rule(0).unwrap().is_some());
    assert_eq!(topic(&r, "s1").1, Strategy::Pattern);
    assert!(r.remove_pattern_mapping("^s\\d").unwrap());
    assert!(!r.remove_pattern_mapping("^s\\d").unwrap());
    r.set_fallback_topic("elsewhere").unwrap();
    assert_eq!(topic(&r, "s1"), ("elsewhere".into(), Strategy::Fallback));
}

#[test]
fn invalid_rules_are_errors_naming_the_rule_and_change_nothing() {
    let r = Resolver::new(config(
        "routing:\n  pattern_mappings:\n    - { pattern: '^a', topic: t-a }\n",
    ))
    .unwrap();
    let err = r.add_pattern_mapping("(unclosed", "t").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidRule { rule, .. } if rule == "routing.pattern_mappings[1]"),
        "{err}"
    );
    assert!(err.to_string().contains("invalid regex"), "{err}");
    let err = r
        .add_content_rule(ContentRule {
            field: "level".into(),
            operator: RuleOperator::Eq,
            value: json!(1),
            topic: "t".into(),
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("routing.content_rules[0]")
            && err.to_string().contains("JSON pointer"),
        "{err}"
    );
    let err = r
        .add_content_rule(ContentRule {
            field: "/l".into(),
            operator: RuleOperator::Gt,
            value: json!("x"),
            topic: "t".into(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("needs a number"), "{err}");
    assert!(r.add_custom_mapping("s", "bad topic!").is_err());
    assert!(r.content_rules().is_empty());
    assert_eq!(topic(&r, "abc"), ("t-a".into(), Strategy::Pattern));

    // Rules built in code (never validated) are checked when compiled.
    let mut cfg = Rules::default();
    cfg.content_rules.push(ContentRule {
        field: "/x".into(),
        operator: RuleOperator::Matches,
        value: json!("(("),
        topic: "t".into(),
    });
    let err = Resolver::new(cfg.clone()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid routing rule `routing.content_rules[0]`"),
        "{err}"
    );
}

#[test]
fn resolution_during_updates_always_sees_a_whole_rule_set() {
    let r = Arc::new(Resolver::new(Rules::default()).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (r, stop) = (r.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (t, s) = topic(&r, "src");
                    assert!(
                        matches!(
                            (t.as_str(), s),
                            ("wildfire-default", Strategy::Fallback)
                                | ("mapped-a", Strategy::CustomMapping)
                                | ("mapped-b", Strategy::CustomMapping)
                        ),
                        "torn read: {t} {s:?}"
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    for i in 0..2_000 {
        r.add_custom_mapping("src", if i % 2 == 0 { "mapped-a" } else { "mapped-b" })
            .unwrap();
        if i % 3 == 0 {
            r.remove_custom_mapping("src").unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in readers {
        assert!(h.join().unwrap() > 0);
    }
}
