//! Process plumbing both binaries share: logging to stderr and the shutdown
//! signals of SPEC.md (SIGTERM, SIGINT).

use std::io::IsTerminal;

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
