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
///
/// Both handlers are installed when this is called, not when the future is
/// first polled: a SIGTERM that arrives during start-up (before the serving
/// loop awaits the future) would otherwise kill the process with the default
/// action instead of stopping it cleanly. Call it inside the runtime (after
/// `Runtime::enter`), before start-up begins.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut only), Err(err)) | (Err(err), Ok(mut only)) => {
                tracing::warn!("cannot watch for one of SIGINT and SIGTERM ({err}); stopping on the other");
                only.recv().await;
            }
            (Err(err), Err(_)) => {
                tracing::warn!("cannot watch for SIGINT or SIGTERM ({err}); stop the process with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}
