//! `serve`: Kafka readied, the manager built, signal handlers installed, the admin API
//! bound, then signals awaited; shutdown drains and reports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use stream_config::StreamConfig;
use stream_manager::StreamManager;

use crate::api::{router, AppState};

pub(crate) async fn serve(
    config_path: PathBuf,
    mut cfg: StreamConfig,
    metrics: PrometheusHandle,
) -> anyhow::Result<()> {
    let listen: SocketAddr = cfg
        .server
        .listen
        .parse()
        .context("while reading server.listen")?;
    // Before anything can be signalled: a signal that arrives once the admin API
    // listens must find its handler (a SIGHUP used to kill a server still starting).
    let mut signals = Signals::install()?;
    let kafka = stream_manager::prepare_kafka(&mut cfg)
        .await
        .context("while preparing Kafka")?;
    if kafka.is_embedded() {
        if embedded_lag(&mut cfg) {
            println!(
                "stream-server: lag throttling watches no consumer group: the embedded broker \
                 cannot list them (name yours in throttling.consumer_groups)"
            );
        }
        println!(
            "stream-server: embedded Kafka broker at {} (in-process; data is kept in memory)",
            cfg.kafka.bootstrap_servers
        );
        println!(
            "stream-server: consume with any Kafka client, e.g. bootstrap.servers={} topic={}",
            cfg.kafka.bootstrap_servers, cfg.routing.fallback_topic
        );
    }
    if cfg.cluster.enabled && cfg.cluster.worker_id.is_empty() {
        cfg.cluster.worker_id = default_worker_id();
    }
    // The configuration moves into the manager (which keeps it): at 10,000 sources a
    // second copy held here for the process's life was ≈ 15 MB.
    let settings = cfg.server.clone();
    let roots = crate::file_roots(&cfg, &config_path);
    let manager = Arc::new(
        StreamManager::builder(cfg)
            .file_roots(roots)
            .start_jitter(Duration::from_secs(1))
            .topic_creator(kafka.topic_creator())
            .start()
            .await
            .context("while starting the pipeline")?,
    );
    manager
        .join_cluster()
        .context("while joining the worker group")?;
    tokio::spawn(metrics_upkeep(metrics.clone(), METRICS_UPKEEP));
    let state = Arc::new(AppState {
        manager: manager.clone(),
        metrics,
        token: settings.admin_token.as_ref().map(|t| t.expose().to_owned()),
        read_token: settings.read_token.as_ref().map(|t| t.expose().to_owned()),
        loader: crate::api_loader(&config_path).with_source_types(manager.source_types()),
        config_path: config_path.clone(),
        embedded: kafka.is_embedded(),
        missing_topics: kafka.missing_topics(),
        ready_cache: tokio::sync::Mutex::new(None),
        metrics_size: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("while binding the admin API to {listen}"))?;
    let addr = listener.local_addr()?;
    println!("stream-server: admin API on http://{addr} (health: /health, metrics: /metrics, API: /openapi.json)");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = crate::listener::Limits {
        header_read_timeout: stream_config::seconds(settings.header_read_timeout_seconds),
        max_connections: settings.max_connections,
    };
    let server = tokio::spawn(crate::listener::serve(
        listener,
        router(state),
        limits,
        stop_rx,
    ));
    signals
        .wait(&manager, &config_path, kafka.is_embedded())
        .await;
    println!("stream-server: shutting down: stopping sources, draining the queue into Kafka");
    let timeout = stream_config::seconds(settings.shutdown_timeout_seconds);
    let report = manager.shutdown(timeout).await;
    let _ = stop_tx.send(());
    let _ = server.await;
    println!(
        "stream-server: stopped ({} queued records at shutdown: {} sent, {} dead-lettered as `shutdown`)",
        report.queued,
        report.queued.saturating_sub(report.dead_lettered),
        report.dead_lettered
    );
    // The process is exiting. Producer clients still held by finished tasks are dropped
    // only when the runtime shuts down, after this returns; an embedded broker dropped
    // here first made each of them log "all brokers are down" on every clean exit.
    std::mem::forget(kafka);
    Ok(())
}

/// How often the Prometheus recorder's histogram samples are folded into its buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The recorder is built with `build_recorder`, which starts no upkeep task: without
/// one every histogram sample is kept until the next scrape of `/metrics` (a poll's
/// request duration and lateness: at 10,000 sources polled every second, 160 KB a second
/// of samples while nobody scrapes).
async fn metrics_upkeep(handle: PrometheusHandle, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// A new configuration that still says `bootstrap_servers: embedded` means the
/// in-process broker already running: its address stays (any other value is compared,
/// and a change refused until a restart).
pub(crate) fn keep_embedded_broker(
    next: &mut StreamConfig,
    manager: &StreamManager,
    embedded: bool,
) {
    if embedded && next.kafka.is_embedded() {
        next.kafka.bootstrap_servers = manager.config().kafka.bootstrap_servers.clone();
        embedded_lag(next);
    }
}

/// librdkafka's mock broker (the embedded one) answers no ListGroups request, so
/// discovering consumer groups (`consumer_groups` absent) fails on every reading: the
/// embedded broker watches no group unless the config names some. True when it changed
/// the config.
pub(crate) fn embedded_lag(cfg: &mut StreamConfig) -> bool {
    let discover = cfg.throttling.consumer_groups.is_none();
    if discover {
        cfg.throttling.consumer_groups = Some(Vec::new());
    }
    discover
}

/// SIGTERM/SIGINT (stop) and SIGHUP (reload the config file), installed once.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("while installing SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("while installing SIGINT")?,
            hup: signal(SignalKind::hangup()).context("while installing SIGHUP")?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> anyhow::Result<Self> {
        Ok(Self {})
    }

    /// Returns on SIGTERM or SIGINT; reloads the configuration on each SIGHUP.
    #[cfg(unix)]
    async fn wait(
        &mut self,
        manager: &Arc<StreamManager>,
        config_path: &std::path::Path,
        embedded: bool,
    ) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => {
                    // In a task of its own: a panic anywhere in a reload (checking it is
                    // already contained; applying it is not) ends that task, not this
                    // future, which would end the process without draining.
                    let (m, path) = (manager.clone(), config_path.to_owned());
                    let done = tokio::spawn(async move { reload(&m, &path, embedded).await });
                    if let Err(e) = done.await {
                        tracing::error!(error = %e, "a reload panicked; the service goes on");
                    }
                }
            }
        }
    }

    #[cfg(not(unix))]
    async fn wait(&mut self, _: &Arc<StreamManager>, _: &std::path::Path, _: bool) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(unix)]
async fn reload(manager: &StreamManager, config_path: &std::path::Path, embedded: bool) {
    match crate::load_checked(config_path) {
        Ok(mut next) => {
            crate::log_warnings(&stream_config::warnings(&next));
            keep_embedded_broker(&mut next, manager, embedded);
            match manager.apply_config(next).await {
                Ok(touched) => tracing::info!(?touched, "configuration reloaded (SIGHUP)"),
                Err(e) => tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "reload refused; nothing changed"
                ),
            }
        }
        Err(e) => {
            // Counted like a refused update (the file did not load or validate).
            metrics::counter!(stream_manager::CONFIG_UPDATES, "outcome" => "refused").increment(1);
            tracing::error!(error = %e, "reload refused; nothing changed")
        }
    }
}

/// A worker's default name in its group: the host name and the process id.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let host = if host.is_empty() { "worker" } else { &host };
    format!("{host}-{}", std::process::id())
}
