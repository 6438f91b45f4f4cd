//! Repository conventions, checked by `cargo xtask tidy` and as tests: every Rust file
//! opens with a `//!` doc line, no debugging or placeholder macros are left behind, no
//! Rust file grows past 600 lines (tests and benches included, no exceptions), the
//! manager names none of the mechanics it composes (`NOT_IN_MANAGER`), and
//! every crate's dependencies follow ARCHITECTURE.md's dependency tables (including what a
//! crate must never reach through the workspace crates it depends on), and
//! ARCHITECTURE.md states no measured figure (a rate or a per-record cost: those change
//! with every run and belong in BENCHMARKS.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// Folders whose Rust files are checked.
const CHECKED: &[&str] = &["crates", "bins", "xtask", "tests"];

/// Macros that must not be committed. Spelled in pieces so this file does not match.
fn forbidden() -> [String; 3] {
    [
        concat!("to", "do!(").to_owned(),
        concat!("unimple", "mented!(").to_owned(),
        concat!("db", "g!(").to_owned(),
    ]
}

/// What the manager composes but does not implement: names that never appear in
/// `crates/stream-manager/src/`, and whose concern they are.
const NOT_IN_MANAGER: &[(&str, &str)] = &[
    (
        "GroupMember",
        "cluster membership is the `cluster` crate's `Worker`",
    ),
    (
        "GroupEvent",
        "cluster membership is the `cluster` crate's `Worker`",
    ),
    ("slot_of", "slots are the `cluster` crate's"),
    (
        "retry_due",
        "DLQ upkeep is the producer's (`run_dlq_worker`)",
    ),
    (
        "ensure_topics",
        "topic creation is the producer's `TopicCreator`",
    ),
    ("jsonschema", "schema validation is `api_client::Contracts`"),
    (
        "pop_batch",
        "popping, throttling and delivering batches is the `record-path` crate's dispatcher",
    ),
];

/// Most lines in any Rust file (sources, tests, benches).
const MAX_LINES: usize = 600;

/// Returns one line per problem.
pub(crate) fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = check_sources(root)?;
    problems.extend(check_dependencies(root)?);
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .context("while reading ARCHITECTURE.md")?;
    problems.extend(check_figures("ARCHITECTURE.md", &architecture));
    Ok(problems)
}

/// Units only a measurement has: a rate or a cost per record. A design constant (a
/// timeout in seconds, a limit in MB) is not one of them.
const MEASURED_UNITS: &[&str] = &[
    "µs",
    "us",
    "ns",
    "rec/s",
    "records/s",
    "msg/s",
    "MB/s",
    "MiB/s",
    "GB/s",
    "GiB/s",
];

/// One problem per line of `text` that gives a number in one of [`MEASURED_UNITS`]
/// (`2.9 µs`, `169k rec/s`, `5µs`).
fn check_figures(name: &str, text: &str) -> Vec<String> {
    let unit_of = |token: &str| {
        let token = token.trim_end_matches(|c: char| ",.;:)".contains(c));
        MEASURED_UNITS.contains(&token)
    };
    let is_number = |token: &str| {
        let token = token.trim_start_matches(|c: char| "(≈~".contains(c));
        let token = token.trim_end_matches(['k', 'M']);
        !token.is_empty()
            && token
                .chars()
                .all(|c| c.is_ascii_digit() || ",.".contains(c))
    };
    let glued = |token: &str| {
        let digits = token.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        digits.len() < token.len() && unit_of(digits)
    };
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let measured = tokens.iter().any(|t| glued(t))
            || tokens.windows(2).any(|w| is_number(w[0]) && unit_of(w[1]));
        if measured {
            problems.push(format!(
                "{name}:{}: a measured figure; it changes with every run, so put it in BENCHMARKS.md and point there",
                n + 1
            ));
        }
    }
    problems
}

