//! What the stream-manager benches read of their own process (CPU, memory) and how they
//! start a child of themselves; included by each bench binary with `#[path]`.

use std::io::BufRead as _;

/// The CPU seconds this process has used (all threads).
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`) in MB.
pub(crate) fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The median; NaN for none (a stage or case left out).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Starts this bench as `--child <mode>`, which prints `<mode> <address>` once it is
/// ready and runs until its stdin closes; the child and the address.
pub(crate) fn spawn_child(mode: &str) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(std::env::current_exe().expect("bench exe"))
        .args(["--child", mode])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{mode} child: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{mode} child's address: {e}"));
    let address = line
        .strip_prefix(&format!("{mode} "))
        .map(|a| a.trim().to_owned())
        .unwrap_or_else(|| panic!("the {mode} child prints its address, not {line:?}"));
    (child, address)
}
