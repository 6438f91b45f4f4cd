//! The state topic as a `CursorStore` (`TopicStore`), on librdkafka's mock broker: two
//! workers, each with its own view of the log. A worker sees another's claim in its view
//! before its next fetch (`check_lease`), and its commits under the old claim are refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{Cursor, CursorStore};
use producer::StateLog;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use store::TopicStore;

async fn worker(bootstrap: &str) -> TopicStore {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    TopicStore(Arc::new(
        StateLog::open(&c, "g.state").await.expect("state log"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sees_a_newer_claim_before_its_next_fetch() {
    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    mock.create_topic("g.state", 1, 1).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let (w1, w2) = (worker(&bootstrap).await, worker(&bootstrap).await);

    let first = w1.claim("firms", "w1").await.unwrap();
    w1.check_lease("firms", &first)
        .await
        .expect("the only claim holds");
    w1.commit_leased("firms", &Cursor("c1".into()), &first)
        .await
        .unwrap();
    let second = w2.claim("firms", "w2").await.unwrap();
    assert!(second.epoch > first.epoch, "{first:?} then {second:?}");
    w2.check_lease("firms", &second)
        .await
        .expect("the newest claim holds in its own worker's view");
    assert_eq!(
        w2.load("firms").await.unwrap(),
        Some(Cursor("c1".into())),
        "the new owner resumes where w1 left"
    );

    // w1 learns of the claim as fast as it reads the log.
    let until = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        match w1.check_lease("firms", &first).await {
            Err(api_client::Error::Fenced(why)) => break why,
            Ok(()) => {
                assert!(Instant::now() < until, "w1 never saw w2's claim");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(seen.contains("`w2`"), "{seen}");
    let refused = w1
        .commit_leased("firms", &Cursor("c2".into()), &first)
        .await
        .expect_err("the old owner's commit is refused");
    assert!(
        matches!(&refused, api_client::Error::Fenced(m) if m.contains("`w2`")),
        "{refused}"
    );
    assert_eq!(
        w2.load("firms").await.unwrap(),
        Some(Cursor("c1".into())),
        "nothing of w1's landed"
    );
}
