//! tansu, a Kafka-protocol broker, as a real process on a free loopback port.
//!
//! Quirks of tansu 0.6 this relies on (see ARCHITECTURE.md): topics are never
//! auto-created; `sqlite://` storage survives a restart and reports correct end offsets;
//! `memory://` is faster but forgets everything on restart and reports end offsets too
//! low, so it serves plain delivery only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::Supervised;

/// Where `cargo xtask` installs tansu: `$TANSU_BIN`, else
/// `~/.cache/stream-manager/tansu/bin/tansu`.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/stream-manager/tansu/bin/tansu")
}

/// tansu's storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `sqlite://tansu.db` in the broker's folder: durable across restarts.
    Sqlite,
    /// `memory://tansu/`: fast, lost on restart.
    Memory,
}

/// A running (or stopped) tansu broker. Its folder holds the storage and `tansu.log`;
/// the folder is removed on drop, except while panicking (for the post-mortem).
#[derive(Debug)]
pub struct Tansu {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    storage: Storage,
    proc: Option<Supervised>,
    authentication: bool,
    advertised_port: Option<u16>,
    schema_registry: bool,
}

impl Tansu {
    /// Starts a broker in a new folder under the temp dir.
    pub fn start(storage: Storage) -> Result<Self, String> {
        let bin = tansu_bin();
        if !bin.is_file() {
            return Err(format!(
                "tansu not found at {}: run `cargo xtask it up` (installs it once), or set TANSU_BIN",
                bin.display()
            ));
        }
        let port = crate::free_port().map_err(|e| format!("no free port: {e}"))?;
        let dir = std::env::temp_dir().join(format!("tansu-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut t = Self {
            bin,
            dir,
            port,
            storage,
            proc: None,
            authentication: false,
            advertised_port: None,
            schema_registry: false,
        };
        t.restart()?;
        Ok(t)
    }

    /// Creates SCRAM user `name` (`mechanism` `scram256` or `scram512`) with `tansu user
    /// create`. tansu 0.6 refuses this once authentication is on (the CLI cannot
    /// authenticate), so create users first, then [`Tansu::require_authentication`].
    pub fn create_user(&self, name: &str, password: &str, mechanism: &str) -> Result<(), String> {
        let out = std::process::Command::new(&self.bin)
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--mechanism", mechanism, name, password])
            .output()
            .map_err(|e| format!("tansu user create: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tansu user create {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Restarts the broker with SASL authentication required (SCRAM users as created
    /// by [`Tansu::create_user`]; tansu's PLAIN accepts any password) and, when
    /// `advertised_port` is given, advertising that port (a TLS front's) instead of its
    /// own. Storage must be SQLite so the users survive the restart.
    pub fn require_authentication(&mut self, advertised_port: Option<u16>) -> Result<(), String> {
        assert_eq!(self.storage, Storage::Sqlite, "users live in the storage");
        self.authentication = true;
        self.advertised_port = advertised_port;
        self.restart()
    }

    /// Writes `schemas` (topic, JSON text) as `<folder>/schemas/<topic>.json` and
    /// restarts the broker validating what is produced against them
    /// (`--schema-registry file://./schemas`: tansu resolves a `file://` URL against its
    /// working folder, even an absolute path). A schema's `properties.value` /
    /// `properties.key` describe the record's value / key; a produce whose batch holds a
    /// record that does not match is refused with `INVALID_RECORD`. With `memory://`
    /// storage, topics are gone after the restart.
    pub fn use_schema_registry(&mut self, schemas: &[(&str, &str)]) -> Result<(), String> {
        let dir = self.dir.join("schemas");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (topic, text) in schemas {
            let file = dir.join(format!("{topic}.json"));
            std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        self.schema_registry = true;
        self.restart()
    }

    /// The port tansu itself listens on (plaintext).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("tansu.log")
    }

    /// Stops the broker abruptly (`kill -9`): an outage, as clients see it.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the broker again on the same port and storage; waits until it accepts
    /// connections.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!(
            "tcp://127.0.0.1:{}",
            self.advertised_port.unwrap_or(self.port)
        );
        let engine = match self.storage {
            Storage::Sqlite => "sqlite://tansu.db".to_owned(),
            Storage::Memory => "memory://tansu/".to_owned(),
        };
        let mut args = vec![
            "broker".to_owned(),
            "--listener-url".to_owned(),
            url,
            "--advertised-listener-url".to_owned(),
            advertised,
            "--storage-engine".to_owned(),
            engine,
        ];
        if self.authentication {
            args.push("--authentication".to_owned());
        }
        if self.schema_registry {
            args.push("--schema-registry".to_owned());
            args.push("file://./schemas".to_owned());
        }
        let envs = [("RUST_LOG".to_owned(), "warn".to_owned())];
        let proc = Supervised::spawn(&self.bin, &args, &self.dir, &envs, &self.log())?;
        self.proc = Some(proc);
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            let log = self.log();
            let p = self.proc.as_mut().expect("just started");
            if !p.is_running() || start.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "tansu did not listen on {} (log: {}):\n{}",
                    self.port,
                    log.display(),
                    p.log_tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
