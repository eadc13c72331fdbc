//! The single metric writer: a dedicated thread owning the one read-write
//! SQLite connection, the series-id cache and the hosts' pending last-seen times.
//!
//! Each ingest batch with samples is stored in one `IMMEDIATE` transaction
//! (batches queued together share one, and its sync; if the group fails,
//! each is tried alone, so a bad batch fails alone): look up (or
//! create) each sample's series, insert the sample into the head (`samples`)
//! unless the series already has one at that time (in the head, or, for a
//! sample older than what compaction has reached, in its hour's block), add
//! new samples into their 1-hour roll-up bucket (see [`super::rollup`]),
//! record the host as seen, commit. With `synchronous =
//! FULL` the commit is durable when the handler gets its answer.
//!
//! Batches without samples (logs only) only mark their host as seen. That
//! needs no durability, so it is kept in memory and written with the next
//! transaction or by [`flush_touches`] every two seconds: a log batch never waits
//! for an SQLite commit.
//!
//! After each commit the writer adds the samples it stored to [`Recent`],
//! the in-memory newest samples the alert rules and the hosts list read.
//!
//! Compaction moves every series' samples of hours that ended more than
//! [`COMPACT_GRACE_MS`] ago from the head into one compressed block per series
//! and hour ([`super::chunk`]), a page of series per step, one step with each
//! two-second flush. A late sample for a compacted hour (an agent's backlog
//! after an outage) goes to the head and is merged into its hour's block by
//! another pass, which follows as soon as the current one ends.
//!
//! Retention runs here too, as many small steps ([`MetricWriterHandle::expire`]):
//! each deletes at most [`EXPIRE_CHUNK_ROWS`] rows in its own transaction, and
//! ingest batches queued meanwhile are served between two steps.

use super::chunk;
use super::feed::SampleFeed;
use super::recent::Recent;
use super::rollup::{HOUR_MS, UPSERT_1H, bucket_start};
use super::schema;
use crate::metrics::Metrics;
use crate::writer_thread::WriterThread;
use lookout_shared::time::now_ms;
use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Most rows one retention step deletes: small enough that an ingest batch
/// queued behind it waits only milliseconds.
pub const EXPIRE_CHUNK_ROWS: usize = 5000;

/// Most series one retention step visits, so that a step stays short even
/// when almost nothing is due.
const EXPIRE_CHUNK_SERIES: usize = 1000;

/// Most batches one transaction stores (see [`WriterCore::write_batches`]).
const MAX_GROUP: usize = 64;

/// How often hosts seen through logs-only batches are written (see
/// [`flush_touches`]); a compaction step runs at the same beat.
const TOUCH_FLUSH_PERIOD: Duration = Duration::from_secs(2);

/// How long after an hour ends its samples are compacted: late enough that
/// samples of the hour still on their way are rare (they are merged anyway).
pub const COMPACT_GRACE_MS: i64 = 10 * 60_000;

/// Series one compaction step visits: at 80,000 series (2,000 hosts) a
/// pass takes 160 steps, about five minutes of two-second beats.
const COMPACT_CHUNK_SERIES: usize = 500;

/// Head samples one compaction step moves at most, so that a step stays
/// short also when a pass meets days of samples (a database of an earlier
/// version, or a backlog).
const COMPACT_ROWS: usize = 100_000;

/// SQL that marks host `?1` as seen at `?2` (never moving it back in time).
const TOUCH_SQL: &str = "INSERT INTO hosts (host, last_seen_ms) VALUES (?1, ?2) \
     ON CONFLICT (host) DO UPDATE SET last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)";

/// One ingest batch's samples, validated, ready for the writer.
#[derive(Debug, Clone, Default)]
pub struct MetricBatch {
    /// The batch's host: every sample belongs to it.
    pub host: String,
    /// The samples, in request order.
    pub samples: Vec<PreparedSample>,
}

/// One validated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSample {
    /// Metric name.
    pub name: String,
    /// The label set as canonical JSON ([`schema::canonical_labels`]).
    pub labels: String,
    /// Unix ms.
    pub time_ms: i64,
    /// A finite value.
    pub value: f64,
}

/// What became of a batch's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Stored now.
    pub accepted: u64,
    /// Already held (same series and time): a re-send.
    pub duplicates: u64,
    /// Older than the retention period: dropped, as retention would delete them anyway.
    pub expired: u64,
}

/// Why samples were not stored; the client should retry later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetricWriteError {
    /// The writer has stopped or is stopping.
    #[error("the metric store is shutting down")]
    ShuttingDown,
    /// The transaction failed and was rolled back: nothing of the batch was kept.
    #[error("the metric store could not store the samples: {0}")]
    Failed(String),
    /// The batch would give its host more series than allowed; nothing was kept.
    #[error(
        "host `{host}` has {existing} metric series and this batch would add more; at most {limit} are \
         allowed per host (ingest.max_series_per_host): labels with unbounded values make a series each"
    )]
    TooManySeries {
        /// The host.
        host: String,
        /// Its series before the batch.
        existing: usize,
        /// The limit.
        limit: usize,
    },
}

/// Why a write transaction did not commit.
#[derive(Debug)]
enum WriteFailure {
    Sqlite(rusqlite::Error),
    TooManySeries { existing: usize },
}

impl From<rusqlite::Error> for WriteFailure {
    fn from(err: rusqlite::Error) -> Self {
        WriteFailure::Sqlite(err)
    }
}

/// What one retention pass deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// Samples before this time (Unix ms) go, and roll-up buckets that end by it.
    pub cutoff_ms: i64,
    /// Hosts last seen before this time are forgotten.
    pub forget_hosts_before_ms: i64,
}

/// What retention deletes from, in this order; then comes the final clean-up.
const EXPIRING: [Expiring; 3] = [Expiring::Head, Expiring::Blocks, Expiring::Hours];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiring {
    /// `samples`.
    Head,
    /// `chunks`: whole blocks before the cutoff, and the one it cuts.
    Blocks,
    /// `rollup_1h`: buckets that end by the cutoff.
    Hours,
}

/// Where a retention pass stands between two steps; start with `default()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireCursor {
    /// Index into [`EXPIRING`]; past its end: the final clean-up.
    tier: usize,
    /// Series up to this id are done in the current tier.
    after_series: i64,
}

/// Where a batch's outcome goes.
type WriteReply = oneshot::Sender<Result<WriteOutcome, MetricWriteError>>;

enum Command {
    Write {
        batch: MetricBatch,
        reply: WriteReply,
    },
    Touch {
        host: String,
    },
    Flush,
    Expire {
        expiry: Expiry,
        cursor: ExpireCursor,
        reply: oneshot::Sender<Result<Option<ExpireCursor>, MetricWriteError>>,
    },
    Shutdown,
}

