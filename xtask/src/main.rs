//! `cargo xtask`: the project's automation.
//!
//! - `cargo xtask test`: every test of the project (the README's test command).
//! - `cargo xtask lint`: format check and clippy with warnings denied.
//! - `cargo xtask ci`: `lint`, then `test`.
//! - `cargo xtask tidy`: the repository conventions (also run as tests by `test`).

mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).context("while entering the project root")?;
    match args.first().map(String::as_str) {
        Some("test") => test(&root),
        Some("lint") => lint(),
        Some("ci") => {
            lint()?;
            test(&root)
        }
        Some("tidy") => {
            let problems = tidy::check(&root)?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                bail!(
                    "tidy found {} problem(s):\n{}",
                    problems.len(),
                    problems.join("\n")
                )
            }
        }
        _ => {
            eprintln!("usage: cargo xtask <test|lint|ci|tidy>");
            bail!("unknown or missing command")
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("while starting: {what}"))?;
    if !status.success() {
        bail!("failed ({status}): {what}");
    }
    Ok(())
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every test: unit, integration and doc tests of the workspace, with a throwaway
/// PostgreSQL server for the DLQ tests (or the one `DATABASE_URL` names).
fn test(root: &Path) -> Result<()> {
    let pg = if std::env::var_os("DATABASE_URL").is_some() {
        eprintln!("xtask: using PostgreSQL at DATABASE_URL");
        None
    } else {
        let pg = test_support::TestPostgres::start()
            .map_err(|e| anyhow::anyhow!(e))
            .context("while starting a throwaway PostgreSQL for the DLQ tests")?;
        eprintln!("xtask: started PostgreSQL on 127.0.0.1:{}", pg.port());
        std::env::set_var("DATABASE_URL", pg.url());
        Some(pg)
    };
    let result = run_tests();
    if let Some(pg) = pg {
        let keep = result.is_err();
        if keep {
            let logs = root.join("target/test-logs");
            let _ = std::fs::create_dir_all(&logs);
            let _ = std::fs::copy(pg.dir().join("server.log"), logs.join("postgres.log"));
            eprintln!(
                "xtask: PostgreSQL log kept in {}",
                logs.join("postgres.log").display()
            );
        }
        pg.stop(false);
    }
    result
}

fn run_tests() -> Result<()> {
    if has_nextest() {
        let mut cmd = cargo();
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        run(cmd, "cargo nextest run --workspace")?;
    } else {
        let mut cmd = cargo();
        cmd.args([
            "test",
            "--workspace",
            "--no-fail-fast",
            "--lib",
            "--bins",
            "--tests",
        ]);
        run(cmd, "cargo test --workspace")?;
    }
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--doc"]);
    run(cmd, "cargo test --workspace --doc")
}

fn lint() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["fmt", "--all", "--", "--check"]);
    run(cmd, "cargo fmt --check")?;
    let mut cmd = cargo();
    cmd.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(cmd, "cargo clippy -D warnings")
}
