//! `file_roots`: the folders files named by a configuration may be read from.

use std::path::{Path, PathBuf};

/// `path` resolved (`..` and links followed) when it lies under one of `roots`; else an
/// error that names the roots and says what to do. `what` completes "the folders …",
/// e.g. `file sources may read`. No root at all allows nothing.
pub fn resolve_under_roots(path: &Path, roots: &[PathBuf], what: &str) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let allowed = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .any(|root| real.starts_with(root));
    if allowed {
        return Ok(real);
    }
    let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    Err(format!(
        "`{}` is outside the folders {what} ({}); move it there or add its folder to `file_roots`",
        path.display(),
        shown.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_allowed_under_a_root_only_after_resolving_dot_dot() {
        let dir = std::env::temp_dir().join(format!("roots-{}", std::process::id()));
        let inside = dir.join("in");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("a.json"), "{}").unwrap();
        std::fs::write(dir.join("b.json"), "{}").unwrap();
        let roots = [inside.clone()];
        assert!(resolve_under_roots(&inside.join("a.json"), &roots, "x may read").is_ok());
        let escaped = inside.join("../b.json");
        let err = resolve_under_roots(&escaped, &roots, "x may read").unwrap_err();
        assert!(err.contains("outside the folders x may read") && err.contains("file_roots"));
        assert!(resolve_under_roots(&inside.join("a.json"), &[], "x may read").is_err());
        assert!(resolve_under_roots(&inside.join("none.json"), &roots, "x")
            .unwrap_err()
            .starts_with("cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
