//! The dead-letter journal at the next start: a line torn by a crash is set aside in
//! `<journal>.rejected` and every good line, before and after it, is stored.

use std::sync::Arc;

use producer::{DeadLetterStore, Delivery, DlqFilter, MemoryDeadLetterStore, NullProducer};

/// A journal line as `Delivery::spill` writes it (payload `hi`, no key or headers).
fn line(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","source_id":"s","topic":"t","payload":"aGk=","headers":[],"reason":"shutdown","details":"d"}}"#
    )
}

#[tokio::test]
async fn a_torn_journal_line_is_set_aside_and_every_good_line_is_stored() {
    let dir = test_support::TempDir::new("journal_torn");
    let path = dir.path().join("dlq-journal.jsonl");
    let torn = &line("b")[..40];
    // A crash tore `b` mid-write; the next run's spill began on a fresh line.
    std::fs::write(&path, format!("{}\n{torn}\n{}\n", line("a"), line("c"))).unwrap();
    let store = Arc::new(MemoryDeadLetterStore::default());
    let delivery = Delivery::new(Arc::new(NullProducer), store.clone());

    let stored = delivery
        .replay_journal(&path)
        .await
        .expect("the good lines are stored");

    assert_eq!(stored, 2);
    let rows = store.list(&DlqFilter::default(), 10, 0).await.unwrap();
    let mut ids: Vec<&str> = rows.iter().map(|r| r.message_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "c"]);
    assert!(!path.exists(), "the journal is done with");
    let aside = dir.path().join("dlq-journal.jsonl.rejected");
    assert_eq!(
        std::fs::read_to_string(&aside).unwrap(),
        format!("{torn}\n")
    );
    // The next start finds nothing to do (the torn line no longer blocks anything).
    assert_eq!(delivery.replay_journal(&path).await.unwrap(), 0);
}
