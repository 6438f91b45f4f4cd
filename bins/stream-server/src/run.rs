//! `run`: the service. Tracing, the metrics recorder, the embedded broker when asked,
//! the manager, the admin API, and signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::{PrefixLayer, Stack};
use stream_config::StreamConfig;
use stream_manager::StreamManager;

use crate::api::{router, AppState};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

fn install_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: log files and journald get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn install_metrics(namespace: &str) -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ])
        .context("while configuring histogram buckets")?
        .build_recorder();
    let handle = recorder.handle();
    Stack::new(recorder)
        .push(PrefixLayer::new(namespace))
        .install()
        .context("while installing the metrics recorder")?;
    Ok(handle)
}

/// Topics to create on the embedded broker: configured ones, plus every static topic
/// routing can name.
fn embedded_topics(cfg: &StreamConfig) -> Vec<(String, i32)> {
    let mut topics: Vec<(String, i32)> = cfg
        .topics
        .iter()
        .map(|(n, t)| (n.clone(), t.partitions as i32))
        .collect();
    let mut extra = vec![cfg.routing.fallback_topic.clone()];
    extra.extend(cfg.routing.custom_mappings.values().cloned());
    extra.extend(cfg.routing.content_rules.iter().map(|r| r.topic.clone()));
    extra.extend(cfg.routing.pattern_mappings.iter().map(|m| m.topic.clone()));
    extra.extend(cfg.sources.values().filter_map(|s| s.topic.clone()));
    for t in extra {
        if !t.contains('{') && !topics.iter().any(|(n, _)| *n == t) {
            topics.push((t, 4));
        }
    }
    topics
}

pub(crate) fn run(config_path: PathBuf, json_logs: bool) -> anyhow::Result<()> {
    let mut cfg = crate::load_checked(&config_path).map_err(anyhow::Error::msg)?;
    install_tracing(json_logs);
    let metrics = install_metrics(&cfg.server.metrics_namespace)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    rt.block_on(serve(config_path, &mut cfg, metrics))
}

async fn serve(
    config_path: PathBuf,
    cfg: &mut StreamConfig,
    metrics: PrometheusHandle,
) -> anyhow::Result<()> {
    let listen: SocketAddr = cfg
        .server
        .listen
        .parse()
        .context("while reading server.listen")?;
    let embedded = if cfg.kafka.is_embedded() {
        let broker = producer::EmbeddedBroker::start(&embedded_topics(cfg))
            .context("while starting the embedded Kafka broker")?;
        cfg.kafka.bootstrap_servers = broker.bootstrap_servers().to_owned();
        println!(
            "stream-server: embedded Kafka broker at {} (in-process; data is kept in memory)",
            cfg.kafka.bootstrap_servers
        );
        println!(
            "stream-server: consume with any Kafka client, e.g. bootstrap.servers={} topic={}",
            cfg.kafka.bootstrap_servers, cfg.routing.fallback_topic
        );
        Some(broker)
    } else {
        let outcomes = producer::ensure_topics(
            &producer::client_config(&cfg.kafka),
            &cfg.topics,
            cfg.kafka.compression_type,
            Duration::from_secs(15),
        )
        .await;
        match outcomes {
            Ok(o) => {
                for (topic, outcome) in o {
                    if let producer::TopicOutcome::Refused(why) = outcome {
                        tracing::error!(%topic, %why, "the broker refused to create a configured topic");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create configured topics; continuing (they may exist)")
            }
        }
        None
    };
    let manager = Arc::new(
        StreamManager::builder(cfg.clone())
            .start_jitter(Duration::from_secs(1))
            .start()
            .await
            .context("while starting the pipeline")?,
    );
    let state = Arc::new(AppState {
        manager: manager.clone(),
        metrics,
        token: cfg
            .server
            .admin_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        loader: crate::loader().with_source_types(manager.source_types()),
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("while binding the admin API to {listen}"))?;
    let addr = listener.local_addr()?;
    println!("stream-server: admin API on http://{addr} (health: /health, metrics: /metrics, API: /openapi.json)");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    wait_for_signals(&manager, &config_path).await?;
    println!("stream-server: shutting down: stopping sources, draining the queue into Kafka");
    manager.shutdown(SHUTDOWN_TIMEOUT).await;
    let _ = stop_tx.send(());
    let _ = server.await;
    println!("stream-server: stopped");
    // The process is exiting. Producer clients still held by finished tasks are dropped
    // only when the runtime shuts down, after this returns; an embedded broker dropped
    // here first made each of them log "all brokers are down" on every clean exit.
    std::mem::forget(embedded);
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signals(
    manager: &StreamManager,
    config_path: &std::path::Path,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                match crate::load_checked(config_path) {
                    Ok(mut next) => {
                        // The broker address in force stays (an embedded broker keeps its port).
                        next.kafka.bootstrap_servers = manager.config().kafka.bootstrap_servers.clone();
                        match manager.apply_config(next).await {
                            Ok(touched) => tracing::info!(?touched, "configuration reloaded (SIGHUP)"),
                            Err(e) => tracing::error!(error = %e, "reload refused; nothing changed"),
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "reload refused; nothing changed"),
                }
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_: &StreamManager, _: &std::path::Path) -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
