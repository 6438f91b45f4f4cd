//! Random input never panics the loader: it returns a config or diagnostics.

use proptest::prelude::*;
use stream_config::{Format, Loader};

/// Keys and values that look like configuration, so the generator reaches deep paths.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("kafka".to_owned()),
        Just("sources".to_owned()),
        Just("ingestion".to_owned()),
        Just("mode".to_owned()),
        Just("routing".to_owned()),
        Just("content_rules".to_owned()),
        Just("pattern_mappings".to_owned()),
        Just("topic".to_owned()),
        Just("throttling".to_owned()),
        Just("source_type".to_owned()),
        Just("batch_size".to_owned()),
        Just("${X}".to_owned()),
        Just("${".to_owned()),
        Just("-1".to_owned()),
        Just("1e999".to_owned()),
        Just("[".to_owned()),
        Just("{a: 1}".to_owned()),
        "[a-z_{}\\[\\]$:#&*!|>'\" -]{0,12}",
    ]
}

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec((0usize..4, token(), token(), any::<bool>()), 0..24).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(indent, k, v, list)| {
                format!(
                    "{}{}{}: {}\n",
                    "  ".repeat(indent),
                    if list { "- " } else { "" },
                    k,
                    v
                )
            })
            .collect()
    })
}

/// Cases per target: `FUZZ_CASES` (`cargo xtask fuzz`), or 512.
fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

/// JSON documents built from the same tokens: objects nested a few levels, so the JSON
/// path of the loader gets past the parser to the model and the rules.
fn jsonish() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        token().prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::Bool),
        Just(serde_json::Value::Null),
    ];
    let value = leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(token(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map(token(), value, 0..6)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()).to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn structured_random_yaml_never_panics(text in yamlish()) {
        let loader = Loader::new().with_source_types(["synthetic"]);
        if let Err(e) = loader.load_str(&text, Format::Yaml, "<fuzz>") {
            let d = e.diagnostics().expect("loader errors on text are diagnostics");
            prop_assert!(!d.items.is_empty());
        }
    }

    #[test]
    fn structured_random_json_never_panics(text in jsonish()) {
        let loader = Loader::new().with_source_types(["synthetic"]);
        if let Err(e) = loader.load_str(&text, Format::Json, "<fuzz.json>") {
            let d = e.diagnostics().expect("loader errors on text are diagnostics");
            prop_assert!(!d.items.is_empty());
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), json in any::<bool>()) {
        let format = if json { Format::Json } else { Format::Yaml };
        let _ = Loader::new().load_str(&text, format, "<fuzz>");
    }
}
