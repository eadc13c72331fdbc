//! The `lookout-aggregator` binary: CLI, logging and signals around
//! [`lookout_aggregator::run`].
//!
//! - `lookout-aggregator --config FILE` serves until SIGTERM or SIGINT.
//! - `lookout-aggregator check-config --config FILE` prints `config OK`, or the
//!   error (file, key, reason) and exits with status 2. It also reads the
//!   rules file and sets up the notifiers, so their errors show here too.
//!
//! Logs go to stderr (`RUST_LOG`, default `info`). Once serving, one line
//! reads `lookout-aggregator listening on http://ADDR` with the bound address.

use clap::{Parser, Subcommand};
use lookout_aggregator::alert::notify::Notifiers;
use lookout_aggregator::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status for an invalid configuration (also clap's for bad arguments).
const EXIT_INVALID_CONFIG: u8 = 2;

/// Lookout's central aggregator: ingests, indexes and searches logs.
#[derive(Parser)]
#[command(name = "lookout-aggregator", version)]
struct Cli {
    /// The configuration file (aggregator.toml).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration file: prints `config OK`, or the error and exits with 2.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(config_path) = cli.config else {
        eprintln!("error: --config FILE is required (see --help)");
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    match cli.command {
        Some(Command::CheckConfig) => match Config::load(&config_path) {
            Ok(config) if let Err(err) = Notifiers::from_config(&config) => {
                eprintln!("invalid configuration: {}: {err}", config_path.display());
                ExitCode::from(EXIT_INVALID_CONFIG)
            }
            Ok(_) => {
                println!("config OK");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("invalid configuration: {err}");
                ExitCode::from(EXIT_INVALID_CONFIG)
            }
        },
        None => serve(&config_path),
    }
}

fn serve(config_path: &std::path::Path) -> ExitCode {
    lookout_shared::process::init_logging();
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(err) => {
            tracing::error!("invalid configuration: {err}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lookout_aggregator::run(
        config,
        lookout_shared::process::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
