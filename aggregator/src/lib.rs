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
//! `aggregator.toml` (and the rules file). [`backup`] copies a data folder
//! while it is in use, and rebuilds one from the copy. [`archive`] writes
//! each day's logs to a folder or S3 bucket before retention deletes them,
//! and stores an archived day again. [`remote_write`]
//! sends every stored metric sample to a Prometheus-compatible receiver,
//! through [`outbound`], the client every request to another system uses.
//! [`sqlite`] opens the three SQLite stores one way. [`users`] holds the
//! web UI's users and login sessions, which [`http::access`] checks;
//! [`tls`] serves HTTPS when `[tls]` is set.
//!
//! [`Aggregator::start`] runs everything in-process (tests use it with port 0);
//! the binary adds the CLI, logging and signal handling around [`run`].
//! [`Aggregator::reload`] puts a changed configuration's tokens, TLS
//! certificates, notifiers and rules in force without a restart (SIGHUP).

#![warn(missing_docs)]

pub mod alert;
pub mod archive;
pub mod backup;
pub mod config;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod metricstore;
pub mod outbound;
pub mod query;
pub mod receivers;
pub mod remote_write;
pub mod retention;
pub mod sqlite;
pub mod store;
pub mod tls;
pub mod users;
pub mod writer_thread;

/// The crate both binaries share (wire types, line parsing, config loading),
/// for tools built on this one, such as the fuzz targets.
pub use lookout_shared;

use alert::notify::Notifiers;
use alert::policy::Policy;
use alert::state::AlertStore;
use anyhow::Context as _;
use config::Config;
use metrics::Metrics;
use metricstore::MetricStore;
use metricstore::writer::MetricWriter;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::LogStore;
use store::writer::LogWriter;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use users::{SessionPolicy, UserStore};

/// How often expired sessions are deleted.
const SESSION_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// How long a stop waits for open connections before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A running aggregator: HTTP server, writer threads and background tasks.
pub struct Aggregator {
    addr: SocketAddr,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    patterns: Arc<ingest::patterns::PatternBook>,
    writer: LogWriter,
    metric_writer: MetricWriter,
    syslog: Option<receivers::syslog::listen::SyslogServer>,
    metrics: Arc<Metrics>,
    /// What a reload replaces.
    rules: Arc<alert::ruleset::RuleSet>,
    access: Arc<http::access::Access>,
    https: Option<axum_server::tls_rustls::RustlsConfig>,
    /// The configuration started with: what a reload cannot change is compared with it.
    started_with: Config,
}

