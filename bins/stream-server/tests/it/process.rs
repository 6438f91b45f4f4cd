//! The service's process beyond the admin API: SIGTERM drains, SIGHUP reloads (and
//! refuses what would not fit), a public address needs a token, the listener sheds slow
//! connections, and the OpenAPI document matches what every route answers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::*;

#[test]
fn sigterm_drains_the_backlog_and_exits_cleanly() {
    // 400 records/s offered, 100/s allowed: a backlog builds that SIGTERM must drain.
    let mut s = start_server_with(400, "throttling: { max_send_rate: 100 }\n");
    std::thread::sleep(Duration::from_secs(3));
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    let mut out = String::new();
    use std::io::Read;
    s.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    // "stopped (N queued records at shutdown: S sent, D dead-lettered as `shutdown`)"
    let line = out
        .lines()
        .find(|l| l.starts_with("stream-server: stopped"))
        .unwrap_or_else(|| panic!("no stop line: {out}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [queued, sent, dead] = numbers[..] else {
        panic!("unexpected stop line: {line}")
    };
    assert!(queued > 50, "a backlog was queued at SIGTERM: {line}");
    assert_eq!(
        (sent, dead),
        (queued, 0),
        "all of it drained into Kafka: {line}"
    );
}

#[test]
fn refuses_a_public_address_without_a_token() {
    let dir = test_support::TempDir::new("server-pub");
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "server: { listen: '0.0.0.0:18080' }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stream-server"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server.admin_token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends the server SIGHUP.
fn sighup(s: &Server) {
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file() {
    let s = start_server();
    let path = s.dir.path().join("config.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace(
        "server:",
        "  gen2:\n    source_type: synthetic\n    ingestion: { mode: real_time, polling_interval_seconds: 0.2 }\nserver:",
    );
    std::fs::write(&path, text).unwrap();
    sighup(&s);
    let body = wait_for(&s, "/streams/gen2", "gen2 appearing", |code, _| code == 200).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "running");
}

/// The values that panicked the process (at `run`, and through a SIGHUP reload inside
/// the main future) are refused by a reload and by `PUT /config`, and counted
/// (`config_updates_total{outcome="refused"}`): the server keeps running with its old
/// configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_values_are_refused_by_sighup_and_put_and_the_server_runs_on() {
    let mut s = start_server();
    let path = s.dir.path().join("config.yaml");
    let good = std::fs::read_to_string(&path).unwrap();
    let huge = good.replace(
        "server:",
        "  gen2:\n    source_type: synthetic\n    timeout_seconds: 1.0e20\n    ingestion: { mode: real_time, polling_interval_seconds: 1.0e20 }\nserver:",
    );
    std::fs::write(&path, &huge).unwrap();
    sighup(&s);
    let refused = |n: u32| {
        move |code: u16, text: &str| {
            code == 200
                && text.lines().any(|l| {
                    l == format!("wildfire_config_updates_total{{outcome=\"refused\"}} {n}")
                })
        }
    };
    wait_for(&s, "/metrics", "the refused reload", refused(1)).await;
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the server exited after the reload of huge values"
    );
    let (code, _) = call(
        reqwest::Method::GET,
        &format!("{}/streams/gen2", s.base),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(code, 404, "the refused reload added nothing");

    let (code, body) = call(
        reqwest::Method::PUT,
        &format!("{}/config", s.base),
        Some(TOKEN),
        Some(("application/json", &as_json(&huge))),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    for key in [
        "sources.gen2.timeout_seconds",
        "sources.gen2.ingestion.polling_interval_seconds",
    ] {
        assert!(body.contains(key), "{key} in {body}");
    }
    wait_for(&s, "/metrics", "the refused PUT counted", refused(2)).await;

    // A good reload still applies.
    let fine = good.replace(
        "server:",
        "  gen3:\n    source_type: synthetic\n    ingestion: { mode: real_time, polling_interval_seconds: 0.2 }\nserver:",
    );
    std::fs::write(&path, &fine).unwrap();
    sighup(&s);
    wait_for(&s, "/streams/gen3", "gen3 appearing", |code, _| code == 200).await;
    assert!(s.child.try_wait().unwrap().is_none(), "still running");
}

#[test]
fn the_admin_listener_closes_slow_connections_and_lets_a_probe_in() {
    use std::io::{Read as _, Write as _};
    let port = test_support::free_port().unwrap();
    let dir = test_support::TempDir::new("server-listener");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "kafka: {{ bootstrap_servers: embedded }}\ndlq: {{ url: 'sqlite://{}/dlq.db' }}\nserver: {{ listen: '127.0.0.1:{port}', header_read_timeout_seconds: 1, max_connections: 2 }}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stream-server"))
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let connect = || std::net::TcpStream::connect(("127.0.0.1", port));
    let get = |s: &mut std::net::TcpStream| -> String {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let mut alive = |when: &str| {
        let exited = child.try_wait().unwrap();
        assert!(exited.is_none(), "the server exited ({exited:?}) {when}");
    };
    // Started: it answers /health (no fixed wait for the connections made meanwhile:
    // a new connection takes the slot of one still waiting for headers).
    let start = Instant::now();
    loop {
        alive("while starting");
        if connect().is_ok_and(|mut s| get(&mut s).starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two idle connections take every slot; a probe connected after them is accepted
    // after them (the accept queue is in order), takes the slot of the one that has
    // waited longest for its headers (closed at once) and is served.
    let idle: Vec<_> = (0..2).map(|_| connect().unwrap()).collect();
    let answer = get(&mut connect().unwrap());
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a probe was kept out: {answer}"
    );
    alive("after the probe");
    // The idle ones never sent headers: closed by the server, never answered (for the
    // probe, or at the 1 s header-read timeout), which frees their slots.
    for (i, mut s) in idle.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let read = s.read_to_end(&mut buf);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "idle connection {i} kept open past the header-read timeout"
        );
        assert!(
            read.is_ok() && buf.is_empty(),
            "idle connection {i}: closed without an answer, not {read:?} {:?}",
            String::from_utf8_lossy(&buf)
        );
        alive("after closing an idle connection");
    }
    // Their slots are free again: served (by the same process).
    let answer = connect().map(|mut s| get(&mut s));
    assert!(
        answer.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}; the server's exit status: {:?}",
        child.try_wait()
    );
    alive("at the end");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_valid_and_every_route_answers_as_documented() {
    use reqwest::Method;
    let s = start_server();
    let b = &s.base;
    let (code, body) = call(Method::GET, &format!("{b}/openapi.json"), Some(TOKEN), None).await;
    assert_eq!(code, 200);
    openapi_validator_accepts(&body);
    let spec: Value = serde_json::from_str(&body).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 14, "{}", paths.len());
    let mut checked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let url = format!(
                "{b}{}",
                path.replace("/streams/{id}", "/streams/gen")
                    .replace("{action}", "resume")
                    .replace("{id}", "999999")
            );
            let body = match (method.as_str(), path.as_str()) {
                ("put", "/config") => Some(("application/json", r#"{"queue_max_size": 0}"#)),
                ("post", "/dlq/purge") => Some(("application/json", "{}")),
                _ => None,
            };
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (code, answer) = call(method.clone(), &url, Some(TOKEN), body).await;
            assert!(
                op["responses"].get(code.to_string()).is_some(),
                "{method} {path} answered {code}, which its document does not list: {answer}"
            );
            if code != 200 {
                let v: Value = serde_json::from_str(&answer).unwrap_or_else(|_| {
                    panic!("{method} {path}: error body is not JSON: {answer}")
                });
                assert!(v["error"].is_string(), "{method} {path}: {answer}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked}");
}

/// openapi-spec-validator (PyPI; `cargo xtask test` installs it) accepts `document`.
fn openapi_validator_accepts(document: &str) {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (cargo xtask test installs openapi-spec-validator)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
