//! A TLS front for a plaintext server: `socat` (Debian's package) terminates TLS on a
//! free loopback port and forwards each connection to the upstream port. tansu 0.6
//! cannot serve TLS itself — its CLI puts `--cert` and `--key` in one exclusive argument
//! group, so it refuses the pair it needs — so the TLS tests put this in front of it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::Supervised;

/// A running `socat` TLS terminator.
#[derive(Debug)]
pub struct TlsFront {
    port: u16,
    proc: Supervised,
}

impl TlsFront {
    /// Listens with `cert`/`key` on a free port and forwards to `127.0.0.1:upstream`.
    /// With `client_ca`, clients must present a certificate that CA signed (mutual
    /// TLS). The log goes to `log`.
    pub fn start(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        upstream: u16,
        log: &Path,
    ) -> Result<Self, String> {
        let socat = which("socat").ok_or("socat not found: install Debian's `socat` package")?;
        let port = crate::free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={}",
            cert.display(),
            key.display()
        );
        match client_ca {
            Some(ca) => listen.push_str(&format!(",verify=1,cafile={}", ca.display())),
            None => listen.push_str(",verify=0"),
        }
        let args = vec![listen, format!("TCP:127.0.0.1:{upstream}")];
        let cwd = log.parent().unwrap_or(Path::new("/"));
        let mut proc = Supervised::spawn(&socat, &args, cwd, &[], log)?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if !proc.is_running() || start.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "socat did not listen on {port}:\n{}",
                    proc.log_tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { port, proc })
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.proc.kill();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
