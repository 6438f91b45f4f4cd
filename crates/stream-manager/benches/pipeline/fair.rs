//! The fair throughput comparison: the same records on both sides — pre-generated once
//! (synthetic sensor readings as NDJSON, GeoJSON fire detections; the padding of the
//! large variant is random text, not a run of one byte), replayed by two looping `file`
//! sources — the same payload bytes (each record as the pipeline serializes it), the
//! same five headers, the same keys (each source's `partition_key`), the same producer
//! settings, the same broker, in one run. Reported separately: the sources alone, the
//! pipeline with a producer that acknowledges at once (its own overhead), the pipeline
//! against the broker and bare rdkafka against the broker; CPU per record counts this
//! process only (the mock broker runs in a child process). Allocations per record are
//! counted by `tests/alloc.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{Cursor, Registry, Source};
use bytes::Bytes;
use producer::Producer;
use rand::{Rng as _, SeedableRng as _};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientContext;
use serde_json::Value;
use stream_config::StreamConfig;
use stream_manager::StreamManager;

use crate::{cpu_seconds, delivered, Bench, BARE_TOPIC};

/// Bare rdkafka's client, its statistics kept for `BENCH_STATS=1`.
pub(crate) type Bare = FutureProducer<StatsProbe>;

/// librdkafka's statistics of the bare client, summed since the last [`StatsProbe::take`]:
/// message sets built, their records and bytes, the most records it held at once.
#[derive(Debug, Default, Clone)]
pub(crate) struct StatsProbe(Arc<std::sync::Mutex<[i64; 4]>>);

impl ClientContext for StatsProbe {
    fn stats(&self, s: rdkafka::Statistics) {
        let mut t = self.0.lock().expect("stats");
        for topic in s.topics.values() {
            t[0] += topic.batchcnt.cnt;
            t[1] += topic.batchcnt.sum;
            t[2] += topic.batchsize.sum;
        }
        t[3] = t[3].max(s.msg_cnt as i64);
    }
}

impl StatsProbe {
    /// "records/set, bytes/set, max held" since the last call.
    pub(crate) fn take(&self) -> String {
        let t = std::mem::take(&mut *self.0.lock().expect("stats"));
        let sets = t[0].max(1) as f64;
        format!(
            "{:.0} rec/set, {:.0} B/set, {} sets, max held {}",
            t[1] as f64 / sets,
            t[2] as f64 / sets,
            t[0],
            t[3]
        )
    }
}

/// One record as both sides send it.
pub(crate) struct Rec {
    source: &'static str,
    payload: Bytes,
    key: Option<Bytes>,
}

/// The records of one size class and the sources that replay them.
pub(crate) struct Corpus {
    pub(crate) label: String,
    sources_yaml: String,
    pub(crate) records: Vec<Rec>,
}

const SENSORS: usize = 3_000;
const FIRES: usize = 1_000;

