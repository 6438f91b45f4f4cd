//! Bodies streamed from a real server on 127.0.0.1 (a raw HTTP/1.1 server writing a
//! chunked body piece by piece, so the test decides when each piece leaves): records
//! are handed on while the body is still arriving, a full pipeline stops the reading,
//! and a body cut half way hands on what came and keeps the fetch state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api_client::{ChunkSender, Decoder, DedupSpec, HttpSpec, Incremental, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::client;

/// What the server does next on a connection.
enum Piece {
    Bytes(Vec<u8>),
    /// Close the connection without ending the body.
    Cut,
}

/// Serves one connection per script, in order: each script's pieces as a chunked body;
/// the body ends when the script's sender is dropped.
async fn server() -> (
    String,
    mpsc::UnboundedSender<mpsc::UnboundedReceiver<Piece>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/feed", listener.local_addr().unwrap());
    let (scripts, mut next) = mpsc::unbounded_channel::<mpsc::UnboundedReceiver<Piece>>();
    tokio::spawn(async move {
        while let Some(mut script) = next.recv().await {
            let (mut conn, _) = listener.accept().await.unwrap();
            read_request(&mut conn).await;
            conn.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
            let mut cut = false;
            while let Some(piece) = script.recv().await {
                match piece {
                    Piece::Bytes(b) => {
                        let framed =
                            [format!("{:x}\r\n", b.len()).as_bytes(), &b, b"\r\n"].concat();
                        if conn.write_all(&framed).await.is_err() {
                            break;
                        }
                    }
                    Piece::Cut => {
                        cut = true;
                        break;
                    }
                }
            }
            if !cut {
                let _ = conn.write_all(b"0\r\n\r\n").await;
            }
        }
    });
    (url, scripts)
}

async fn read_request(conn: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed before its request ended");
        seen.extend_from_slice(&buf[..n]);
    }
}

fn rows(from: u64, to: u64) -> Vec<u8> {
    (from..to)
        .map(|i| format!("{i},{}.5,2026-11-27,{:04},nominal\n", 30 + i % 10, i % 2400))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn records_are_handed_on_while_the_body_is_still_arriving() {
    let (url, scripts) = server().await;
    let (pieces, script) = mpsc::unbounded_channel();
    scripts.send(script).unwrap();
    let c = Arc::new(client(HttpSpec {
        decoder: Decoder::Csv,
        ..HttpSpec::get(url)
    }));
    let (out, mut chunks) = ChunkSender::channel(1);
    let fetch = tokio::spawn({
        let c = c.clone();
        async move { c.fetch_streaming(None, &out).await }
    });
    let mut first = b"id,bright,acq_date,acq_time,confidence\n".to_vec();
    first.extend(rows(0, 5000));
    pieces.send(Piece::Bytes(first)).unwrap();
    // The rest of the body has not left the server: these came from the first part.
    let early = chunks.recv().await.expect("a chunk before the body ended");
    // Handed on once HAND_ON_RECORDS are decoded (plus the rest of that network read).
    let n = early.records.len();
    assert!((api_client::HAND_ON_RECORDS..=5000).contains(&n), "{n}");
    assert_eq!(early.records[7].pointer("/id"), Some(serde_json::json!(7)));
    pieces.send(Piece::Bytes(rows(5000, 12_000))).unwrap();
    drop(pieces);
    let mut got = early.records.len();
    while let Some(chunk) = chunks.recv().await {
        got += chunk.records.len();
    }
    let f = fetch.await.unwrap().unwrap();
    assert!(f.failures.is_empty(), "{:?}", f.failures);
    assert_eq!(got + f.records.len(), 12_000);
    assert!(f.changed);
}

#[tokio::test]
async fn a_full_pipeline_stops_the_reading_of_the_body() {
    // A server that writes a 512 MiB body as fast as the client reads it, counting what
    // the socket took.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/feed", listener.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let server = tokio::spawn({
        let written = written.clone();
        async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            read_request(&mut conn).await;
            let line = b"{\"id\":1,\"text\":\"a line of a large body\"}\n".repeat(1600);
            let total = (512u64 << 20) / line.len() as u64 * line.len() as u64;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
            conn.write_all(head.as_bytes()).await.unwrap();
            while written.load(Ordering::Relaxed) < total {
                if conn.write_all(&line).await.is_err() {
                    return;
                }
                written.fetch_add(line.len() as u64, Ordering::Relaxed);
            }
        }
    });
    let c = Arc::new(client(HttpSpec {
        decoder: Decoder::Ndjson,
        max_response_bytes: 1 << 30,
        ..HttpSpec::get(url)
    }));
    let (out, mut chunks) = ChunkSender::channel(1);
    let fetch = tokio::spawn({
        let c = c.clone();
        async move { c.fetch_streaming(None, &out).await }
    });
    let first = chunks.recv().await.expect("a first chunk");
    assert!(!first.records.is_empty());
    // Nobody takes more chunks: the client stops reading, so what the server could write
    // stops growing at the socket buffers plus a chunk or two of records.
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = written.load(Ordering::Relaxed);
        if now == last || server.is_finished() {
            break;
        }
        last = now;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled = written.load(Ordering::Relaxed);
    assert!(
        !server.is_finished(),
        "the whole body was read with nobody taking it"
    );
    assert_eq!(
        stalled, last,
        "still reading while nobody takes the records"
    );
    assert!(stalled < 64 << 20, "{stalled} bytes read ahead");
    // Taking the chunks again resumes the reading; dropping them ends the fetch.
    let _ = chunks.recv().await.expect("more");
    drop(chunks);
    let ended = fetch.await.unwrap();
    assert!(
        ended.is_err() || !ended.unwrap().failures.is_empty(),
        "a fetch whose receiver is gone ends"
    );
    server.abort();
}

