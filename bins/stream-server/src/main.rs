//! `stream-server`: the stream manager service binary.
//!
//! `stream-server [run --config FILE]` runs the service (default
//! `config/stream_config.yaml`); `stream-server validate <file>` checks a configuration
//! and prints every problem; `stream-server print-config <file>` prints the effective
//! configuration (environment overrides applied, secrets redacted).

mod api;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use stream_config::Loader;

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

/// The one place the process environment reaches the configuration.
fn loader() -> Loader {
    Loader::new()
        .with_env(std::env::vars())
        .with_source_types(api_client::Registry::builtin().names())
}

/// Loads a file and also builds every source, so connector parameters are checked.
fn load_checked(file: &std::path::Path) -> Result<stream_config::StreamConfig, String> {
    let cfg = loader().load_file(file).map_err(|e| e.to_string())?;
    let registry = api_client::Registry::builtin();
    let errors: Vec<String> = cfg
        .sources
        .iter()
        .filter_map(|(id, src)| registry.build(id, src).err())
        .map(|e| format!("  {}: {e}", file.display()))
        .collect();
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(format!(
            "{}: {} source error(s)\n{}",
            file.display(),
            errors.len(),
            errors.join("\n")
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run {
        config: PathBuf::from("config/stream_config.yaml"),
    });
    match command {
        Command::Validate { file } => match load_checked(&file) {
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
        Command::Run { config } => match run::run(config, cli.log_format == LogFormat::Json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