/// Sends work to the metric writer thread (cheap to clone).
#[derive(Clone)]
pub struct MetricWriterHandle {
    tx: mpsc::Sender<Command>,
    committed: Arc<watch::Sender<u64>>,
    recent: Arc<Recent>,
}

impl MetricWriterHandle {
    /// Stores `batch` in one transaction; answers once it is durable.
    pub async fn write(&self, batch: MetricBatch) -> Result<WriteOutcome, MetricWriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Write { batch, reply })
            .await
            .map_err(|_| MetricWriteError::ShuttingDown)?;
        let outcome = answer.await.map_err(|_| MetricWriteError::ShuttingDown)??;
        self.committed.send_modify(|count| *count = count.wrapping_add(1));
        Ok(outcome)
    }

    /// A receiver that changes after every committed batch: readers that
    /// react to new samples (the alert engine) wait on it instead of polling.
    pub fn subscribe_commits(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Marks `host` as seen now (it sent logs): in memory at once, in the
    /// database with the writer's next transaction or flush. Never waits:
    /// when the queue is full the database's mark is dropped, and the host's
    /// next batch sets it again.
    pub fn touch(&self, host: String) {
        self.recent.touch(&host, now_ms());
        let _ = self.tx.try_send(Command::Touch { host });
    }

    /// Writes the pending last-seen marks.
    pub async fn flush(&self) -> Result<(), MetricWriteError> {
        self.tx
            .send(Command::Flush)
            .await
            .map_err(|_| MetricWriteError::ShuttingDown)
    }

    /// Runs one retention step from `cursor`; answers where to go on from, or
    /// `None` once the pass is complete.
    pub async fn expire(&self, expiry: Expiry, cursor: ExpireCursor) -> Result<Option<ExpireCursor>, MetricWriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Expire { expiry, cursor, reply })
            .await
            .map_err(|_| MetricWriteError::ShuttingDown)?;
        answer.await.map_err(|_| MetricWriteError::ShuttingDown)?
    }

    /// Whether the writer thread still takes work.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

/// Owns the writer thread; [`MetricWriter::shutdown`] drains and stops it.
pub struct MetricWriter {
    thread: WriterThread<Command>,
    committed: Arc<watch::Sender<u64>>,
    recent: Arc<Recent>,
}

impl MetricWriter {
    /// Opens (creating if needed) `data_dir/metrics.sqlite` and starts the
    /// writer thread, after loading [`Recent`] from it. Samples older than
    /// `metrics_days` are not stored. With a `feed`, every committed new
    /// sample is pushed to it too.
    pub fn spawn(
        data_dir: &Path,
        metrics_days: u32,
        max_series_per_host: usize,
        metrics: Arc<Metrics>,
        feed: Option<Arc<SampleFeed>>,
    ) -> anyhow::Result<MetricWriter> {
        let conn = schema::open_writer(data_dir)?;
        let recent = Arc::new(Recent::load(&conn)?);
        let mut core = WriterCore::new(conn, metrics_days, metrics, recent.clone())?;
        core.max_series_per_host = max_series_per_host;
        core.feed = feed;
        let thread = WriterThread::spawn("metric-writer", move |rx| run(core, rx))?;
        Ok(MetricWriter {
            thread,
            committed: Arc::new(watch::channel(0).0),
            recent,
        })
    }

    /// The newest samples in memory, for [`super::MetricStore::open`].
    pub fn recent(&self) -> Arc<Recent> {
        self.recent.clone()
    }

    /// A handle for sending work.
    pub fn handle(&self) -> MetricWriterHandle {
        MetricWriterHandle {
            tx: self.thread.sender(),
            committed: self.committed.clone(),
            recent: self.recent.clone(),
        }
    }

    /// Stores what is queued before this call, writes the pending last-seen
    /// marks, then stops the thread and closes the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.thread.shutdown(Command::Shutdown).await
    }
}

/// Writes the hosts' pending last-seen marks every two seconds, until the
/// writer stops: `/api/v1/hosts` lags that much for hosts that send only logs.
pub async fn flush_touches(handle: MetricWriterHandle) {
    let mut ticks = tokio::time::interval(TOUCH_FLUSH_PERIOD);
    loop {
        ticks.tick().await;
        if handle.flush().await.is_err() {
            return;
        }
    }
}

fn run(mut core: WriterCore, mut rx: mpsc::Receiver<Command>) {
    let mut next = None;
    while let Some(command) = next.take().or_else(|| rx.blocking_recv()) {
        match command {
            Command::Write { batch, reply } => {
                // Batches queued meanwhile share the transaction and its sync.
                let mut group = vec![(batch, reply)];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Command::Write { batch, reply }) => group.push((batch, reply)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // A handler that gave up (client gone) needs no answer: a
                // re-send finds the samples stored.
                core.write_batches(group, now_ms());
            }
            Command::Touch { host } => core.touch(host, now_ms()),
            Command::Flush => {
                core.flush();
                core.compact_step(now_ms());
            }
            Command::Expire { expiry, cursor, reply } => {
                let _ = reply.send(core.expire_step(&expiry, cursor));
            }
            Command::Shutdown => break,
        }
    }
    core.flush();
    // Dropping the connection checkpoints the WAL into the database file.
}

/// The writer's state and logic, free of threads and channels (tested directly).
struct WriterCore {
    conn: Connection,
    /// Series ids by `host \0 name \0 labels` (neither a name nor canonical
    /// JSON contains a raw NUL, so the key is unambiguous). Only ids of
    /// committed series are here.
    series: HashMap<String, i64>,
    /// Hosts seen through log batches, not yet written: host → Unix ms.
    touched: HashMap<String, i64>,
    /// Committed series per host, counted once per host and kept up to date.
    series_per_host: HashMap<String, usize>,
    max_series_per_host: usize,
    retention_ms: i64,
    metrics: Arc<Metrics>,
    recent: Arc<Recent>,
    /// Where committed new samples also go (remote write), if anywhere.
    feed: Option<Arc<SampleFeed>>,
    /// `compaction.before_ms`: no block holds a sample at or after it.
    compacted_before: i64,
    /// The compaction pass under way: series after this id are still due.
    compacting_after: Option<i64>,
    /// Samples stored in the head for hours compaction had passed (an
    /// agent's backlog) since the last pass began: another pass follows.
    late_samples: u64,
    /// Head samples one compaction step moves at most ([`COMPACT_ROWS`]).
    compact_rows: usize,
}

