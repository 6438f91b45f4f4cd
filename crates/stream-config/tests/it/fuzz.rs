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
    fn arbitrary_text_never_panics(text in any::<String>(), json in any::<bool>()) {
        let format = if json { Format::Json } else { Format::Yaml };
        let _ = Loader::new().load_str(&text, format, "<fuzz>");
    }
}
