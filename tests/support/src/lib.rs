//! Test orchestration helpers with no dependencies: a throwaway PostgreSQL cluster from
//! the machine's server binaries, free loopback ports, supervised processes and the
//! tansu broker. Used by `xtask` (one cluster
//! for the whole run) and by test suites run on their own (one cluster per process).

#[cfg(feature = "kafka")]
pub mod kafka;
pub mod process;
pub mod tansu;
pub mod tls;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Where PostgreSQL's server binaries are: `PATH`, else Debian's
/// `/usr/lib/postgresql/<version>/bin`, newest first.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL cluster in a temporary folder on a free port, trusting local
/// connections, stopped and removed on drop.
#[derive(Debug)]
pub struct TestPostgres {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
}

impl TestPostgres {
    /// Creates and starts a cluster. As root (PostgreSQL refuses to run as root) the
    /// server runs as the `postgres` user, which Debian's package creates.
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// A cluster that also accepts TLS, with a server certificate for 127.0.0.1 signed
    /// by a fresh CA (made with the `openssl` command); the CA certificate is
    /// [`TestPostgres::ca_file`].
    pub fn start_tls() -> Result<Self, String> {
        Self::start_with(true)
    }

    /// The CA that signed the TLS cluster's certificate (`start_tls`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    fn start_with(tls: bool) -> Result<Self, String> {
        let bin = postgres_bin_dir().ok_or(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` package",
        )?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let dir = std::env::temp_dir().join(format!("stream-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let run_as = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            run(
                Command::new("chown")
                    .args(["-R", &format!("{user}:{user}")])
                    .arg(&dir),
                "chown",
            )?;
        }
        let pg = Self {
            dir,
            bin,
            run_as,
            port,
        };
        let data = pg.dir.join("data");
        pg.run_pg(
            pg.cmd("initdb")
                .args([
                    "--auth=trust",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        )?;
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync=off -c max_connections=200",
            pg.dir.display()
        );
        if tls {
            let tls_dir = pg.dir.join("tls");
            make_ca(&tls_dir, "ca")?;
            make_server_cert(&tls_dir)?;
            if let Some(user) = &pg.run_as {
                run(
                    Command::new("chown")
                        .args(["-R", &format!("{user}:{user}")])
                        .arg(&tls_dir),
                    "chown tls",
                )?;
            }
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                tls_dir.display()
            ));
        }
        pg.run_pg(
            pg.cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.join("server.log"))
                .args(["-o", &opts, "-w", "-t", "60", "start"]),
            "pg_ctl start",
        )?;
        pg.wait_ready(Duration::from_secs(30))?;
        Ok(pg)
    }

    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run_pg(&self, cmd: &mut Command, what: &str) -> Result<(), String> {
        run(cmd.current_dir(&self.dir), what).map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "PostgreSQL did not accept connections on port {} within {limit:?}",
            self.port
        ))
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's folder (data and `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Leaves the server running after this value is gone (for `cargo xtask it up`);
    /// stop it later with [`TestPostgres::stop_detached`] and the returned folder.
    pub fn detach(self) -> PathBuf {
        let me = std::mem::ManuallyDrop::new(self);
        me.dir.clone()
    }

    /// Stops a server left running by [`TestPostgres::detach`] and removes its folder.
    pub fn stop_detached(dir: &Path) -> Result<(), String> {
        let bin = postgres_bin_dir().ok_or("PostgreSQL server binaries not found")?;
        let mut pg = Self {
            dir: dir.to_path_buf(),
            bin,
            run_as: is_root().then(|| "postgres".to_owned()),
            port: 0,
        };
        pg.shutdown(false);
        std::mem::forget(pg);
        Ok(())
    }

    /// Stops the server; the folder is removed unless `keep` (to read its log).
    pub fn stop(self, keep: bool) {
        let mut me = std::mem::ManuallyDrop::new(self);
        me.shutdown(keep);
    }

    fn shutdown(&mut self, keep: bool) {
        let data = self.dir.join("data");
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

/// A fresh folder under the system's temp dir, removed (with its contents) on drop,
/// however the test ends.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/<prefix>_<pid>_<n>`.
    pub fn new(prefix: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` every 100 ms until it holds; panics after `timeout` naming `what`.
/// Runs on tokio's clock, so paused-time tests stay exact.
#[cfg(feature = "async")]
pub async fn poll_until(timeout: Duration, what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A self-signed CA `<name>.pem` (and `<name>.key`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (key, pem) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pem")),
    );
    run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&pem)
            .args(["-subj", &format!("/CN=stream-manager test {name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
        "openssl: make a CA",
    )?;
    Ok(pem)
}

/// `server.crt`/`server.key` for 127.0.0.1 and localhost, signed by `ca` in `dir`.
fn make_server_cert(dir: &Path) -> Result<(), String> {
    make_cert(dir, "ca", "server", CertUse::Server)?;
    // PostgreSQL refuses a key others can read.
    run(
        Command::new("chmod").arg("600").arg(dir.join("server.key")),
        "chmod server.key",
    )
}

/// What a certificate made by [`make_cert`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertUse {
    /// A server on 127.0.0.1 / localhost.
    Server,
    /// A client (mutual TLS).
    Client,
}

/// `<name>.crt` and `<name>.key` in `dir`, signed by the CA `<ca>.pem`/`<ca>.key` of
/// [`make_ca`]; a server certificate names 127.0.0.1 and localhost. Returns the
/// certificate and key paths.
pub fn make_cert(
    dir: &Path,
    ca: &str,
    name: &str,
    usage: CertUse,
) -> Result<(PathBuf, PathBuf), String> {
    let ext = dir.join(format!("{name}.ext"));
    let ext_text = match usage {
        CertUse::Server => "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        CertUse::Client => "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    };
    std::fs::write(&ext, ext_text).map_err(|e| format!("cannot write {}: {e}", ext.display()))?;
    let (crt, key, csr) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
    );
    let subject = match usage {
        CertUse::Server => "/CN=127.0.0.1".to_owned(),
        CertUse::Client => format!("/CN={name}"),
    };
    run(
        Command::new("openssl")
            .args([
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subject, "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&csr),
        "openssl: make a key",
    )?;
    run(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(dir.join(format!("{ca}.pem")))
            .arg("-CAkey")
            .arg(dir.join(format!("{ca}.key")))
            .arg("-out")
            .arg(&crt)
            .arg("-extfile")
            .arg(&ext),
        "openssl: sign a certificate",
    )?;
    Ok((crt, key))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_a_reachable_cluster_and_cleans_up() {
        let pg = TestPostgres::start().expect("PostgreSQL starts");
        let dir = pg.dir().to_path_buf();
        assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_ok());
        assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));
        drop(pg);
        assert!(!dir.exists());
    }
}
