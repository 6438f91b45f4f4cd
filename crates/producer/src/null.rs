//! [`NullProducer`]: acknowledges every record at once and sends nothing.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Delivered, KafkaHealth, Outcome, OutgoingRecord, Producer, Result};

/// A [`Producer`] that reports every record delivered (partition 0, offset 0) the moment
/// it is handed over, and sends nothing: a stand-in for Kafka where only the rest of the
/// path matters — the pipeline's own cost in benchmarks, allocation counts in tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullProducer;

#[async_trait]
impl Producer for NullProducer {
    async fn send(&self, records: Vec<OutgoingRecord>) -> Vec<(OutgoingRecord, Outcome)> {
        let ok = Delivered {
            partition: 0,
            offset: 0,
        };
        records.into_iter().map(|r| (r, Ok(ok))).collect()
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn in_flight(&self) -> i64 {
        0
    }

    async fn flush(&self, _: Duration) -> Result<()> {
        Ok(())
    }

    async fn health(&self) -> KafkaHealth {
        KafkaHealth {
            connected: true,
            brokers: 1,
            last_error: None,
        }
    }
}
