//! Process plumbing both binaries share: private files, logging to stderr
//! and the shutdown signals of docs/SPEC.md (SIGTERM, SIGINT).

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Makes every file and folder the process creates from now on private to
/// its owner (umask 077): checkpoints, spools, indexes and SQLite files hold
/// log content and secrets. Call first thing in `main`.
pub fn private_files() {
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
}

/// Creates `dir` (with its parents) if needed and makes it `0700`, also when
/// it existed with wider permissions.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` (default `info`),
/// with colours only when stderr is a terminal.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        Err(err) => {
            tracing::warn!("cannot watch for SIGTERM ({err}); stopping on SIGINT only");
            let _ = interrupt.await;
        }
    }
}
