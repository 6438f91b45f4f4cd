//! DLQ upkeep: a worker pass retries due rows only while the DLQ is enabled, and a
//! retention pass removes rows done with beyond the count kept, never pending ones.

use std::sync::Arc;
use std::time::Duration;

use producer::{
    DeadLetterStore, Delivery, DlqFilter, DlqStatus, DlqUpkeep, FailureReason, NewDeadLetter,
};

use crate::support::{memory_store, mock_cluster, producer, records};

fn count(rows: &[producer::DeadLetter], status: DlqStatus) -> usize {
    rows.iter().filter(|r| r.status == status).count()
}

#[tokio::test]
async fn a_pass_retries_due_rows_when_enabled_and_retention_keeps_the_newest_settled() {
    let mock = mock_cluster(&["t"]);
    let store = Arc::new(memory_store());
    let letters: Vec<_> = records("t", "due", 3)
        .into_iter()
        .map(|record| NewDeadLetter {
            record,
            reason: FailureReason::BrokerUnavailable,
            details: "test".into(),
        })
        .collect();
    store
        .insert(&letters, Duration::from_secs(1))
        .await
        .unwrap();
    let delivery = Delivery::new(
        Arc::new(producer(&mock.bootstrap_servers(), &[], 1)),
        store.clone(),
    );
    let later = stream_contracts::now_ms() + 2_000;
    let all = DlqFilter::default();

    let mut upkeep = DlqUpkeep {
        retry: false,
        retry_base_delay: Duration::from_secs(1),
        max_retries: 3,
        retention_days: 0,
        max_settled_rows: 1,
    };
    delivery.upkeep_pass(&upkeep, later).await;
    let rows = store.list(&all, 10, 0).await.unwrap();
    assert_eq!(
        count(&rows, DlqStatus::QueuedForRetry),
        3,
        "DLQ off: no retry"
    );

    // Retention before anything settled: pending rows are never removed.
    delivery.retention_pass(&upkeep, later).await;
    assert_eq!(store.list(&all, 10, 0).await.unwrap().len(), 3);

    upkeep.retry = true;
    delivery.upkeep_pass(&upkeep, later).await;
    let rows = store.list(&all, 10, 0).await.unwrap();
    assert_eq!(count(&rows, DlqStatus::RetrySuccess), 3, "{rows:?}");

    delivery.retention_pass(&upkeep, later).await;
    let rows = store.list(&all, 10, 0).await.unwrap();
    assert_eq!(
        rows.len(),
        1,
        "only the newest settled row is kept: {rows:?}"
    );
}
