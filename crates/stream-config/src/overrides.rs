//! The one place where the environment reaches the configuration: `${VAR}` interpolation
//! in the text and `STREAM__A__B=value` overrides of any key. The environment is handed
//! in by the caller as a list of pairs; this crate never reads it itself.

use std::collections::HashMap;

use serde_yaml::Value;

use crate::error::{Diagnostic, Location};
use crate::path::KeyPath;

/// Prefix of path overrides: `STREAM__KAFKA__BOOTSTRAP_SERVERS` sets `kafka.bootstrap_servers`.
pub(crate) const ENV_PREFIX: &str = "STREAM__";

/// Shortcut variables kept from the seed era, applied before the `STREAM__` ones.
const SHORTCUTS: &[(&str, &[&str])] = &[
    ("KAFKA_BOOTSTRAP_SERVERS", &["kafka", "bootstrap_servers"]),
    ("KAFKA_COMPRESSION_TYPE", &["kafka", "compression_type"]),
];

/// Replaces `${NAME}` and `${NAME:-default}` in `text`; `$${` stands for a literal `${`.
/// Comment lines are left alone. Every missing variable is reported with its position.
pub(crate) fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (String, Vec<Diagnostic>) {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains('$') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        let mut column = 1;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            column += rest[..pos].chars().count();
            let after = &rest[pos..];
            let at = Location {
                line: line_no + 1,
                column,
            };
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
                column += 3;
                continue;
            }
            let Some(body_start) = after.strip_prefix("${") else {
                out.push('$');
                rest = &after[1..];
                column += 1;
                continue;
            };
            let Some(end) = body_start.find('}') else {
                problems.push(
                    Diagnostic::new("", "unterminated `${` variable reference")
                        .with_hint("close it with `}`, or write `$${` for a literal `${`")
                        .at(Some(at)),
                );
                out.push_str(after);
                rest = "";
                break;
            };
            let body = &body_start[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if !is_var_name(name) {
                problems.push(
                    Diagnostic::new(
                        "",
                        format!("invalid variable name `{name}` in `${{{body}}}`"),
                    )
                    .with_hint("names are letters, digits and `_`, not starting with a digit")
                    .at(Some(at)),
                );
            } else {
                match (lookup(name), default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => problems.push(
                        Diagnostic::new("", format!("environment variable `{name}` is not set"))
                            .with_hint(format!(
                                "set it, or give a default with `${{{name}:-value}}`"
                            ))
                            .at(Some(at)),
                    ),
                }
            }
            let consumed = 2 + end + 1;
            column += after[..consumed].chars().count();
            rest = &after[consumed..];
        }
        out.push_str(rest);
    }
    (out, problems)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Applies key overrides from the environment to the parsed tree. Returns the paths set
/// (with the variable that set each) and the overrides that could not be applied.
pub(crate) fn apply_env_overrides(
    root: &mut Value,
    env: &[(String, String)],
) -> (HashMap<KeyPath, String>, Vec<Diagnostic>) {
    let mut set = HashMap::new();
    let mut problems = Vec::new();
    let mut ordered: Vec<(String, Vec<String>, &str)> = Vec::new();
    for (name, path) in SHORTCUTS {
        if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
            let segs = path.iter().map(|s| (*s).to_owned()).collect();
            ordered.push(((*name).to_owned(), segs, v));
        }
    }
    let mut prefixed: Vec<_> = env
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(ENV_PREFIX).map(|rest| (k, rest, v)))
        .collect();
    prefixed.sort_by(|a, b| a.0.cmp(b.0));
    for (name, rest, v) in prefixed {
        let segs: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if segs.iter().any(String::is_empty) {
            problems.push(
                Diagnostic::new(
                    "",
                    format!("environment variable {name} names an empty key"),
                )
                .with_hint(
                    "separate levels with exactly two underscores, e.g. STREAM__KAFKA__CLIENT_ID",
                ),
            );
            continue;
        }
        ordered.push((name.clone(), segs, v));
    }
    for (name, segs, raw) in ordered {
        match set_path(root, &segs, raw) {
            Ok(path) => {
                set.insert(path, name);
            }
            Err((path, why)) => problems.push(
                Diagnostic::new(path.to_string(), format!("cannot apply {name}: {why}"))
                    .with_hint("check the variable's key path against the configuration reference"),
            ),
        }
    }
    (set, problems)
}