impl WriterCore {
    fn new(conn: Connection, metrics_days: u32, metrics: Arc<Metrics>, recent: Arc<Recent>) -> rusqlite::Result<Self> {
        let compacted_before = conn.query_row("SELECT before_ms FROM compaction WHERE id = 0", [], |row| row.get(0))?;
        Ok(WriterCore {
            conn,
            series: HashMap::new(),
            touched: HashMap::new(),
            series_per_host: HashMap::new(),
            max_series_per_host: usize::MAX,
            retention_ms: i64::from(metrics_days) * 24 * HOUR_MS,
            metrics,
            recent,
            feed: None,
            compacted_before,
            // A pass cut short by a stop starts again from the first series.
            compacting_after: (compacted_before > i64::MIN).then_some(0),
            late_samples: 0,
            compact_rows: COMPACT_ROWS,
        })
    }

    /// Stores `batch` as of `now_ms`, counting the outcome in the metrics.
    fn write_batch(&mut self, batch: &MetricBatch, now_ms: i64) -> Result<WriteOutcome, MetricWriteError> {
        let started = Instant::now();
        match self.write(batch, now_ms) {
            Ok(outcome) => {
                self.metrics.metric_commit_done(started.elapsed());
                self.metrics
                    .metric_samples(outcome.accepted, outcome.duplicates, outcome.expired);
                Ok(outcome)
            }
            Err(WriteFailure::TooManySeries { existing }) => Err(MetricWriteError::TooManySeries {
                host: batch.host.clone(),
                existing,
                limit: self.max_series_per_host,
            }),
            Err(WriteFailure::Sqlite(err)) => {
                self.metrics.metric_commit_failed();
                tracing::error!(error = %err, host = %batch.host, "metric store write failed; rolled back");
                Err(MetricWriteError::Failed(err.to_string()))
            }
        }
    }

