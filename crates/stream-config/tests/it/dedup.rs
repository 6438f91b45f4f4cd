//! A dedup window is fetch state its store must hold: out of range, it is a validation
//! error with its key, line and a hint.

use stream_config::{Format, Loader};

fn load(window: &str) -> Result<stream_config::StreamConfig, stream_config::Error> {
    let yaml = format!(
        "sources:
  quakes:
    source_type: http_json
    custom_params:
      url: https://example.org/q
      dedup:
        keys: [/id]
        window: {window}
"
    );
    Loader::new().load_str(&yaml, Format::Yaml, "c.yaml")
}

#[test]
fn a_dedup_window_beyond_what_the_store_holds_is_refused_with_its_line() {
    assert!(load("150000").is_ok(), "the issue's window is fine");
    assert!(load("1000000").is_ok());
    for bad in ["0", "1000001", "1.0e20", "-5", "'many'"] {
        let err = load(bad).expect_err(bad);
        let d = err.diagnostics().expect("diagnostics");
        let item = d
            .items
            .iter()
            .find(|i| i.path == "sources.quakes.custom_params.dedup.window")
            .unwrap_or_else(|| panic!("{bad}: {err}"));
        assert_eq!(item.location.map(|l| l.line), Some(8), "{bad}");
        assert!(item.message.contains("1000000"), "{}", item.message);
        assert!(
            item.hint.as_deref().is_some_and(|h| h.contains("11 bytes")),
            "{item:?}"
        );
    }
}
