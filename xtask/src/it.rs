//! The real-broker suite (`tests/e2e`): installs tansu once into a cached folder,
//! builds the server, provides PostgreSQL, and runs the scenarios one at a time.
//!
//! - `cargo xtask it install`: install tansu if missing (what `.ci/run` calls first).
//! - `cargo xtask it up`: install tansu if missing, build the server, start PostgreSQL
//!   and leave it running; prints the environment for running scenarios by hand.
//! - `cargo xtask it down`: stop what `up` started.
//! - `cargo xtask it run [scenario]`: run every scenario, or those whose name contains
//!   `scenario` (`outage`, `crash`, …); logs of failed ones land in `target/it-logs/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use test_support::TestPostgres;

use crate::{cargo, run, test_command};

/// The tansu version the suite is written against.
const TANSU_VERSION: &str = "0.6.0";

pub(crate) fn main(root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("install") => ensure_tansu().map(|bin| println!("tansu: {}", bin.display())),
        Some("up") => up(root),
        Some("down") => down(root),
        Some("run") => {
            let tansu = ensure_tansu()?;
            let pg = postgres()?;
            let result = run_suite(root, &tansu, args.get(1).map(String::as_str));
            finish_postgres(root, pg, result.is_err());
            result
        }
        _ => bail!("usage: cargo xtask it <install|up|down|run [scenario]>"),
    }
}

/// tansu's binary, installed with `cargo install` into
/// `~/.cache/stream-manager/tansu` when missing (about 16 minutes on 2 cores; once).
/// `TANSU_BIN` points at another copy.
pub(crate) fn ensure_tansu() -> Result<PathBuf> {
    let bin = test_support::tansu::tansu_bin();
    if bin.is_file() {
        return Ok(bin);
    }
    if std::env::var_os("TANSU_BIN").is_some() {
        bail!("TANSU_BIN names {}, which does not exist", bin.display());
    }
    let install_root = bin
        .parent()
        .and_then(Path::parent)
        .context("tansu's install folder")?
        .to_path_buf();
    eprintln!(
        "xtask: tansu {TANSU_VERSION} not found; building it into {} (about 16 minutes, once)",
        install_root.display()
    );
    let mut cmd = cargo();
    cmd.args([
        "install",
        "--locked",
        "tansu",
        "--version",
        TANSU_VERSION,
        "--features",
        "dynostore,libsql",
        "--root",
    ])
    .arg(&install_root);
    run(cmd, "cargo install tansu")?;
    if !bin.is_file() {
        bail!(
            "cargo install tansu finished but {} is missing",
            bin.display()
        );
    }
    Ok(bin)
}

/// A throwaway PostgreSQL unless `DATABASE_URL` is set; exports `DATABASE_URL`.
pub(crate) fn postgres() -> Result<Option<TestPostgres>> {
    if std::env::var_os("DATABASE_URL").is_some() {
        eprintln!("xtask: using PostgreSQL at DATABASE_URL");
        return Ok(None);
    }
    let pg = TestPostgres::start()
        .map_err(|e| anyhow::anyhow!(e))
        .context("while starting a throwaway PostgreSQL for the DLQ tests")?;
    eprintln!("xtask: started PostgreSQL on 127.0.0.1:{}", pg.port());
    std::env::set_var("DATABASE_URL", pg.url());
    Ok(Some(pg))
}

/// Stops the throwaway PostgreSQL, keeping its log under `target/test-logs` on failure.
pub(crate) fn finish_postgres(root: &Path, pg: Option<TestPostgres>, failed: bool) {
    let Some(pg) = pg else { return };
    if failed {
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

fn build_server(root: &Path) -> Result<PathBuf> {
    // The test build of the whole workspace builds the binary too, with the same
    // features, so nothing is compiled twice.
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-run", "--quiet"]);
    run(
        cmd,
        "cargo test --workspace --no-run (builds stream-server)",
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug/stream-server"))
}

/// Runs the scenarios (all, or those matching `filter`), one at a time.
pub(crate) fn run_suite(root: &Path, tansu: &Path, filter: Option<&str>) -> Result<()> {
    let server = build_server(root)?;
    let logs = root.join("target/it-logs");
    let _ = std::fs::remove_dir_all(&logs);
    let expr = match filter {
        Some(f) => format!("package(e2e) & test(/{f}/)"),
        None => "package(e2e)".to_owned(),
    };
    let mut cmd = match filter {
        Some(f) => test_command(
            &expr,
            &["--test", "scenarios", f, "--", "--test-threads", "1"],
        ),
        None => test_command(&expr, &["--test", "scenarios", "--", "--test-threads", "1"]),
    };
    cmd.env("STREAM_SERVER_BIN", &server)
        .env("TANSU_BIN", tansu)
        .env("IT_LOG_DIR", &logs);
    let result = run(cmd, "real-broker scenarios (tansu, stream-server)");
    if result.is_err() && logs.is_dir() {
        eprintln!("xtask: logs of failed scenarios are in {}", logs.display());
    }
    result
}

fn state_file(root: &Path) -> PathBuf {
    root.join("target/it/postgres-dir")
}

fn up(root: &Path) -> Result<()> {
    let tansu = ensure_tansu()?;
    let server = build_server(root)?;
    let pg = TestPostgres::start().map_err(|e| anyhow::anyhow!(e))?;
    let url = pg.url();
    let dir = pg.detach();
    let state = state_file(root);
    std::fs::create_dir_all(state.parent().expect("target/it"))?;
    std::fs::write(&state, dir.display().to_string())?;
    println!("# PostgreSQL is running; `cargo xtask it down` stops it. For scenarios by hand:");
    println!("export DATABASE_URL={url}");
    println!("export TANSU_BIN={}", tansu.display());
    println!("export STREAM_SERVER_BIN={}", server.display());
    println!("cargo nextest run --workspace -E 'package(e2e) & test(/outage/)' --no-capture");
    Ok(())
}

fn down(root: &Path) -> Result<()> {
    let state = state_file(root);
    let dir = std::fs::read_to_string(&state)
        .with_context(|| format!("nothing to stop: {} is missing", state.display()))?;
    TestPostgres::stop_detached(Path::new(dir.trim())).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::remove_file(&state)?;
    println!("xtask: PostgreSQL stopped");
    Ok(())
}
