//! `cargo xtask bench [--quick]`: runs the benchmarks and writes `BENCHMARKS.md` with the
//! machine, the versions, the command and the results. `--quick` runs each for a few
//! seconds (CI keeps them compiling and running; its numbers mean nothing).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};
use test_support::tansu::{Storage, Tansu};

use crate::cargo;

/// Issue #25's large bodies: the source and decoder path, peak RSS and MB/s.
const LARGE_BODIES: &str =
    "Large bodies: a 1 GB FIRMS CSV and a 500 MB USGS GeoJSON over local HTTP, source and decoder into a counting sink";

/// Issue #25's goal 1: the whole service at 1,000, 10,000 and 100,000 sources.
const SERVICE_SCALE: &str =
    "Service scale: the release server with N http_json sources at 1 s against a local upstream answering 304";

/// Issue #25's goals 3 and 5: cost per poll, and the service beside a user's script.
const POLL_COST: &str =
    "Cost per source-poll, and the service beside a user's Python script — tansu 0.6 (memory://)";

/// The confluent-kafka the goal-5 comparison installs (its wheel bundles librdkafka).
const CONFLUENT_KAFKA: &str = "confluent-kafka==2.16.2";

/// One benchmark run: its title and what it printed (Markdown when `markdown`).
struct Section {
    title: String,
    output: String,
    markdown: bool,
}

pub(crate) fn main(root: &Path, args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let q: &[&str] = if quick { &["--quick"] } else { &[] };
    let mut sections = Vec::new();

    for (pkg, bench, title) in [
        ("queue", "queue", "Queue (criterion)"),
        (
            "topic-resolver",
            "resolve",
            "Resolver, 50 rules (criterion)",
        ),
        ("throttling", "throttle", "Throttle decision (criterion)"),
        ("api-client", "decode", "Decoders, MB/s (criterion)"),
        (
            "api-client",
            "schema",
            "Data contracts: NWS observation schema, per record (criterion)",
        ),
    ] {
        sections.push(Section {
            title: title.to_owned(),
            output: bench_output(pkg, bench, q, &[])?,
            markdown: false,
        });
    }
    sections.push(Section {
        title: LARGE_BODIES.to_owned(),
        output: bench_output("api-client", "big_body", q, &[])?,
        markdown: true,
    });
    sections.push(Section {
        title: "Whole pipeline vs bare rdkafka — librdkafka mock broker (child process)".to_owned(),
        output: bench_output("stream-manager", "pipeline", q, &[])?,
        markdown: true,
    });
    sections.push(Section {
        title: "Allocations per record on the hot path (counting allocator, `stream-manager/tests/alloc.rs`)"
            .to_owned(),
        output: alloc_count()?,
        markdown: false,
    });
    sections.push(Section {
        title: "Producer layer vs bare rdkafka — librdkafka mock broker".to_owned(),
        output: bench_output("producer", "vs_bare", q, &[])?,
        markdown: false,
    });
    let tansu_bin = crate::it::ensure_tansu()?;
    let tansu = Tansu::start(Storage::Memory).map_err(|e| anyhow::anyhow!(e))?;
    for topic in ["bench", "bench-pipeline", "bench-bare", "bench-users"] {
        let created = Command::new(&tansu_bin)
            .args(["topic", "create", topic, "--partitions", "4", "--broker"])
            .arg(format!("tcp://{}", tansu.bootstrap()))
            .status()
            .context("tansu topic create")?;
        anyhow::ensure!(created.success(), "tansu topic create {topic} failed");
    }
    let on_tansu = [("BENCH_BOOTSTRAP", tansu.bootstrap())];
    sections.push(Section {
        title: "Whole pipeline vs bare rdkafka — tansu 0.6 (memory://, separate process)"
            .to_owned(),
        output: bench_output("stream-manager", "pipeline", q, &on_tansu)?,
        markdown: true,
    });
    sections.push(Section {
        title: "Producer layer vs bare rdkafka — tansu 0.6 (memory://)".to_owned(),
        output: bench_output("producer", "vs_bare", q, &on_tansu)?,
        markdown: false,
    });
    let python = python_venv(root)?;
    sections.push(Section {
        title: POLL_COST.to_owned(),
        output: bench_output(
            "stream-manager",
            "poll_cost",
            q,
            &[
                ("BENCH_BOOTSTRAP", tansu.bootstrap()),
                ("BENCH_PYTHON", python.display().to_string()),
            ],
        )?,
        markdown: true,
    });
    drop(tansu);
    sections.push(Section {
        title: "Polling scale: http_json sources at 1 s against a local server".to_owned(),
        output: bench_output("stream-server", "polling_scale", q, &[])?,
        markdown: false,
    });
    sections.push(Section {
        title: SERVICE_SCALE.to_owned(),
        output: bench_output("stream-server", "service_scale", q, &[])?,
        markdown: true,
    });

    // Sections written by hand (goals, profiles, figures from tests and scenarios) are
    // carried over, in their order, after the generated ones and before the notes.
    let old = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap_or_default();
    let notes = notes();
    let md = render(
        quick,
        &sections,
        &hand_written(&old, &sections, &notes),
        &notes,
    );
    std::fs::write(root.join("BENCHMARKS.md"), md).context("writing BENCHMARKS.md")?;
    println!("xtask: wrote BENCHMARKS.md");
    Ok(())
}

