//! The harness of the real-broker suite: the `stream-server` binary as a supervised
//! process with a generated config, a local HTTP upstream, Prometheus scraping, and
//! verification by consuming from the broker and counting unique record ids.
//!
//! Run by `cargo xtask it run [scenario]` (and by `cargo xtask test`), which builds the
//! server, installs tansu when missing and provides `DATABASE_URL`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::kafka::Consumed;
use test_support::process::Supervised;

pub use test_support::tansu::{Storage, Tansu};

mod metrics;
pub mod nws;
mod postgres;
pub use metrics::Metrics;
pub use postgres::fresh_database;

/// The `stream-server` binary: `$STREAM_SERVER_BIN`, else the one beside this test in
/// the target dir (`cargo xtask` builds it first).
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STREAM_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/scenarios-… → target/<profile>/stream-server
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("stream-server");
    assert!(
        bin.is_file(),
        "{} is missing: run the suite with `cargo xtask it run` (it builds the server)",
        bin.display()
    );
    bin
}

/// One scenario's folder and the logs to keep when it fails (copied to
/// `target/it-logs/<scenario>/`).
#[derive(Debug)]
pub struct Scene {
    name: String,
    dir: PathBuf,
    logs: Mutex<Vec<PathBuf>>,
}

impl Scene {
    /// A fresh folder for scenario `name`.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scenario dir");
        Self {
            name: name.to_owned(),
            dir,
            logs: Mutex::new(Vec::new()),
        }
    }

    /// The scenario's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps `path` if the scenario fails.
    pub fn watch_log(&self, path: PathBuf) {
        self.logs.lock().unwrap().push(path);
    }

    /// Starts tansu and watches its log. With SQLite storage, adds the index tansu
    /// 0.6 lacks (see [`index_tansu_headers`]).
    pub async fn tansu(&self, storage: Storage) -> Tansu {
        let mut t = Tansu::start(storage).unwrap_or_else(|e| panic!("{e}"));
        self.watch_log(t.log());
        if storage == Storage::Sqlite {
            index_tansu_headers(&t).await;
            // The running broker keeps its old query plans; a restart picks up the index.
            t.restart().unwrap_or_else(|e| panic!("{e}"));
        }
        t
    }

    /// `sqlite://<dir>/dlq.db`: the scenario's embedded DLQ and cursor store.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}/dlq.db", self.dir.display())
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let target = std::env::var_os("IT_LOG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/it-logs")
                })
                .join(&self.name);
            let _ = std::fs::create_dir_all(&target);
            for (i, log) in self.logs.lock().unwrap().iter().enumerate() {
                let name = log.file_name().map_or_else(
                    || format!("log-{i}"),
                    |n| format!("{i}-{}", n.to_string_lossy()),
                );
                let _ = std::fs::copy(log, target.join(name));
            }
            eprintln!("logs of the failed scenario kept in {}", target.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// tansu 0.6's SQLite schema has no index on `header (topition, offset_id)`, and a fetch
/// reads each record's headers with its own query: every record fetched scans the whole
/// header table. With our five headers per record, a partition of 36 k records took
/// minutes per fetch and consumers saw nothing. The index (in the broker's own
/// database, created next to it, then a broker restart) makes fetches fast again:
/// 33 k records consumed in 2.5 s.
pub async fn index_tansu_headers(t: &Tansu) {
    let url = format!("sqlite://{}/tansu.db", t.dir().display());
    let start = Instant::now();
    loop {
        if let Ok(pool) = sqlx::SqlitePool::connect(&url).await {
            let done = sqlx::query(
                "CREATE INDEX IF NOT EXISTS header_topition_offset ON header (topition, offset_id)",
            )
            .execute(&pool)
            .await
            .is_ok();
            pool.close().await;
            if done {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "tansu's database never got its header table"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server configuration built in code: Kafka and the DLQ first, everything else
/// merged in; [`Server::start`] adds the `server` section and writes it as JSON.
#[derive(Debug, Clone)]
pub struct Config(Value);

impl Config {
    /// Kafka at `bootstrap` (linger 5 ms) and the DLQ at `dlq_url`.
    pub fn new(bootstrap: &str, dlq_url: &str) -> Self {
        Config(serde_json::json!({
            "kafka": { "bootstrap_servers": bootstrap, "linger_ms": 5 },
            "dlq": { "url": dlq_url },
        }))
    }

    /// Merges `more` in: objects key by key, anything else replaces.
    pub fn with(mut self, more: Value) -> Self {
        fn merge(into: &mut Value, more: Value) {
            match (into, more) {
                (Value::Object(a), Value::Object(b)) => {
                    for (k, v) in b {
                        merge(a.entry(k).or_insert(Value::Null), v);
                    }
                }
                (slot, v) => *slot = v,
            }
        }
        merge(&mut self.0, more);
        self
    }

    /// Adds source `id`.
    pub fn source(self, id: &str, source: Value) -> Self {
        self.with(serde_json::json!({ "sources": { id: source } }))
    }

    /// Adds a `synthetic` source `id`: continuous streaming, polled every 0.1 s, flushed
    /// at 200 records or 0.5 s, `rate` records/s from `seed`, no alerts.
    pub fn synthetic(self, id: &str, rate: u64, seed: u64) -> Self {
        self.source(
            id,
            serde_json::json!({
                "source_type": "synthetic",
                "ingestion": {
                    "mode": "continuous_streaming",
                    "polling_interval_seconds": 0.1,
                    "buffer_size": 200,
                    "buffer_flush_interval_seconds": 0.5,
                },
                "custom_params": { "records_per_second": rate, "seed": seed, "alert_probability": 0 },
            }),
        )
    }

    /// The configuration with the admin API on `port`, as JSON text.
    fn render(&self, port: u16) -> String {
        let full = self.clone().with(serde_json::json!({
            "server": { "listen": format!("127.0.0.1:{port}"), "metrics_namespace": "stream" },
        }));
        serde_json::to_string_pretty(&full.0).expect("a JSON value serializes")
    }
}

/// The server as a real process.
#[derive(Debug)]
pub struct Server {
    proc: Option<Supervised>,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    dir: PathBuf,
    http: reqwest::Client,
    starts: u32,
    env: Vec<(String, String)>,
}

impl Server {
    /// Writes `config` (with the `server` section added) into the scenario folder and
    /// starts the server with it; returns once `/health` answers.
    pub async fn start(scene: &Scene, config: &Config) -> Self {
        Self::start_named(scene, "server", config, &[]).await
    }

    /// [`Server::start`] for one of several servers of a scenario: its files are
    /// `<name>.json` and `<name>.log`, and `env` is added to its environment.
    pub async fn start_named(
        scene: &Scene,
        name: &str,
        config: &Config,
        env: &[(&str, &str)],
    ) -> Self {
        let port = test_support::free_port().expect("free port");
        let path = scene.dir().join(format!("{name}.json"));
        std::fs::write(&path, config.render(port)).expect("write config");
        Self::start_at(scene, name, path, port, env).await
    }

    /// The server with a configuration file as it is (`file`, read where it lies): the
    /// admin API is put on a free loopback port by `STREAM__SERVER__LISTEN`, and `env`
    /// (`STREAM__…` overrides, say) is added to its environment.
    pub async fn start_file(scene: &Scene, name: &str, file: &Path, env: &[(&str, &str)]) -> Self {
        let port = test_support::free_port().expect("free port");
        let listen = format!("127.0.0.1:{port}");
        let mut env = env.to_vec();
        env.push(("STREAM__SERVER__LISTEN", &listen));
        Self::start_at(scene, name, file.to_path_buf(), port, &env).await
    }

    async fn start_at(
        scene: &Scene,
        name: &str,
        path: PathBuf,
        port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        let log = scene.dir().join(format!("{name}.log"));
        scene.watch_log(log.clone());
        scene.watch_log(path.clone());
        let mut s = Self {
            proc: None,
            port,
            config: path,
            log,
            dir: scene.dir().to_path_buf(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                // The admin API closes a keep-alive connection idle for its header read
                // timeout (10 s); a pooled connection reused at that moment fails, so
                // idle ones are dropped well before (as a well-behaved client does).
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .expect("http client"),
            starts: 0,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        s.launch().await;
        s
    }

    /// Starts the process again (after [`Server::kill`] or [`Server::sigterm`]).
    pub async fn launch(&mut self) {
        assert!(self.proc.is_none(), "server already running");
        self.starts += 1;
        let args = vec![
            "run".to_owned(),
            "--config".to_owned(),
            self.config.display().to_string(),
        ];
        let mut envs = vec![(
            "RUST_LOG".to_owned(),
            "info,librdkafka=warn,rdkafka=warn".to_owned(),
        )];
        envs.extend(self.env.iter().cloned());
        let proc = Supervised::spawn(&server_bin(), &args, &self.dir, &envs, &self.log)
            .unwrap_or_else(|e| panic!("{e}"));
        self.proc = Some(proc);
        let start = Instant::now();
        loop {
            if let Ok(r) = self.http.get(self.url("/health")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            let p = self.proc.as_mut().expect("just started");
            assert!(
                p.is_running() && start.elapsed() < Duration::from_secs(60),
                "server did not come up (start {}):\n{}",
                self.starts,
                p.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the running server.
    pub fn signal(&self, signal: &str) {
        self.proc.as_ref().expect("server running").signal(signal);
    }

    /// `kill -9`: a crash.
    pub fn kill(&mut self) {
        let mut p = self.proc.take().expect("server running");
        let status = p.kill();
        assert_eq!(status, Some(137), "kill -9 ends the server with 137");
    }

    /// SIGTERM, then waits up to `timeout` for the exit; the exit status.
    pub async fn sigterm(&mut self, timeout: Duration) -> Option<i32> {
        let mut p = self.proc.take().expect("server running");
        p.signal("TERM");
        let status = tokio::task::spawn_blocking(move || {
            let s = p.wait_exit(timeout);
            (s, p)
        })
        .await
        .expect("wait task");
        if status.0.is_none() {
            panic!(
                "server did not exit within {timeout:?} of SIGTERM:\n{}",
                status.1.log_tail(30)
            );
        }
        status.0
    }

    /// The server log's last lines.
    pub fn log_tail(&self, lines: usize) -> String {
        test_support::process::tail(&self.log, lines)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GET → (status, body as JSON or string).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(self.http.get(self.url(path)), "GET", path).await
    }

    /// POST a JSON body → (status, body).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(self.http.post(self.url(path)).json(&body), "POST", path)
            .await
    }

    /// PUT a JSON body → (status, body).
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(self.http.put(self.url(path)).json(&body), "PUT", path)
            .await
    }

    /// The configuration file the server was started with, as JSON.
    pub fn config_json(&self) -> Value {
        let text = std::fs::read_to_string(&self.config).expect("read the config file");
        serde_json::from_str(&text).expect("the config file is JSON")
    }

    async fn call(&self, req: reqwest::RequestBuilder, method: &str, path: &str) -> (u16, Value) {
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET /metrics`, parsed.
    pub async fn metrics(&self) -> Metrics {
        let r = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        Metrics::parse(&r.text().await.expect("metrics body"))
    }

    /// Stops source `id` through the admin API.
    pub async fn stop_stream(&self, id: &str) {
        let (status, body) = self.post(&format!("/streams/{id}/stop"), Value::Null).await;
        assert_eq!(status, 200, "stop {id}: {body}");
    }

    /// Waits until nothing is queued or in flight (after the sources stopped).
    /// On timeout the panic shows what was left and the server's summary.
    pub async fn wait_drained(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = self.metrics().await;
            let queued = m.unlabelled("stream_queue_size");
            let in_flight = m.value("stream_producer_in_flight", &[]);
            if queued == 0.0 && in_flight == 0.0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let (_, summary) = self.get("/metrics/summary").await;
                let (_, health) = self.get("/health").await;
                panic!(
                    "timed out after {timeout:?} waiting for the queue and producer to drain: \
                     {queued} queued, {in_flight} in flight\nsummary: {summary}\nhealth: {health}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Serves `app` on a free loopback port; its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Consumes `topics` from the start until `expected` records arrived or `timeout`.
pub async fn consume(
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    consume_with(&[], bootstrap, topics, expected, timeout).await
}

/// [`consume`] with more librdkafka properties (a secured cluster's, say).
pub async fn consume_with(
    properties: &[(&str, &str)],
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let properties: Vec<(String, String)> = properties
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let bootstrap = bootstrap.to_owned();
    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let t: Vec<&str> = topics.iter().map(String::as_str).collect();
        test_support::kafka::consume_with(&properties, &bootstrap, &t, expected, timeout)
    })
    .await
    .expect("consumer task")
}

/// A consumed record's payload as JSON.
pub fn json(c: &Consumed) -> Value {
    serde_json::from_slice(&c.payload).unwrap_or_else(|e| panic!("payload is not JSON: {e}"))
}

/// A header's value.
pub fn header<'a>(c: &'a Consumed, key: &str) -> Option<&'a str> {
    c.headers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Records of one synthetic source counted by sequence number.
pub fn sequences(records: &[Consumed], source: &str) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for c in records
        .iter()
        .filter(|c| header(c, "source_id") == Some(source))
    {
        let seq = json(c)["sequence"]
            .as_u64()
            .unwrap_or_else(|| panic!("no sequence in a record of {source}"));
        *seen.entry(seq).or_default() += 1;
    }
    seen
}

/// What a count-by-id check found: how many of `1..=n` are missing, and the ids that
/// arrived more than once (with their counts).
#[derive(Debug, Default)]
pub struct Tally {
    /// Expected ids that never arrived.
    pub missing: Vec<u64>,
    /// Ids that arrived more than once → times.
    pub duplicates: Vec<(u64, usize)>,
    /// Ids outside `1..=n`.
    pub unexpected: Vec<u64>,
}

impl Tally {
    /// Counts and the first few ids of each kind (never the whole list).
    pub fn summary(&self) -> String {
        let head = |v: &[u64]| {
            v.iter()
                .take(5)
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{} missing [{}…], {} duplicated [{}…], {} unexpected [{}…]",
            self.missing.len(),
            head(&self.missing),
            self.duplicates.len(),
            head(&self.duplicates.iter().map(|d| d.0).collect::<Vec<_>>()),
            self.unexpected.len(),
            head(&self.unexpected)
        )
    }
}

/// Compares a count by sequence with the expected `1..=n`.
pub fn tally(seen: &HashMap<u64, usize>, n: u64) -> Tally {
    let mut t = Tally {
        missing: (1..=n).filter(|s| !seen.contains_key(s)).collect(),
        ..Tally::default()
    };
    for (&s, &c) in seen {
        if c > 1 {
            t.duplicates.push((s, c));
        }
        if s == 0 || s > n {
            t.unexpected.push(s);
        }
    }
    t.duplicates.sort_unstable();
    t.unexpected.sort_unstable();
    t
}

/// The committed cursor of `source` in a SQLite or PostgreSQL store.
pub async fn committed_cursor(db_url: &str, source: &str) -> Option<String> {
    use sqlx::Row as _;
    // The same statement on either pool type (sqlx is built without `any`).
    macro_rules! read {
        ($pool:expr) => {{
            let pool = $pool.expect("open the cursor store");
            let row = sqlx::query("SELECT cursor FROM source_cursors WHERE source_id = $1")
                .bind(source)
                .fetch_optional(&pool)
                .await
                .expect("read cursor");
            pool.close().await;
            row.map(|r| r.get::<String, _>(0))
        }};
    }
    if db_url.starts_with("sqlite:") {
        read!(sqlx::SqlitePool::connect(db_url).await)
    } else {
        read!(sqlx::PgPool::connect(db_url).await)
    }
}

/// The synthetic cursor as a number (0 when none was committed).
pub async fn committed_seq(db_url: &str, source: &str) -> u64 {
    committed_cursor(db_url, source)
        .await
        .map_or(0, |c| c.parse().expect("synthetic cursor is a number"))
}