#[tokio::test]
async fn a_body_cut_half_way_hands_on_what_came_and_moves_no_state_but_the_dedup_window() {
    let (url, scripts) = server().await;
    let spec = HttpSpec {
        decoder: Decoder::Json {
            pointer: "/data".into(),
        },
        incremental: Some(Incremental {
            param: "since".into(),
            field: "/t".into(),
            initial: None,
        }),
        dedup: Some(DedupSpec {
            keys: vec!["/id".into()],
            window: 100_000,
        }),
        max_retries: 0,
        ..HttpSpec::get(url)
    };
    let c = Arc::new(client(spec));
    let items = |from: u64, to: u64| {
        (from..to)
            .map(|i| format!("{{\"id\":{i},\"t\":{i}}}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let whole = format!("{{\"data\":[{}]}}", items(0, 6000)).into_bytes();
    // First poll: 5,000 records, then the connection drops.
    let (pieces, script) = mpsc::unbounded_channel();
    scripts.send(script).unwrap();
    let cut_at = format!("{{\"data\":[{},", items(0, 5000)).len();
    pieces.send(Piece::Bytes(whole[..cut_at].to_vec())).unwrap();
    pieces.send(Piece::Cut).unwrap();
    let (out, mut chunks) = ChunkSender::channel(1);
    let fetch = tokio::spawn({
        let c = c.clone();
        async move { c.fetch_streaming(None, &out).await }
    });
    let mut handed = 0;
    while let Some(chunk) = chunks.recv().await {
        handed += chunk.records.len();
    }
    let f = fetch.await.unwrap().unwrap();
    handed += f.records.len();
    assert_eq!(handed, 5000, "every record that arrived whole is handed on");
    assert!(
        f.failures.iter().any(|m| m.contains("half way")),
        "{:?}",
        f.failures
    );
    let cursor = f
        .next_cursor
        .expect("the dedup window remembers what was handed on");
    assert!(
        !cursor.0.contains("\"cursor\""),
        "the incremental cursor did not move: {}",
        cursor.0
    );
    // Second poll: asked again from the old state, the whole body; only the 1,000
    // records not handed on before come out.
    let (pieces, script) = mpsc::unbounded_channel();
    scripts.send(script).unwrap();
    pieces.send(Piece::Bytes(whole)).unwrap();
    drop(pieces);
    let again = c.fetch(Some(&cursor)).await.unwrap();
    assert!(again.failures.is_empty(), "{:?}", again.failures);
    assert_eq!(again.records.len(), 1000);
    assert_eq!(
        again.records[0].pointer("/id"),
        Some(serde_json::json!(5000))
    );
}

#[tokio::test]
async fn a_small_malformed_body_fails_whole_naming_the_byte_where_it_breaks() {
    let (url, scripts) = server().await;
    let (pieces, script) = mpsc::unbounded_channel();
    scripts.send(script).unwrap();
    pieces
        .send(Piece::Bytes(
            br#"[{"id": 1}, {"id": 2}, {"id": 3 x"#.to_vec(),
        ))
        .unwrap();
    drop(pieces);
    let c = client(HttpSpec {
        max_retries: 0,
        ..HttpSpec::get(url)
    });
    // Smaller than a chunk: nothing was handed on, so the fetch fails whole (as a body
    // read whole did) and its two good records go with it; the next poll asks again.
    let e = c.fetch(None).await.unwrap_err().to_string();
    assert!(e.contains("invalid JSON at byte 32"), "{e}");
}
