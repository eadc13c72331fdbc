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
use crate::config::{AgentConfig, Compiled, CompiledJournald, CompiledMetrics, CompiledSource, ShipperConfig};
use crate::seal::SealerParts;
use crate::ship::{ShipStats, Shipper};
use crate::sources::SourceHealth;
use crate::sources::file::tailer::{Tailer, TailerParts};
use crate::sources::journald::JournalParts;
use crate::sources::metrics::{self, MetricsParts};
use crate::spool::Spool;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
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
/// At each of `reloads` (SIGHUP) it reads `file` again ([`Reloader`]).
pub async fn run(
    config: AgentConfig,
    compiled: Compiled,
    file: &Path,
    shutdown: impl Future<Output = ()>,
    reloads: Option<tokio::signal::unix::Signal>,
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
    let reload_health = Arc::new(ReloadHealth::default());

    let mut threads = SourceThreads {
        host: host.clone(),
        shipper: config.shipper.clone(),
        acks: Arc::clone(&acks),
        checkpoints: Arc::clone(&store),
        batches: batch_tx.clone(),
        health: vec![
            Arc::clone(&file_health) as _,
            Arc::clone(&journal_health) as _,
            Arc::clone(&ship_stats) as _,
            Arc::clone(&spool) as _,
            Arc::clone(&reload_health) as _,
        ],
        journal_health: Arc::clone(&journal_health),
        journal: None,
        metrics: None,
        retired: Vec::new(),
    };
    if let Some(filters) = metrics {
        threads
            .start_metrics(filters)
            .map_err(state_error("cannot start the metrics thread", &state_dir))?;
    }
    if let Some(journald) = journald {
        threads
            .start_journal(journald)
            .map_err(state_error("cannot start the journal thread", &state_dir))?;
    }
    let (reloaded_tx, reloaded_rx) = mpsc::channel();
    let tailer = Tailer::new(TailerParts {
        host: host.clone(),
        sources,
        reloaded: reloaded_rx,
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
        token: arc_swap::ArcSwap::from_pointee(config.token.clone()),
        max_in_flight: config.shipper.max_in_flight,
        spool: Arc::clone(&spool),
        acks: Arc::clone(&acks),
        stats: Arc::clone(&ship_stats),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shipping = tokio::spawn(Arc::clone(&shipper).run(leftovers, entry_rx, stop_rx));
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

    let mut reloader = Reloader {
        file: file.to_path_buf(),
        in_force: config.clone(),
        started_with: config,
        sources: reloaded_tx,
        shipper,
        threads,
        health: reload_health,
    };
    lookout_shared::process::until_shutdown(shutdown, reloads, async || {
        reloader.reload().await;
    })
    .await;
    tracing::info!("stopping: flushing what was read");
    stop.store(true, Ordering::Relaxed);
    let source_threads = reloader.threads.stop();
    // The sealer ends once every sender of its channel is gone: the tailer's,
    // the journal's, the metrics thread's and the reloader's, so those are
    // dropped or joined first.
    drop(reloader);
    let joined = tokio::task::spawn_blocking(move || {
        let sources = source_threads
            .into_iter()
            .map(|thread| thread.join())
            .all(|joined| joined.is_ok());
        (tailer_thread.join(), sources, sealer_thread.join())
    })
    .await;
    if !matches!(joined, Ok((Ok(_), true, Ok(())))) {
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

/// The journal and metrics threads, each stoppable on its own so that a
/// reload can start it again with new settings, and what starting one takes.
struct SourceThreads {
    host: String,
    shipper: ShipperConfig,
    acks: Arc<Mutex<AckTracker>>,
    checkpoints: Arc<CheckpointStore>,
    batches: mpsc::SyncSender<lookout_shared::wire::IngestBatch>,
    /// What the metrics thread reports.
    health: health::Parts,
    /// Kept across restarts of the journal thread, so its counts go on.
    journal_health: Arc<SourceHealth>,
    journal: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Dropping the sender ends the metrics thread's wait between collections.
    metrics: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    /// Threads a reload told to stop, joined at the agent's stop: one may
    /// wait on a full spool with its last batch, and a reload must not
    /// wait with it.
    retired: Vec<std::thread::JoinHandle<()>>,
}

impl SourceThreads {
    fn start_journal(&mut self, journald: CompiledJournald) -> io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let parts = JournalParts {
            host: self.host.clone(),
            journald,
            acks: Arc::clone(&self.acks),
            checkpoints: Arc::clone(&self.checkpoints),
            batch: BatchBuilder::new(
                self.host.clone(),
                self.shipper.batch_max_bytes.bytes() as usize,
                self.shipper.batch_max_wait.get(),
            ),
            batches: self.batches.clone(),
            stop: Arc::clone(&stop),
            health: Arc::clone(&self.journal_health),
        };
        let thread = std::thread::Builder::new()
            .name("journald".into())
            .spawn(move || sources::journald::run(parts))?;
        self.journal = Some((stop, thread));
        Ok(())
    }

    fn start_metrics(&mut self, filters: CompiledMetrics) -> io::Result<()> {
        let (stop, stopped) = mpsc::channel::<()>();
        let parts = MetricsParts {
            host: self.host.clone(),
            filters,
            health: self.health.clone(),
            batches: self.batches.clone(),
            stop: stopped,
        };
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || metrics::run(parts))?;
        self.metrics = Some((stop, thread));
        Ok(())
    }

    /// Tells the journal thread to stop; keeps it to be joined.
    fn retire_journal(&mut self) {
        if let Some((stop, thread)) = self.journal.take() {
            stop.store(true, Ordering::Relaxed);
            self.retired.push(thread);
        }
    }

    /// Tells the metrics thread to stop; keeps it to be joined.
    fn retire_metrics(&mut self) {
        if let Some((stop, thread)) = self.metrics.take() {
            drop(stop);
            self.retired.push(thread);
        }
    }

    /// Tells every thread to stop; returns them to be joined.
    fn stop(&mut self) -> Vec<std::thread::JoinHandle<()>> {
        self.retire_journal();
        self.retire_metrics();
        std::mem::take(&mut self.retired)
    }
}

/// Puts a changed configuration file in force ([`Reloader::reload`]).
struct Reloader {
    file: PathBuf,
    /// What the agent started with: what a reload cannot change is compared with it.
    started_with: AgentConfig,
    /// What the last applied reload (or the start) put in force.
    in_force: AgentConfig,
    /// The tailer takes new file sources from here.
    sources: mpsc::Sender<Vec<CompiledSource>>,
    shipper: Arc<Shipper>,
    threads: SourceThreads,
    health: Arc<ReloadHealth>,
}

/// Whether the last reload was refused: `agent.config_reload_ok` (1, also
/// before any; 0 after a refusal), so that an alert rule can say that an
/// agent runs on an older configuration than its file (such as the old
/// token during a rotation).
#[derive(Debug, Default)]
struct ReloadHealth {
    refused: AtomicBool,
}

impl health::ReportsHealth for ReloadHealth {
    fn report(&self, report: &mut dyn FnMut(&'static str, f64)) {
        report(
            "agent.config_reload_ok",
            if self.refused.load(Ordering::Relaxed) { 0.0 } else { 1.0 },
        );
    }
}

impl Reloader {
    /// Reads the file again and puts in force its `[[logs]]` sources (the
    /// tailer keeps the files that stay named where they were), its
    /// `[journald]` and `[metrics]` settings (their thread starts again,
    /// the journal from its checkpoint) and its `token`, without losing a
    /// line. An invalid file is refused with its error and nothing changes.
    /// Settings that only a restart changes are named in a warning.
    /// Returns whether the file was put in force.
    async fn reload(&mut self) -> bool {
        let file = self.file.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let (config, compiled) = AgentConfig::load(&file).map_err(|err| err.to_string())?;
            if let Some(journald) = &compiled.journald {
                sources::journald::check(journald).map_err(|reason| format!("{}: {reason}", file.display()))?;
            }
            Ok::<_, String>((config, compiled))
        })
        .await
        .unwrap_or_else(|err| Err(err.to_string()));
        let (newer, compiled) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::error!("configuration not reloaded, the one in force stays: {err}");
                self.health.refused.store(true, Ordering::Relaxed);
                return false;
            }
        };
        for warning in newer.warnings() {
            tracing::warn!("{}: {warning}", self.file.display());
        }
        let restarted = match self.restart_threads(&newer, compiled.journald, compiled.metrics) {
            Ok(restarted) => restarted,
            Err(err) => {
                // The old thread is stopped and the new one could not start:
                // nothing to fall back to but the next reload or a restart.
                tracing::error!("configuration only partly reloaded: cannot start a source thread: {err}");
                return false;
            }
        };
        if self.sources.send(compiled.sources).is_err() {
            tracing::error!("configuration only partly reloaded: the tailer has stopped");
            return false;
        }
        self.shipper.token.store(Arc::new(newer.token.clone()));
        self.health.refused.store(false, Ordering::Relaxed);
        tracing::info!(
            sources = newer.logs.len(),
            restarted = restarted.join(", "),
            "configuration reloaded: file sources, journal, metrics and token are in force"
        );
        let waiting = self.started_with.restart_needed(&newer);
        if !waiting.is_empty() {
            tracing::warn!(
                "these settings changed but take effect only at a restart: {}",
                waiting.join(", ")
            );
        }
        self.in_force = newer;
        true
    }

    /// Starts the journal and metrics threads again where their settings
    /// changed; returns which.
    /// The new thread starts at once, while the old one hands over its
    /// last batch: the journal's resumes from the acknowledged cursor, and
    /// what both send twice the aggregator stores once (same record ids).
    fn restart_threads(
        &mut self,
        newer: &AgentConfig,
        journald: Option<CompiledJournald>,
        metrics: Option<CompiledMetrics>,
    ) -> io::Result<Vec<&'static str>> {
        let mut restarted = Vec::new();
        if newer.journald != self.in_force.journald {
            self.threads.retire_journal();
            if let Some(journald) = journald {
                self.threads.start_journal(journald)?;
            }
            restarted.push("journald");
        }
        if newer.metrics != self.in_force.metrics {
            self.threads.retire_metrics();
            if let Some(filters) = metrics {
                self.threads.start_metrics(filters)?;
            }
            restarted.push("metrics");
        }
        Ok(restarted)
    }
}

async fn save_checkpoint(acks: &Arc<Mutex<AckTracker>>, store: &Arc<CheckpointStore>) {
    let (acks, store) = (Arc::clone(acks), Arc::clone(store));
    match tokio::task::spawn_blocking(move || store.save_from(&acks)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "cannot save the checkpoints"),
        Err(err) => tracing::error!(error = %err, "checkpoint task failed"),
    }
}
