//! `lookout-agent`: the host agent of Lookout.
//!
//! It tails log files through every kind of rotation without losing or
//! duplicating a line, rotates the files it is told to manage, collects host
//! metrics, and ships both to the aggregator, spooling on disk while the
//! aggregator is away.
//!
//! Data flows one way:
//!
//! ```text
//! sources::file (tailer thread) ──► batch ──┐
//! sources::metrics (metrics thread) ────────┴─► sealer thread ──► spool ──► ship (tokio)
//!        ▲                                                                     │
//!        └──────────── checkpoint::AckTracker ◄──── acknowledgements ◄─────────┘
//! ```
//!
//! The only thing that flows back is acknowledgement: the tracker learns which
//! byte ranges the aggregator holds, and the checkpoint (what a restart resumes
//! from) never passes a byte that is not acknowledged. Metrics batches cover
//! no byte ranges; their acknowledgement only frees the spool.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod health;
pub mod rotate;
pub mod seal;
pub mod ship;
pub mod sources;
pub mod spool;

use crate::batch::BatchBuilder;
use crate::checkpoint::{AckTracker, CheckpointStore};
use crate::config::{AgentConfig, Compiled};
use crate::seal::SealerParts;
use crate::ship::{ShipStats, Shipper};
use crate::sources::SourceHealth;
use crate::sources::file::tailer::{Tailer, TailerParts};
use crate::sources::journald::JournalParts;
use crate::sources::metrics::{self, MetricsParts};
use crate::spool::Spool;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::watch;

/// How often delivery progress is saved.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Files written this long before the last checkpoint save still count as
/// possibly unread after a restart.
const RESUME_MARGIN: Duration = Duration::from_secs(5);
/// How long the last sending attempts may take after a stop was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file or folder of the state folder could not be used.
    #[error("{what} ({path}): {source}")]
    State {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ship::ClientError),
}

