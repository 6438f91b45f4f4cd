//! The workers' shared state on nothing but Kafka: a compacted topic with one partition,
//! read from the start by every worker and applied in log order. It holds claims on
//! sources (a claim's epoch is its record's offset, so claims are totally ordered),
//! sources' fetch state, and workers' reports. Log order is the fence: a state record
//! counts only if its epoch is the source's newest claim when it is applied, so a write
//! by a worker that lost the source — whenever it lands — is ignored by every reader.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::security::TokenContext;
use crate::state_view::{pieces, Entry, View};
pub use crate::state_view::{StateChain, STATE_CHUNK_BYTES};
use crate::Error;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// How long a write or a catch-up may take.
const WAIT: Duration = Duration::from_secs(15);

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The source is this worker's under `epoch`; `state` is where its predecessor left.
    Won {
        /// The claim's epoch (its offset).
        epoch: i64,
        /// The fetch state as of the claim.
        state: Option<StateChain>,
    },
    /// Another worker claimed it after this worker's claim.
    Lost {
        /// Who.
        owner: String,
    },
}

/// The shared state log. Cheap to share; the reader thread stops when it is dropped.
pub struct StateLog {
    topic: String,
    producer: FutureProducer<TokenContext>,
    view: Arc<Mutex<View>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// Bytes of fetch state sent (keys and payloads of state records).
    state_bytes: AtomicU64,
    /// The offset of this log's last write.
    last_write: AtomicI64,
}

