//! `cargo xtask`: the project's automation.
//!
//! - `cargo xtask test`: every test of the project (the README's test command); installs
//!   what the tests need when it is missing (`setup.rs`).
//! - `cargo xtask lint`: format check and clippy with warnings denied.
//! - `cargo xtask ci`: `lint`, then `test`.
//! - `cargo xtask fuzz [CASES]`: the fuzz targets with CASES (default 100,000) cases
//!   each (`test` runs a bounded number).
//! - `cargo xtask tidy`: the repository conventions (also run as tests by `test`).
//! - `cargo xtask it up | down | run [scenario]`: the real-broker suite by hand (`it.rs`).
//! - `cargo xtask bench [--quick]`: the benchmarks, written to `BENCHMARKS.md`.

mod bench;
mod it;
mod setup;
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
        Some("it") => it::main(&root, &args[1..]),
        Some("bench") => bench::main(&root, &args[1..]),
        Some("lint") => lint(),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
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
            eprintln!("usage: cargo xtask <test|lint|ci|tidy|fuzz [CASES]|bench [--quick]|it up|it down|it run [scenario]>");
            bail!("unknown or missing command")
        }
    }
}

/// The fuzz targets (property tests of the config loader, the decoders, the pointer
/// scanner, `Link` headers and next links, and the config value sweep) with `cases`
/// cases each instead of the bounded number `test` runs; each prints
/// `fuzz: <target>: N cases, 0 failures` (or fails with the minimal input).
fn fuzz(cases: Option<&str>) -> Result<()> {
    let cases = cases.unwrap_or("100000");
    let n: u64 = cases
        .parse()
        .with_context(|| format!("`{cases}` is not a number of cases"))?;
    let mut cmd = cargo();
    cmd.args([
        "nextest",
        "run",
        "-p",
        "api-client",
        "-p",
        "stream-config",
        "-p",
        "stream-manager",
        "--no-capture",
        "-E",
        "test(/fuzz|never_panic|link_headers|scan_finds|validate_never_panics/)",
    ])
    .env("FUZZ_CASES", n.to_string())
    .env("PROPTEST_CASES", n.to_string());
    run(cmd, &format!("fuzz targets, {n} cases each"))
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

pub(crate) fn run(mut cmd: Command, what: &str) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("while starting: {what}"))?;
    if !status.success() {
        bail!("failed ({status}): {what}");
    }
    Ok(())
}

/// `cargo nextest run --workspace` on the tests `filter` selects (a nextest filter
/// expression), or, where nextest is missing, `cargo test --workspace` with `fallback`.
pub(crate) fn test_command(filter: &str, fallback: &[&str]) -> Command {
    let mut cmd = cargo();
    if has_nextest() {
        cmd.args([
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "-E",
            filter,
        ]);
    } else {
        cmd.args(["test", "--workspace", "--no-fail-fast"])
            .args(fallback);
    }
    cmd
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every test: unit, integration and doc tests of the workspace, then the real-broker
/// suite (tansu, the server as a process), with a throwaway PostgreSQL server for the
/// DLQ tests (or the one `DATABASE_URL` names).
fn test(root: &Path) -> Result<()> {
    setup::ensure_test_prerequisites()?;
    let tansu = it::ensure_tansu()?;
    let pg = it::postgres()?;
    let result = run_tests(root, &tansu);
    it::finish_postgres(root, pg, result.is_err());
    result
}

fn run_tests(root: &Path, tansu: &Path) -> Result<()> {
    let hermetic = run(
        test_command(
            "not package(e2e)",
            &["--exclude", "e2e", "--lib", "--bins", "--tests"],
        ),
        "unit and hermetic integration tests",
    );
    // The real-broker suite runs even when a hermetic test failed: both results count.
    let e2e = it::run_suite(root, tansu, None);
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--doc"]);
    let doc = run(cmd, "cargo test --workspace --doc");
    hermetic.and(e2e).and(doc)
}

fn lint() -> Result<()> {
    setup::ensure_lint_prerequisites()?;
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
