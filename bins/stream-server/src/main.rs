//! `stream-server`: the stream manager service binary.
//!
//! `stream-server validate <file>` checks a configuration and prints every problem;
//! `stream-server print-config <file>` prints the effective configuration (environment
//! overrides applied, secrets redacted).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use stream_config::Loader;

/// Connector types the server knows. The connector registry (api-client) becomes the
/// source of this list once it exists.
const SOURCE_TYPES: &[&str] = &[
    "http_json",
    "noaa_weather",
    "nasa_firms",
    "usgs_earthquakes",
    "airnow",
    "purpleair",
    "synthetic",
    "file",
];

#[derive(Debug, Parser)]
#[command(
    name = "stream-server",
    version,
    about = "Moves records from HTTP APIs into Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Run {
        /// Configuration file (YAML or JSON).
        #[arg(long, default_value = "config/stream_config.yaml")]
        config: PathBuf,
    },
    /// Check a configuration file: prints `ok` or every problem; exit code 0 or 1.
    Validate {
        /// Configuration file (YAML or JSON).
        file: PathBuf,
    },
    /// Print the effective configuration (overrides applied, secrets redacted).
    PrintConfig {
        /// Configuration file (YAML or JSON).
        file: PathBuf,
    },
}

fn loader() -> Loader {
    Loader::new()
        .with_env(std::env::vars())
        .with_source_types(SOURCE_TYPES.iter().copied())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run {
        config: PathBuf::from("config/stream_config.yaml"),
    });
    match command {
        Command::Validate { file } => match loader().load_file(&file) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::PrintConfig { file } => match loader().load_file(&file) {
            Ok(cfg) => {
                print!("{}", stream_config::redacted_yaml(&cfg));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: PathBuf) -> anyhow::Result<()> {
    let _cfg = loader()
        .load_file(&config)
        .with_context(|| format!("while loading {}", config.display()))?;
    anyhow::bail!(
        "the service itself is not built yet: only `validate` and `print-config` work in this version"
    )
}
