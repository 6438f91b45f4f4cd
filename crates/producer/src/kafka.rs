//! `KafkaProducer`: librdkafka behind the [`Producer`] trait. Every record's outcome is
//! its delivery report; retryable failures are retried alone with backoff; a full local
//! queue is backpressure; CRITICAL records take a second producer with `linger.ms=0`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::statistics::Statistics;
use stream_config::KafkaConfig;

use crate::classify::classify;
use crate::metrics as m;
use crate::security::{apply_security, describe_security};
use crate::{DeliveryError, Error, FailureReason, Outcome, OutgoingRecord, Producer};
use crate::{ErrorClass, KafkaHealth, ProducerStats};

/// Producer behaviour that is not librdkafka configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerSettings {
    /// Resends of a record after a retryable failure.
    pub max_retries: u32,
    /// Attempt n waits `backoff_base^(n-1) × backoff_unit` (plus up to 10 % jitter).
    pub backoff_base: f64,
    /// The unit of the backoff: 1 s in production, shorter in tests.
    pub backoff_unit: Duration,
    /// Cap of one backoff.
    pub max_backoff: Duration,
    /// Timeout of metadata requests (health, topic administration).
    pub metadata_timeout: Duration,
}

impl ProducerSettings {
    /// The settings of a `kafka` configuration section.
    pub fn from_config(cfg: &KafkaConfig) -> Self {
        Self {
            max_retries: cfg.max_retries,
            backoff_base: cfg.retry_backoff_base,
            backoff_unit: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            metadata_timeout: Duration::from_secs(5),
        }
    }

    /// The wait before resend number `attempt` (1-based): `base^(attempt-1)` units —
    /// the seed's schedule, 1, 2, 4, 8 s with the default base 2 — capped at
    /// `max_backoff`, plus up to 10 % of random jitter so retries of many records do
    /// not synchronise (never shorter than the schedule).
    pub fn backoff(&self, attempt: u32) -> Duration {
        // In seconds first: `base^n` units may be far beyond what a `Duration` holds
        // (10^20 s), and `mul_f64` panics there; the cap applies before.
        let n = attempt.saturating_sub(1).min(30) as i32;
        let secs = self.backoff_unit.as_secs_f64() * self.backoff_base.powi(n);
        let nominal = secs.min(self.max_backoff.as_secs_f64());
        stream_config::seconds(nominal * (1.0 + 0.1 * rand::random::<f64>()))
    }
}

/// The librdkafka configuration of a `kafka` section. `librdkafka_options` are applied
/// last, so they win. `statistics.interval.ms` defaults to 5 s (statistics feed metrics).
pub fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers)
        .set("client.id", &cfg.client_id)
        .set("compression.type", cfg.compression_type.as_str())
        .set("batch.num.messages", cfg.batch_size.to_string())
        .set("linger.ms", cfg.linger_ms.to_string())
        .set("acks", cfg.acks.as_str())
        .set("enable.idempotence", cfg.enable_idempotence.to_string())
        .set("statistics.interval.ms", "5000");
    if let Some(t) = cfg.message_timeout_ms {
        c.set("message.timeout.ms", t.to_string());
    }
    apply_security(&mut c, &cfg.security);
    for (k, v) in &cfg.librdkafka_options {
        c.set(k, v);
    }
    c
}

/// A librdkafka log line as a tracing event of target `librdkafka`; `path` names the
/// client (`normal`, `critical`, `group`).
pub(crate) fn forward_log(
    path: &'static str,
    level: rdkafka::config::RDKafkaLogLevel,
    fac: &str,
    log_message: &str,
) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", path, facility = fac, "{log_message}")
        }
        L::Warning => tracing::warn!(target: "librdkafka", path, facility = fac, "{log_message}"),
        L::Notice | L::Info => {
            tracing::info!(target: "librdkafka", path, facility = fac, "{log_message}")
        }
        L::Debug => tracing::debug!(target: "librdkafka", path, facility = fac, "{log_message}"),
    }
}

/// Forwards librdkafka's statistics and errors into metrics and logs.
#[derive(Debug, Clone)]
pub struct StatsContext {
    path: &'static str,
    last_error: Arc<Mutex<Option<String>>>,
    /// [`describe_security`] of the client, added to authentication and TLS errors.
    security: Option<Arc<str>>,
}

