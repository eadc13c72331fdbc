//! The `lookout-agent` binary: command line, logging and signals around
//! [`lookout_agent::run`]: SIGTERM or SIGINT stops it, SIGHUP reads the
//! configuration file again.

use anyhow::Context;
use clap::{Parser, Subcommand};
use lookout_agent::config::AgentConfig;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Lookout's host agent: tails and rotates log files and ships them to the aggregator.
#[derive(Debug, Parser)]
#[command(name = "lookout-agent", version)]
struct Cli {
    /// The agent's configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the configuration (and that `journalctl` can read the
    /// journal, for `[journald]`) and exit: 0 if valid, 2 with the reason if not.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    lookout_shared::process::private_files();
    lookout_shared::process::init_logging();
    let Some(config_path) = cli.config else {
        eprintln!("lookout-agent: --config FILE is required (see --help)");
        return ExitCode::from(2);
    };
    let (config, compiled) = match AgentConfig::load(&config_path) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::CheckConfig)) {
        for warning in config.warnings() {
            eprintln!("warning: {}: {warning}", config_path.display());
        }
        if let Some(journald) = &compiled.journald
            && let Err(reason) = lookout_agent::sources::journald::check(journald)
        {
            eprintln!("{}: {reason}", config_path.display());
            return ExitCode::from(2);
        }
        println!("{}: configuration OK", config_path.display());
        return ExitCode::SUCCESS;
    }
    for warning in config.warnings() {
        tracing::warn!("{}: {warning}", config_path.display());
    }
    match serve(config, compiled, &config_path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: AgentConfig, compiled: lookout_agent::config::Compiled, file: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (shutdown, reloads) = {
        let _context = runtime.enter();
        (
            lookout_shared::process::shutdown_signal(),
            lookout_shared::process::reload_signal(),
        )
    };
    runtime.block_on(lookout_agent::run(config, compiled, file, shutdown, reloads))?;
    Ok(())
}