/// A Python with confluent-kafka for the goal-5 comparison: a venv under the target
/// folder, created and filled with pip when missing. Fails, saying why, when Python,
/// its `venv` module or PyPI cannot be reached: the comparison is part of the run.
fn python_venv(root: &Path) -> Result<std::path::PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let venv = target.join("bench-venv");
    let python = venv.join("bin").join("python");
    let has = |python: &Path| {
        Command::new(python)
            .args(["-c", "import confluent_kafka"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && has(&python) {
        return Ok(python);
    }
    if !python.is_file() {
        let mut cmd =
            Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned()));
        cmd.args(["-m", "venv"]).arg(&venv);
        crate::run(cmd, "python3 -m venv (set PYTHON to another interpreter)")?;
    }
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "-q", CONFLUENT_KAFKA]);
    crate::run(
        pip,
        &format!("pip install {CONFLUENT_KAFKA} into {}", venv.display()),
    )?;
    anyhow::ensure!(
        has(&python),
        "{CONFLUENT_KAFKA} installed but `import confluent_kafka` fails"
    );
    Ok(python)
}

fn bench_output(pkg: &str, bench: &str, extra: &[&str], env: &[(&str, String)]) -> Result<String> {
    eprintln!("xtask: cargo bench -p {pkg} --bench {bench}");
    let mut cmd = cargo();
    cmd.args(["bench", "-q", "-p", pkg, "--bench", bench, "--"])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cargo bench {bench}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "cargo bench -p {pkg} --bench {bench} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Criterion's estimates and the harness-less benches' lines; criterion's comparison
    // with an earlier run on this machine ("change: …") and outlier counts are left out.
    let mut kept = Vec::new();
    let mut in_change = false;
    for line in stdout.lines() {
        let t = line.trim();
        if t.contains("change:") {
            in_change = true;
            continue;
        }
        if in_change {
            in_change = !(t.starts_with("Performance has")
                || t.starts_with("No change")
                || t.starts_with("Change within"));
            continue;
        }
        let outlier = t.starts_with("Found ") && t.contains("outliers")
            || t.ends_with("mild")
            || t.ends_with("severe");
        // One blank line is kept (Markdown needs it around tables); runs of them are not.
        let blank_again = t.is_empty() && kept.last().is_none_or(|l: &&str| l.trim().is_empty());
        if blank_again || t.starts_with("Benchmarking") || t.contains("Gnuplot") || outlier {
            continue;
        }
        kept.push(line);
    }
    Ok(kept.join("\n").trim().to_owned())
}

/// The allocation-count test's figure: sink → queue → dispatcher → an instant producer
/// → settle, over 200,000 records (the test also asserts its bound).
fn alloc_count() -> Result<String> {
    eprintln!("xtask: cargo test -p stream-manager --test alloc");
    let out = cargo()
        .args([
            "test",
            "-q",
            "-p",
            "stream-manager",
            "--test",
            "alloc",
            "--",
            "--nocapture",
        ])
        .output()
        .context("cargo test --test alloc")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "the allocation test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout
        .lines()
        .filter(|l| l.contains("allocations per record"))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The hand-written analysis kept beside this code (`xtask/bench-notes.md`).
fn notes() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-notes.md"))
        .unwrap_or_default()
}

/// The summary table of the producer-layer runs, written first.
const PRODUCER_SUMMARY: &str = "Producer layer alone vs bare rdkafka";

/// The `## ` sections of `old` that this run does not write (neither `Machine`, the
/// producer summary, a generated section's title nor one of `notes`), in their order,
/// each with its text.
fn hand_written(old: &str, generated: &[Section], notes: &str) -> String {
    let in_notes = |title: &str| {
        notes
            .lines()
            .any(|l| l.strip_prefix("## ").is_some_and(|t| t.trim() == title))
    };
    let mut out = String::new();
    for part in old.split("\n## ").skip(1) {
        let title = part.lines().next().unwrap_or_default().trim();
        if title == "Machine"
            || title == PRODUCER_SUMMARY
            || generated.iter().any(|s| s.title == title)
            || in_notes(title)
        {
            continue;
        }
        out.push_str("\n## ");
        out.push_str(part.trim_end());
        out.push('\n');
    }
    out
}

