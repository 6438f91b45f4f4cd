//! `parse_cron` and the configuration's validation accept the same expressions (the
//! validation checks the syntax itself to report it at its line: stream-config is a leaf).

use ingestion_modes::parse_cron;
use stream_config::{Format, Loader};

#[test]
fn validation_accepts_exactly_what_parse_cron_accepts() {
    let cases = [
        "*/5 * * * *",
        "0 30 9 * * MON-FRI",
        "0 0 1 1 *",
        "@hourly",
        "every day",
        "* * * *",
        "61 * * * *",
        "0 0 0 * * * * *",
        "",
    ];
    let mut accepted = 0;
    for expr in cases {
        let yaml = format!(
            "sources:\n  s1:\n    source_type: synthetic\n    ingestion: {{ cron: '{expr}', polling_interval_seconds: 0 }}\n"
        );
        let loaded = Loader::new()
            .with_source_types(["synthetic".to_owned()])
            .load_str(&yaml, Format::Yaml, "<test>");
        let valid = match &loaded {
            Ok(_) => true,
            Err(e) => !e.to_string().contains("cron"),
        };
        assert_eq!(
            valid,
            parse_cron(expr).is_ok(),
            "`{expr}`: validation says {loaded:?}"
        );
        accepted += usize::from(valid);
    }
    assert!(
        (3..cases.len()).contains(&accepted),
        "both kinds are in the cases"
    );
}