impl std::fmt::Debug for StateLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl StateLog {
    /// Opens `topic` (one partition, compacted; created beforehand) with `config`'s
    /// connection settings, and returns once everything written before is applied.
    pub async fn open(config: &ClientConfig, topic: &str) -> Result<Self, Error> {
        let mut p = config.clone();
        p.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0");
        let producer: FutureProducer<TokenContext> = p
            .create_with_context(TokenContext)
            .map_err(crate::security::config_error)?;
        let mut c = config.clone();
        c.set("group.id", format!("{topic}.reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "50")
            // The end of the partition is reported, so a compacted gap before it cannot
            // hold a catch-up back.
            .set("enable.partition.eof", "true");
        let consumer: BaseConsumer<TokenContext> = c
            .create_with_context(TokenContext)
            .map_err(crate::security::config_error)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| Error::kafka("reading the state topic", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| Error::kafka("reading the state topic", e))?;
        let view = Arc::new(Mutex::new(View::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (v, s, t) = (view.clone(), stop.clone(), topic.to_owned());
        let reader = std::thread::Builder::new()
            .name("state log".into())
            .spawn(move || read(&consumer, &t, &v, &s))
            .map_err(|e| Error::kafka("starting the state log reader", e))?;
        let log = Self {
            topic: topic.to_owned(),
            producer,
            view,
            stop,
            reader: Some(reader),
            state_bytes: AtomicU64::new(0),
            last_write: AtomicI64::new(-1),
        };
        // Catch up with what is there.
        let (topic, producer) = (log.topic.clone(), log.producer.clone());
        let end = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer as _;
            producer
                .client()
                .fetch_watermarks(&topic, 0, WAIT)
                .map(|(_, high)| high)
        })
        .await
        .map_err(|e| Error::kafka("reading the state topic", e))?
        .map_err(|e| Error::kafka("reading the state topic", e))?;
        log.applied(end).await?;
        Ok(log)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every record before `offset` is applied.
    async fn applied(&self, offset: i64) -> Result<(), Error> {
        let until = tokio::time::Instant::now() + WAIT;
        while self.lock().next < offset {
            if tokio::time::Instant::now() >= until {
                return Err(Error::kafka(
                    "reading the state topic",
                    format!("not caught up with offset {offset} within {WAIT:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    async fn write(&self, entry: &Entry) -> Result<i64, Error> {
        let payload = serde_json::to_vec(entry).map_err(|e| Error::kafka("state record", e))?;
        let key = entry.key();
        let offset = self.send(&key, Some(&payload)).await?;
        if !matches!(entry, Entry::Claim { .. } | Entry::Member { .. }) {
            let n = (key.len() + payload.len()) as u64;
            self.state_bytes.fetch_add(n, Ordering::Relaxed);
        }
        self.last_write.fetch_max(offset, Ordering::Relaxed);
        Ok(offset)
    }

    /// Waits until this log's own writes are applied to its view, so what it reads
    /// includes everything it wrote (the reader thread applies the log asynchronously).
    pub async fn read_own_writes(&self) -> Result<(), Error> {
        self.applied(self.last_write.load(Ordering::Relaxed) + 1)
            .await
    }

    /// Bytes of fetch state this log has written (keys and payloads of state records).
    pub fn state_bytes_written(&self) -> u64 {
        self.state_bytes.load(Ordering::Relaxed)
    }

    /// Deletes `key` (a tombstone: compaction drops the key; readers skip it).
    async fn delete(&self, key: &str) -> Result<i64, Error> {
        self.send(key, None).await
    }

    /// Appends `key` → `payload` (none: a tombstone); its offset.
    async fn send(&self, key: &str, payload: Option<&[u8]>) -> Result<i64, Error> {
        let mut record: FutureRecord<'_, str, [u8]> =
            FutureRecord::to(&self.topic).key(key).partition(0);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        self.producer
            .send(record, WAIT)
            .await
            .map(|d| d.offset)
            .map_err(|(e, _)| Error::kafka("writing the state topic", e))
    }

    /// Claims `source` for `owner`. Won: the state as of the claim (later writes of
    /// earlier owners are ignored by every reader).
    pub async fn claim(&self, source: &str, owner: &str) -> Result<Claimed, Error> {
        let epoch = self
            .write(&Entry::Claim {
                source: source.to_owned(),
                owner: owner.to_owned(),
            })
            .await?;
        self.applied(epoch + 1).await?;
        let (newest, state) = {
            let v = self.lock();
            (v.claims.get(source).cloned(), v.states.get(source).cloned())
        };
        match newest {
            Some((e, _)) if e == epoch => {
                // The predecessor's state, written again under this claim so that it
                // survives compaction even before this worker commits; then the
                // predecessor's records are deleted (tombstones), so the topic keeps one
                // state per source, not one per claim ever made.
                if let Some(stored) = &state {
                    let chain = &stored.chain;
                    self.write_chunks(source, epoch, chain.gen, &chain.snapshot)
                        .await?;
                    for (i, delta) in chain.deltas.iter().enumerate() {
                        self.write_delta(source, epoch, chain.gen, i as u64 + 1, delta)
                            .await?;
                    }
                    if stored.epoch != epoch {
                        for key in &stored.keys {
                            self.delete(key).await?;
                        }
                    }
                }
                Ok(Claimed::Won {
                    epoch,
                    state: state.map(|s| s.chain),
                })
            }
            Some((_, owner)) => Ok(Claimed::Lost { owner }),
            None => Err(Error::kafka(
                "claiming a source",
                "the claim was not read back",
            )),
        }
    }

    /// Writes `state` for `source` under claim `epoch` as one snapshot; `Ok(false)`
    /// (nothing written) when a newer claim is known.
    pub async fn commit(&self, source: &str, epoch: i64, state: &str) -> Result<bool, Error> {
        let gen = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1);
        self.write_snapshot(source, epoch, gen, state).await
    }

    /// Writes snapshot `gen` of `source`'s state under claim `epoch`, in pieces of at
    /// most [`STATE_CHUNK_BYTES`]; once it is whole, deletes the records of the state it
    /// replaces. `Ok(false)` (nothing written) when a newer claim is known.
    pub async fn write_snapshot(
        &self,
        source: &str,
        epoch: i64,
        gen: u64,
        text: &str,
    ) -> Result<bool, Error> {
        if self.owner(source).is_some_and(|(e, _)| e != epoch) {
            return Ok(false);
        }
        // This log's own earlier writes are applied first, so the keys to delete are all
        // of the replaced state's.
        self.read_own_writes().await?;
        let before = self.lock().states.get(source).map(|s| s.keys.clone());
        let written = self.write_chunks(source, epoch, gen, text).await?;
        for key in before.unwrap_or_default() {
            if !written.contains(&key) {
                self.delete(&key).await?;
            }
        }
        Ok(true)
    }

    /// The chunks of a snapshot; their keys.
    async fn write_chunks(
        &self,
        source: &str,
        epoch: i64,
        gen: u64,
        text: &str,
    ) -> Result<Vec<String>, Error> {
        let pieces = pieces(text);
        let mut keys = Vec::with_capacity(pieces.len());
        for (index, piece) in pieces.iter().enumerate() {
            let entry = Entry::Chunk {
                source: source.to_owned(),
                epoch,
                gen,
                index,
                count: pieces.len(),
                text: (*piece).to_owned(),
            };
            self.write(&entry).await?;
            keys.push(entry.key());
        }
        Ok(keys)
    }

    /// Writes delta `seq` after snapshot `gen` of `source`'s state under claim `epoch`;
    /// `Ok(false)` (nothing written) when a newer claim is known. The caller keeps a
    /// delta under [`STATE_CHUNK_BYTES`].
    pub async fn write_delta(
        &self,
        source: &str,
        epoch: i64,
        gen: u64,
        seq: u64,
        delta: &str,
    ) -> Result<bool, Error> {
        if self.owner(source).is_some_and(|(e, _)| e != epoch) {
            return Ok(false);
        }
        self.write(&Entry::Delta {
            source: source.to_owned(),
            epoch,
            gen,
            seq,
            delta: delta.to_owned(),
        })
        .await
        .map(|_| true)
    }

    /// The newest claim of `source`: (epoch, owner).
    pub fn owner(&self, source: &str) -> Option<(i64, String)> {
        self.lock().claims.get(source).cloned()
    }

    /// The state of `source` under its newest claim.
    pub fn state(&self, source: &str) -> Option<StateChain> {
        self.lock().states.get(source).map(|s| s.chain.clone())
    }

    /// Records a worker's report.
    pub async fn report(
        &self,
        group: &str,
        worker: &str,
        report: &str,
        at_ms: i64,
    ) -> Result<(), Error> {
        self.write(&Entry::Member {
            group: group.to_owned(),
            worker: worker.to_owned(),
            report: report.to_owned(),
            at_ms,
        })
        .await
        .map(|_| ())
    }

    /// Every worker's newest report in `group`: (worker, report, at_ms).
    pub fn members(&self, group: &str) -> Vec<(String, String, i64)> {
        self.lock()
            .members
            .iter()
            .filter(|((g, _), _)| g == group)
            .map(|((_, w), (r, at))| (w.clone(), r.clone(), *at))
            .collect()
    }
}

fn read(consumer: &BaseConsumer<TokenContext>, topic: &str, view: &Mutex<View>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let entry = m
                    .payload()
                    .and_then(|p| serde_json::from_slice::<Entry>(p).ok());
                let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
                match entry {
                    Some(e) => v.apply(m.offset(), e),
                    // A tombstone or a record of another writer: skipped, but read.
                    None => v.next = m.offset() + 1,
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                let end = consumer.position().ok().and_then(|tpl| {
                    tpl.find_partition(topic, 0)
                        .and_then(|e| e.offset().to_raw())
                });
                if let Some(end) = end {
                    let mut v = view.lock().unwrap_or_else(|e| e.into_inner());
                    v.next = v.next.max(end);
                }
            }
            Some(Err(e)) => tracing::debug!(%topic, error = %e, "state log read"),
            None => {}
        }
    }
}

impl Drop for StateLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}
