//! `Delivery`: the producer and the DLQ together. Every record handed to `deliver` is
//! acknowledged by Kafka or dead-lettered with its reason; if the DLQ store is down,
//! dead letters wait in a bounded memory buffer until it returns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::dlq::{DeadLetterStore, NewDeadLetter};
use crate::metrics as m;
use crate::{FailureReason, Outcome, OutgoingRecord, Producer};

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Acknowledged by Kafka.
    pub delivered: usize,
    /// Handed to the DLQ (stored, or buffered while the store is down).
    pub dead_lettered: usize,
    /// The dead-lettered records' ids and reasons.
    pub failures: Vec<(String, FailureReason)>,
}

/// The producer and its dead-letter queue.
#[derive(Debug)]
pub struct Delivery {
    producer: Arc<dyn Producer>,
    dlq: Arc<dyn DeadLetterStore>,
    first_retry: Duration,
    buffer: Mutex<VecDeque<NewDeadLetter>>,
    buffer_capacity: usize,
    dlq_healthy: AtomicBool,
}

impl Delivery {
    /// Joins a producer and a store; retriable dead letters are first retried after 1 s.
    pub fn new(producer: Arc<dyn Producer>, dlq: Arc<dyn DeadLetterStore>) -> Self {
        Self {
            producer,
            dlq,
            first_retry: Duration::from_secs(1),
            buffer: Mutex::new(VecDeque::new()),
            buffer_capacity: 100_000,
            dlq_healthy: AtomicBool::new(true),
        }
    }

    /// The delay before a retriable dead letter's first background retry.
    pub fn with_first_retry(mut self, delay: Duration) -> Self {
        self.first_retry = delay;
        self
    }

    /// Most dead letters held in memory while the store is down; beyond it,
    /// `dead_letter` waits (backpressure) rather than drop anything.
    pub fn with_buffer_capacity(mut self, capacity: usize) -> Self {
        self.buffer_capacity = capacity.max(1);
        self
    }

    /// The producer.
    pub fn producer(&self) -> &Arc<dyn Producer> {
        &self.producer
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn DeadLetterStore> {
        &self.dlq
    }

    /// False while dead letters cannot be written and wait in memory.
    pub fn dlq_healthy(&self) -> bool {
        self.dlq_healthy.load(Ordering::Relaxed)
    }

    /// Dead letters waiting in memory for the store.
    pub fn buffered(&self) -> usize {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sends a batch; failures after the producer's retries go to the DLQ.
    pub async fn deliver(&self, records: Vec<OutgoingRecord>) -> DeliveryReport {
        let outcomes = self.producer.send(records).await;
        self.settle(outcomes).await
    }

    /// Dead-letters the failed outcomes; counts the rest.
    pub async fn settle(&self, outcomes: Vec<(OutgoingRecord, Outcome)>) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        let mut letters = Vec::new();
        for (record, outcome) in outcomes {
            match outcome {
                Ok(_) => report.delivered += 1,
                Err(e) => {
                    report.failures.push((record.id.clone(), e.reason));
                    let details = match &e.code {
                        Some(code) => format!("{code}: {}", e.message),
                        None => e.message.clone(),
                    };
                    letters.push(NewDeadLetter {
                        record,
                        reason: e.reason,
                        details,
                    });
                }
            }
        }
        report.dead_lettered = letters.len();
        self.dead_letter(letters).await;
        report
    }

    /// Stores dead letters; while the store is down they wait in memory (and health
    /// turns unhealthy); when memory is full this waits for the store.
    pub async fn dead_letter(&self, letters: Vec<NewDeadLetter>) {
        if letters.is_empty() {
            return;
        }
        // Keep order: anything already buffered goes first.
        if self.buffered() == 0 {
            match self.dlq.insert(&letters, self.first_retry).await {
                Ok(()) => {
                    self.dlq_healthy.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, records = letters.len(), "DLQ store unavailable; holding dead letters in memory");
                    self.dlq_healthy.store(false, Ordering::Relaxed);
                }
            }
        }
        let mut pending: VecDeque<NewDeadLetter> = letters.into();
        loop {
            {
                let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                while buf.len() < self.buffer_capacity {
                    match pending.pop_front() {
                        Some(l) => buf.push_back(l),
                        None => break,
                    }
                }
                metrics::gauge!(m::DLQ_BUFFERED).set(buf.len() as f64);
            }
            if pending.is_empty() {
                return;
            }
            // Memory is full: wait for the store rather than drop anything.
            if self.flush_buffer().await.is_err() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Writes buffered dead letters to the store (call it periodically). Ok once the
    /// buffer is empty.
    pub async fn flush_buffer(&self) -> Result<(), crate::DlqError> {
        loop {
            let chunk: Vec<NewDeadLetter> = {
                let buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                buf.iter().take(500).cloned().collect()
            };
            if chunk.is_empty() {
                self.dlq_healthy.store(true, Ordering::Relaxed);
                return Ok(());
            }
            match self.dlq.insert(&chunk, self.first_retry).await {
                Ok(()) => {
                    let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                    buf.drain(..chunk.len());
                    metrics::gauge!(m::DLQ_BUFFERED).set(buf.len() as f64);
                }
                Err(e) => {
                    self.dlq_healthy.store(false, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }
}