impl ClientContext for StatsContext {
    /// librdkafka's own log lines (connection failures, auth errors, broker errors) into
    /// `tracing`, target `librdkafka`, at their level.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(self.path, level, fac, log_message);
    }

    /// OAUTHBEARER: a token from the OIDC endpoint of `kafka.security.sasl.oidc`.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        crate::oidc::token(config)
    }

    fn stats(&self, s: Statistics) {
        let path = self.path;
        metrics::gauge!(m::LIBRDKAFKA_QUEUE_MESSAGES, "path" => path).set(s.msg_cnt as f64);
        metrics::gauge!(m::LIBRDKAFKA_QUEUE_BYTES, "path" => path).set(s.msg_size as f64);
        metrics::gauge!(m::LIBRDKAFKA_TX_MESSAGES, "path" => path).set(s.txmsgs as f64);
        metrics::gauge!(m::LIBRDKAFKA_TX_BYTES, "path" => path).set(s.txmsg_bytes as f64);
        // Message sets built in the interval, over every topic: how full librdkafka's
        // batches are (records and bytes each).
        let (mut sets, mut msgs, mut bytes) = (0i64, 0i64, 0i64);
        for t in s.topics.values() {
            sets += t.batchcnt.cnt;
            msgs += t.batchcnt.sum;
            bytes += t.batchsize.sum;
        }
        if sets > 0 {
            metrics::gauge!(m::LIBRDKAFKA_BATCH_MESSAGES, "path" => path)
                .set(msgs as f64 / sets as f64);
            metrics::gauge!(m::LIBRDKAFKA_BATCH_BYTES, "path" => path)
                .set(bytes as f64 / sets as f64);
        }
        // librdkafka's own resends and request errors (cumulative per client); during a
        // broker outage these and `producer_client_errors_total` are what moves.
        let (mut retries, mut errors, mut up) = (0u64, 0u64, 0u32);
        for b in s.brokers.values() {
            retries += b.txretries;
            errors += b.txerrs;
            // Bootstrap entries have nodeid -1; count only real brokers.
            if b.nodeid >= 0 && b.state == "UP" {
                up += 1;
            }
        }
        metrics::gauge!(m::LIBRDKAFKA_TX_RETRIES, "path" => path).set(retries as f64);
        metrics::gauge!(m::LIBRDKAFKA_TX_ERRORS, "path" => path).set(errors as f64);
        metrics::gauge!(m::BROKERS_UP, "path" => path).set(f64::from(up));
        for b in s.brokers.values() {
            if let Some(rtt) = &b.rtt {
                metrics::gauge!(m::BROKER_RTT_P99, "path" => path, "broker" => b.name.clone())
                    .set(rtt.p99 as f64 / 1_000_000.0);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let mut message = format!("{error}: {reason}");
        // An authentication or TLS failure says what was tried, so the operator sees
        // which setting to fix.
        if let (Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL), Some(sec)) =
            (code, &self.security)
        {
            message.push_str(&format!(" (kafka.security: {sec})"));
        }
        tracing::warn!(path = self.path, "kafka client error: {message}");
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        // "All brokers down" follows every connection failure and says nothing of its
        // cause: keep the cause (an authentication or TLS failure, a refused
        // connection) beside it.
        if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            if let Some(cause) = last.as_deref() {
                let cause = cause.rsplit(ALL_DOWN_CAUSE).next().unwrap_or(cause);
                message = format!("{message}{ALL_DOWN_CAUSE}{cause}");
            }
        }
        *last = Some(message);
        drop(last);
        let code = code.map_or_else(|| "other".to_owned(), |c| format!("{c:?}"));
        metrics::counter!(m::CLIENT_ERRORS, "path" => self.path, "error" => code).increment(1);
    }
}

/// Joins "all brokers down" to the error that brought the last broker down.
const ALL_DOWN_CAUSE: &str = "; after: ";

type Inner = FutureProducer<StatsContext>;

/// The Kafka producer: a normal path and a low-latency path for CRITICAL records.
pub struct KafkaProducer {
    normal: Inner,
    fast: Inner,
    settings: ProducerSettings,
    ready: AtomicBool,
    in_flight: AtomicI64,
    last_error: Arc<Mutex<Option<String>>>,
    stats: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
}

