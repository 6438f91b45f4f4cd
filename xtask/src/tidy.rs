//! Repository conventions, checked by `cargo xtask tidy` and as tests: every Rust file
//! opens with a `//!` doc line, and no debugging or placeholder macros are left behind.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

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

/// Returns one line per problem.
pub(crate) fn check(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for dir in CHECKED {
        collect_rs(&root.join(dir), &mut files)?;
    }
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("while reading {}", file.display()))?;
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
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
    }
    Ok(problems)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
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
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
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
        let problems = check(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
