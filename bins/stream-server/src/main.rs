//! `stream-server`: the stream manager service binary. Parses arguments, loads the
//! configuration, installs tracing and the metrics recorder, builds the manager and
//! serves (`run.rs`); the admin API is `api.rs`.
//!
//! Every command takes the configuration file the same way, positionally or as
//! `--config FILE` (default `config/stream_config.yaml`):
//! `stream-server [run] [FILE]` runs the service; `stream-server validate FILE` checks a
//! configuration and prints every problem; `stream-server print-config FILE` prints the
//! effective configuration (environment overrides applied, secrets redacted).

mod api;
mod listener;
mod openapi;
mod run;
mod summary;
mod ui;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::{PrefixLayer, Stack};
use stream_config::{Loader, StreamConfig};

// Opt-in allocator: `cargo build --release -p stream-server --features mimalloc`. In
// `BENCHMARKS.md` it moved ~48 % more records per CPU second but held ~12 MB more idle
// and ~20 MB more at peak under overflow than glibc's malloc, the default.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "stream-server",
    version,
    about = "Moves records from HTTP APIs into Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Run(ConfigFile),
    /// Check a configuration file: prints `ok` or every problem; exit code 0 or 1.
    Validate(ConfigFile),
    /// Print the effective configuration (overrides applied, secrets redacted).
    PrintConfig(ConfigFile),
}

/// The configuration file: `FILE` or `--config FILE`.
#[derive(Debug, Args, Default)]
struct ConfigFile {
    /// Configuration file (YAML or JSON) [default: config/stream_config.yaml].
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// The same, as an option.
    #[arg(long = "config", value_name = "FILE", conflicts_with = "file")]
    config: Option<PathBuf>,
}

impl ConfigFile {
    fn path(self) -> PathBuf {
        self.file
            .or(self.config)
            .unwrap_or_else(|| PathBuf::from("config/stream_config.yaml"))
    }
}

/// The one place the process environment reaches the configuration.
pub(crate) fn loader() -> Loader {
    Loader::new()
        .with_env(std::env::vars())
        .with_source_types(stream_manager::source_types())
        .with_ingestion_modes(stream_manager::ingestion_modes())
        .with_builtin_schemas(stream_manager::builtin_schemas())
}

/// The loader for `PUT /config` bodies: a body may interpolate only the variables the
/// config file on disk already names (`${NAME}`), plus the `STREAM__…` and `KAFKA_…`
/// overrides. Otherwise `${ANY_VAR}` in a request would read the server's whole
/// environment out through `GET /config`.
pub(crate) fn api_loader(config_file: &Path) -> Loader {
    let text = std::fs::read_to_string(config_file).unwrap_or_default();
    let named: std::collections::BTreeSet<String> = text
        .split("${")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect();
    let env = std::env::vars().filter(|(k, _)| {
        named.contains(k)
            || k.starts_with("STREAM__")
            || k == "KAFKA_BOOTSTRAP_SERVERS"
            || k == "KAFKA_COMPRESSION_TYPE"
    });
    Loader::new()
        .with_env(env)
        .with_source_types(stream_manager::source_types())
        .with_ingestion_modes(stream_manager::ingestion_modes())
        .with_builtin_schemas(stream_manager::builtin_schemas())
}

/// The folders `file` sources may read: `file_roots`, or the config file's folder and
/// `data/`.
pub(crate) fn file_roots(cfg: &StreamConfig, config_file: &Path) -> Vec<PathBuf> {
    if !cfg.file_roots.is_empty() {
        return cfg.file_roots.iter().map(PathBuf::from).collect();
    }
    let dir = config_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    vec![dir, PathBuf::from("data")]
}

/// Loads a file and also builds every source, so connector parameters are checked.
pub(crate) fn load_checked(file: &Path) -> Result<StreamConfig, String> {
    let cfg = loader().load_file(file).map_err(|e| e.to_string())?;
    let roots = file_roots(&cfg, file);
    let errors = stream_manager::check_sources(&cfg, Some(&roots));
    if errors.is_empty() {
        return Ok(cfg);
    }
    Err(format!(
        "{}: {} source error(s)\n{}",
        file.display(),
        errors.len(),
        errors
            .iter()
            .map(|e| format!("  {}: {e}", file.display()))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// Logs what is valid but probably not meant (at start and on every reload).
pub(crate) fn log_warnings(warnings: &[stream_config::Diagnostic]) {
    for w in warnings {
        tracing::warn!(key = %w.path, hint = w.hint.as_deref().unwrap_or(""), "{}", w.message);
    }
}

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

/// The Prometheus recorder, every metric name prefixed with `namespace` and described.
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
    stream_manager::describe_metrics();
    listener::describe_metrics();
    Ok(handle)
}

fn run(file: PathBuf, json_logs: bool) -> anyhow::Result<()> {
    let cfg = load_checked(&file).map_err(anyhow::Error::msg)?;
    install_tracing(json_logs);
    log_warnings(&stream_config::warnings(&cfg));
    let metrics = install_metrics(&cfg.server.metrics_namespace)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    rt.block_on(run::serve(file, cfg, metrics))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run(ConfigFile::default()));
    let result = match command {
        Command::Validate(file) => {
            let path = file.path();
            load_checked(&path).map(|cfg| {
                for w in stream_config::warnings(&cfg) {
                    eprintln!("{}: warning: {w}", path.display());
                }
                println!("ok");
            })
        }
        Command::PrintConfig(file) => loader()
            .load_file(file.path())
            .map(|cfg| print!("{}", stream_config::redacted_yaml(&cfg)))
            .map_err(|e| e.to_string()),
        Command::Run(file) => {
            run(file.path(), cli.log_format == LogFormat::Json).map_err(|e| format!("error: {e:#}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