    /// One transaction: the batch's samples and roll-ups, and its host (plus
    /// any hosts touched meanwhile) marked as seen. All or nothing.
    fn write(&mut self, batch: &MetricBatch, now_ms: i64) -> Result<WriteOutcome, WriteFailure> {
        let mut outcomes = self.write_group(&[batch], now_ms)?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    /// Stores a group of batches queued together in one transaction and one
    /// sync; answers each batch's outcome, or nothing if any failed (the
    /// caller then writes them one by one, so a bad batch fails alone).
    fn write_batches(&mut self, group: Vec<(MetricBatch, WriteReply)>, now_ms: i64) {
        if let [(batch, _)] = group.as_slice() {
            let answer = self.write_batch(batch, now_ms);
            if let Some((_, reply)) = group.into_iter().next() {
                let _ = reply.send(answer);
            }
            return;
        }
        let started = Instant::now();
        let batches: Vec<&MetricBatch> = group.iter().map(|(batch, _)| batch).collect();
        match self.write_group(&batches, now_ms) {
            Ok(outcomes) => {
                self.metrics.metric_commit_done(started.elapsed());
                for ((_, reply), outcome) in group.into_iter().zip(outcomes) {
                    self.metrics
                        .metric_samples(outcome.accepted, outcome.duplicates, outcome.expired);
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(_) => {
                for (batch, reply) in group {
                    let _ = reply.send(self.write_batch(&batch, now_ms));
                }
            }
        }
    }

    /// One transaction for `batches`: their samples and roll-ups, and their
    /// hosts (plus any hosts touched meanwhile) marked as seen. All or nothing.
    fn write_group(&mut self, batches: &[&MetricBatch], now_ms: i64) -> Result<Vec<WriteOutcome>, WriteFailure> {
        let cutoff = now_ms.saturating_sub(self.retention_ms);
        for batch in batches {
            if !self.series_per_host.contains_key(&batch.host) {
                let count: i64 =
                    self.conn
                        .query_row("SELECT COUNT(*) FROM series WHERE host = ?1", [&batch.host], |row| {
                            row.get(0)
                        })?;
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                self.series_per_host.insert(batch.host.clone(), count);
            }
        }
        let mut outcomes = Vec::with_capacity(batches.len());
        // Series created or found in this transaction join the cache (and
        // memory) only once it commits; `new_series` counts the created ones
        // per host.
        let mut created: HashMap<String, i64> = HashMap::new();
        let mut new_series: HashMap<&str, usize> = HashMap::new();
        let mut stored: Vec<(i64, i64, f64)> = Vec::new();
        let mut late = 0;
        // The times of each block a late sample was looked up in, decoded once.
        let mut block_times: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut find = tx.prepare_cached("SELECT id FROM series WHERE host = ?1 AND name = ?2 AND labels = ?3")?;
            let mut create = tx.prepare_cached("INSERT INTO series (host, name, labels) VALUES (?1, ?2, ?3)")?;
            // Only a clash on the primary key is ignored, unlike `INSERT OR IGNORE`,
            // which would also swallow constraint failures.
            let mut insert = tx.prepare_cached(
                "INSERT INTO samples (series_id, ts, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (series_id, ts) DO NOTHING",
            )?;
            let mut block = tx.prepare_cached("SELECT data FROM chunks WHERE series_id = ?1 AND hour = ?2")?;
            let mut hour = tx.prepare_cached(UPSERT_1H)?;
            let mut touch = tx.prepare_cached(TOUCH_SQL)?;
            let mut key = String::new();
            for batch in batches {
                let existing = self.series_per_host.get(&batch.host).copied().unwrap_or(0);
                let mut outcome = WriteOutcome::default();
                for sample in &batch.samples {
                    if sample.time_ms < cutoff {
                        outcome.expired += 1;
                        continue;
                    }
                    key.clear();
                    key.push_str(&batch.host);
                    key.push('\0');
                    key.push_str(&sample.name);
                    key.push('\0');
                    key.push_str(&sample.labels);
                    let cached = self.series.get(&key).or_else(|| created.get(&key)).copied();
                    let id = match cached {
                        Some(id) => id,
                        None => {
                            let params = (&batch.host, &sample.name, &sample.labels);
                            let id = match find.query_row(params, |row| row.get(0)).optional()? {
                                Some(id) => id,
                                None => {
                                    let added = new_series.entry(batch.host.as_str()).or_default();
                                    if existing + *added >= self.max_series_per_host {
                                        return Err(WriteFailure::TooManySeries { existing });
                                    }
                                    create.execute(params)?;
                                    *added += 1;
                                    tx.last_insert_rowid()
                                }
                            };
                            created.insert(key.clone(), id);
                            id
                        }
                    };
                    // Only a sample older than what compaction reached can be in a block.
                    let in_block = if sample.time_ms < self.compacted_before {
                        let hour_start = bucket_start(sample.time_ms, HOUR_MS);
                        let times = match block_times.entry((id, hour_start)) {
                            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                            std::collections::hash_map::Entry::Vacant(entry) => {
                                let data: Option<Vec<u8>> =
                                    block.query_row((id, hour_start), |row| row.get(0)).optional()?;
                                let points =
                                    data.map_or_else(Vec::new, |data| chunk::read_stored(id, hour_start, &data));
                                entry.insert(points.into_iter().map(|(ts, _)| ts).collect())
                            }
                        };
                        times.binary_search(&sample.time_ms).is_ok()
                    } else {
                        false
                    };
                    if in_block || insert.execute((id, sample.time_ms, sample.value))? == 0 {
                        outcome.duplicates += 1;
                        continue;
                    }
                    hour.execute((id, bucket_start(sample.time_ms, HOUR_MS), sample.value))?;
                    if sample.time_ms < self.compacted_before {
                        late += 1;
                    }
                    stored.push((id, sample.time_ms, sample.value));
                    outcome.accepted += 1;
                }
                touch.execute((&batch.host, now_ms))?;
                outcomes.push(outcome);
            }
            for (host, seen) in &self.touched {
                touch.execute((host, seen))?;
            }
        }
        tx.commit()?;
        for (host, added) in new_series {
            *self.series_per_host.entry(host.to_owned()).or_default() += added;
        }
        for (key, id) in &created {
            let mut parts = key.splitn(3, '\0');
            if let (Some(host), Some(name), Some(labels)) = (parts.next(), parts.next(), parts.next()) {
                self.recent.ensure_series(*id, host, name, labels);
            }
        }
        self.recent.add(&stored);
        if let Some(feed) = &self.feed {
            feed.push(&stored);
        }
        for batch in batches {
            self.recent.touch(&batch.host, now_ms);
        }
        self.late_samples += late;
        self.series.extend(created);
        self.touched.clear();
        Ok(outcomes)
    }

    /// Remembers that `host` sent something at `now_ms`.
    fn touch(&mut self, host: String, now_ms: i64) {
        let seen = self.touched.entry(host).or_insert(now_ms);
        *seen = (*seen).max(now_ms);
    }

    /// Writes the pending last-seen marks; on failure they stay pending.
    fn flush(&mut self) {
        if self.touched.is_empty() {
            return;
        }
        let written = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut touch = tx.prepare_cached(TOUCH_SQL)?;
                for (host, seen) in &self.touched {
                    touch.execute((host, seen))?;
                }
            }
            tx.commit()
        })();
        match written {
            Ok(()) => self.touched.clear(),
            Err(err) => tracing::warn!(error = %err, "cannot record hosts' last-seen times; will retry"),
        }
    }

    /// One compaction step, if one is due at `now_ms`; a failure is logged
    /// and the step tried again at the next beat.
    fn compact_step(&mut self, now_ms: i64) {
        let horizon = bucket_start(now_ms.saturating_sub(COMPACT_GRACE_MS), HOUR_MS);
        if let Err(err) = self.compact(horizon) {
            tracing::warn!(error = %err, "metric compaction step failed; will retry");
        }
    }

    /// Starts a pass once hours before `horizon` are not all compacted (or
    /// late samples came for hours that were), and moves the head's samples
    /// before the pass's horizon of the next page of series into their
    /// blocks, in one transaction.
    fn compact(&mut self, horizon: i64) -> rusqlite::Result<()> {
        let starting = self.compacting_after.is_none() && (horizon > self.compacted_before || self.late_samples > 0);
        let Some(after) = self.compacting_after.or(starting.then_some(0)) else {
            return Ok(());
        };
        let before = if starting {
            self.late_samples = 0;
            horizon.max(self.compacted_before)
        } else {
            self.compacted_before
        };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if starting {
            // Recorded before any block of the pass exists: a sample past the
            // old mark may now be in a block.
            tx.execute("UPDATE compaction SET before_ms = ?1 WHERE id = 0", [before])?;
        }
        let ids: Vec<i64> = tx
            .prepare_cached("SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT ?2")?
            .query_map((after, COMPACT_CHUNK_SERIES as i64), |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut moved = 0;
        let mut resume_at = None;
        for &id in &ids {
            let (count, complete) = compact_series(&tx, id, before, self.compact_rows - moved)?;
            moved += count;
            if !complete {
                resume_at = Some(id);
                break;
            }
        }
        tx.commit()?;
        self.metrics.metric_samples_compacted(moved as u64);
        self.compacted_before = before;
        self.compacting_after = match (resume_at, ids.last()) {
            // The next step goes on with the series the budget cut.
            (Some(id), _) => Some(id - 1),
            (None, Some(&last)) if ids.len() == COMPACT_CHUNK_SERIES => Some(last),
            _ => None,
        };
        Ok(())
    }

    /// One retention step, counted in the metrics.
    fn expire_step(&mut self, expiry: &Expiry, cursor: ExpireCursor) -> Result<Option<ExpireCursor>, MetricWriteError> {
        match self.expire(expiry, cursor) {
            Ok((next, deleted)) => {
                self.metrics.metric_rows_expired(deleted);
                // Retention may have deleted series: count them again when next needed.
                self.series_per_host.clear();
                Ok(next)
            }
            Err(err) => {
                tracing::error!(error = %err, "metric retention step failed; rolled back");
                Err(MetricWriteError::Failed(err.to_string()))
            }
        }
    }

    /// Deletes up to [`EXPIRE_CHUNK_ROWS`] expired rows of the cursor's table,
    /// series by series in id order, in one transaction. Once every table is
    /// done, a last step deletes series left without data and hosts not seen
    /// for long. Answers the next cursor (or `None`: done) and the rows deleted.
    fn expire(&mut self, expiry: &Expiry, cursor: ExpireCursor) -> rusqlite::Result<(Option<ExpireCursor>, u64)> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        let next = match EXPIRING.get(cursor.tier) {
            Some(&expiring) => {
                let ids: Vec<i64> = tx
                    .prepare_cached("SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT ?2")?
                    .query_map((cursor.after_series, EXPIRE_CHUNK_SERIES as i64), |row| row.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let full_page = ids.len() == EXPIRE_CHUNK_SERIES;
                let mut budget = EXPIRE_CHUNK_ROWS;
                let mut after = cursor.after_series;
                let mut series_unfinished = false;
                for id in ids {
                    let done = match expiring {
                        Expiring::Head => expire_rows(&tx, "samples", id, expiry.cutoff_ms, budget)?,
                        Expiring::Blocks => expire_blocks(&tx, id, expiry.cutoff_ms, budget)?,
                        // A roll-up bucket goes only once all of it is before the cutoff.
                        Expiring::Hours => expire_rows(
                            &tx,
                            "rollup_1h",
                            id,
                            expiry.cutoff_ms.saturating_sub(HOUR_MS - 1),
                            budget,
                        )?,
                    };
                    deleted += done.deleted;
                    budget = budget.saturating_sub(done.used);
                    if done.unfinished {
                        // More of this series is due: the next step resumes at it.
                        series_unfinished = true;
                        break;
                    }
                    after = id;
                }
                Some(if series_unfinished || full_page {
                    ExpireCursor {
                        tier: cursor.tier,
                        after_series: after,
                    }
                } else {
                    ExpireCursor {
                        tier: cursor.tier + 1,
                        after_series: 0,
                    }
                })
            }
            None => {
                // Every sample also lies in a 1-hour bucket, and a bucket goes only
                // after all its samples, so a series without 1-hour rows is empty:
                // interfaces and mounts that came and went leave nothing behind.
                let series = tx.execute(
                    "DELETE FROM series WHERE NOT EXISTS \
                     (SELECT 1 FROM rollup_1h WHERE rollup_1h.series_id = series.id)",
                    [],
                )?;
                let hosts = tx.execute(
                    "DELETE FROM hosts WHERE last_seen_ms < ?1",
                    [expiry.forget_hosts_before_ms],
                )?;
                if series + hosts > 0 {
                    tracing::info!(series, hosts, "forgot series without data and hosts not seen for long");
                }
                None
            }
        };
        tx.commit()?;
        match EXPIRING.get(cursor.tier) {
            Some(Expiring::Head) => self.recent.trim(expiry.cutoff_ms),
            Some(_) => {}
            None => self.recent.forget(expiry.forget_hosts_before_ms),
        }
        if next.is_none() {
            // Ids of deleted series must not be reused from the cache.
            self.series.clear();
        }
        Ok((next, deleted))
    }
}

