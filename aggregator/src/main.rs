//! The `lookout-aggregator` binary: CLI, logging and signals around
//! [`lookout_aggregator::run`].
//!
//! - `lookout-aggregator --config FILE` serves until SIGTERM or SIGINT;
//!   SIGHUP reads FILE again (tokens, TLS files, notifiers, rules).
//! - `lookout-aggregator check-config --config FILE` prints `config OK`, or the
//!   error (file, key, reason) and exits with status 2. It also reads the
//!   rules file and sets up the notifiers, so their errors show here too.
//! - `lookout-aggregator --config FILE backup --to DIR` copies the data
//!   folder into DIR (new or empty), also while the aggregator runs;
//!   `restore --from DIR` rebuilds the (absent or empty) data folder from
//!   such a copy after checking it (see [`lookout_aggregator::backup`]).
//! - `lookout-aggregator --config FILE archive list` prints the days
//!   `[archive]` holds; `archive restore --day D` stores day D's records
//!   again (with the aggregator stopped).
//! - `lookout-aggregator --config FILE user add [--admin] NAME` creates a web
//!   UI user (role viewer, or admin); `user passwd NAME` sets a new password;
//!   `user list`, `user remove NAME`. A password is read from stdin (one
//!   line) when stdin is not a terminal, else prompted for twice without echo.
//!
//! Logs go to stderr (`RUST_LOG`, default `info`). Once serving, one line
//! reads `lookout-aggregator listening on http://ADDR` with the bound address.

use anyhow::Context as _;