fn random_text(rng: &mut rand::rngs::StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn source_yaml(id: &str, path: &Path, key: &str) -> String {
    format!(
        "  {id}:
    source_type: file
    ingestion: {{ mode: continuous_streaming, polling_interval_seconds: 0.01, buffer_size: 2000, buffer_flush_interval_seconds: 0.02, max_records_per_poll: 100000 }}
    partition_key: {{ pointer: '{key}' }}
    custom_params: {{ path: '{}', loop: true, records_per_fetch: 5000 }}
",
        path.display()
    )
}

/// Writes the two files for records padded with `pad` bytes of random text, and reads
/// them back through the `file` connector, so each record is exactly what the pipeline
/// will send.
pub(crate) async fn corpus(b: &Bench, pad: usize) -> Corpus {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let params: api_client::SyntheticParams = serde_json::from_value(serde_json::json!({
        "records_per_second": SENSORS,
        "max_per_fetch": SENSORS,
        "alert_probability": 0.02,
        "seed": 11,
    }))
    .expect("synthetic params");
    let fetch = api_client::SyntheticSource::new(params)
        .fetch(None)
        .await
        .expect("synthetic fetch");
    let mut ndjson = String::new();
    for r in fetch.records.into_iter().take(SENSORS) {
        let mut r = r.to_value();
        if pad > 0 {
            r["notes"] = Value::String(random_text(&mut rng, pad));
        }
        ndjson.push_str(&r.to_string());
        ndjson.push('\n');
    }
    let features: Vec<Value> = (0..FIRES)
        .map(|i| {
            let confidence = ["low", "nominal", "high"][i % 3];
            let satellite = ["N20", "N21", "SNPP"][i % 3];
            let mut properties = serde_json::json!({
                "detection_id": format!("fire-{i:05}"),
                "frp": (rng.random_range(1.0..400.0f64) * 10.0).round() / 10.0,
                "confidence": confidence,
                "acq_date": "2026-11-26",
                "acq_time": format!("{:04}", rng.random_range(0..2400)),
                "satellite": satellite,
                "bright_ti4": (rng.random_range(290.0..367.0f64) * 100.0).round() / 100.0,
            });
            if pad > 0 {
                properties["notes"] = Value::String(random_text(&mut rng, pad));
            }
            serde_json::json!({
                "type": "Feature",
                "id": format!("fire-{i:05}"),
                "geometry": { "type": "Point", "coordinates": [
                    (rng.random_range(-124.0..-114.0f64) * 1e4).round() / 1e4,
                    (rng.random_range(32.5..42.0f64) * 1e4).round() / 1e4,
                ] },
                "properties": properties,
            })
        })
        .collect();
    let geojson = serde_json::json!({ "type": "FeatureCollection", "features": features });
    let sensors_path = b.dir.join(format!("sensors-{pad}.ndjson"));
    let fires_path = b.dir.join(format!("fires-{pad}.geojson"));
    std::fs::write(&sensors_path, ndjson).expect("write sensors");
    std::fs::write(&fires_path, geojson.to_string()).expect("write fires");
    let sources_yaml = format!(
        "{}{}",
        source_yaml("sensors", &sensors_path, "/station_id"),
        source_yaml("fires", &fires_path, "/properties/detection_id")
    );
    let cfg = b.config(&format!("sources:\n{sources_yaml}"));
    let mut records = Vec::new();
    for (id, key, n) in [
        ("sensors", "/station_id", SENSORS),
        ("fires", "/properties/detection_id", FIRES),
    ] {
        let source = Registry::builtin()
            .build(id, &cfg.sources[id])
            .expect("file source");
        let mut cursor: Option<Cursor> = None;
        let mut values = Vec::new();
        while values.len() < n {
            let f = source.fetch(cursor.as_ref()).await.expect("file fetch");
            values.extend(f.records);
            cursor = f.next_cursor;
        }
        let id: &'static str = if id == "sensors" { "sensors" } else { "fires" };
        for v in values.into_iter().take(n) {
            let key = v.pointer(key).and_then(|k| match k {
                Value::String(s) => Some(Bytes::from(s)),
                Value::Number(n) => Some(Bytes::from(n.to_string())),
                _ => None,
            });
            records.push(Rec {
                source: id,
                payload: v.bytes(),
                key,
            });
        }
    }
    // Interleave the two sources as the pipeline does (both run at once).
    records.sort_by_key(|r| r.payload.len() % 7);
    let mean = records.iter().map(|r| r.payload.len()).sum::<usize>() / records.len();
    Corpus {
        label: format!("~{mean} B"),
        sources_yaml,
        records,
    }
}

/// One measurement: records/s and CPU µs per record (this process).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Figure {
    pub(crate) rate: f64,
    pub(crate) cpu_us: f64,
}

struct Meter {
    t0: Instant,
    c0: f64,
}

impl Meter {
    fn start() -> Self {
        Self {
            t0: Instant::now(),
            c0: cpu_seconds(),
        }
    }
    fn stop(self, records: u64) -> Figure {
        let n = records.max(1) as f64;
        Figure {
            rate: n / self.t0.elapsed().as_secs_f64(),
            cpu_us: (cpu_seconds() - self.c0) / n * 1e6,
        }
    }
}