impl fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("settings", &self.settings)
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// A producer for a `kafka` configuration section.
    pub fn new(cfg: &KafkaConfig) -> Result<Self, Error> {
        Self::with_client_config(client_config(cfg), ProducerSettings::from_config(cfg))
    }

    /// A producer for `cfg` whose librdkafka buffer follows a byte cap on what is held
    /// before it (`queue_max_bytes`; librdkafka's own default is 1 GiB): at most the cap,
    /// within 4 MiB – 1 GiB, unless `librdkafka_options` sets
    /// `queue.buffering.max.kbytes` itself.
    pub fn with_buffer_cap(cfg: &KafkaConfig, cap_bytes: Option<u64>) -> Result<Self, Error> {
        let mut client = client_config(cfg);
        if let Some(cap) = cap_bytes {
            if !cfg
                .librdkafka_options
                .contains_key("queue.buffering.max.kbytes")
            {
                let kbytes = (cap / 1024).clamp(4096, 1_048_576);
                client.set("queue.buffering.max.kbytes", kbytes.to_string());
            }
        }
        Self::with_client_config(client, ProducerSettings::from_config(cfg))
    }

    /// A producer from an explicit librdkafka configuration.
    pub fn with_client_config(
        config: ClientConfig,
        settings: ProducerSettings,
    ) -> Result<Self, Error> {
        let last_error = Arc::new(Mutex::new(None));
        let security: Option<Arc<str>> = describe_security(&config).map(Into::into);
        let make = |path: &'static str, config: &ClientConfig| {
            Inner::from_config_and_context(
                config,
                StatsContext {
                    path,
                    last_error: last_error.clone(),
                    security: security.clone(),
                },
            )
            .map_err(crate::security::config_error)
        };
        let normal = make("normal", &config)?;
        let mut fast_config = config.clone();
        fast_config.set("linger.ms", "0");
        let fast = make("critical", &fast_config)?;
        let producer = Self {
            normal,
            fast,
            settings,
            ready: AtomicBool::new(true),
            in_flight: AtomicI64::new(0),
            last_error,
            stats: Counters::default(),
        };
        // The seed's names exist from the start (at 0), not only after a first send.
        producer.publish_totals();
        Ok(producer)
    }

    /// The seed's gauges: totals since creation.
    fn publish_totals(&self) {
        let totals = self.stats();
        metrics::gauge!(m::SEED_TOTAL_SENT).set(totals.sent as f64);
        metrics::gauge!(m::SEED_TOTAL_FAILED).set(totals.failed as f64);
        metrics::gauge!(m::SEED_RETRY_COUNT).set(totals.retries as f64);
    }

    /// The settings in force.
    pub fn settings(&self) -> &ProducerSettings {
        &self.settings
    }

    /// Counts since creation.
    pub fn stats(&self) -> ProducerStats {
        ProducerStats {
            sent: self.stats.sent.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    fn headers(record: &OutgoingRecord) -> Option<OwnedHeaders> {
        if record.headers.is_empty() {
            return None;
        }
        let mut h = OwnedHeaders::new_with_capacity(record.headers.len());
        for (k, v) in record.headers.iter() {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_ref()),
            });
        }
        Some(h)
    }

    /// Hands one record to librdkafka, waiting while its local queue is full.
    async fn enqueue(
        &self,
        record: &OutgoingRecord,
        alone: bool,
    ) -> Result<rdkafka::producer::DeliveryFuture, DeliveryError> {
        let producer = if record.critical || alone {
            &self.fast
        } else {
            &self.normal
        };
        let mut waited = false;
        loop {
            let mut fr: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&record.topic).payload(record.payload.as_ref());
            if let Some(k) = &record.key {
                fr = fr.key(k.as_ref());
            }
            if let Some(h) = Self::headers(record) {
                fr = fr.headers(h);
            }
            match producer.send_result(fr) {
                Ok(future) => {
                    if waited {
                        self.ready.store(true, Ordering::Relaxed);
                    }
                    return Ok(future);
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Backpressure, not failure: wait for deliveries to make room.
                    if !waited {
                        metrics::counter!(m::BACKPRESSURE_WAITS).increment(1);
                    }
                    waited = true;
                    self.ready.store(false, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => return Err(classify(&e)),
            }
        }
    }

    /// One attempt over `batch`: enqueue every record, then await every report.
    /// `alone`: on the `linger.ms=0` producer (`isolate.rs` sends one record at a time).
    pub(crate) async fn attempt(
        &self,
        batch: &[(usize, OutgoingRecord)],
        alone: bool,
    ) -> Vec<Outcome> {
        let mut pending = Vec::with_capacity(batch.len());
        for (_, record) in batch {
            pending.push((self.enqueue(record, alone).await, Instant::now()));
        }
        self.in_flight
            .fetch_add(batch.len() as i64, Ordering::Relaxed);
        let latency = metrics::histogram!(m::DELIVERY_SECONDS);
        // By path: CRITICAL records take the low-latency producer. Taken as each report
        // is read (in send order), not when the whole batch is in.
        let e2e = [
            metrics::histogram!(m::E2E_SECONDS, "path" => "normal"),
            metrics::histogram!(m::E2E_SECONDS, "path" => "critical"),
        ];
        let mut out = Vec::with_capacity(batch.len());
        for ((enqueued, at), (_, record)) in pending.into_iter().zip(batch) {
            let outcome = match enqueued {
                Err(e) => Err(e),
                Ok(future) => match future.await {
                    Ok(Ok(d)) => {
                        latency.record(at.elapsed().as_secs_f64());
                        if let Some(emitted) = record.emitted_at {
                            e2e[usize::from(record.critical)]
                                .record(emitted.elapsed().as_secs_f64());
                        }
                        Ok(crate::Delivered {
                            partition: d.partition,
                            offset: d.offset,
                        })
                    }
                    Ok(Err((e, _))) => Err(classify(&e)),
                    Err(_canceled) => Err(DeliveryError {
                        class: ErrorClass::Retryable,
                        reason: FailureReason::Shutdown,
                        code: None,
                        message: "producer closed before the delivery report".to_owned(),
                    }),
                },
            };
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            out.push(outcome);
        }
        out
    }

    /// Asks the cluster for metadata (blocking call, run off the async threads).
    async fn metadata_health(&self) -> KafkaHealth {
        let producer = self.normal.clone();
        let timeout = self.settings.metadata_timeout;
        let result = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|md| md.brokers().len())
        })
        .await;
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match result {
            Ok(Ok(brokers)) => KafkaHealth {
                connected: brokers > 0,
                brokers,
                last_error,
            },
            // A timed-out metadata request says little; the client error that caused
            // it (an authentication failure, say) says why.
            Ok(Err(e)) => KafkaHealth {
                connected: false,
                brokers: 0,
                last_error: Some(match last_error {
                    Some(cause) => format!("{e}; last client error: {cause}"),
                    None => e.to_string(),
                }),
            },
            Err(e) => KafkaHealth {
                connected: false,
                brokers: 0,
                last_error: Some(format!("metadata task failed: {e}")),
            },
        }
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send(&self, records: Vec<OutgoingRecord>) -> Vec<(OutgoingRecord, Outcome)> {
        let n = records.len();
        let mut done: Vec<Option<(OutgoingRecord, Outcome)>> = (0..n).map(|_| None).collect();
        let mut pending: Vec<(usize, OutgoingRecord)> = records.into_iter().enumerate().collect();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let outcomes = self.attempt(&pending, false).await;
            let outcomes = crate::isolate::refused_batch_mates(self, &pending, outcomes).await;
            let mut retry = Vec::new();
            for ((idx, record), outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Err(e)
                        if e.class == ErrorClass::Retryable
                            && attempt < self.settings.max_retries =>
                    {
                        retry.push((idx, record));
                    }
                    Err(e) => {
                        metrics::counter!(m::FAILED, "error_type" => e.reason.as_str())
                            .increment(1);
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                        done[idx] = Some((record, Err(e)));
                    }
                    Ok(d) => done[idx] = Some((record, Ok(d))),
                }
            }
            pending = retry;
            if !pending.is_empty() {
                attempt += 1;
                metrics::counter!(m::RETRIES).increment(pending.len() as u64);
                self.stats
                    .retries
                    .fetch_add(pending.len() as u64, Ordering::Relaxed);
                let wait = self.settings.backoff(attempt);
                tracing::info!(
                    records = pending.len(),
                    attempt,
                    ?wait,
                    "retrying failed records"
                );
                tokio::time::sleep(wait).await;
            }
        }
        let sent = done
            .iter()
            .filter(|d| matches!(d, Some((_, Ok(_)))))
            .count();
        metrics::counter!(m::SENT).increment(sent as u64);
        metrics::gauge!(m::IN_FLIGHT).set(self.in_flight.load(Ordering::Relaxed) as f64);
        self.stats.sent.fetch_add(sent as u64, Ordering::Relaxed);
        self.publish_totals();
        done.into_iter().flatten().collect()
    }

    fn stats(&self) -> ProducerStats {
        KafkaProducer::stats(self)
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    async fn health(&self) -> KafkaHealth {
        self.metadata_health().await
    }

    fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let (a, b) = (self.normal.clone(), self.fast.clone());
        tokio::task::spawn_blocking(move || {
            a.flush(timeout)?;
            b.flush(timeout)
        })
        .await
        .map_err(|e| Error::kafka("flush", e))?
        .map_err(|e| Error::kafka("flush", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_before_it_can_overflow() {
        // A base of 10 at attempt 20 is 10^19 s: `Duration::mul_f64` panicked there.
        let s = ProducerSettings {
            max_retries: 20,
            backoff_base: 10.0,
            backoff_unit: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            metadata_timeout: Duration::from_secs(5),
        };
        for attempt in [1, 2, 20, 30, u32::MAX] {
            let wait = s.backoff(attempt);
            assert!(
                wait <= Duration::from_secs(33),
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retries_wait_one_two_four_eight_seconds_as_the_seed_does() {
        let s = ProducerSettings::from_config(&stream_config::KafkaConfig::default());
        for (attempt, nominal) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 30.0)] {
            for _ in 0..20 {
                let wait = s.backoff(attempt).as_secs_f64();
                assert!(
                    (nominal..nominal * 1.1).contains(&wait),
                    "attempt {attempt}: {wait} s, the schedule says {nominal} s (+ up to 10 % jitter)"
                );
            }
        }
    }
}