fn set_path(root: &mut Value, segs: &[String], raw: &str) -> Result<KeyPath, (KeyPath, String)> {
    let mut node = root;
    let mut path = KeyPath::default();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if node.is_null() {
            *node = Value::Mapping(Default::default());
        }
        node = match node {
            Value::Mapping(map) => {
                let existing = map
                    .keys()
                    .find(|k| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(seg)))
                    .cloned();
                let key = existing.unwrap_or_else(|| Value::String(seg.clone()));
                path = path.key(key.as_str().unwrap_or(seg));
                map.entry(key).or_insert(Value::Null)
            }
            Value::Sequence(seq) => {
                let idx: usize = seg.parse().map_err(|_| {
                    (
                        path.clone(),
                        format!("`{path}` is a list; `{seg}` is not an index"),
                    )
                })?;
                let len = seq.len();
                path = path.index(idx);
                seq.get_mut(idx).ok_or_else(|| {
                    (
                        path.clone(),
                        format!("index {idx} is past the list's {len} items"),
                    )
                })?
            }
            _ => return Err((path.clone(), format!("`{path}` is a value, not a map"))),
        };
        if last {
            *node = override_value(node, raw);
        }
    }
    Ok(path)
}

/// Parses an override as a YAML scalar (`500` is a number, `true` a bool), except that a
/// value replacing a string stays a string.
fn override_value(existing: &Value, raw: &str) -> Value {
    if existing.is_string() {
        return Value::String(raw.to_owned());
    }
    match serde_yaml::from_str::<Value>(raw) {
        Ok(Value::Null) if !raw.trim().is_empty() && raw.trim() != "null" && raw.trim() != "~" => {
            Value::String(raw.to_owned())
        }
        Ok(v) => v,
        Err(_) => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn interpolates_with_defaults_and_escapes() {
        let (out, problems) = interpolate(
            "a: ${A}\nb: ${B:-dflt}\nc: $${LIT}\nd: $5\n",
            &env(&[("A", "x")]),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(out, "a: x\nb: dflt\nc: ${LIT}\nd: $5\n");
    }

    #[test]
    fn missing_variables_are_reported_with_position() {
        let (_, problems) =
            interpolate("a: 1\nb: \"${NOPE}\" ${ALSO}\n# ${IN_COMMENT}\n", &env(&[]));
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("NOPE"));
        assert_eq!(problems[0].location, Some(Location { line: 2, column: 5 }));
        assert_eq!(
            problems[1].location,
            Some(Location {
                line: 2,
                column: 14
            })
        );
    }

    #[test]
    fn overrides_by_path_keep_strings_and_type_numbers() {
        let mut v: Value =
            serde_yaml::from_str("kafka:\n  client_id: abc\nsources:\n  Src_A: {}\n").unwrap();
        let vars = vec![
            ("STREAM__KAFKA__CLIENT_ID".to_owned(), "123".to_owned()),
            ("STREAM__KAFKA__BATCH_SIZE".to_owned(), "77".to_owned()),
            (
                "STREAM__SOURCES__SRC_A__ENABLED".to_owned(),
                "false".to_owned(),
            ),
            ("KAFKA_BOOTSTRAP_SERVERS".to_owned(), "h:1".to_owned()),
            (
                "STREAM__KAFKA__BOOTSTRAP_SERVERS".to_owned(),
                "h:2".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let (set, problems) = apply_env_overrides(&mut v, &vars);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(v["kafka"]["client_id"], Value::String("123".into()));
        assert_eq!(v["kafka"]["batch_size"], Value::Number(77.into()));
        assert_eq!(v["sources"]["Src_A"]["enabled"], Value::Bool(false));
        assert_eq!(v["kafka"]["bootstrap_servers"], Value::String("h:2".into()));
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn override_through_a_scalar_is_an_error_naming_the_variable() {
        let mut v: Value = serde_yaml::from_str("queue_max_size: 5\n").unwrap();
        let vars = vec![("STREAM__QUEUE_MAX_SIZE__X".to_owned(), "1".to_owned())];
        let (_, problems) = apply_env_overrides(&mut v, &vars);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("STREAM__QUEUE_MAX_SIZE__X"));
    }
}
