//! What the tests need on a fresh Debian machine, installed when missing: the C build
//! tools (librdkafka and OpenSSL are built from source), PostgreSQL's server binaries (a
//! throwaway cluster per run), socat (a TLS front for tansu), promtool (Debian's
//! `prometheus`, checks `/metrics`), openapi-spec-validator (PyPI, checks the admin
//! API's document), Chromium and chromedriver (the console's browser tests),
//! cargo-nextest, clippy and rustfmt, and tansu (`it.rs`). As root the Debian packages
//! come from apt; otherwise the error names them.

use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::{cargo, run};

/// Installs whatever `cargo xtask test` (and `lint`) needs and is missing.
pub(crate) fn ensure_test_prerequisites() -> Result<()> {
    let mut packages = Vec::new();
    // openssl makes the test CAs of the TLS tests (PostgreSQL, Kafka); socat is the
    // TLS front of the secured-cluster scenario (tansu 0.6 cannot serve TLS itself);
    // perl and make also build the vendored OpenSSL that librdkafka links.
    for (command, package) in [
        ("cc", "gcc"),
        ("make", "make"),
        ("perl", "perl"),
        ("openssl", "openssl"),
        ("python3", "python3"),
        ("socat", "socat"),
    ] {
        if !on_path(command) {
            packages.push(package);
        }
    }
    if test_support::postgres_bin_dir().is_none() {
        packages.push("postgresql");
    }
    // `promtool check metrics` validates the server's /metrics in its tests.
    if !on_path("promtool") {
        packages.push("prometheus");
    }
    // The operator console's browser tests drive headless Chromium through chromedriver
    // (WebDriver); `bins/stream-server/tests/it/browser.rs` expects Debian's paths.
    if !std::path::Path::new("/usr/bin/chromium").is_file() {
        packages.push("chromium");
    }
    if !std::path::Path::new("/usr/bin/chromedriver").is_file() {
        packages.push("chromium-driver");
    }
    apt_install(&packages)?;
    // openapi-spec-validator checks the admin API's OpenAPI document in its test.
    let has_validator = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_validator {
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "openapi-spec-validator",
        ]);
        run(cmd, "pip install openapi-spec-validator (once)")?;
    }
    if !cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let mut cmd = cargo();
        cmd.args(["install", "--locked", "cargo-nextest"]);
        run(cmd, "cargo install cargo-nextest (once)")?;
    }
    Ok(())
}

/// Adds clippy and rustfmt when the toolchain lacks them.
pub(crate) fn ensure_lint_prerequisites() -> Result<()> {
    let missing: Vec<&str> = [("clippy", "clippy"), ("fmt", "rustfmt")]
        .into_iter()
        .filter(|(sub, _)| {
            !cargo()
                .args([*sub, "--version"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["component", "add"]).args(&missing);
    run(cmd, &format!("rustup component add {}", missing.join(" ")))
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(command).is_file()))
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !on_path("apt-get") {
        bail!(
            "the tests need these Debian packages, which are missing: {}; install them \
             (`sudo apt-get install {}`) and run again",
            packages.join(", "),
            packages.join(" ")
        );
    }
    let mut update = Command::new("apt-get");
    update
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(update, "apt-get update")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install, &format!("apt-get install {}", packages.join(" ")))
        .context("while installing the tests' Debian packages")
}