/// Every file below the checked folders whose name `keep` accepts, sorted, as (path
/// relative to `root`, text).
fn read_files(root: &Path, keep: fn(&Path) -> bool) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for dir in CHECKED {
        collect(&root.join(dir), keep, &mut files)?;
    }
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("while reading {}", file.display()))?;
            let rel = file
                .strip_prefix(root)
                .unwrap_or(file)
                .display()
                .to_string();
            Ok((rel, text))
        })
        .collect()
}

fn check_sources(root: &Path) -> Result<Vec<String>> {
    let files = read_files(root, |p| p.extension().is_some_and(|e| e == "rs"))?;
    let mut problems = Vec::new();
    for (rel, text) in &files {
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{rel}: must start with a `//!` line saying what the file is for"
            ));
        }
        for (n, line) in text.lines().enumerate() {
            for bad in forbidden() {
                if line.contains(&bad) {
                    problems.push(format!("{rel}:{}: remove `{bad}`", n + 1));
                }
            }
        }
        if rel.starts_with("crates/stream-manager/src/") {
            for (n, line) in text.lines().enumerate() {
                for (name, whose) in NOT_IN_MANAGER {
                    if line.contains(name) {
                        problems.push(format!("{rel}:{}: `{name}` in the manager: {whose}", n + 1));
                    }
                }
            }
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{rel}: {lines} lines; split it by responsibility (at most {MAX_LINES})"
            ));
        }
    }
    Ok(problems)
}

/// The tables of ARCHITECTURE.md's "Dependency rules": which workspace crates each crate
/// may depend on, where each restricted external crate may appear, and (optional third
/// table) external crates a crate must not reach even through the workspace crates it
/// depends on.
#[derive(Debug, Default)]
struct Rules {
    allowed: BTreeMap<String, BTreeSet<String>>,
    external_only_in: BTreeMap<String, BTreeSet<String>>,
    never_reaches: BTreeMap<String, BTreeSet<String>>,
}

fn parse_rules(architecture: &str) -> Result<Rules> {
    let section = architecture
        .split("\n## ")
        .find(|s| s.starts_with("Dependency rules"))
        .context("ARCHITECTURE.md has no `## Dependency rules` section")?;
    let mut rules = Rules::default();
    let mut table = 0;
    let mut in_table = false;
    for line in section.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table {
            in_table = true;
            table += 1;
            continue; // the header row
        }
        if line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [name, list] = cells[..] else {
            bail!("ARCHITECTURE.md dependency rules: cannot read the row `{line}`");
        };
        let names = |s: &str| -> BTreeSet<String> {
            s.split(',')
                .map(|n| n.trim().trim_matches('`').to_owned())
                .filter(|n| !n.is_empty() && n != "—")
                .collect()
        };
        let name = name.trim_matches('`').to_owned();
        match table {
            1 => rules.allowed.insert(name, names(list)),
            2 => rules.external_only_in.insert(name, names(list)),
            3 => rules.never_reaches.insert(name, names(list)),
            _ => bail!("ARCHITECTURE.md dependency rules: expected two or three tables"),
        };
    }
    if rules.allowed.is_empty() || rules.external_only_in.is_empty() {
        bail!("ARCHITECTURE.md dependency rules: expected two tables");
    }
    Ok(rules)
}

/// A manifest's package name and the names in its `[dependencies]` table.
fn manifest(text: &str) -> (Option<String>, Vec<String>) {
    let (mut name, mut deps, mut section) = (None, Vec::new(), String::new());
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if section == "package" && key == "name" {
            name = Some(value.trim().trim_matches('"').to_owned());
        } else if section == "dependencies" && !key.starts_with('#') {
            deps.push(key.split('.').next().unwrap_or(key).trim().to_owned());
        }
    }
    (name, deps)
}