impl Aggregator {
    /// Opens the stores, starts the writers and serves on `config.listen`
    /// (HTTPS when `[tls]` is set). Logs `lookout-aggregator listening on
    /// http://ADDR` (or `https://ADDR`) with the bound address (the real port
    /// when `listen` has port 0).
    ///
    /// On a first start with no user at all, creates the user `admin` with
    /// a generated password and prints it once to stderr (not to the log,
    /// which may be shipped elsewhere).
    pub async fn start(config: Config) -> anyhow::Result<Aggregator> {
        let metrics = Arc::new(Metrics::default());
        lookout_shared::process::private_dir(&config.data_dir)
            .with_context(|| format!("cannot create the data folder {}", config.data_dir.display()))?;
        let data_dir = config.data_dir.clone();
        let (store, payloads) = tokio::task::spawn_blocking(move || LogStore::open(&data_dir)).await??;
        let writer = LogWriter::spawn(
            store.clone(),
            payloads,
            metrics.clone(),
            &config.data_dir,
            config.ingest.commit_interval.get(),
        )?;
        let data_dir = config.data_dir.clone();
        let metrics_days = config.retention.metrics_days;
        let max_series_per_host = config.ingest.max_series_per_host;
        let counters = metrics.clone();
        let feed = config.export.remote_write.as_ref().map(|_| {
            Arc::new(metricstore::feed::SampleFeed::new(
                remote_write::FEED_CAPACITY,
                metrics.clone(),
            ))
        });
        let writer_feed = feed.clone();
        let (metric_writer, metric_store) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let metric_writer =
                MetricWriter::spawn(&data_dir, metrics_days, max_series_per_host, counters, writer_feed)?;
            let metric_store = MetricStore::open(&data_dir, metric_writer.recent())
                .context("cannot open the metric store for reading")?;
            Ok((metric_writer, metric_store))
        })
        .await??;
        let data_dir = config.data_dir.clone();
        let alert_store = Arc::new(
            tokio::task::spawn_blocking(move || {
                let file = data_dir.join(alert::state::FILE_NAME);
                AlertStore::open(&data_dir).with_context(|| format!("cannot open the alert store {}", file.display()))
            })
            .await??,
        );
        let notifiers = Notifiers::from_config(&config).context("cannot set up the notifiers")?;
        let archiver = match &config.archive {
            Some(archive) => {
                let destination = archive::Destination::open(archive, true)?;
                tracing::info!(
                    to = destination.shown(),
                    after_days = archive.after_days,
                    "archiving each day's logs before retention deletes them"
                );
                Some(archive::Archiver::new(
                    destination,
                    store.clone(),
                    archive.after_days,
                    metrics.clone(),
                ))
            }
            None => None,
        };
        let rules = {
            let (configured, store) = (config.rules.clone(), alert_store.clone());
            let min_interval = config.alerting.evaluation_interval.get();
            Arc::new(
                tokio::task::spawn_blocking(move || {
                    alert::ruleset::RuleSet::open(configured, notifiers, min_interval, store)
                })
                .await?
                .context("cannot read the rules made in the app")?,
            )
        };
        let rule_statuses = alert::engine::RuleStatuses::default();
        let data_dir = config.data_dir.clone();
        let users = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let file = data_dir.join(users::USERS_FILE);
            let users = UserStore::open(&data_dir)
                .with_context(|| format!("cannot open the user database {}", file.display()))?;
            if let Some(password) = users.create_first_admin()? {
                print_first_admin(&password);
            }
            Ok(users)
        })
        .await??;
        let tls = match &config.tls {
            Some(tls) => Some(tls::server_config(tls)?),
            None => None,
        };
        let policy = SessionPolicy::from(&config.sessions);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let store_for_alerts = store.clone();
        let metric_store_for_alerts = metric_store.clone();
        let field_names = Arc::new(ingest::field_names::FieldNames::default());
        let patterns = {
            let (data_dir, enabled) = (config.data_dir.clone(), config.ingest.patterns);
            Arc::new(
                tokio::task::spawn_blocking(move || ingest::patterns::PatternBook::open(&data_dir, enabled)).await??,
            )
        };
        {
            let patterns = patterns.clone();
            store
                .queries()
                .follow_pattern_aliases(Arc::new(move |id: &str| patterns.aliases(id)));
        }
        let intake = receivers::Intake::new(
            field_names.clone(),
            patterns.clone(),
            writer.handle(),
            metric_writer.handle(),
            metrics.clone(),
        );
        let syslog = match &config.syslog {
            Some(syslog) => Some(receivers::syslog::listen::SyslogServer::start(syslog, intake.clone()).await?),
            None => None,
        };
        let access = Arc::new(http::access::Access {
            users: users.clone(),
            policy,
            api_tokens: http::auth::Tokens::new(&config.auth.api_tokens, "API"),
            ingest_tokens: http::auth::Tokens::ingest(&config.auth.ingest_tokens),
            tls: tls.is_some(),
            limiter: http::ratelimit::LoginLimiter::default(),
            password_thread: users::hasher::PasswordThread::spawn()
                .context("cannot start the password-check thread")?,
        });
        let state = http::AppState::new(http::AppParts {
            store,
            writer: writer.handle(),
            metric_store,
            metric_writer: metric_writer.handle(),
            metrics: metrics.clone(),
            ingest: config.ingest,
            alerts: http::alerts::AlertsApi {
                store: alert_store.clone(),
                rules: rules.clone(),
                statuses: rule_statuses.clone(),
            },
            access: access.clone(),
            field_names,
            patterns: patterns.clone(),
            intake,
            export: config.export.clone(),
            exports: Arc::new(tokio::sync::Semaphore::new(http::export::MAX_EXPORTS)),
        });
        let app =
            http::router(state, config.http.request_timeout.get()).into_make_service_with_connect_info::<SocketAddr>();
        let (stop_server, stopped) = oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let limits = config.http;
        let limit = |acceptor| http::limits::LimitAcceptor::new(acceptor, limits.max_connections);
        let handle = axum_server::Handle::new();
        let stop = {
            let handle = handle.clone();
            async move {
                // Either an explicit stop or the handle being dropped.
                let _ = stopped.await;
                handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
            }
        };
        let header_timeout = limits.header_timeout.get();
        let mut server = axum_server::from_tcp(listener.into_std()?)?
            .first_request_timeout(header_timeout)
            .handle(handle);
        server.http_builder().http1().header_read_timeout(header_timeout);
        let accept = limit(axum_server::accept::DefaultAcceptor::new());
        let https = tls.map(axum_server::tls_rustls::RustlsConfig::from_config);
        let server = match &https {
            None => {
                let server = server.acceptor(accept);
                tokio::spawn(async move { tokio::join!(server.serve(app), stop).0 })
            }
            Some(https) => {
                let server =
                    server.acceptor(axum_server::tls_rustls::RustlsAcceptor::new(https.clone()).acceptor(accept));
                tokio::spawn(async move { tokio::join!(server.serve(app), stop).0 })
            }
        };
        let days = &config.retention;
        let alerting = &config.alerting;
        let engine = alert::engine::spawn(alert::engine::EngineParts {
            rules: rules.subscribe(),
            store: alert_store,
            logs: store_for_alerts,
            metrics: metric_store_for_alerts,
            patterns: patterns.clone(),
            metric_commits: metric_writer.handle().subscribe_commits(),
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
            tokio::spawn(purge_sessions(users, policy)),
            tokio::spawn(retention::run(writer.handle(), days.logs_days, archiver)),
            tokio::spawn(retention::run_metrics(
                metric_writer.handle(),
                days.metrics_days,
                days.metrics_days.max(days.logs_days),
            )),
            tokio::spawn(metricstore::writer::flush_touches(metric_writer.handle())),
            tokio::spawn(save_patterns(patterns.clone())),
        ];
        background.extend(engine);
        if let (Some(feed), Some(url)) = (feed, &config.export.remote_write) {
            let export = &config.export;
            let endpoint = outbound::Endpoint::new(
                url.expose(),
                export.remote_write_timeout.get(),
                &export.remote_write_headers,
            )
            .map_err(|reason| anyhow::anyhow!("export.remote_write: {reason}"))?;
            tracing::info!(
                target_host = endpoint.target(),
                "sending the host metrics by Prometheus remote write"
            );
            background.push(tokio::spawn(remote_write::run(remote_write::RemoteWriteParts {
                endpoint,
                feed,
                recent: metric_writer.recent(),
                metrics: metrics.clone(),
            })));
        }
        tracing::info!("lookout-aggregator listening on {scheme}://{addr}");
        Ok(Aggregator {
            addr,
            stop_server,
            server,
            background,
            patterns,
            writer,
            metric_writer,
            syslog,
            metrics,
            rules,
            access,
            https,
            started_with: config,
        })
    }

    /// Puts `newer`'s API and ingest tokens, TLS certificates and keys
    /// (HTTPS and syslog), notifiers (with `[smtp]`) and rules in force,
    /// without closing a connection or losing a line: requests under way
    /// finish as they began, later ones meet the new settings. All or
    /// nothing: if any of it cannot be used, the error says why and the
    /// configuration in force stays whole. Returns the keys that changed
    /// too but take effect only at a restart ([`Config::restart_needed`]).
    pub async fn reload(&mut self, newer: Config) -> anyhow::Result<Vec<&'static str>> {
        // Everything is built and checked before anything is replaced.
        let notifiers = Notifiers::from_config(&newer).context("cannot set up the notifiers")?;
        let https = match (&self.https, &newer.tls) {
            (Some(_), Some(settings)) => Some(tls::server_config(settings)?),
            _ => None,
        };
        let syslog_tls = match (
            &self.syslog,
            newer.syslog.as_ref().and_then(|syslog| syslog.tls.as_ref()),
        ) {
            (Some(server), Some(settings)) if server.serves_tls() => Some(tls::syslog_server_config(settings)?),
            _ => None,
        };
        let api_tokens = http::auth::Tokens::new(&newer.auth.api_tokens, "API");
        let ingest_tokens = http::auth::Tokens::ingest(&newer.auth.ingest_tokens);
        // The one step that can still fail (reading the app's rules) comes first.
        let (rules, configured) = (self.rules.clone(), newer.rules.clone());
        tokio::task::spawn_blocking(move || rules.reconfigure(configured, notifiers))
            .await?
            .context("cannot read the rules made in the app")?;
        if !self.access.api_tokens.same_as(&api_tokens) {
            // A tail opened with a token now removed must not stream on.
            self.writer.end_open_live_tails();
        }
        self.access.api_tokens.replace(&api_tokens);
        self.access.ingest_tokens.replace(&ingest_tokens);
        if let (Some(server), Some(config)) = (&self.https, https) {
            server.reload_from_config(config);
        }
        if let (Some(server), Some(config)) = (&self.syslog, syslog_tls) {
            server.replace_tls(config);
        }
        Ok(self.started_with.restart_needed(&newer))
    }

    /// Reads `file` again and [`reload`](Aggregator::reload)s it; logs the
    /// outcome (a refusal with its error) and counts it in `/metrics`.
    /// Returns whether it was applied.
    pub async fn reload_file(&mut self, file: &Path) -> bool {
        let path = file.to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || Config::load(&path)).await;
        let outcome = match loaded {
            Ok(Ok(newer)) => self.reload(newer).await,
            Ok(Err(err)) => Err(err.into()),
            Err(err) => Err(err.into()),
        };
        self.metrics.reload_done(outcome.is_ok());
        match outcome {
            Ok(waiting) => {
                let rules = self.rules.current();
                tracing::info!(
                    rules = rules.rules.len(),
                    notifiers = rules.notifiers.names().len(),
                    "configuration reloaded: tokens, TLS certificates, notifiers and rules are in force"
                );
                if !waiting.is_empty() {
                    tracing::warn!(
                        "these settings changed but take effect only at a restart: {}",
                        waiting.join(", ")
                    );
                }
                true
            }
            Err(err) => {
                tracing::error!("configuration not reloaded, the one in force stays: {err:#}");
                false
            }
        }
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The syslog receiver's TCP (or TLS) and UDP addresses, where `[syslog]` sets them.
    pub fn syslog_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        self.syslog
            .as_ref()
            .map_or((None, None), |syslog| (syslog.tcp_addr(), syslog.udp_addr()))
    }

    /// Stops accepting connections, lets in-flight requests finish (their
    /// batches commit), then stops the writers.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Live-tail streams end only when their feed closes; close it first,
        // or graceful shutdown would wait for every open tail.
        self.writer.end_live_tails();
        let _ = self.stop_server.send(());
        if let Some(syslog) = self.syslog {
            syslog.stop().await;
        }
        let served = self.server.await;
        for task in &self.background {
            task.abort();
        }
        let stopped = self.writer.shutdown().await;
        let metrics_stopped = self.metric_writer.shutdown().await;
        let patterns = self.patterns.clone();
        // Ingest has stopped: no id is given any more.
        let patterns_saved = tokio::task::spawn_blocking(move || patterns.save(true)).await;
        served?.context("the HTTP server failed")?;
        stopped?;
        metrics_stopped?;
        patterns_saved?.context("cannot write the pattern state")?;
        tracing::info!("lookout-aggregator stopped");
        Ok(())
    }
}