/// mimalloc instead of glibc's malloc: under a fleet's load glibc kept
/// some 40 % of the aggregator's heap as free memory it never gave back
/// (`malloc_trim` released 118 of 293 MB at 500 hosts).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use lookout_aggregator::alert::notify::Notifiers;
use lookout_aggregator::archive;
use lookout_aggregator::config::Config;
use lookout_aggregator::users::{Role, UserStore, secret};
use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};
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
    /// Copy the data folder (logs, metrics, alerts, users) into DIR, a new or
    /// empty folder; the aggregator may be running.
    Backup {
        /// Where the copy goes.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Rebuild the data folder (which must not exist, or be empty) from a
    /// backup, after checking every file of it.
    Restore {
        /// The backup folder.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// The `[archive]` of each day's logs: list the archived days, or store
    /// one again.
    Archive {
        #[command(subcommand)]
        action: ArchiveCommand,
    },
    /// Manage the web UI's users (stored in data_dir/users.sqlite).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// Print each archived day with its records, hosts and bytes.
    List,
    /// Make an archived day searchable again: its records are stored in
    /// today's partition with their ids and times (kept `logs_days` from
    /// now). Stop the aggregator first; restoring a day twice stores nothing twice.
    Restore {
        /// The day (YYYY-MM-DD, UTC), as `archive list` shows it.
        #[arg(long, value_name = "DAY")]
        day: jiff::civil::Date,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (role viewer, or admin with --admin). The password is read
    /// from stdin when it is not a terminal, else prompted for.
    Add {
        /// Give the user the admin role (silences, users, tokens).
        #[arg(long)]
        admin: bool,
        /// The login name (letters, digits, `.`, `_`, `@`, `-`).
        name: String,
    },
    /// Set a new password for a user (ends their sessions).
    Passwd {
        /// The login name.
        name: String,
    },
    /// List the users and their roles.
    List,
    /// Delete a user (ends their sessions).
    Remove {
        /// The login name.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    lookout_shared::process::private_files();
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
            Ok(config) if let Some(Err(err)) = config.archive.as_ref().map(archive::check) => {
                eprintln!("invalid configuration: {}: {err:#}", config_path.display());
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
        Some(Command::Backup { to }) => with_data_dir(&config_path, |data_dir| {
            let manifest = lookout_aggregator::backup::backup(data_dir, &to)?;
            println!(
                "backup of {} written to {}: {} files, {} bytes",
                data_dir.display(),
                to.display(),
                manifest.files.len(),
                manifest.bytes()
            );
            Ok(())
        }),
        Some(Command::Restore { from }) => with_data_dir(&config_path, |data_dir| {
            let manifest = lookout_aggregator::backup::restore(&from, data_dir)?;
            println!(
                "{} rebuilt from the backup {} (begun {}): {} files, {} bytes",
                data_dir.display(),
                from.display(),
                manifest.started,
                manifest.files.len(),
                manifest.bytes()
            );
            Ok(())
        }),
        Some(Command::Archive { action }) => with_config(&config_path, |config| archive(config, action)),
        Some(Command::User { action }) => with_data_dir(&config_path, |data_dir| manage_users(data_dir, action)),
        None => serve(&config_path),
    }
}

/// Runs `task` on the configured data folder: exit 0, 1 with the error, or
/// 2 for an invalid configuration.
fn with_data_dir(config_path: &Path, task: impl FnOnce(&Path) -> anyhow::Result<()>) -> ExitCode {
    with_config(config_path, |config| task(&config.data_dir))
}

/// Runs `task` with the configuration: exit 0, 1 with the error, or 2 for
/// an invalid configuration.
fn with_config(config_path: &Path, task: impl FnOnce(&Config) -> anyhow::Result<()>) -> ExitCode {
    match Config::load(config_path) {
        Ok(config) => match task(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            eprintln!("invalid configuration: {err}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

fn archive(config: &Config, action: ArchiveCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match action {
        ArchiveCommand::List => runtime.block_on(async {
            let settings = config
                .archive
                .as_ref()
                .context("the configuration has no [archive] section")?;
            let destination = archive::Destination::open(settings, false)?;
            println!("day\trecords\thosts\tbytes\tarchived at");
            for manifest in destination.manifests().await? {
                let bytes: u64 = manifest.objects.iter().map(|o| o.bytes).sum();
                println!(
                    "{}\t{}\t{}\t{bytes}\t{}",
                    manifest.day,
                    manifest.records,
                    manifest.objects.len(),
                    manifest.archived_at
                );
            }
            Ok(())
        }),
        ArchiveCommand::Restore { day } => {
            let restored = runtime.block_on(archive::restore_offline(config, day))?;
            println!(
                "{day} restored from {}: {} records, {} stored, {} already held",
                config.archive.as_ref().map_or("", |a| a.to.as_str()),
                restored.records,
                restored.stored,
                restored.already_held
            );
            Ok(())
        }
    }
}

fn manage_users(data_dir: &Path, action: UserCommand) -> anyhow::Result<()> {
    let users = UserStore::open(data_dir)?;
    match action {
        UserCommand::Add { admin, name } => {
            let role = if admin { Role::Admin } else { Role::Viewer };
            let password = read_new_password()?;
            users.add_user(&name, &password, role)?;
            println!("user `{name}` created (role {})", role.as_str());
        }
        UserCommand::Passwd { name } => {
            let password = read_new_password()?;
            users.set_password(&name, &password)?;
            println!("password of `{name}` changed; their sessions have ended");
        }
        UserCommand::List => {
            for user in users.list_users()? {
                let created = jiff::Timestamp::from_millisecond(user.created_ms)
                    .map(|time| time.to_string())
                    .unwrap_or_default();
                println!("{}\t{}\t{created}", user.name, user.role.as_str());
            }
        }
        UserCommand::Remove { name } => {
            users.remove_user(&name)?;
            println!("user `{name}` removed");
        }
    }
    Ok(())
}

/// A new password: one line of stdin when it is not a terminal (scripts,
/// `echo ... |`), else typed twice at a prompt without echo. Refused when
/// weak, before anything is stored.
fn read_new_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").context("cannot read the password")?;
        if let Some(problem) = secret::password_problem(&first) {
            anyhow::bail!("{problem}");
        }
        let second = rpassword::prompt_password("Repeat it: ").context("cannot read the password")?;
        anyhow::ensure!(first == second, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if let Some(problem) = secret::password_problem(&password) {
        anyhow::bail!("{problem}");
    }
    Ok(password)
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
    let (shutdown, reloads) = {
        let _context = runtime.enter();
        (
            lookout_shared::process::shutdown_signal(),
            lookout_shared::process::reload_signal(),
        )
    };
    match runtime.block_on(lookout_aggregator::run(config, config_path, shutdown, reloads)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