fn render(quick: bool, sections: &[Section], carried: &str, notes: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench{}` — rerun it to reproduce. Figures are medians of \
         several runs (criterion's estimates for the micro-benchmarks); a comparison is valid \
         only within one run on one machine. Nothing in `cargo xtask test` asserts a duration.\n",
        if quick { " --quick" } else { "" }
    );
    if quick {
        let _ = writeln!(
            md,
            "> **Quick mode**: every benchmark ran for a few seconds only. These numbers are \
             not measurements.\n"
        );
    }
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(
        md,
        "| CPU | {} |",
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    );
    let _ = writeln!(md, "| Cores | {} |", sh("nproc"));
    let _ = writeln!(
        md,
        "| Memory | {} |",
        sh("grep MemTotal /proc/meminfo | awk '{printf \"%.1f GB\", $2/1048576}'")
    );
    let _ = writeln!(
        md,
        "| OS | {} |",
        sh(". /etc/os-release; echo $PRETTY_NAME")
    );
    let _ = writeln!(md, "| rustc | {} |", sh("rustc -V"));
    let _ = writeln!(md, "| librdkafka | bundled with rdkafka 0.38 (2.12.1) |");
    let _ = writeln!(
        md,
        "| tansu | {} |",
        sh("\"${TANSU_BIN:-$HOME/.cache/stream-manager/tansu/bin/tansu}\" --version")
    );
    let _ = writeln!(md, "| Commit | {} |", sh("git rev-parse --short HEAD"));
    let _ = writeln!(md, "| Date | {} |\n", sh("date -u +%Y-%m-%dT%H:%MZ"));

    let _ = writeln!(md, "## {PRODUCER_SUMMARY}\n");
    let _ = writeln!(
        md,
        "Same records, same producer settings (`linger.ms` 5, acks all, idempotence, gzip), \
         same broker, alternating runs. Goal: ratio ≥ 0.9.\n"
    );
    let _ = writeln!(
        md,
        "| broker | record bytes | bare rdkafka rec/s | producer layer rec/s | ratio |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for s in sections
        .iter()
        .filter(|s| s.title.starts_with("Producer layer"))
    {
        let broker = if s.title.contains("tansu") {
            "tansu (memory)"
        } else {
            "mock"
        };
        let mut size = String::new();
        let mut row: Vec<String> = Vec::new();
        for line in s.output.lines() {
            if let Some(rest) = line.strip_prefix("producer_vs_bare ") {
                size = rest
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix("record_bytes="))
                    .unwrap_or_default()
                    .to_owned();
                row.clear();
            } else if let Some((_, v)) = line.split_once(' ') {
                row.push(v.to_owned());
                if row.len() == 3 {
                    let _ = writeln!(
                        md,
                        "| {broker} | {size} | {} | {} | {} |",
                        row[0], row[1], row[2]
                    );
                }
            }
        }
    }
    let _ = writeln!(md);
    for s in sections {
        if s.markdown {
            let _ = writeln!(md, "## {}\n\n{}\n", s.title, s.output);
        } else {
            let _ = writeln!(md, "## {}\n\n```text\n{}\n```\n", s.title, s.output);
        }
    }
    if !carried.is_empty() {
        md.push_str(carried.trim_start_matches('\n'));
        md.push('\n');
    }
    // Hand-written analysis (goals met or not, the profile) lives beside this code so a
    // rerun keeps it; its numbers are from the run it names.
    if !notes.is_empty() {
        let _ = writeln!(md, "{notes}");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_sections_are_carried_over_and_generated_ones_are_not() {
        let old = "# Benchmarks\n\nintro\n\n## Machine\n\n| a |\n\n## Producer layer alone vs bare rdkafka\n\nold summary\n\n## Queue\n\nold figures\n\n## Goals\n\nkept 1\n\n## Measured outside\n\nkept 2\n";
        let generated = [Section {
            title: "Queue".to_owned(),
            output: String::new(),
            markdown: false,
        }];
        let kept = hand_written(old, &generated, "");
        assert_eq!(
            kept,
            "\n## Goals\n\nkept 1\n\n## Measured outside\n\nkept 2\n"
        );
        // A section the notes file writes again is not carried over as well.
        let kept = hand_written(old, &generated, "## Goals\n\nnew\n");
        assert_eq!(kept, "\n## Measured outside\n\nkept 2\n");
    }
}
