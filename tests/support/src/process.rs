//! Real processes under test, supervised so they never outlive the test: a tiny `sh`
//! wrapper starts the program, reports its pid and exit status, and `kill -9`s it as
//! soon as its stdin pipe closes — which happens when the test process exits for any
//! reason (panic, Ctrl-C, `kill -9` of the test runner), not only on `Drop`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const WRAPPER: &str = r#"exec 3<&0
"$@" </dev/null >>"$SUPERVISED_LOG" 2>&1 &
c=$!
echo "$c"
( read _ <&3; kill -9 "$c" 2>/dev/null ) &
w=$!
wait "$c"; s=$?
kill "$w" 2>/dev/null
echo "exit $s""#;

/// A program started under supervision, its output appended to a log file.
#[derive(Debug)]
pub struct Supervised {
    pid: u32,
    wrapper: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    exit: Option<i32>,
    log: PathBuf,
}

impl Supervised {
    /// Starts `program args…` in `cwd` with `envs` added, stdout and stderr appended to
    /// `log`.
    pub fn spawn(
        program: &Path,
        args: &[String],
        cwd: &Path,
        envs: &[(String, String)],
        log: &Path,
    ) -> Result<Self, String> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(program)
            .args(args)
            .current_dir(cwd)
            .env("SUPERVISED_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut wrapper = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = wrapper.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = lines
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("no pid reported for {}", program.display()))?;
        Ok(Self {
            pid,
            stdin: wrapper.stdin.take(),
            wrapper,
            lines,
            exit: None,
            log: log.to_path_buf(),
        })
    }

    /// The program's process id (to read its `/proc/<pid>` figures).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` (a `kill -s` name: `TERM`, `KILL`, `STOP`, `CONT`, `HUP`).
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args(["-s", signal, &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Waits up to `timeout` for the program to exit; its status (128 + n when killed by
    /// signal n), or `None` while it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        if self.exit.is_some() {
            return self.exit;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(s) = line.strip_prefix("exit ") {
                        self.exit = s.trim().parse().ok();
                        let _ = self.wrapper.wait();
                        return self.exit;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.wrapper.wait();
                    self.exit = Some(-1);
                    return self.exit;
                }
            }
        }
    }

    /// Whether the program still runs.
    pub fn is_running(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_none()
    }

    /// `kill -9` and wait for the exit.
    pub fn kill(&mut self) -> Option<i32> {
        self.signal("KILL");
        self.wait_exit(Duration::from_secs(10))
    }

    /// The log's last `lines` lines, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.signal("KILL");
        }
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