/// Runs the agent until `shutdown` completes, then flushes what was read,
/// lets in-flight batches finish for a few seconds and saves the checkpoints.
pub async fn run(
    config: AgentConfig,
    compiled: Compiled,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let state_error = |what, path: &PathBuf| {
        let path = path.clone();
        move |source| AgentError::State { what, path, source }
    };
    let state_dir = config.state_dir.clone();
    lookout_shared::process::private_dir(&state_dir)
        .map_err(state_error("cannot create the state folder", &state_dir))?;
    let (store, checkpoints) =
        CheckpointStore::open(&state_dir).map_err(state_error("cannot read the checkpoints", &state_dir))?;
    let store = Arc::new(store);
    let first_start = checkpoints.is_none();
    let acks = Arc::new(Mutex::new(AckTracker::from_checkpoints(
        checkpoints.unwrap_or_default(),
    )));
    let spool_dir = state_dir.join("spool");
    let (spool, leftovers) = Spool::open(&spool_dir, config.shipper.spool_max_bytes.bytes())
        .map_err(state_error("cannot open the spool", &spool_dir))?;
    let spool = Arc::new(spool);
    if !leftovers.is_empty() {
        tracing::info!(
            batches = leftovers.len(),
            "sending batches spooled by an earlier run first"
        );
    }
    let host = config.host_name();
    let Compiled {
        sources,
        metrics,
        journald,
    } = compiled;
    tracing::info!(%host, aggregator = %config.aggregator_url, sources = sources.len(), first_start, "lookout-agent starting");

    let stop = Arc::new(AtomicBool::new(false));
    let (wake_tx, wake_rx) = mpsc::sync_channel::<()>(1);
    let rescan = Arc::new(AtomicBool::new(true));
    let watch = sources::file::watch::file_watcher(wake_tx, Arc::clone(&rescan));
    let (batch_tx, batch_rx) = mpsc::sync_channel(2);
    let (entry_tx, entry_rx) = tokio::sync::mpsc::unbounded_channel();
    let file_health = Arc::new(SourceHealth::default());
    let journal_health = Arc::new(SourceHealth::default());
    let ship_stats = Arc::new(ShipStats::default());

    // Dropping `metrics_stop` ends the metrics thread's wait between collections.
    let (metrics_stop, metrics_stopped) = mpsc::channel::<()>();
    let metrics_thread = match metrics {
        Some(filters) => {
            let parts = MetricsParts {
                host: host.clone(),
                filters,
                health: vec![
                    Arc::clone(&file_health) as _,
                    Arc::clone(&journal_health) as _,
                    Arc::clone(&ship_stats) as _,
                    Arc::clone(&spool) as _,
                ],
                batches: batch_tx.clone(),
                stop: metrics_stopped,
            };
            let thread = std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || metrics::run(parts))
                .map_err(state_error("cannot start the metrics thread", &state_dir))?;
            Some(thread)
        }
        None => None,
    };
    let journal_thread = match journald {
        Some(journald) => {
            let parts = JournalParts {
                host: host.clone(),
                journald,
                acks: Arc::clone(&acks),
                checkpoints: Arc::clone(&store),
                batch: BatchBuilder::new(
                    host.clone(),
                    config.shipper.batch_max_bytes.bytes() as usize,
                    config.shipper.batch_max_wait.get(),
                ),
                batches: batch_tx.clone(),
                stop: Arc::clone(&stop),
                health: Arc::clone(&journal_health),
            };
            let thread = std::thread::Builder::new()
                .name("journald".into())
                .spawn(move || sources::journald::run(parts))
                .map_err(state_error("cannot start the journal thread", &state_dir))?;
            Some(thread)
        }
        None => None,
    };
    let tailer = Tailer::new(TailerParts {
        host: host.clone(),
        sources,
        acks: Arc::clone(&acks),
        checkpoints: Arc::clone(&store),
        first_start,
        rotate_wait: config.shipper.rotate_wait.get(),
        batch: BatchBuilder::new(
            host,
            config.shipper.batch_max_bytes.bytes() as usize,
            config.shipper.batch_max_wait.get(),
        ),
        batches: batch_tx,
        wake: wake_rx,
        rescan,
        watch,
        resumed_from: store.saved_at().map(|saved| saved - RESUME_MARGIN),
        stop: Arc::clone(&stop),
        health: Arc::clone(&file_health),
    });
    let tailer_thread = std::thread::Builder::new()
        .name("tailer".into())
        .spawn(move || tailer.run())
        .map_err(state_error("cannot start the tailer thread", &state_dir))?;
    let sealer_thread = {
        let parts = SealerParts {
            batches: batch_rx,
            spool: Arc::clone(&spool),
            stop: Arc::clone(&stop),
            spooled: entry_tx,
        };
        std::thread::Builder::new()
            .name("sealer".into())
            .spawn(move || seal::run(parts))
            .map_err(state_error("cannot start the sealer thread", &state_dir))?
    };

    let client = ship::http_client(&config)?;
    let shipper = Arc::new(Shipper {
        client,
        url: ship::ingest_url(&config.aggregator_url),
        token: config.token.clone(),
        max_in_flight: config.shipper.max_in_flight,
        spool: Arc::clone(&spool),
        acks: Arc::clone(&acks),
        stats: Arc::clone(&ship_stats),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shipping = tokio::spawn(shipper.run(leftovers, entry_rx, stop_rx));
    let checkpointing = {
        let acks = Arc::clone(&acks);
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_INTERVAL);
            loop {
                every.tick().await;
                save_checkpoint(&acks, &store).await;
            }
        })
    };

    shutdown.await;
    tracing::info!("stopping: flushing what was read");
    stop.store(true, Ordering::Relaxed);
    drop(metrics_stop);
    // The sealer ends once every sender of its channel is gone: the tailer's,
    // the journal's and the metrics thread's, so those are joined first.
    let joined = tokio::task::spawn_blocking(move || {
        let metrics = metrics_thread.map_or(Ok(()), |thread| thread.join());
        let journal = journal_thread.map_or(Ok(()), |thread| thread.join());
        (tailer_thread.join(), metrics, journal, sealer_thread.join())
    })
    .await;
    if !matches!(joined, Ok((Ok(_), Ok(()), Ok(()), Ok(())))) {
        tracing::warn!("the tailer, metrics, journal or sealer thread ended abnormally");
    }
    // Batches still queued get one attempt each; a request still running
    // after the grace is dropped (its batch stays spooled for the next start).
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut shipping).await.is_err() {
        shipping.abort();
        let _ = shipping.await;
    }
    checkpointing.abort();
    save_checkpoint(&acks, &store).await;
    tracing::info!(
        records_read =
            file_health.records_read.load(Ordering::Relaxed) + journal_health.records_read.load(Ordering::Relaxed),
        records_acked = ship_stats.records_acked.load(Ordering::Relaxed),
        spooled_bytes = spool.bytes(),
        "lookout-agent stopped"
    );
    Ok(())
}

async fn save_checkpoint(acks: &Arc<Mutex<AckTracker>>, store: &Arc<CheckpointStore>) {
    let (acks, store) = (Arc::clone(acks), Arc::clone(store));
    match tokio::task::spawn_blocking(move || store.save_from(&acks)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "cannot save the checkpoints"),
        Err(err) => tracing::error!(error = %err, "checkpoint task failed"),
    }
}
