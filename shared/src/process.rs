//! Process plumbing both binaries share: private files, logging to stderr,
//! the shutdown signals of docs/SPEC.md (SIGTERM, SIGINT) and its reload
//! signal (SIGHUP).

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

/// SIGHUP, which asks for the configuration to be read again (`systemctl
/// reload` sends it). Like [`shutdown_signal`], the handler is installed
/// when this is called, so that a SIGHUP during start-up does not kill the
/// process; call it inside the runtime, before start-up begins. `None`
/// (with a warning) when it cannot be watched.
pub fn reload_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(err) => {
            tracing::warn!("cannot watch for SIGHUP ({err}); a configuration change needs a restart");
            None
        }
    }
}

/// Waits for `shutdown`, calling `reload` at each SIGHUP that `reloads`
/// (from [`reload_signal`]) brings meanwhile, one at a time.
pub async fn until_shutdown(
    shutdown: impl std::future::Future<Output = ()>,
    mut reloads: Option<tokio::signal::unix::Signal>,
    mut reload: impl AsyncFnMut(),
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            Some(()) = async { reloads.as_mut()?.recv().await } => {
                tracing::info!("SIGHUP: reading the configuration again");
                reload().await;
            }
        }
    }
}