/// Moves series `id`'s head samples before `before`, oldest first and at
/// most `budget`, into their hours' blocks, merged with what a block already
/// holds; answers how many moved and whether that was all of them.
fn compact_series(tx: &Transaction<'_>, id: i64, before: i64, budget: usize) -> rusqlite::Result<(usize, bool)> {
    let mut head: Vec<(i64, f64)> = tx
        .prepare_cached("SELECT ts, value FROM samples WHERE series_id = ?1 AND ts < ?2 ORDER BY ts LIMIT ?3")?
        .query_map((id, before, budget as i64 + 1), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let complete = head.len() <= budget;
    head.truncate(budget);
    let mut existing = tx.prepare_cached("SELECT data FROM chunks WHERE series_id = ?1 AND hour = ?2")?;
    let mut store = tx.prepare_cached(
        "INSERT INTO chunks (series_id, hour, data) VALUES (?1, ?2, ?3) \
         ON CONFLICT (series_id, hour) DO UPDATE SET data = excluded.data",
    )?;
    for hour_samples in head.chunk_by(|a, b| bucket_start(a.0, HOUR_MS) == bucket_start(b.0, HOUR_MS)) {
        let hour = bucket_start(hour_samples[0].0, HOUR_MS);
        let mut points = match existing
            .query_row((id, hour), |row| row.get::<_, Vec<u8>>(0))
            .optional()?
        {
            Some(data) => chunk::read_stored(id, hour, &data),
            None => Vec::new(),
        };
        points.extend_from_slice(hour_samples);
        points.sort_unstable_by_key(|&(ts, _)| ts);
        // The writer never stores a time twice; should it be, the block keeps one.
        points.dedup_by_key(|&mut (ts, _)| ts);
        store.execute((id, hour, chunk::encode(&points)))?;
    }
    if let Some(&(last, _)) = head.last() {
        tx.prepare_cached("DELETE FROM samples WHERE series_id = ?1 AND ts <= ?2")?
            .execute((id, last))?;
    }
    Ok((head.len(), complete))
}

/// What one series' retention in one table did.
struct Expired {
    /// Rows deleted.
    deleted: u64,
    /// Rows of the step's budget used.
    used: usize,
    /// More rows of the series are due than the budget allowed.
    unfinished: bool,
}

/// Deletes series `id`'s rows of `table` before `before`, at most `budget`.
fn expire_rows(tx: &Transaction<'_>, table: &str, id: i64, before: i64, budget: usize) -> rusqlite::Result<Expired> {
    // The time of the first row past the budget: deleting below it removes
    // exactly the budget's worth of rows.
    let limit: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT ts FROM {table} WHERE series_id = ?1 AND ts < ?2 ORDER BY ts LIMIT 1 OFFSET ?3"
        ))?
        .query_row((id, before, budget as i64), |row| row.get(0))
        .optional()?;
    let deleted = tx
        .prepare_cached(&format!("DELETE FROM {table} WHERE series_id = ?1 AND ts < ?2"))?
        .execute((id, limit.unwrap_or(before)))?;
    Ok(Expired {
        deleted: deleted as u64,
        used: deleted,
        unfinished: limit.is_some(),
    })
}

