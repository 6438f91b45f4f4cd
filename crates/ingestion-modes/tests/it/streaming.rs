//! A fetch that hands records on while it is under way (a large body arriving): its
//! chunks reach the sink before it ends, its cursor commits only once it ended and all
//! settled, and one that fails half way settles what it handed on without moving the
//! cursor.

use std::sync::Arc;
use std::time::Duration;

use api_client::{
    Chunk, ChunkSender, Cursor, CursorStore, Fetch, MemoryCursorStore, Record, Source,
};
use async_trait::async_trait;
use ingestion_modes::{start, Emitted};
use serde_json::json;
use stream_config::IngestionModeKind;
use tokio::sync::{mpsc, Notify};

use super::{spec, tracker};

/// Hands on two chunks of 3 records, waits for `go`, then ends with `outcome`: the
/// cursor "6", or an error (a body cut half way).
#[derive(Debug)]
struct Streaming {
    go: Notify,
    fail: bool,
    from: std::sync::Mutex<Vec<Option<Cursor>>>,
}

fn three(base: u64) -> Chunk {
    Chunk {
        records: (base..base + 3)
            .map(|n| Record::from(json!({ "n": n })))
            .collect(),
        rejected: Vec::new(),
    }
}

#[async_trait]
impl Source for Streaming {
    async fn fetch(&self, _: Option<&Cursor>) -> Result<Fetch, api_client::Error> {
        unreachable!("the modes fetch through fetch_streaming")
    }

    async fn fetch_streaming(
        &self,
        cursor: Option<&Cursor>,
        out: &ChunkSender,
    ) -> Result<Fetch, api_client::Error> {
        self.from.lock().unwrap().push(cursor.cloned());
        out.send(three(0)).await?;
        out.send(three(3)).await?;
        self.go.notified().await;
        if self.fail {
            return Err(api_client::Error::Unavailable("reading body: reset".into()));
        }
        Ok(Fetch {
            next_cursor: Some(Cursor("6".into())),
            changed: true,
            ..Fetch::default()
        })
    }
}

async fn run(fail: bool) -> (Arc<Streaming>, MemoryCursorStore) {
    let src = Arc::new(Streaming {
        go: Notify::new(),
        fail,
        from: Default::default(),
    });
    let store = MemoryCursorStore::default();
    let t = tracker(&store).await;
    let (tx, mut rx) = mpsc::channel::<Emitted>(100);
    let h = start(
        "s",
        spec(IngestionModeKind::RealTime, |c| {
            c.polling_interval_seconds = 10.0;
            c.max_records_per_poll = 3;
        }),
        src.clone(),
        t.clone(),
        Arc::new(tx),
    );
    // Both chunks reach the sink while the fetch is still under way.
    let (a, b) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
    assert_eq!((a.records.len(), b.records.len()), (3, 3));
    let seq = a.records[0].0;
    t.settle(seq, 6).await.unwrap();
    assert_eq!(
        store.load("s").await.unwrap(),
        None,
        "all settled, but the fetch has not ended: nothing commits"
    );
    src.go.notify_one();
    // The next poll (at 10 s) shows where the fetch state stands.
    tokio::time::sleep(Duration::from_secs(11)).await;
    src.go.notify_one();
    h.stop(Duration::from_secs(1)).await;
    (src, store)
}

#[tokio::test(start_paused = true)]
async fn a_streamed_fetch_emits_while_under_way_and_commits_once_ended_and_settled() {
    let (src, store) = run(false).await;
    assert_eq!(store.load("s").await.unwrap(), Some(Cursor("6".into())));
    assert_eq!(
        src.from.lock().unwrap()[1],
        Some(Cursor("6".into())),
        "the next poll continues after it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fetch_failing_half_way_settles_what_it_handed_on_and_moves_no_state() {
    let (src, store) = run(true).await;
    assert_eq!(store.load("s").await.unwrap(), None, "no state advanced");
    assert_eq!(
        src.from.lock().unwrap()[1],
        None,
        "the next poll asks again from where the failed one started"
    );
}
