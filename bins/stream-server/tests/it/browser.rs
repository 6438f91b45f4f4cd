//! A real browser for the console's tests: chromedriver on a free port driving headless
//! Chromium (Debian's `chromium` and `chromium-driver`; `cargo xtask test` installs
//! them) over WebDriver with fantoccini. Missing, the test fails saying how to install.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "install them with `apt-get install chromium chromium-driver` \
    (`cargo xtask test` installs them)";

/// Where screenshots go: `ui-screenshots/` in the target directory (shared or own).
pub(crate) fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(&tmp).join("ui-screenshots")
}

/// chromedriver (with the Chromium it starts) and a session.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    port: u16,
    _profile: test_support::TempDir,
}

impl Drop for Browser {
    /// chromedriver's `/shutdown` quits every browser it started (also when the test
    /// failed before `close`), then the driver process itself is killed by its pid.
    /// Never `kill -<pgid>` through the `kill` binary: Debian 12's procps-ng 4.0.2 parses
    /// `-14321` as `-1` and signals every process on the machine.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = conn.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = conn.read_to_end(&mut Vec::new());
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if matches!(self.driver.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// A fresh headless Chromium, `width` × `height` pixels.
    pub(crate) async fn start(width: u32, height: u32) -> Browser {
        for (path, what) in [(CHROMEDRIVER, "chromedriver"), (CHROMIUM, "chromium")] {
            assert!(
                std::path::Path::new(path).is_file(),
                "the console's browser tests need {what} at {path}: {INSTALL}"
            );
        }
        let port = test_support::free_port().unwrap();
        let profile = test_support::TempDir::new("chromium-profile");
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER} ({e}): {INSTALL}"));
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // As root Chromium needs --no-sandbox; the rest keep it off the network (this
        // machine's closed network refuses its background connections) and quiet.
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().join("data").display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": args } });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        let client = builder
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no WebDriver session from chromedriver: {e}\n{}",
                    std::fs::read_to_string(profile.path().join("chromedriver.log"))
                        .unwrap_or_default()
                )
            });
        Browser {
            client,
            driver,
            port,
            _profile: profile,
        }
    }

    /// Opens `base/ui` and, when asked, gives `token` to its sign-in form.
    pub(crate) async fn open_console(&self, base: &str, token: Option<&str>) {
        self.client.goto(&format!("{base}/ui")).await.unwrap();
        if let Some(token) = token {
            let input = self.wait_for("#token").await;
            input.send_keys(token).await.unwrap();
            self.click("#login-go").await;
        }
    }

    /// The element matching `css`, once the page has it and it is shown (15 s at most).
    pub(crate) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        let started = Instant::now();
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if e.is_displayed().await.unwrap_or(false) {
                    return e;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the page never showed `{css}`"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub(crate) async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until `script` returns true in the page (15 s at most).
    pub(crate) async fn wait_until(&self, what: &str, script: &str) {
        let started = Instant::now();
        while self.eval(script).await != json!(true) {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the page never showed {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window as `ui-screenshots/<name>.png`; its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (the browser closes); Drop kills whatever is left.
    pub(crate) async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
