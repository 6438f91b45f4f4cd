//! Data contracts in the config: schemas inline, from files and built in, both drafts;
//! every bad one reported at its key and line, none panics.

use stream_config::{Format, Loader, SchemaMode, SchemaSource};

fn load(
    yaml: &str,
    roots_dir: &std::path::Path,
) -> Result<stream_config::StreamConfig, Vec<(String, Option<usize>, String)>> {
    let yaml = yaml.replace("ROOT", &roots_dir.display().to_string());
    Loader::new()
        .with_builtin_schemas(["noaa_observation", "usgs_feature"])
        .load_str(&yaml, Format::Yaml, "test.yaml")
        .map_err(|e| {
            e.diagnostics()
                .expect("diagnostics")
                .items
                .iter()
                .map(|i| {
                    (
                        i.path.clone(),
                        i.location.map(|l| l.line),
                        format!("{} {}", i.message, i.hint.as_deref().unwrap_or("")),
                    )
                })
                .collect()
        })
}

#[test]
fn inline_file_and_builtin_schemas_of_both_drafts_load() {
    let dir = test_support::TempDir::new("contracts-ok");
    std::fs::write(
        dir.path().join("obs.json"),
        r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["id"]}"#,
    )
    .unwrap();
    let cfg = load(
        "file_roots: [ROOT]
contracts:
  mode: observe
  topics:
    weather: ROOT/obs.json
sources:
  a:
    source_type: synthetic
    schema:
      $schema: https://json-schema.org/draft/2020-12/schema
      type: object
      properties: { v: { type: number } }
    schema_mode: enforce
  b:
    source_type: synthetic
    schema: builtin:noaa_observation
",
        dir.path(),
    )
    .expect("loads");
    assert_eq!(cfg.contracts.mode, SchemaMode::Observe);
    assert_eq!(cfg.sources["a"].schema_mode, Some(SchemaMode::Enforce));
    assert!(matches!(
        cfg.sources["b"].schema.as_ref().unwrap().source(),
        SchemaSource::Builtin("noaa_observation")
    ));
    assert!(matches!(
        cfg.contracts.topics["weather"].source(),
        SchemaSource::File(_)
    ));
    // A dump loads again the same.
    let text = serde_yaml::to_string(&cfg).unwrap();
    let again = Loader::new().load_str(&text, Format::Yaml, "dump").unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn every_bad_schema_is_reported_at_its_key_and_line() {
    let dir = test_support::TempDir::new("contracts-bad");
    let outside = test_support::TempDir::new("contracts-outside");
    std::fs::write(outside.path().join("s.json"), r#"{"type": "object"}"#).unwrap();
    std::fs::write(dir.path().join("notjson.json"), "{ type: object").unwrap();
    // Over the size limit: refused before it is parsed.
    let big = format!(r#"{{"description": "{}"}}"#, "x".repeat(1 << 21));
    std::fs::write(dir.path().join("big.json"), big).unwrap();
    let yaml = format!(
        "file_roots: [ROOT]
contracts:
  topics:
    weather: builtin:noaa_observaton
sources:
  a:
    source_type: synthetic
    schema: {{ type: 5 }}
  b:
    source_type: synthetic
    schema: {{ $schema: 'http://json-schema.org/draft-04/schema#' }}
  c:
    source_type: synthetic
    schema: {}/s.json
  d:
    source_type: synthetic
    schema: ROOT/notjson.json
  e:
    source_type: synthetic
    schema: ROOT/big.json
  f:
    source_type: synthetic
    schema: ROOT/missing.json
  g:
    source_type: synthetic
    schema: {{ $ref: 'https://example.com/remote.json' }}
",
        outside.path().display()
    );
    let problems = load(&yaml, dir.path()).expect_err("must not load");
    let expect = [
        (
            "contracts.topics.weather",
            4,
            "did you mean `builtin:noaa_observation`?",
        ),
        ("sources.a.schema", 8, "invalid schema"),
        ("sources.b.schema", 11, "is not draft 2020-12 or draft 7"),
        ("sources.c.schema", 14, "outside the folders"),
        ("sources.d.schema", 17, "is not JSON"),
        ("sources.e.schema", 20, "larger than 1048576 bytes"),
        ("sources.f.schema", 23, "cannot read"),
        ("sources.g.schema", 26, "invalid schema"),
    ];
    for (path, line, message) in expect {
        assert!(
            problems
                .iter()
                .any(|(p, l, m)| p == path && *l == Some(line) && m.contains(message)),
            "{path}:{line} `{message}` not in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

#[test]
fn recursive_and_deeply_nested_schemas_never_panic() {
    let dir = test_support::TempDir::new("contracts-deep");
    // Recursion through `$ref` compiles (it is legal JSON Schema).
    std::fs::write(
        dir.path().join("rec.json"),
        r##"{"type": "object", "properties": {"child": {"$ref": "#"}}}"##,
    )
    .unwrap();
    // Nesting past serde_json's recursion limit is an error, not a stack overflow.
    let deep = format!("{}{}", r#"{"items":"#.repeat(10_000), "}".repeat(10_000));
    std::fs::write(dir.path().join("deep.json"), deep).unwrap();
    let problems = load(
        "file_roots: [ROOT]
sources:
  a:
    source_type: synthetic
    schema: ROOT/rec.json
  b:
    source_type: synthetic
    schema: ROOT/deep.json
",
        dir.path(),
    )
    .expect_err("the deep one must not load");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].0, "sources.b.schema");
    assert!(problems[0].2.contains("recursion limit"), "{problems:#?}");
}