/// The two `file` sources alone: fetch until `n` records.
pub(crate) async fn sources_alone(b: &Bench, c: &Corpus, n: u64) -> Figure {
    let cfg = b.config(&format!("sources:\n{}", c.sources_yaml));
    let sources: Vec<Arc<dyn Source>> = ["sensors", "fires"]
        .iter()
        .map(|id| {
            Registry::builtin()
                .build(id, &cfg.sources[*id])
                .expect("source")
        })
        .collect();
    let mut cursors: Vec<Option<Cursor>> = vec![None, None];
    let meter = Meter::start();
    let mut got = 0u64;
    while got < n {
        for (s, cursor) in sources.iter().zip(cursors.iter_mut()) {
            let f = s.fetch(cursor.as_ref()).await.expect("fetch");
            got += f.records.len() as u64;
            *cursor = f.next_cursor;
        }
    }
    meter.stop(got)
}

/// `BENCH_SCHEMA=1`: the sensors' readings' contract (YAML, one line).
const SENSOR_SCHEMA: &str = r#"{ type: object, required: [station_id, sequence, timestamp, latitude, longitude, temperature_c], properties: { station_id: { type: string, pattern: '^sensor_\d+$' }, sequence: { type: integer, minimum: 0 }, timestamp: { type: string, pattern: '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}' }, latitude: { type: number, minimum: -90, maximum: 90 }, longitude: { type: number, minimum: -180, maximum: 180 }, temperature_c: { type: number }, humidity_pct: { type: number, minimum: 0, maximum: 100 }, wind_speed_ms: { type: number, minimum: 0 }, wind_direction_deg: { type: integer, minimum: 0, maximum: 360 }, pm25_ugm3: { type: number, minimum: 0 }, alert_id: { type: string }, severity: { type: string }, alert_type: { type: string }, notes: { type: string } } }"#;

/// `BENCH_SCHEMA=1`: the fire detections' contract (a GeoJSON point feature).
const FIRE_SCHEMA: &str = r#"{ type: object, required: [type, id, geometry, properties], properties: { type: { const: Feature }, id: { type: string, minLength: 1 }, geometry: { type: object, required: [type, coordinates], properties: { type: { const: Point }, coordinates: { type: array, minItems: 2, maxItems: 3, prefixItems: [ { type: number, minimum: -180, maximum: 180 }, { type: number, minimum: -90, maximum: 90 } ], items: { type: number } } } }, properties: { type: object, required: [detection_id, frp, confidence, acq_date, acq_time], properties: { detection_id: { type: string }, frp: { type: number, minimum: 0 }, confidence: { enum: [low, nominal, high] }, acq_date: { type: string, pattern: '^\d{4}-\d{2}-\d{2}$' }, acq_time: { type: string, pattern: '^\d{3,4}$' }, satellite: { type: string }, bright_ti4: { type: number }, notes: { type: string } } } } }"#;

fn pipeline_config(b: &Bench, c: &Corpus) -> StreamConfig {
    // `BENCH_SCHEMA=1`: a data contract on each source, as a user would write one for
    // these records (types, required fields, ranges, patterns, an enum); every record
    // passes, so the figure is the price of checking each one at enqueue.
    let mut sources = c.sources_yaml.clone();
    if std::env::var_os("BENCH_SCHEMA").is_some() {
        for (id, schema) in [("sensors", SENSOR_SCHEMA), ("fires", FIRE_SCHEMA)] {
            let head = format!("  {id}:\n");
            sources = sources.replace(&head, &format!("{head}    schema: {schema}\n"));
        }
    }
    // The queue's shipped bounds (10,000 records), unless `BENCH_QUEUE` gives others
    // (YAML, e.g. `queue_max_size: 200000`, this bench's setting until 2026-12-06: the
    // producer-bound pipeline then held 60–350 MB of cold records, and every payload
    // librdkafka copied was a cache miss — BENCHMARKS.md, "Record path").
    let queue = std::env::var("BENCH_QUEUE").unwrap_or_default();
    b.config(&format!(
        "throttling: {{ max_send_rate: 100000000 }}
{queue}
queue_overflow_strategy: block
sources:
{sources}"
    ))
}