/// Prints the first admin's generated password: once, to stderr, outside the
/// log (a structured log field could be shipped to other systems).
fn print_first_admin(password: &str) {
    eprintln!(
        "\n================================================================\n\
         lookout-aggregator: no user existed, so the user `admin` was created\n\
         with this password (shown only now; change it with\n\
         `lookout-aggregator --config FILE user passwd admin`):\n\n    {password}\n\
         ================================================================\n"
    );
}

/// Writes the pattern state every [`ingest::patterns::SAVE_EVERY`] when it changed.
async fn save_patterns(patterns: Arc<ingest::patterns::PatternBook>) {
    let mut every = tokio::time::interval(ingest::patterns::SAVE_EVERY);
    loop {
        every.tick().await;
        let patterns = patterns.clone();
        match tokio::task::spawn_blocking(move || patterns.save_if_changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot write the pattern state"),
            Err(err) => tracing::warn!(error = %err, "cannot write the pattern state"),
        }
    }
}

/// Deletes expired sessions every [`SESSION_PURGE_INTERVAL`].
async fn purge_sessions(users: UserStore, policy: SessionPolicy) {
    let mut every = tokio::time::interval(SESSION_PURGE_INTERVAL);
    loop {
        every.tick().await;
        let users = users.clone();
        match tokio::task::spawn_blocking(move || users.purge_expired(policy)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(purged)) => tracing::debug!(purged, "expired sessions deleted"),
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot delete expired sessions"),
            Err(err) => tracing::warn!(error = %err, "cannot delete expired sessions"),
        }
    }
}

/// Serves until `shutdown` completes, then stops cleanly; reads `file`
/// again at each of `reloads` (SIGHUP).
pub async fn run(
    config: Config,
    file: &Path,
    shutdown: impl Future<Output = ()>,
    reloads: Option<tokio::signal::unix::Signal>,
) -> anyhow::Result<()> {
    let mut aggregator = Aggregator::start(config).await?;
    lookout_shared::process::until_shutdown(shutdown, reloads, async || {
        aggregator.reload_file(file).await;
    })
    .await;
    tracing::info!("shutting down: finishing requests, then committing");
    aggregator.stop().await
}