/// Deletes series `id`'s blocks that end by `cutoff`, and the samples
/// before it from the block it cuts through; at most `budget` blocks.
fn expire_blocks(tx: &Transaction<'_>, id: i64, cutoff: i64, budget: usize) -> rusqlite::Result<Expired> {
    let due: Vec<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT hour, data FROM chunks WHERE series_id = ?1 AND hour < ?2 ORDER BY hour LIMIT ?3")?
        .query_map((id, cutoff, budget as i64 + 1), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let unfinished = due.len() > budget;
    let mut done = Expired {
        deleted: 0,
        used: 0,
        unfinished,
    };
    for (hour, data) in due.into_iter().take(budget) {
        done.used += 1;
        let kept: Vec<(i64, f64)> = if hour.saturating_add(HOUR_MS) <= cutoff {
            Vec::new()
        } else {
            let points = chunk::read_stored(id, hour, &data);
            let kept: Vec<(i64, f64)> = points.iter().copied().filter(|&(ts, _)| ts >= cutoff).collect();
            // Nothing to cut (an unreadable block reads empty, and goes).
            if kept.len() == points.len() && !points.is_empty() {
                continue;
            }
            kept
        };
        if kept.is_empty() {
            tx.prepare_cached("DELETE FROM chunks WHERE series_id = ?1 AND hour = ?2")?
                .execute((id, hour))?;
            done.deleted += 1;
        } else {
            tx.prepare_cached("UPDATE chunks SET data = ?3 WHERE series_id = ?1 AND hour = ?2")?
                .execute((id, hour, chunk::encode(&kept)))?;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metricstore::query::{self, LabelFilter};
    use crate::metricstore::recent;
    use crate::metricstore::rollup::{DAY_MS, MINUTE_MS};
    use std::collections::BTreeMap;

    const NOW: i64 = 1_750_000_000_000;

    fn open(dir: &Path) -> WriterCore {
        let conn = schema::open_writer(dir).unwrap();
        let recent = Arc::new(Recent::load(&conn).unwrap());
        WriterCore::new(conn, 30, Arc::new(Metrics::default()), recent).unwrap()
    }

    fn sample(name: &str, labels: &str, time_ms: i64, value: f64) -> PreparedSample {
        PreparedSample {
            name: name.into(),
            labels: labels.into(),
            time_ms,
            value,
        }
    }

    fn batch(host: &str, samples: Vec<PreparedSample>) -> MetricBatch {
        MetricBatch {
            host: host.into(),
            samples,
        }
    }

    fn count(core: &WriterCore, sql: &str) -> i64 {
        core.conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// Runs a whole retention pass; returns the number of steps.
    fn expire_all(core: &mut WriterCore, expiry: Expiry) -> usize {
        let mut cursor = ExpireCursor::default();
        let mut steps = 1;
        while let Some(next) = core.expire_step(&expiry, cursor).unwrap() {
            cursor = next;
            steps += 1;
        }
        steps
    }

    #[test]
    fn resent_samples_are_stored_once_and_rollups_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        let t0 = bucket_start(NOW, HOUR_MS);
        let samples: Vec<_> = (0..6)
            .map(|i| sample("cpu.usage_percent", "{}", t0 + i * 10_000, i as f64))
            .collect();
        let first = core.write(&batch("h", samples.clone()), NOW).unwrap();
        assert_eq!(
            first,
            WriteOutcome {
                accepted: 6,
                duplicates: 0,
                expired: 0
            }
        );
        // A re-send, plus one sample twice within the batch, plus one too old.
        let mut again = samples.clone();
        again.push(sample("cpu.usage_percent", "{}", t0 + 60_000, 10.0));
        again.push(sample("cpu.usage_percent", "{}", t0 + 60_000, 99.0));
        again.push(sample("cpu.usage_percent", "{}", NOW - 31 * DAY_MS, 1.0));
        let second = core.write(&batch("h", again), NOW).unwrap();
        assert_eq!(
            second,
            WriteOutcome {
                accepted: 1,
                duplicates: 7,
                expired: 1
            }
        );
        assert_eq!(count(&core, "SELECT count(*) FROM samples"), 7);
        assert_eq!(count(&core, "SELECT count(*) FROM series"), 1);
        let hour_rollup = |core: &WriterCore| -> (f64, i64) {
            core.conn
                .query_row("SELECT vsum, cnt FROM rollup_1h WHERE ts = ?1", [t0], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
        };
        assert_eq!(
            hour_rollup(&core),
            (25.0, 7),
            "the first of two values at one time wins"
        );
        assert_eq!(count(&core, "SELECT last_seen_ms FROM hosts WHERE host = 'h'"), NOW);

        // Compacted into the hour's block, a re-send is still a duplicate; a
        // late sample of the hour is stored, and the next pass merges it.
        core.compact(t0 + 2 * HOUR_MS).unwrap();
        assert_eq!(count(&core, "SELECT count(*) FROM samples"), 0);
        assert_eq!(count(&core, "SELECT count(*) FROM chunks"), 1);
        let mut resent = samples.clone();
        resent.push(sample("cpu.usage_percent", "{}", t0 + 70_000, 3.0));
        let third = core.write(&batch("h", resent), NOW).unwrap();
        assert_eq!(
            third,
            WriteOutcome {
                accepted: 1,
                duplicates: 6,
                expired: 0
            }
        );
        assert_eq!(hour_rollup(&core), (28.0, 8));
        // Another pass follows at once for the late sample, before the next hour.
        core.compact(t0 + 2 * HOUR_MS).unwrap();
        assert_eq!(count(&core, "SELECT count(*) FROM samples"), 0);
        let mut expected: Vec<(i64, f64)> = (0..6).map(|i| (t0 + i * 10_000, i as f64)).collect();
        expected.extend([(t0 + 60_000, 10.0), (t0 + 70_000, 3.0)]);
        assert_eq!(
            crate::metricstore::query::raw_points(&core.conn, 1, t0, t0 + HOUR_MS).unwrap(),
            expected
        );
    }

    /// Every answer of the series query, over the head and the blocks.
    fn answers(core: &WriterCore, t0: i64) -> Vec<String> {
        let mut all = Vec::new();
        for (start, end, step) in [
            (t0, t0 + 4 * HOUR_MS, None),
            (t0 + 1_234, t0 + 2 * HOUR_MS + 5_678, None),
            (t0, t0 + 4 * HOUR_MS, Some(90_000)),
            (t0 - 2 * crate::metricstore::rollup::DAY_MS, t0 + 4 * HOUR_MS, None),
            (t0, t0 + 4 * HOUR_MS, Some(HOUR_MS)),
        ] {
            let query = crate::metricstore::query::SeriesQuery {
                host: "h".into(),
                name: "m".into(),
                labels: BTreeMap::new(),
                start_ms: start,
                end_ms: end,
                step_ms: step,
            };
            all.push(format!(
                "{:?}",
                crate::metricstore::query::series(&core.conn, &query).unwrap()
            ));
        }
        for id in [1, 2] {
            for limit in [1, 5, 100] {
                let newest = crate::metricstore::query::newest_points(&core.conn, id, t0 + HOUR_MS, limit).unwrap();
                all.push(format!("{newest:?}"));
            }
        }
        all
    }

    #[test]
    fn compaction_changes_no_answer_and_retention_cuts_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        let t0 = bucket_start(NOW, HOUR_MS) - 3 * HOUR_MS;
        // Four hours of two series: two-decimal percentages and awkward floats.
        let samples: Vec<PreparedSample> = (0..4 * 360)
            .flat_map(|i| {
                let ts = t0 + i * 10_000;
                [
                    sample("m", r#"{"k":"a"}"#, ts, ((i * 37) % 10_000) as f64 / 100.0),
                    sample("m", r#"{"k":"b"}"#, ts, (i as f64 * 0.7).sin() * 1e3),
                ]
            })
            .collect();
        core.write(&batch("h", samples), NOW).unwrap();
        let before = answers(&core, t0);
        // Passes up to the hour before NOW: three hours become blocks, in
        // steps of at most 700 samples (a block gets merged into).
        core.compact_rows = 700;
        let mut steps = 0;
        loop {
            core.compact(bucket_start(NOW, HOUR_MS)).unwrap();
            steps += 1;
            if core.compacting_after.is_none() {
                break;
            }
        }
        assert_eq!(steps, 2 * 3 * 360 / 700 + 1);
        assert_eq!(count(&core, "SELECT count(*) FROM chunks"), 6);
        assert_eq!(count(&core, "SELECT count(*) FROM samples"), 2 * 360);
        assert_eq!(answers(&core, t0), before);
        let block_bytes = count(&core, "SELECT sum(length(data)) FROM chunks WHERE series_id = 1");
        assert!(
            block_bytes < 3 * 360 * 3,
            "{block_bytes} bytes for 1,080 two-decimal samples"
        );

        // A damaged block reads as empty: answers skip its hour, a sample of
        // that hour is stored, and the next pass replaces the block.
        let damaged_hour = t0 + HOUR_MS;
        core.conn
            .execute(
                "UPDATE chunks SET data = x'01ff' WHERE series_id = 2 AND hour = ?1",
                [damaged_hour],
            )
            .unwrap();
        let left = crate::metricstore::query::raw_points(&core.conn, 2, t0, t0 + 4 * HOUR_MS).unwrap();
        assert_eq!(left.len(), 3 * 360);
        let late = sample("m", r#"{"k":"b"}"#, damaged_hour, 7.0);
        assert_eq!(core.write(&batch("h", vec![late]), NOW).unwrap().accepted, 1);
        core.compact(bucket_start(NOW, HOUR_MS)).unwrap();
        let block = crate::metricstore::query::raw_points(&core.conn, 2, damaged_hour, damaged_hour + HOUR_MS).unwrap();
        assert_eq!(block, [(damaged_hour, 7.0)]);
        let before: Vec<String> = answers(&core, t0);

        // Retention cuts through the second hour: the first block goes, the
        // second keeps what is at or after the cutoff.
        let cutoff = t0 + HOUR_MS + 1_234_567;
        expire_all(
            &mut core,
            Expiry {
                cutoff_ms: cutoff,
                forget_hosts_before_ms: 0,
            },
        );
        // Series 2's second hour held only the sample at its start: it goes.
        assert_eq!(count(&core, "SELECT count(*) FROM chunks"), 3);
        assert_ne!(answers(&core, t0), before, "retention cut samples");
        let kept = crate::metricstore::query::raw_points(&core.conn, 1, t0, t0 + 4 * HOUR_MS).unwrap();
        assert_eq!(kept.first().map(|p| p.0), Some(bucket_start(cutoff, 10_000) + 10_000));
        assert_eq!(kept.len(), 4 * 360 - (cutoff - t0) as usize / 10_000 - 1);
    }

    #[test]
    fn a_failed_transaction_leaves_nothing_and_no_cached_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        // A NULL value breaks the NOT NULL constraint after the series row was inserted.
        let bad = batch("h", vec![sample("m", "{}", NOW, 1.0), sample("n", "{}", NOW, f64::NAN)]);
        assert!(core.write(&bad, NOW).is_err());
        assert!(core.series.is_empty());
        assert_eq!(count(&core, "SELECT count(*) FROM series"), 0);
        assert_eq!(count(&core, "SELECT count(*) FROM samples"), 0);
        let good = batch("h", vec![sample("m", "{}", NOW, 1.0)]);
        assert_eq!(core.write(&good, NOW).unwrap().accepted, 1);
    }

    #[test]
    fn a_group_commits_together_and_fails_apart() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        core.max_series_per_host = 2;
        let group = |batches: Vec<MetricBatch>| {
            let (group, answers): (Vec<_>, Vec<_>) = batches
                .into_iter()
                .map(|batch| {
                    let (reply, answer) = oneshot::channel();
                    ((batch, reply), answer)
                })
                .unzip();
            (group, answers)
        };
        let (together, answers) = group(vec![
            batch("a", vec![sample("m", "{}", NOW, 1.0), sample("n", "{}", NOW, 2.0)]),
            batch("b", vec![sample("m", "{}", NOW, 3.0)]),
            // A re-send within the group is a duplicate.
            batch("a", vec![sample("m", "{}", NOW, 1.0)]),
        ]);
        core.write_batches(together, NOW);
        let outcomes: Vec<WriteOutcome> = answers
            .into_iter()
            .map(|a| a.blocking_recv().unwrap().unwrap())
            .collect();
        assert_eq!(
            outcomes.iter().map(|o| (o.accepted, o.duplicates)).collect::<Vec<_>>(),
            [(2, 0), (1, 0), (0, 1)]
        );
        assert_eq!(count(&core, "SELECT count(*) FROM samples"), 3);

        // Host `a` has its two series: a third makes its batch fail, alone.
        let (apart, answers) = group(vec![
            batch("b", vec![sample("m", "{}", NOW + 10_000, 4.0)]),
            batch("a", vec![sample("third", "{}", NOW + 10_000, 5.0)]),
            batch("c", vec![sample("m", "{}", NOW + 10_000, 6.0)]),
        ]);
        core.write_batches(apart, NOW + 10_000);
        let results: Vec<_> = answers.into_iter().map(|a| a.blocking_recv().unwrap()).collect();
        assert!(results[0].as_ref().is_ok_and(|o| o.accepted == 1));
        assert!(
            matches!(results[1], Err(MetricWriteError::TooManySeries { existing: 2, .. })),
            "{:?}",
            results[1]
        );
        assert!(results[2].as_ref().is_ok_and(|o| o.accepted == 1));
        assert_eq!(count(&core, "SELECT count(*) FROM samples"), 5);
        assert_eq!(count(&core, "SELECT count(*) FROM series WHERE name = 'third'"), 0);
        assert_eq!(core.recent.last_seen().len(), 3);
    }

    #[test]
    fn touches_are_kept_until_a_transaction_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        core.touch("logs-only".into(), NOW - 5);
        core.touch("logs-only".into(), NOW - 9);
        assert_eq!(count(&core, "SELECT count(*) FROM hosts"), 0);
        core.flush();
        assert_eq!(
            count(&core, "SELECT last_seen_ms FROM hosts WHERE host = 'logs-only'"),
            NOW - 5
        );
        core.touch("other".into(), NOW - 1);
        core.write(&batch("h", vec![sample("m", "{}", NOW, 1.0)]), NOW).unwrap();
        assert_eq!(count(&core, "SELECT count(*) FROM hosts"), 3);
        assert!(core.touched.is_empty());
    }

    #[test]
    fn retention_deletes_in_chunks_and_forgets_empty_series_and_old_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        let day0 = bucket_start(NOW - 20 * DAY_MS, DAY_MS);
        // 12,000 samples 10 s apart (about 33 hours) on one series; one old
        // sample on another series; one recent sample on a third.
        let long: Vec<_> = (0..12_000)
            .map(|i| sample("load.1m", "{}", day0 + i * 10_000, 1.0))
            .collect();
        core.write(&batch("h", long), NOW).unwrap();
        core.write(
            &batch("gone", vec![sample("m", r#"{"mount":"/old"}"#, day0, 1.0)]),
            NOW - 15 * DAY_MS,
        )
        .unwrap();
        core.write(&batch("h", vec![sample("m", "{}", NOW, 1.0)]), NOW).unwrap();
        let cutoff = day0 + DAY_MS + 30 * MINUTE_MS;
        let steps = expire_all(
            &mut core,
            Expiry {
                cutoff_ms: cutoff,
                forget_hosts_before_ms: NOW - 10 * DAY_MS,
            },
        );
        // 8,820 raw samples are due: two chunks, plus a step per roll-up tier and the clean-up.
        assert_eq!(steps, 5);
        assert_eq!(count(&core, "SELECT min(ts) FROM samples WHERE series_id = 1"), cutoff);
        assert_eq!(
            count(&core, "SELECT count(*) FROM samples WHERE series_id = 1"),
            12_000 - 8_820
        );
        assert_eq!(
            crate::metricstore::query::raw_points(&core.conn, 1, 0, NOW).unwrap()[0].0,
            cutoff
        );
        // The hour bucket holding the cutoff stays: half of it is younger.
        assert_eq!(
            count(&core, "SELECT min(ts) FROM rollup_1h WHERE series_id = 1"),
            day0 + DAY_MS
        );
        assert_eq!(count(&core, "SELECT count(*) FROM series"), 2, "the old series is gone");
        assert_eq!(count(&core, "SELECT count(*) FROM hosts WHERE host = 'gone'"), 0);
        assert_eq!(count(&core, "SELECT count(*) FROM hosts WHERE host = 'h'"), 1);
        // The cache was cleared with the series: a sample for the old series
        // makes a new one instead of pointing at a deleted id.
        core.write(&batch("gone", vec![sample("m", r#"{"mount":"/old"}"#, NOW, 1.0)]), NOW)
            .unwrap();
        assert_eq!(
            count(
                &core,
                "SELECT count(*) FROM samples JOIN series ON series.id = series_id WHERE host = 'gone'"
            ),
            1
        );
    }

    /// What memory answers against what the database answers (through SQL,
    /// and through a `Recent` loaded afresh from it): recent samples at
    /// several depths and windows, and the hosts list.
    fn assert_memory_matches_database(core: &WriterCore, now_ms: i64) {
        let loaded = Recent::load(&core.conn).unwrap();
        for name in ["cpu.usage_percent", "fs.used_percent", "memory.used_percent", "absent"] {
            for since in [0, now_ms - 600_000, now_ms - 60_000, now_ms + 1] {
                for per_series in [1, 3, 6, recent::DEPTH] {
                    // Every series, and only the totals (no `cpu` label).
                    let filters: [LabelFilter<'_>; 2] = [&|_| true, &|labels| !labels.contains_key("cpu")];
                    for wanted in filters {
                        let memory = core.recent.recent_samples(name, since, per_series, wanted).unwrap();
                        let sql = query::recent_samples(&core.conn, name, since, per_series, wanted).unwrap();
                        assert_eq!(memory, sql, "{name} since {since}, {per_series} per series");
                        assert_eq!(loaded.recent_samples(name, since, per_series, wanted).unwrap(), sql);
                    }
                }
            }
        }
        assert!(
            core.recent
                .recent_samples("cpu.usage_percent", 0, recent::DEPTH + 1, &|_| true)
                .is_none()
        );
        assert_eq!(core.recent.hosts(now_ms), loaded.hosts(now_ms));
        let summaries: Vec<(String, i64)> = core
            .recent
            .hosts(now_ms)
            .into_iter()
            .map(|h| (h.host, h.interval_ms))
            .collect();
        let activity: Vec<(String, i64)> = loaded.activity().into_iter().map(|h| (h.host, h.interval_ms)).collect();
        assert_eq!(summaries, activity);
        assert_eq!(core.recent.last_seen(), loaded.last_seen());
    }

    #[test]
    fn memory_answers_as_the_database_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = open(dir.path());
        // A deterministic shuffle: samples 10 s apart arrive out of order,
        // some twice, in batches of mixed hosts' series.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let series = [
            ("cpu.usage_percent", "{}"),
            ("cpu.usage_percent", r#"{"cpu":"0"}"#),
            ("memory.used_percent", "{}"),
            ("fs.used_percent", r#"{"mount":"/"}"#),
            ("fs.used_percent", r#"{"mount":"/var"}"#),
            ("net.rx_bytes_per_sec", r#"{"interface":"eth0"}"#),
        ];
        let mut now = NOW;
        for round in 0..60 {
            now = NOW + round * 10_000;
            for host in ["a", "b", "c"] {
                let samples = (0..8)
                    .map(|_| {
                        let (name, labels) = series[next(series.len() as u64) as usize];
                        // Mostly the present, sometimes a late or re-sent one.
                        let back = if next(4) == 0 { next(30) as i64 } else { 0 };
                        let time = now - back * 10_000;
                        sample(name, labels, time, (time / 10_000 % 97) as f64 + next(10) as f64)
                    })
                    .collect();
                core.write(&batch(host, samples), now).unwrap();
            }
            if round % 7 == 0 {
                // A host seen through logs only, as the handle records it.
                core.recent.touch("logs-only", now);
                core.touch("logs-only".into(), now);
            }
        }
        core.flush();
        assert_memory_matches_database(&core, now);
        // Compaction moves samples into blocks; nothing answers differently.
        core.compact(now - 60_000).unwrap();
        assert!(count(&core, "SELECT count(*) FROM chunks") > 0);
        assert_memory_matches_database(&core, now);

        // A restart: memory loaded from the database answers the same.
        drop(core);
        let mut core = open(dir.path());
        assert_memory_matches_database(&core, now);
        core.write(
            &batch("a", vec![sample("cpu.usage_percent", "{}", now + 10_000, 5.0)]),
            now + 10_000,
        )
        .unwrap();
        assert_memory_matches_database(&core, now + 10_000);

        // Retention: samples before the cutoff, and host `b` (last seen
        // before the forget time), go from both.
        let cutoff = now - 200_000;
        core.write(
            &batch("b", vec![sample("memory.used_percent", "{}", now - 300_000, 1.0)]),
            now - 300_000,
        )
        .unwrap();
        core.conn
            .execute("UPDATE hosts SET last_seen_ms = ?1 WHERE host = 'b'", [now - 300_000])
            .unwrap();
        core.recent = Arc::new(Recent::load(&core.conn).unwrap());
        expire_all(
            &mut core,
            Expiry {
                cutoff_ms: cutoff,
                forget_hosts_before_ms: now - 250_000,
            },
        );
        assert!(!core.recent.last_seen().contains_key("b"));
        assert!(
            core.recent
                .recent_samples("memory.used_percent", 0, recent::DEPTH, &|_| true)
                .unwrap()
                .iter()
                .all(|series| series.points.iter().all(|(time, _)| *time >= cutoff))
        );
        assert_memory_matches_database(&core, now + 10_000);
    }
}
