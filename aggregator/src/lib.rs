//! `lookout-aggregator`: the central side of Lookout.
//!
//! Agents POST batches of log records and host metric samples; the aggregator
//! stores each record exactly once in a tantivy index (one per UTC ingest
//! day), each sample once in SQLite, and answers only when the batch is
//! durable, so an agent can advance its checkpoint and never lose or duplicate
//! a line. Engineers then search, chart and page through the logs, and chart
//! hosts' metrics, over the read API, and on-call engineers are told by
//! email and webhook when a host crosses a threshold or its logs fill with errors.
//!
//! Data flows one way:
//! [`http`] → [`ingest`] (decode, validate, enrich) → [`metricstore`] (SQLite
//! writer thread, roll-ups), then [`store`] (log writer thread, day partitions)
//! → [`http`] read API. [`alert`] evaluates rules over both stores and sends
//! notifications through its own SQLite outbox. [`retention`] deletes old
//! partitions and samples, [`metrics`] counts what happens, [`config`] reads
//! `aggregator.toml` (and the rules file).
//!
//! [`Aggregator::start`] runs everything in-process (tests use it with port 0);
//! the binary adds the CLI, logging and signal handling around [`run`].

#![warn(missing_docs)]

pub mod alert;
pub mod config;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod metricstore;
pub mod retention;
pub mod store;
pub mod writer_thread;

use alert::notify::Notifiers;
use alert::state::{AlertStore, Policy};
use anyhow::Context as _;
use config::Config;
use metrics::Metrics;
use metricstore::MetricStore;
use metricstore::writer::MetricWriter;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use store::LogStore;
use store::writer::LogWriter;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running aggregator: HTTP server, writer threads and background tasks.
pub struct Aggregator {
    addr: SocketAddr,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    writer: LogWriter,
    metric_writer: MetricWriter,
}

impl Aggregator {
    /// Opens the stores, starts the writers and serves on `config.listen`.
    /// Logs `lookout-aggregator listening on http://ADDR` with the bound
    /// address (the real port when `listen` has port 0).
    pub async fn start(config: Config) -> anyhow::Result<Aggregator> {
        let metrics = Arc::new(Metrics::default());
        let data_dir = config.data_dir.clone();
        let (store, payloads) = tokio::task::spawn_blocking(move || LogStore::open(&data_dir)).await??;
        let writer = LogWriter::spawn(store.clone(), payloads, metrics.clone())?;
        let data_dir = config.data_dir.clone();
        let metrics_days = config.retention.metrics_days;
        let counters = metrics.clone();
        let (metric_writer, metric_store) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let metric_writer = MetricWriter::spawn(&data_dir, metrics_days, counters)?;
            let metric_store = MetricStore::open(&data_dir).context("cannot open the metric store for reading")?;
            Ok((metric_writer, metric_store))
        })
        .await??;
        let data_dir = config.data_dir.clone();
        let alert_store = Arc::new(tokio::task::spawn_blocking(move || AlertStore::open(&data_dir)).await??);
        let notifiers = Notifiers::from_config(&config).context("cannot set up the notifiers")?;
        let rules = Arc::new(config.rules.clone());
        let rule_statuses = alert::engine::RuleStatuses::default();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let store_for_alerts = store.clone();
        let metric_store_for_alerts = metric_store.clone();
        let state = http::AppState {
            store,
            writer: writer.handle(),
            metric_store,
            metric_writer: metric_writer.handle(),
            metrics,
            ingest: config.ingest,
            alerts: http::alerts::AlertsApi {
                store: alert_store.clone(),
                rules: rules.clone(),
                statuses: rule_statuses.clone(),
            },
        };
        let app = http::router(state, &config.auth);
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // Either an explicit stop or the handle being dropped.
                    let _ = stopped.await;
                })
                .await
        });
        let days = &config.retention;
        let alerting = &config.alerting;
        let engine = alert::engine::spawn(alert::engine::EngineParts {
            rules,
            store: alert_store,
            logs: store_for_alerts,
            metrics: metric_store_for_alerts,
            metric_commits: metric_writer.handle().subscribe_commits(),
            notifiers,
            policy: Policy {
                group_wait: alerting.group_wait.get(),
                group_interval: alerting.group_interval.get(),
                repeat_interval: alerting.repeat_interval.get(),
                external_url: config.external_url(),
            },
            evaluation_interval: alerting.evaluation_interval.get(),
            statuses: rule_statuses,
        });
        let mut background = vec![
            tokio::spawn(retention::run(writer.handle(), days.logs_days)),
            tokio::spawn(retention::run_metrics(
                metric_writer.handle(),
                days.metrics_days,
                days.metrics_days.max(days.logs_days),
            )),
            tokio::spawn(metricstore::writer::flush_touches(metric_writer.handle())),
        ];
        background.extend(engine);
        tracing::info!("lookout-aggregator listening on http://{addr}");
        Ok(Aggregator {
            addr,
            stop_server,
            server,
            background,
            writer,
            metric_writer,
        })
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets in-flight requests finish (their
    /// batches commit), then stops the writers.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Live-tail streams end only when their feed closes; close it first,
        // or graceful shutdown would wait for every open tail.
        self.writer.end_live_tails();
        let _ = self.stop_server.send(());
        let served = self.server.await;
        for task in &self.background {
            task.abort();
        }
        let stopped = self.writer.shutdown().await;
        let metrics_stopped = self.metric_writer.shutdown().await;
        served?.context("the HTTP server failed")?;
        stopped?;
        metrics_stopped?;
        tracing::info!("lookout-aggregator stopped");
        Ok(())
    }
}

/// Serves until `shutdown` completes, then stops cleanly.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let aggregator = Aggregator::start(config).await?;
    shutdown.await;
    tracing::info!("shutting down: finishing requests, then committing");
    aggregator.stop().await
}