/// The pipeline over `n` records after a 10 % warm-up, with `producer` (or Kafka).
pub(crate) async fn pipeline(
    b: &Bench,
    c: &Corpus,
    n: u64,
    producer: Option<Arc<dyn Producer>>,
) -> Figure {
    let mut builder = StreamManager::builder(pipeline_config(b, c));
    if let Some(p) = producer {
        builder = builder.producer(p);
    }
    let m = builder.start().await.expect("manager");
    let warm = n / 10;
    while delivered(&m).await < warm {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let d0 = delivered(&m).await;
    let meter = Meter::start();
    let target = d0 + n - warm;
    let mut d = d0;
    while d < target {
        tokio::time::sleep(Duration::from_millis(2)).await;
        d = delivered(&m).await;
    }
    let f = meter.stop(d - d0);
    if std::env::var_os("BENCH_STATS").is_some() {
        let q = m.get_metrics().await.queue;
        eprintln!(
            "queue at the end: {:?} records, {} bytes",
            q.len_by_priority, q.bytes
        );
    }
    m.shutdown(Duration::from_secs(30)).await;
    f
}

/// The pipeline with [`producer::NullProducer`] (acknowledges at once): its own cost.
pub(crate) async fn pipeline_null(b: &Bench, c: &Corpus, n: u64) -> Figure {
    pipeline(b, c, n, Some(Arc::new(producer::NullProducer))).await
}

/// Record `i` of the corpus as bare rdkafka sends it: the pipeline's five headers (a
/// fresh message id `id`, the source id and type, the priority, the ingestion time in
/// ms) and its key.
fn bare_record<'a>(
    c: &'a Corpus,
    i: u64,
    id: &'a str,
    ingested: &'a str,
) -> FutureRecord<'a, [u8], [u8]> {
    let r = &c.records[i as usize % c.records.len()];
    let headers = OwnedHeaders::new_with_capacity(5)
        .insert(Header {
            key: "message_id",
            value: Some(id.as_bytes()),
        })
        .insert(Header {
            key: "source_id",
            value: Some(r.source.as_bytes()),
        })
        .insert(Header {
            key: "source_type",
            value: Some(&b"file"[..]),
        })
        .insert(Header {
            key: "priority",
            value: Some(&b"normal"[..]),
        })
        .insert(Header {
            key: "ingested_at_ms",
            value: Some(ingested.as_bytes()),
        });
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(BARE_TOPIC)
        .payload(r.payload.as_ref())
        .headers(headers);
    if let Some(k) = &r.key {
        record = record.key(k.as_ref());
    }
    record
}

/// Hands `record` to librdkafka, waiting while its queue is full.
async fn send(p: &Bare, mut record: FutureRecord<'_, [u8], [u8]>) -> DeliveryFuture {
    loop {
        match p.send_result(record) {
            Ok(f) => return f,
            Err((_, back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Bare rdkafka: the corpus's records in order, the ingestion time taken once per 1,000
/// records as the pipeline takes it once per batch.
pub(crate) async fn bare(p: &Bare, c: &Corpus, n: u64) -> Figure {
    let meter = Meter::start();
    let mut futures = Vec::with_capacity(n as usize);
    let mut ingested = String::new();
    for i in 0..n {
        if i % 1000 == 0 {
            ingested = crate::now_ms().to_string();
        }
        let id = queue::MessageId::generate().to_hex();
        futures.push(send(p, bare_record(c, i, &id, &ingested)).await);
    }
    for f in futures {
        f.await.expect("delivery future").expect("delivered");
    }
    meter.stop(n)
}

/// Bare rdkafka's send → ack latency at `rate` records/s for `secs`: the floor the
/// pipeline's emit → ack latency is compared with (same producer settings and broker).
pub(crate) async fn bare_latency(
    p: &Bare,
    c: &Corpus,
    rate: f64,
    secs: f64,
    keyed: bool,
) -> Vec<f64> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(DeliveryFuture, Instant)>();
    let waiter = tokio::spawn(async move {
        let mut v = Vec::new();
        while let Some((f, at)) = rx.recv().await {
            if let Ok(Ok(_)) = f.await {
                v.push(at.elapsed().as_secs_f64());
            }
        }
        v
    });
    let total = (rate * secs) as u64;
    let start = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0u64;
    let ingested = crate::now_ms().to_string();
    while sent < total {
        interval.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
        while sent < due {
            let id = queue::MessageId::generate().to_hex();
            let mut record = bare_record(c, sent, &id, &ingested);
            if !keyed {
                record.key = None;
            }
            let f = send(p, record).await;
            let _ = tx.send((f, Instant::now()));
            sent += 1;
        }
    }
    drop(tx);
    waiter.await.expect("latency waiter")
}