fn check_dependencies(root: &Path) -> Result<Vec<String>> {
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .context("while reading ARCHITECTURE.md")?;
    let rules = parse_rules(&architecture)?;
    let crates: Vec<(String, String, Vec<String>)> =
        read_files(root, |p| p.file_name().is_some_and(|n| n == "Cargo.toml"))?
            .into_iter()
            .map(|(rel, text)| {
                let (name, deps) = manifest(&text);
                (rel, name.unwrap_or_default(), deps)
            })
            .collect();
    let workspace: BTreeSet<&str> = crates.iter().map(|(_, n, _)| n.as_str()).collect();
    let mut problems = reaches(&rules, &crates);
    for (rel, name, deps) in &crates {
        let Some(allowed) = rules.allowed.get(name) else {
            problems.push(format!(
                "{rel}: crate `{name}` is missing from ARCHITECTURE.md's dependency table"
            ));
            continue;
        };
        for dep in deps {
            if workspace.contains(dep.as_str()) && !allowed.contains(dep) {
                problems.push(format!(
                    "{rel}: `{name}` may not depend on `{dep}` (ARCHITECTURE.md, Dependency rules)"
                ));
            }
            if let Some(only) = rules.external_only_in.get(dep) {
                if !only.contains(name) {
                    problems.push(format!(
                        "{rel}: only {} may depend on `{dep}` (ARCHITECTURE.md, Dependency rules)",
                        only.iter()
                            .map(|c| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// The third table: for each crate listed, the path by which it reaches an external
/// crate it must not (through workspace crates' `[dependencies]`, transitively).
fn reaches(rules: &Rules, crates: &[(String, String, Vec<String>)]) -> Vec<String> {
    let deps: BTreeMap<&str, &Vec<String>> =
        crates.iter().map(|(_, n, d)| (n.as_str(), d)).collect();
    let mut problems = Vec::new();
    for (name, forbidden) in &rules.never_reaches {
        let Some((rel, _, _)) = crates.iter().find(|(_, n, _)| n == name) else {
            problems.push(format!(
                "ARCHITECTURE.md dependency rules: `{name}` is not a crate of the workspace"
            ));
            continue;
        };
        // Depth-first over workspace crates, keeping the path that led to each.
        let mut stack = vec![vec![name.as_str()]];
        let (mut seen, mut reported) = (BTreeSet::new(), BTreeSet::new());
        while let Some(path) = stack.pop() {
            let here = *path.last().unwrap_or(&name.as_str());
            if !seen.insert(here) {
                continue;
            }
            for dep in deps.get(here).map(|d| d.as_slice()).unwrap_or_default() {
                if forbidden.contains(dep) {
                    if !reported.insert(dep.as_str()) {
                        continue; // one path per forbidden crate is enough
                    }
                    problems.push(format!(
                        "{rel}: `{name}` may not reach `{dep}`, but does through {} (ARCHITECTURE.md, Dependency rules)",
                        path.iter()
                            .chain([&dep.as_str()])
                            .map(|c| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(" → ")
                    ));
                } else if deps.contains_key(dep.as_str()) {
                    let mut next = path.clone();
                    next.push(dep);
                    stack.push(next);
                }
            }
        }
    }
    problems
}

fn collect(dir: &Path, keep: fn(&Path) -> bool, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("while listing {}", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect(&path, keep, out)?;
        } else if keep(&path) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_follows_conventions() {
        let problems = check(&crate::project_root()).unwrap();
        assert!(
            problems.is_empty(),
            "tidy problems:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn tidy_catches_a_missing_doc_line_and_a_debug_macro() {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let src = dir.join("crates/x/src");
        std::fs::create_dir_all(&src).unwrap();
        let bad_macro = forbidden()[2].clone();
        std::fs::write(src.join("lib.rs"), format!("fn f() {{ {bad_macro}1); }}\n")).unwrap();
        let problems = check_sources(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn tidy_catches_a_measured_figure_in_the_architecture() {
        let text = "# A\n\
            - the path costs 2.9 µs per record\n\
            - it sends (169k rec/s) to Kafka\n\
            - decoding runs at 417 MiB/s.\n\
            - a check takes 5µs\n\
            - retried every 30 s, at most 16 MB, a 1 s timeout, 128 requests\n";
        let problems = check_figures("A.md", text);
        let lines: Vec<&str> = problems
            .iter()
            .map(|p| &p[..p.find(": ").unwrap()])
            .collect();
        assert_eq!(
            lines,
            ["A.md:2", "A.md:3", "A.md:4", "A.md:5"],
            "{problems:?}"
        );
    }

    #[test]
    fn tidy_catches_a_long_file_tests_included() {
        let dir = std::env::temp_dir().join(format!("xtask-long-{}", std::process::id()));
        let tests = dir.join("crates/queue/tests/it");
        std::fs::create_dir_all(&tests).unwrap();
        let long = format!("//! x\n{}", "fn f() {}\n".repeat(MAX_LINES));
        std::fs::write(tests.join("lanes.rs"), &long).unwrap();
        let short = format!("//! x\n{}", "fn f() {}\n".repeat(MAX_LINES - 1));
        std::fs::write(tests.join("main.rs"), &short).unwrap();
        let problems = check_sources(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("crates/queue/tests/it/lanes.rs: 601 lines"),
            "{problems:?}"
        );
    }

    #[test]
    fn tidy_catches_cluster_logic_in_the_manager() {
        let dir = std::env::temp_dir().join(format!("xtask-thin-{}", std::process::id()));
        let src = dir.join("crates/stream-manager/src");
        std::fs::create_dir_all(&src).unwrap();
        let text = "//! x\nfn f(s: &Settings) -> u32 { s.slot_of(\"id\") }\n";
        std::fs::write(src.join("cluster.rs"), text).unwrap();
        // The same line elsewhere is the owner's business.
        std::fs::create_dir_all(dir.join("crates/cluster/src")).unwrap();
        std::fs::write(dir.join("crates/cluster/src/lib.rs"), text).unwrap();
        let problems = check_sources(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("crates/stream-manager/src/cluster.rs:2: `slot_of`"));
    }

    #[test]
    fn tidy_catches_a_forbidden_arrow_and_a_misplaced_external_crate() {
        let dir = std::env::temp_dir().join(format!("xtask-deps-{}", std::process::id()));
        let write = |rel: &str, text: &str| {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "ARCHITECTURE.md",
            "# A\n\n## Dependency rules\n\n| crate | may depend on |\n|---|---|\n| `queue` | — |\n| `manager` | `queue` |\n| `light` | `manager` |\n\n| external crate | only in |\n|---|---|\n| `sqlx` | `manager` |\n\n| crate | never reaches |\n|---|---|\n| `light` | `sqlx` |\n\n## Invariants\n",
        );
        write(
            "crates/queue/Cargo.toml",
            "[package]\nname = \"queue\"\n\n[dependencies]\nmanager.workspace = true\nsqlx = { workspace = true }\n\n[dev-dependencies]\nmanager.workspace = true\n",
        );
        write(
            "crates/manager/Cargo.toml",
            "[package]\nname = \"manager\"\n\n[dependencies]\nqueue.workspace = true\nsqlx.workspace = true\n",
        );
        write("crates/stray/Cargo.toml", "[package]\nname = \"stray\"\n");
        // `light` may depend on `manager` (first table), but reaches sqlx through it: the
        // third table refuses that.
        write(
            "crates/light/Cargo.toml",
            "[package]\nname = \"light\"\n\n[dependencies]\nmanager.workspace = true\n",
        );
        let problems = check_dependencies(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 4, "{problems:?}");
        for expected in [
            "crates/queue/Cargo.toml: `queue` may not depend on `manager`",
            "crates/queue/Cargo.toml: only `manager` may depend on `sqlx`",
            "crates/stray/Cargo.toml: crate `stray` is missing",
            "crates/light/Cargo.toml: `light` may not reach `sqlx`, but does through `light` → `manager` → `sqlx`",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected}: {problems:?}"
            );
        }
    }
}
