//! The single writer: a dedicated thread owning tantivy's `IndexWriter` for
//! the current day's partition and the held byte ranges of every stream.
//!
//! Handlers send prepared batches over a bounded channel, each with a oneshot
//! for its answer. The thread takes everything queued (group commit), drops
//! records it already holds, and adds the rest. What "durable" means depends
//! on `[ingest] commit_interval`:
//!
//! - Above zero (the default, 1 s): the group is appended to the
//!   write-ahead log ([`super::wal`]) and synced, its records are added to
//!   the index writer, and each handler gets its [`IngestResponse`]. The
//!   index is committed, with the updated ranges as the commit payload, once
//!   the interval has passed since the last commit; then the group is
//!   searchable. Fewer, larger segments are what make indexing cheap.
//! - Zero: the group is committed before anyone is answered, so an answered
//!   record is searchable at once (a segment per group: slower).
//!
//! A commit happens only when something changed, so an all-duplicate
//! re-send costs none. One thread, because the dedup decision and the
//! commit must be serialised anyway, and tantivy allows one writer per index.
//!
//! Live tail: once a group is durable the thread publishes the records it
//! added, as [`Hit`]s, on a bounded broadcast channel
//! ([`WriterHandle::subscribe_records`]); hits are built only while someone
//! listens.

use super::LogStore;
use super::intervals::{IntervalSet, StreamIntervals};
use super::partition::{PAYLOAD_VERSION, Partition, Payload};
use super::schema::{Hit, RecordFields, labels_value};
use super::wal::{Wal, WalEntry};
use crate::metrics::Metrics;
use crate::writer_thread::WriterThread;
use jiff::civil::Date;
use lookout_shared::parse::Level;
use lookout_shared::parse::fields::FieldValue;
use lookout_shared::time::rfc3339;
use lookout_shared::wire::{IngestResponse, record_id};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tantivy::IndexWriter;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Indexing memory of the writer. Between 64 and 128 MB tantivy flushes
/// segments rarely enough for throughput while the process stays small.
const WRITER_MEMORY_BYTES: usize = 96 * 1024 * 1024;
/// Segments of one size that are merged together (tantivy's default: 8).
const MERGE_SEGMENTS: usize = 16;

/// Commits kept for live-tail subscribers; one that falls further behind
/// skips ahead and is told how many commits it missed.
const TAIL_CAPACITY: usize = 1024;

/// The write-ahead log's file under `data_dir`.
pub const WAL_FILE: &str = "logs.wal";

/// The records one group added, in the order they were added.
pub type CommittedRecords = Arc<[Hit]>;

/// A batch ready for the index: decoded, validated, enriched.
#[derive(Debug, Default)]
pub struct PreparedBatch {
    /// One entry per chunk of the request, in request order.
    pub chunks: Vec<PreparedChunk>,
}

/// One stream's chunk with its records.
#[derive(Debug)]
pub struct PreparedChunk {
    /// The host that sent it: held ranges are kept per host and stream, so
    /// a batch can never mark bytes of another host's stream as held.
    pub host: String,
    /// Stream id.
    pub stream: String,
    /// The file path (or what stands for one) the records come from.
    pub source: String,
    /// The source's labels.
    pub labels: BTreeMap<String, String>,
    /// First byte covered.
    pub start: u64,
    /// One past the last byte covered.
    pub end: u64,
    /// Whether `[start, end)` is remembered as held and the records checked
    /// against what is held: true for agent streams, whose offsets name
    /// bytes of a file or journal that may be re-sent; false for what a
    /// receiver read (syslog, OTLP, bulk, Loki push), which no sender can
    /// re-send under the same offsets, so remembering its ranges would only
    /// grow every commit's payload.
    pub dedup: bool,
    /// Event-time range (Unix ms) of the records; `None` without records.
    pub time_range: Option<(i64, i64)>,
    /// The records in file order.
    pub records: Vec<PreparedRecord>,
}

/// One record as ingest decided it.
#[derive(Debug)]
pub struct PreparedRecord {
    /// Byte offset in the stream.
    pub offset: u64,
    /// Event time, Unix ms, within the range the index holds.
    pub timestamp_ms: i64,
    /// Arrival time, Unix ms.
    pub ingested_ms: i64,
    /// Detected or stated level.
    pub level: Option<Level>,
    /// Text.
    pub message: String,
    /// Whether the sender cut the record short.
    pub truncated: bool,
    /// Extracted and stated fields.
    pub fields: BTreeMap<String, FieldValue>,
}

/// Why a batch was not stored; the client should retry later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The writer has stopped or is stopping.
    #[error("the log index is shutting down")]
    ShuttingDown,
    /// Opening the partition, the write-ahead log, adding or committing
    /// failed; nothing of the batch was kept.
    #[error("the log index could not store the batch: {0}")]
    CommitFailed(String),
}

enum Command {
    Write(WriteRequest),
    Retention {
        cutoff: Date,
        only: Option<Vec<Date>>,
    },
    /// Time passed: commit if the interval is up.
    Tick,
    Shutdown,
}

struct WriteRequest {
    batch: PreparedBatch,
    reply: oneshot::Sender<Result<IngestResponse, WriteError>>,
}

/// Sends work to the writer thread (cheap to clone).
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Command>,
    records: broadcast::Sender<CommittedRecords>,
    tails_closing: watch::Receiver<u64>,
}

/// The tails generation that means "closed for good" (the writer stops).
const TAILS_CLOSED: u64 = u64::MAX;

/// What a live-tail subscriber receives next.
#[derive(Debug)]
pub enum FeedEvent {
    /// The records of one group.
    Records(CommittedRecords),
    /// This many groups were skipped because the subscriber fell behind.
    Lagged(u64),
    /// The store is shutting down: no more records will come.
    Closed,
}

/// A subscription to stored records (see [`WriterHandle::subscribe_records`]).
pub struct RecordFeed {
    records: broadcast::Receiver<CommittedRecords>,
    /// The tails generation: a change ends this feed.
    closing: watch::Receiver<u64>,
    started: u64,
}

impl RecordFeed {
    /// Waits for the next group (or the end of the feed).
    pub async fn next(&mut self) -> FeedEvent {
        let generation = *self.closing.borrow();
        if generation == TAILS_CLOSED || generation != self.started {
            return FeedEvent::Closed;
        }
        tokio::select! {
            received = self.records.recv() => match received {
                Ok(records) => FeedEvent::Records(records),
                Err(broadcast::error::RecvError::Lagged(missed)) => FeedEvent::Lagged(missed),
                Err(broadcast::error::RecvError::Closed) => FeedEvent::Closed,
            },
            // A change means closing; an error means the writer is gone.
            _ = self.closing.changed() => FeedEvent::Closed,
        }
    }
}

impl WriterHandle {
    /// Stores `batch`; answers once it is durable (see the module docs for
    /// when it is searchable).
    pub async fn write(&self, batch: PreparedBatch) -> Result<IngestResponse, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Write(WriteRequest { batch, reply }))
            .await
            .map_err(|_| WriteError::ShuttingDown)?;
        answer.await.map_err(|_| WriteError::ShuttingDown)?
    }

    /// Asks the writer to delete partitions of days before `cutoff`, but
    /// only those in `only` when it is given (the archived days).
    pub async fn apply_retention(&self, cutoff: Date, only: Option<Vec<Date>>) -> Result<(), WriteError> {
        self.tx
            .send(Command::Retention { cutoff, only })
            .await
            .map_err(|_| WriteError::ShuttingDown)
    }

    /// Whether the writer thread still takes work.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Subscribes to the records of every group stored from now on (live tail).
    pub fn subscribe_records(&self) -> RecordFeed {
        let mut closing = self.tails_closing.clone();
        let started = *closing.borrow_and_update();
        RecordFeed {
            records: self.records.subscribe(),
            closing,
            started,
        }
    }
}

/// Owns the writer thread; [`LogWriter::shutdown`] drains and stops it.
pub struct LogWriter {
    thread: WriterThread<Command>,
    records: broadcast::Sender<CommittedRecords>,
    tails_closing: watch::Sender<u64>,
}

impl LogWriter {
    /// Starts the writer thread over `store`, with the payloads the store's
    /// partitions were opened with. With a `commit_interval` above zero the
    /// write-ahead log in `data_dir` is opened first and what it holds
    /// beyond the partitions' last commits is added again and committed.
    pub fn spawn(
        store: LogStore,
        payloads: BTreeMap<Date, Payload>,
        metrics: Arc<Metrics>,
        data_dir: &Path,
        commit_interval: Duration,
    ) -> anyhow::Result<LogWriter> {
        let mut core = WriterCore::new(store, payloads, metrics);
        if !commit_interval.is_zero() {
            core.open_wal(&data_dir.join(WAL_FILE), commit_interval)?;
        } else {
            // Switching the interval to zero must not strand what an
            // earlier run acknowledged.
            let path = data_dir.join(WAL_FILE);
            if path.exists() {
                core.open_wal(&path, Duration::ZERO)?;
                core.wal = None;
                std::fs::remove_file(&path)?;
            }
        }
        // Open today's writer now, so that a second process on the same
        // data_dir fails at startup rather than on its first batch.
        core.ensure_current(today())?;
        let records = core.records.clone();
        let thread = WriterThread::spawn("log-writer", move |rx| run(core, rx))?;
        if !commit_interval.is_zero() {
            spawn_ticker(thread.sender().downgrade(), commit_interval)?;
        }
        let (tails_closing, _) = watch::channel(0);
        Ok(LogWriter {
            thread,
            records,
            tails_closing,
        })
    }

    /// A handle for sending batches.
    pub fn handle(&self) -> WriterHandle {
        WriterHandle {
            tx: self.thread.sender(),
            records: self.records.clone(),
            tails_closing: self.tails_closing.subscribe(),
        }
    }

    /// Ends every live-tail subscription ([`FeedEvent::Closed`]), so that
    /// streaming responses finish and a graceful HTTP shutdown need not wait
    /// for browsers to hang up. Call it before stopping the HTTP server.
    pub fn end_live_tails(&self) {
        self.tails_closing.send_replace(TAILS_CLOSED);
    }

    /// Ends the live-tail subscriptions open now; new ones are served (a
    /// reload that changed the tokens: a client reconnects with a token or
    /// session that is still good).
    pub fn end_open_live_tails(&self) {
        self.tails_closing.send_modify(|generation| {
            if *generation != TAILS_CLOSED {
                *generation += 1;
            }
        });
    }

    /// Stores and commits what is queued before this call, then stops the
    /// thread. Batches sent afterwards are answered with
    /// [`WriteError::ShuttingDown`].
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.end_live_tails();
        self.thread.shutdown(Command::Shutdown).await
    }
}

/// Wakes the writer a few times per interval so that a quiet moment still
/// commits what came before it; ends with the writer.
fn spawn_ticker(tx: mpsc::WeakSender<Command>, interval: Duration) -> std::io::Result<()> {
    let tick = (interval / 4).max(Duration::from_millis(20));
    std::thread::Builder::new()
        .name("log-commit-tick".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                let Some(tx) = tx.upgrade() else { return };
                // Full: the writer has work and checks the time after it.
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Command::Tick) {
                    return;
                }
            }
        })
        .map(drop)
}

/// The current UTC day: the partition new records go to.
pub fn today() -> Date {
    jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date()
}

fn run(mut core: WriterCore, mut rx: mpsc::Receiver<Command>) {
    while let Some(command) = rx.blocking_recv() {
        let mut group = Vec::new();
        let mut retention = None;
        let mut stop = false;
        let mut next = Some(command);
        while let Some(command) = next.take() {
            match command {
                Command::Write(request) => group.push(request),
                Command::Retention { cutoff, only } => retention = Some((cutoff, only)),
                Command::Tick => {}
                Command::Shutdown => stop = true,
            }
            // Group commit: whatever queued up meanwhile shares one commit.
            if !stop {
                next = rx.try_recv().ok();
            }
        }
        if !group.is_empty() {
            let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().map(|r| (r.batch, r.reply)).unzip();
            match core.write_group(today(), batches) {
                Ok(responses) => {
                    for (reply, response) in replies.into_iter().zip(responses) {
                        // A handler that gave up (client gone) needs no answer:
                        // the batch is stored and a re-send will be a duplicate.
                        let _ = reply.send(Ok(response));
                    }
                }
                Err(err) => {
                    for reply in replies {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
        }
        if core.commit_due() || stop {
            core.commit_pending();
        }
        if let Some((cutoff, only)) = retention {
            core.apply_retention(cutoff, only.as_deref());
        }
        if stop {
            break;
        }
    }
    core.close();
}

struct Current {
    partition: Arc<Partition>,
    writer: IndexWriter,
    /// Ranges held including what was added since the last commit: what
    /// dedup checks against, and the next commit's payload.
    next: StreamIntervals,
    /// Event-time range including what was added since the last commit.
    time_range: Option<(i64, i64)>,
    /// Whether anything was added since the last commit.
    dirty: bool,
    /// The last write-ahead log entry added since the last commit.
    wal_seq: u64,
}

/// The writer's state and logic, free of threads and channels (tested directly).
struct WriterCore {
    store: LogStore,
    metrics: Arc<Metrics>,
    // Live tail: the records of each group, for whoever listens.
    records: broadcast::Sender<CommittedRecords>,
    // Committed held ranges per partition. A record is a duplicate when any
    // partition holds its offset; each partition's own ranges go into its
    // commit payload.
    held: BTreeMap<Date, StreamIntervals>,
    // The last write-ahead log entry some commit covers. Entries are
    // numbered in the order they are added and every commit covers all
    // added before it (a day switch commits the day before), so every
    // entry up to this one is in the index.
    committed_seq: u64,
    current: Option<Current>,
    // With the write-ahead log: commit at most this often.
    wal: Option<Wal>,
    commit_interval: Duration,
    last_commit: Instant,
    // The index writer holds less than the log says is pending (adding the
    // log's entries again failed): nothing may be committed, and no log
    // cleared, until they are added again.
    unsynced: bool,
}

/// The log's size past which a batch waits for a commit first: what a
/// start must add again stays bounded while commits keep failing.
const MAX_WAL_BYTES: u64 = 512 * 1024 * 1024;

impl WriterCore {
    fn new(store: LogStore, payloads: BTreeMap<Date, Payload>, metrics: Arc<Metrics>) -> Self {
        let committed_seq = payloads.values().map(|p| p.wal_seq).max().unwrap_or(0);
        let held = payloads.into_iter().map(|(day, p)| (day, p.streams)).collect();
        let (records, _) = broadcast::channel(TAIL_CAPACITY);
        WriterCore {
            store,
            metrics,
            records,
            held,
            committed_seq,
            current: None,
            wal: None,
            commit_interval: Duration::ZERO,
            last_commit: Instant::now(),
            unsynced: false,
        }
    }

    /// Opens the write-ahead log at `path` (locking it: one process per
    /// data_dir), adds again what no commit covers, and commits it.
    fn open_wal(&mut self, path: &Path, commit_interval: Duration) -> anyhow::Result<()> {
        let (wal, entries) = Wal::open(path, self.committed_seq)?;
        self.wal = Some(wal);
        self.commit_interval = commit_interval;
        let replayed = self.replay(entries)?;
        if replayed > 0 {
            tracing::info!(
                entries = replayed,
                "added the write-ahead log's uncommitted entries again"
            );
        }
        self.commit().map_err(|err| anyhow::anyhow!("{err}"))?;
        Ok(())
    }

    /// Adds the entries no commit covers, in order, through the same dedup
    /// as when they arrived; returns how many. Neither answered nor shown
    /// in live tail again.
    fn replay(&mut self, entries: Vec<WalEntry>) -> anyhow::Result<usize> {
        let mut replayed = 0;
        for entry in entries {
            if entry.seq <= self.committed_seq {
                continue;
            }
            self.ensure_current(entry.day)?;
            self.add_group(entry.batches).map_err(|err| anyhow::anyhow!("{err}"))?;
            if let Some(current) = self.current.as_mut() {
                current.wal_seq = entry.seq;
                current.dirty = true;
            }
            replayed += 1;
        }
        Ok(replayed)
    }

    /// Makes `day`'s partition the one written to, committing the one
    /// before it.
    fn ensure_current(&mut self, day: Date) -> anyhow::Result<()> {
        if self.current.as_ref().is_some_and(|c| c.partition.day() == day) {
            return Ok(());
        }
        if let Err(err) = self.commit() {
            self.recover();
            return Err(anyhow::anyhow!("{err}"));
        }
        self.close();
        let partition = self.store.create_partition(day)?;
        let writer = partition.index().writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
        set_merge_policy(&writer);
        let next = self.held.entry(day).or_default().clone();
        tracing::info!(%day, "writing to log partition");
        self.current = Some(Current {
            time_range: partition.time_range(),
            partition,
            writer,
            next,
            dirty: false,
            wal_seq: self.committed_seq,
        });
        Ok(())
    }

    /// Stores `batches` in `day`'s partition: durable in the write-ahead
    /// log, or committed without one. All or nothing: on error nothing of
    /// them is kept.
    fn write_group(&mut self, day: Date, batches: Vec<PreparedBatch>) -> Result<Vec<IngestResponse>, WriteError> {
        if self.unsynced {
            self.recover();
            if self.unsynced {
                return Err(WriteError::CommitFailed(
                    "the log index cannot take the write-ahead log's records back; see the error log".into(),
                ));
            }
        }
        self.ensure_current(day)
            .map_err(|err| WriteError::CommitFailed(format!("{err:#}")))?;
        if self.wal.is_none() {
            let stored = self
                .add_group(batches)
                .and_then(|(responses, hits)| self.commit().map(|()| (responses, hits)));
            return match stored {
                Ok((responses, hits)) => Ok(self.answered(responses, hits)),
                Err(err) => {
                    self.recover();
                    Err(err)
                }
            };
        }
        let over = |core: &Self| core.wal.as_ref().is_some_and(|wal| wal.len() > MAX_WAL_BYTES);
        if over(self) {
            // Commits have been failing: try one (at most once per interval,
            // each try re-adds the whole log), and refuse rather than let
            // the log grow.
            if self.last_commit.elapsed() >= self.commit_interval {
                self.commit_pending();
            }
            if over(self) {
                return Err(WriteError::CommitFailed(
                    "the log index has not committed for a while and its write-ahead log is full; retry later".into(),
                ));
            }
        }
        let Some(wal) = self.wal.as_mut() else {
            return Err(WriteError::CommitFailed("the write-ahead log is closed".into()));
        };
        let seq = wal.append(day, &batches).map_err(|err| {
            self.metrics.commit_failed();
            tracing::error!(error = %err, "cannot append to the write-ahead log; refusing the batches");
            WriteError::CommitFailed(format!("the write-ahead log cannot be written: {err}"))
        })?;
        match self.add_group(batches) {
            Ok((responses, hits)) => {
                if let Some(current) = self.current.as_mut() {
                    current.wal_seq = seq;
                }
                Ok(self.answered(responses, hits))
            }
            Err(err) => {
                // The index writer was rolled back to the last commit: the
                // refused group leaves the log, what came before goes in again.
                if let Some(wal) = self.wal.as_mut()
                    && let Err(remove) = wal.remove_last(seq)
                {
                    tracing::error!(error = %remove, "cannot take a refused group back out of the write-ahead log; a start will add it");
                }
                self.recover();
                Err(err)
            }
        }
    }

    /// Counts the stored batches and shows their records in live tail.
    fn answered(&self, responses: Vec<IngestResponse>, hits: Vec<Hit>) -> Vec<IngestResponse> {
        for response in &responses {
            self.metrics.batch_done(response.accepted, response.duplicates);
        }
        if !hits.is_empty() {
            // No receiver left is fine: nobody is tailing.
            let _ = self.records.send(hits.into());
        }
        responses
    }

    /// Drops what each chunk already holds and adds the rest to the current
    /// partition's writer; updates the ranges and time range to commit.
    /// Returns each batch's outcome and, while someone tails, the hits added.
    fn add_group(&mut self, batches: Vec<PreparedBatch>) -> Result<(Vec<IngestResponse>, Vec<Hit>), WriteError> {
        let Some(current) = self.current.as_mut() else {
            return Err(WriteError::CommitFailed("no partition is open".into()));
        };
        let day = current.partition.day();
        let layout = current.partition.numbers_layout();
        let schema = self.store.schema();
        let mut responses = Vec::with_capacity(batches.len());
        // Hits for live tail, built only while someone listens.
        let live = self.records.receiver_count() > 0;
        let mut added_hits = Vec::new();
        for batch in batches {
            let mut response = IngestResponse {
                accepted: 0,
                duplicates: 0,
            };
            for mut chunk in batch.chunks {
                // Received chunks have no ranges: neither checked nor kept.
                let key = chunk.dedup.then(|| held_key(&chunk.host, &chunk.stream));
                let mut held: Vec<&IntervalSet> = Vec::new();
                if let Some(key) = &key {
                    for (held_day, streams) in &self.held {
                        if *held_day != day {
                            held.extend(streams.get(key));
                            // Payloads written before ranges were kept per host.
                            held.extend(streams.get(&chunk.stream));
                        }
                    }
                    held.extend(current.next.get(key));
                    held.extend(current.next.get(&chunk.stream));
                    // Only ranges touching the chunk can make its records duplicates.
                    held.retain(|set| set.overlaps(chunk.start, chunk.end));
                }
                let labels = labels_value(&chunk.labels);
                let mut added = false;
                let records = std::mem::take(&mut chunk.records);
                for record in records {
                    if held.iter().any(|set| set.contains(record.offset)) {
                        response.duplicates += 1;
                        continue;
                    }
                    if live {
                        added_hits.push(hit(&chunk, &record));
                    }
                    let doc = schema.document(
                        &RecordFields {
                            stream: &chunk.stream,
                            offset: record.offset,
                            timestamp_ms: record.timestamp_ms,
                            ingested_ms: record.ingested_ms,
                            host: &chunk.host,
                            source: &chunk.source,
                            level: record.level.map_or("", Level::as_str),
                            message: &record.message,
                            labels: labels.as_ref(),
                            truncated: record.truncated,
                            fields: &record.fields,
                        },
                        layout,
                    );
                    // One document per send: tantivy bounds its queue to the
                    // indexing thread in sends (10,000), not documents, so
                    // sending batches (`IndexWriter::run`) would let it hold
                    // that many batches when indexing falls behind.
                    if let Err(err) = current.writer.add_document(doc) {
                        return Err(abort(current, &self.metrics, &err));
                    }
                    response.accepted += 1;
                    added = true;
                }
                if added {
                    current.time_range = union(current.time_range, chunk.time_range);
                }
                if let Some(key) = key {
                    current.dirty |= current.next.entry(key).or_default().insert(chunk.start, chunk.end);
                }
            }
            current.dirty |= response.accepted > 0;
            responses.push(response);
        }
        Ok((responses, added_hits))
    }

    /// Whether the write-ahead log holds something and the interval since
    /// the last commit (or failed try) is up.
    fn commit_due(&self) -> bool {
        let pending = self.current.as_ref().is_some_and(|c| c.dirty);
        self.wal.as_ref().is_some_and(|wal| pending || !wal.is_empty())
            && self.last_commit.elapsed() >= self.commit_interval
    }

    /// Commits what the write-ahead log holds; on failure, logs it, puts
    /// the log's entries back into a fresh index writer, and waits an
    /// interval before the next try.
    fn commit_pending(&mut self) {
        if self.unsynced {
            self.recover();
        }
        if let Err(err) = self.commit() {
            tracing::error!(error = %err, "committing the log index failed; retrying at the next interval");
            self.last_commit = Instant::now();
            self.recover();
        }
    }

    /// After the index writer was rolled back to its last commit: what is
    /// uncommitted goes back to the commit's state, and the write-ahead
    /// log's entries, if there is a log, are added again. If that fails,
    /// the writer is rolled back once more and marked unsynced, so that
    /// nothing is committed and no log cleared until a later try succeeds.
    fn recover(&mut self) {
        self.reset_to_committed();
        let Some(wal) = self.wal.as_mut() else {
            self.unsynced = false;
            return;
        };
        let replayed = wal.entries().and_then(|entries| self.replay(entries));
        match replayed {
            Ok(_) => self.unsynced = false,
            Err(err) => {
                tracing::error!(
                    error = %format!("{err:#}"),
                    "cannot add the write-ahead log's records to the index again; refusing batches and \
                     committing nothing until it can (the log keeps them)"
                );
                if let Some(current) = self.current.as_mut() {
                    roll_back(&mut current.writer);
                }
                self.reset_to_committed();
                self.unsynced = true;
            }
        }
    }

    /// Ranges, time range and log position back to the last commit's.
    fn reset_to_committed(&mut self) {
        if let Some(current) = self.current.as_mut() {
            let day = current.partition.day();
            current.next = self.held.get(&day).cloned().unwrap_or_default();
            current.time_range = current.partition.time_range();
            current.dirty = false;
            current.wal_seq = self.committed_seq;
        }
    }

    /// Commits the current partition if anything was added, with the held
    /// ranges, time range and last log entry as payload; then the log is
    /// emptied. On error the index writer is rolled back to the last commit.
    fn commit(&mut self) -> Result<(), WriteError> {
        if self.unsynced {
            return Err(WriteError::CommitFailed(
                "the index writer does not hold the write-ahead log's records".into(),
            ));
        }
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        if !current.dirty {
            // Only re-sent records came since the last commit: nothing to
            // add again at a start.
            if let Some(wal) = self.wal.as_mut()
                && !wal.is_empty()
                && let Err(err) = wal.clear()
            {
                tracing::warn!(error = %err, "cannot empty the write-ahead log");
            }
            return Ok(());
        }
        let payload = Payload {
            version: PAYLOAD_VERSION,
            min_ts: current.time_range.map(|r| r.0),
            max_ts: current.time_range.map(|r| r.1),
            streams: current.next.clone(),
            wal_seq: current.wal_seq,
        };
        let json = match serde_json::to_string(&payload) {
            Ok(json) => json,
            Err(err) => return Err(abort(current, &self.metrics, &err)),
        };
        let started = Instant::now();
        let committed = current.writer.prepare_commit().and_then(|mut prepared| {
            prepared.set_payload(&json);
            prepared.commit()
        });
        if let Err(err) = committed {
            return Err(abort(current, &self.metrics, &err));
        }
        self.metrics.commit_done(started.elapsed());
        self.last_commit = Instant::now();
        current.dirty = false;
        current.partition.set_time_range(current.time_range);
        if let Err(err) = current.partition.reload() {
            // The records are durable; they become searchable on the next reload.
            tracing::warn!(error = %err, "reloading the log index reader failed");
        }
        let day = current.partition.day();
        self.held.insert(day, payload.streams);
        self.committed_seq = self.committed_seq.max(payload.wal_seq);
        if let Some(wal) = self.wal.as_mut()
            && let Err(err) = wal.clear()
        {
            // Harmless: a start skips the entries this commit covers.
            tracing::warn!(error = %err, "cannot empty the write-ahead log after a commit");
        }
        Ok(())
    }

    /// Deletes the partitions of days before `cutoff`, and with `only` just
    /// those of the days it names (never the one being written).
    fn apply_retention(&mut self, cutoff: Date, only: Option<&[Date]>) {
        let current_day = self.current.as_ref().map(|c| c.partition.day());
        for partition in self.store.partitions() {
            let day = partition.day();
            let named = only.is_none_or(|days| days.contains(&day));
            if day >= cutoff || Some(day) == current_day || !named {
                continue;
            }
            self.store.remove_partition(day);
            self.held.remove(&day);
            let dir = partition.dir().to_path_buf();
            // Searches still running keep their snapshot open; on Unix the
            // files stay readable to them until they finish.
            drop(partition);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => tracing::info!(%day, dir = %dir.display(), "deleted expired log partition"),
                Err(err) => {
                    tracing::warn!(%day, dir = %dir.display(), error = %err, "cannot delete expired log partition")
                }
            }
        }
    }

    /// Stops writing: waits for background merges and releases the index lock.
    fn close(&mut self) {
        if let Some(current) = self.current.take()
            && let Err(err) = current.writer.wait_merging_threads()
        {
            tracing::warn!(error = %err, "finishing log index merges failed");
        }
    }
}

/// A record as live tail shows it.
fn hit(chunk: &PreparedChunk, record: &PreparedRecord) -> Hit {
    Hit {
        id: record_id(&chunk.stream, record.offset),
        timestamp: rfc3339(record.timestamp_ms),
        host: chunk.host.clone(),
        source: chunk.source.clone(),
        level: record.level.map_or("", Level::as_str).to_owned(),
        message: record.message.clone(),
        truncated: record.truncated,
        cut: false,
        labels: chunk.labels.clone(),
        pattern: None,
        fields: record.fields.clone(),
        marks: Vec::new(),
    }
    .with_pattern()
}

/// Rolls back what was added since the last commit and returns the error to answer.
fn abort(current: &mut Current, metrics: &Metrics, err: &dyn std::fmt::Display) -> WriteError {
    metrics.commit_failed();
    tracing::error!(error = %err, "log index write failed; rolling back to the last commit");
    roll_back(&mut current.writer);
    WriteError::CommitFailed(err.to_string())
}

/// Drops what was added since the last commit. Tantivy makes a new writer
/// inside for that, with its default merge policy, so ours is set again.
fn roll_back(writer: &mut IndexWriter) {
    if let Err(rollback) = writer.rollback() {
        tracing::error!(error = %rollback, "log index rollback failed");
    }
    set_merge_policy(writer);
}

/// Merges of [`MERGE_SEGMENTS`] segments of a size; tantivy's other
/// defaults stay.
fn set_merge_policy(writer: &IndexWriter) {
    let mut merges = tantivy::merge_policy::LogMergePolicy::default();
    merges.set_min_num_segments(MERGE_SEGMENTS);
    writer.set_merge_policy(Box::new(merges));
}

fn union(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The key of a stream's held ranges in a partition's payload: `host/stream`.
pub(crate) fn held_key(host: &str, stream: &str) -> String {
    format!("{host}/{stream}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{LogSchema, NumbersLayout};

    fn chunk(stream: &str, start: u64, end: u64, offsets: &[u64]) -> PreparedChunk {
        let records = offsets
            .iter()
            .map(|&offset| PreparedRecord {
                offset,
                timestamp_ms: 1_000 + offset as i64,
                ingested_ms: 1_000,
                level: None,
                message: format!("line at {offset}"),
                truncated: false,
                fields: BTreeMap::new(),
            })
            .collect();
        PreparedChunk {
            host: "h".to_owned(),
            stream: stream.to_owned(),
            source: "/s".to_owned(),
            labels: BTreeMap::new(),
            start,
            end,
            time_range: Some((1_000 + start as i64, 1_000 + end as i64)),
            records,
            dedup: true,
        }
    }

    fn count(store: &LogStore) -> u64 {
        store.partitions().iter().map(|p| p.searcher().num_docs()).sum()
    }

    const S: &str = "00000000000000aa";

    fn open(dir: &std::path::Path) -> (LogStore, WriterCore) {
        let (store, payloads) = LogStore::open(dir).unwrap();
        let core = WriterCore::new(store.clone(), payloads, Arc::new(Metrics::default()));
        (store, core)
    }

    #[test]
    fn a_rolled_back_writer_keeps_the_merge_policy() {
        let index = tantivy::Index::create_in_ram(LogSchema::new().schema().clone());
        let mut writer: IndexWriter = index.writer(15_000_000).unwrap();
        set_merge_policy(&writer);
        let policy = |writer: &IndexWriter| format!("{:?}", writer.get_merge_policy());
        let ours = format!("min_num_segments: {MERGE_SEGMENTS}");
        assert!(policy(&writer).contains(&ours), "{}", policy(&writer));
        roll_back(&mut writer);
        assert!(policy(&writer).contains(&ours), "after a rollback: {}", policy(&writer));
    }

    #[test]
    fn dedup_spans_partitions_and_retention_deletes_old_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, mut core) = open(tmp.path());
        let old_day = Date::new(2020, 1, 1).unwrap();
        let new_day = Date::new(2020, 1, 20).unwrap();

        let batch = |chunks| PreparedBatch { chunks };
        let r = core
            .write_group(old_day, vec![batch(vec![chunk(S, 0, 30, &[0, 10, 20])])])
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (3, 0));

        // Next day, an overlapping re-send: only offset 30 is new.
        let r = core
            .write_group(new_day, vec![batch(vec![chunk(S, 10, 40, &[10, 20, 30])])])
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (1, 2));
        assert_eq!(count(&store), 4);
        assert_eq!(store.partitions().len(), 2);

        core.apply_retention(Date::new(2020, 1, 10).unwrap(), Some(&[]));
        assert_eq!(store.partitions().len(), 2, "a day not archived yet is kept");
        core.apply_retention(Date::new(2020, 1, 10).unwrap(), Some(&[old_day]));
        assert_eq!(store.partitions().len(), 1);
        assert!(!Partition::dir_for(&tmp.path().join("logs"), old_day).exists());
        assert_eq!(count(&store), 1);
        core.close();
        drop(core);
        drop(store);

        // The surviving partition's ranges come back from its payload.
        let (_store, mut core) = open(tmp.path());
        let r = core
            .write_group(new_day, vec![batch(vec![chunk(S, 30, 50, &[30, 40])])])
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (1, 1));
    }

    #[tokio::test]
    async fn shutdown_commits_then_refuses_new_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, payloads) = LogStore::open(tmp.path()).unwrap();
        // An interval longer than the test: only the shutdown commits.
        let interval = Duration::from_secs(3600);
        let writer = LogWriter::spawn(
            store.clone(),
            payloads,
            Arc::new(Metrics::default()),
            tmp.path(),
            interval,
        )
        .unwrap();
        let handle = writer.handle();
        let batch = PreparedBatch {
            chunks: vec![chunk(S, 0, 20, &[0, 10])],
        };
        let response = handle.write(batch).await.unwrap();
        assert_eq!((response.accepted, response.duplicates), (2, 0));
        writer.shutdown().await.unwrap();
        assert!(!handle.is_running());
        let late = PreparedBatch {
            chunks: vec![chunk(S, 20, 30, &[20])],
        };
        assert!(matches!(handle.write(late).await, Err(WriteError::ShuttingDown)));
        drop(store);
        // What was acknowledged is on disk.
        let (reopened, _) = LogStore::open(tmp.path()).unwrap();
        assert_eq!(count(&reopened), 2);
    }

    #[test]
    fn duplicates_within_one_group_are_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, mut core) = open(tmp.path());
        let day = Date::new(2021, 6, 1).unwrap();
        let batches = vec![
            PreparedBatch {
                chunks: vec![chunk(S, 0, 20, &[0, 10])],
            },
            PreparedBatch {
                chunks: vec![chunk(S, 0, 20, &[0, 10])],
            },
        ];
        let r = core.write_group(day, batches).unwrap();
        assert_eq!(
            (r[0].accepted, r[0].duplicates, r[1].accepted, r[1].duplicates),
            (2, 0, 0, 2)
        );
        assert_eq!(count(&store), 2);
        assert_eq!(store.partition(day).unwrap().time_range(), Some((1_000, 1_020)));
    }

    #[test]
    fn received_chunks_are_neither_checked_nor_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, mut core) = open(tmp.path());
        let day = Date::new(2021, 6, 1).unwrap();
        let received = || PreparedBatch {
            chunks: vec![PreparedChunk {
                dedup: false,
                ..chunk(S, 0, 20, &[0, 10])
            }],
        };
        let r = core.write_group(day, vec![received(), received()]).unwrap();
        assert_eq!((r[1].accepted, r[1].duplicates), (2, 0));
        assert_eq!(count(&store), 4);
        assert!(!core.held[&day].contains_key(&held_key("h", S)), "no range is kept");
        // And an agent chunk over the same offsets is not taken for a re-send.
        let r = core
            .write_group(
                day,
                vec![PreparedBatch {
                    chunks: vec![chunk(S, 0, 20, &[0, 10])],
                }],
            )
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (2, 0));
    }

    /// The schema of builds before times and offsets went unindexed and
    /// column values unstored: the same fields, each indexed and stored.
    fn schema_of_earlier_builds() -> tantivy::schema::Schema {
        use tantivy::schema::*;
        let exact = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::Basic),
            )
            .set_stored();
        let date = DateOptions::default()
            .set_indexed()
            .set_stored()
            .set_fast()
            .set_precision(DateTimePrecision::Milliseconds);
        let json = JsonObjectOptions::default().set_stored().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        );
        let mut builder = Schema::builder();
        builder.add_text_field("id", exact.clone());
        builder.add_text_field("stream", exact.clone().set_fast("raw"));
        builder.add_u64_field(
            "offset",
            NumericOptions::default().set_indexed().set_stored().set_fast(),
        );
        builder.add_date_field("timestamp", date.clone());
        builder.add_text_field("host", exact.clone().set_fast("raw"));
        builder.add_text_field("source", exact.clone().set_fast("raw"));
        builder.add_text_field("level", exact.set_fast("raw"));
        builder.add_text_field("message", TEXT | STORED);
        builder.add_json_field("labels", json.clone());
        builder.add_bool_field("truncated", INDEXED | STORED);
        builder.add_date_field("ingested", date);
        builder.add_json_field("fields", json.set_fast("raw").set_expand_dots_enabled());
        builder.build()
    }

    #[test]
    fn a_partition_of_an_earlier_build_is_searched_and_added_to() {
        use crate::store::search::{LogFilter, SearchRequest, SortOrder};
        let tmp = tempfile::tempdir().unwrap();
        let day = Date::new(2021, 6, 1).unwrap();
        let dir = Partition::dir_for(&tmp.path().join("logs"), day);
        std::fs::create_dir_all(&dir).unwrap();
        let earlier = tantivy::Index::create_in_dir(&dir, schema_of_earlier_builds()).unwrap();
        let schema = LogSchema::new();
        let mut writer: IndexWriter = earlier.writer(15_000_000).unwrap();
        // The earlier build stored extracted fields in the doc store.
        let stored_fields = BTreeMap::from([("status".to_owned(), FieldValue::Number(200.0))]);
        for record in chunk(S, 0, 20, &[0, 10]).records {
            let doc = schema.document(
                &RecordFields {
                    stream: S,
                    offset: record.offset,
                    timestamp_ms: record.timestamp_ms,
                    ingested_ms: record.ingested_ms,
                    host: "h",
                    source: "/s",
                    level: "",
                    message: &record.message,
                    labels: None,
                    truncated: false,
                    fields: &stored_fields,
                },
                NumbersLayout::InFields,
            );
            writer.add_document(doc).unwrap();
        }
        let payload = Payload {
            version: PAYLOAD_VERSION,
            min_ts: Some(1_000),
            max_ts: Some(1_010),
            streams: StreamIntervals::default(),
            wal_seq: 0,
        };
        let mut commit = writer.prepare_commit().unwrap();
        commit.set_payload(&serde_json::to_string(&payload).unwrap());
        commit.commit().unwrap();
        drop(writer);

        let (store, mut core) = open(tmp.path());
        let mut added = chunk(S, 20, 40, &[20, 30]);
        for record in &mut added.records {
            record.fields = BTreeMap::from([("status".to_owned(), FieldValue::Number(503.0))]);
        }
        let r = core
            .write_group(day, vec![PreparedBatch { chunks: vec![added] }])
            .unwrap();
        assert_eq!(r[0].accepted, 2);
        let search = |q: &str| {
            store
                .search(&SearchRequest {
                    filter: LogFilter {
                        q: q.to_owned(),
                        ..LogFilter::default()
                    },
                    limit: 10,
                    offset: 0,
                    order: SortOrder::Asc,
                })
                .unwrap()
        };
        let all = search("");
        assert_eq!(all.total, 4);
        let shown: Vec<(String, String, String)> = all
            .hits
            .iter()
            .map(|h| (h.id.clone(), h.host.clone(), h.message.clone()))
            .collect();
        assert_eq!(
            shown,
            [0, 10, 20, 30].map(|o| (format!("{S}-{o}"), "h".to_owned(), format!("line at {o}")))
        );
        assert_eq!(all.hits[1].timestamp, "1970-01-01T00:00:01.01Z");
        // Fields show from the doc store of the earlier build's partition,
        // for its own records and for those this build added to it (its
        // schema stores them); the next day's partition shows them from
        // the columns (below).
        let statuses: Vec<_> = all.hits.iter().map(|h| h.fields.get("status").cloned()).collect();
        let status = |n| Some(FieldValue::Number(n));
        assert_eq!(statuses, [status(200.0), status(200.0), status(503.0), status(503.0)]);
        assert_eq!(search("status:>=500").total, 2);
        // Ids, offsets and times are found in both kinds of segment.
        for o in [10, 30] {
            assert_eq!(search(&format!("id:{S}-{o}")).hits[0].message, format!("line at {o}"));
        }
        let context = store.context(&format!("{S}-10"), 5, 5).unwrap();
        assert_eq!((context.before.len(), context.after.len()), (1, 2));

        // The next day's partition is this build's: numbers apart from
        // the text. A query over both layouts finds numbers in each.
        let next_day = Date::new(2021, 6, 2).unwrap();
        let mut later = chunk(S, 40, 60, &[40, 50]);
        later.records[0].fields = BTreeMap::from([("status".to_owned(), FieldValue::Number(404.0))]);
        later.records[1].fields = BTreeMap::from([("status".to_owned(), FieldValue::Text("n/a".to_owned()))]);
        core.write_group(next_day, vec![PreparedBatch { chunks: vec![later] }])
            .unwrap();
        core.commit().unwrap();
        let layouts: Vec<_> = store.partitions().iter().map(|p| p.numbers_layout()).collect();
        assert_eq!(layouts, [NumbersLayout::InFields, NumbersLayout::Apart]);
        let offsets = |q: &str| -> Vec<String> { search(q).hits.into_iter().map(|h| h.id).collect() };
        let ids = |offsets: &[u64]| -> Vec<String> { offsets.iter().map(|o| format!("{S}-{o}")).collect() };
        assert_eq!(offsets("status:>=400"), ids(&[20, 30, 40]));
        assert_eq!(offsets("status:404 OR status:200"), ids(&[0, 10, 40]));
        assert_eq!(offsets("status:[100 TO 300]"), ids(&[0, 10]));
        assert_eq!(offsets("has:status"), ids(&[0, 10, 20, 30, 40, 50]));
        assert_eq!(offsets("status:n/a"), ids(&[50]));
        let shown: Vec<_> = search("").hits.into_iter().map(|h| h.fields).collect();
        assert_eq!(
            shown[4],
            BTreeMap::from([("status".to_owned(), FieldValue::Number(404.0))])
        );
        assert_eq!(
            shown[5],
            BTreeMap::from([("status".to_owned(), FieldValue::Text("n/a".to_owned()))])
        );
    }

    /// A core over `dir` with the write-ahead log and an interval longer
    /// than any test, so that only explicit commits happen.
    fn open_with_wal(dir: &std::path::Path) -> (LogStore, WriterCore) {
        let (store, mut core) = open(dir);
        core.open_wal(&dir.join(WAL_FILE), Duration::from_secs(3600)).unwrap();
        (store, core)
    }

    #[test]
    fn acknowledged_records_outlive_a_crash_in_the_write_ahead_log() {
        let tmp = tempfile::tempdir().unwrap();
        let (day1, day2) = (Date::new(2021, 6, 1).unwrap(), Date::new(2021, 6, 2).unwrap());
        let (store, mut core) = open_with_wal(tmp.path());
        let batch = |chunk| vec![PreparedBatch { chunks: vec![chunk] }];
        let r = core.write_group(day1, batch(chunk(S, 0, 20, &[0, 10]))).unwrap();
        assert_eq!(r[0].accepted, 2);
        assert_eq!(count(&store), 0, "answered, not yet committed");
        assert!(!core.commit_due(), "the interval is not up");
        // A new day commits the day before it.
        core.write_group(day2, batch(chunk(S, 20, 30, &[20]))).unwrap();
        assert_eq!(count(&store), 2);
        core.write_group(day2, batch(chunk(S, 30, 40, &[30]))).unwrap();
        // The process dies: the index writer goes without committing.
        drop(core);
        drop(store);

        let (store, mut core) = open_with_wal(tmp.path());
        assert_eq!(count(&store), 4, "the log's entries were added again and committed");
        assert_eq!(store.partition(day2).unwrap().searcher().num_docs(), 2);
        assert!(core.wal.as_ref().unwrap().is_empty());
        // The agent re-sends what it was not sure of: all duplicates.
        let r = core
            .write_group(day2, batch(chunk(S, 0, 40, &[0, 10, 20, 30])))
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (0, 4));
    }

    #[test]
    fn entries_a_commit_covers_are_not_added_again() {
        let tmp = tempfile::tempdir().unwrap();
        let day = Date::new(2021, 6, 1).unwrap();
        let (store, mut core) = open_with_wal(tmp.path());
        // Received lines: no dedup would hide a second copy.
        let received = PreparedChunk {
            dedup: false,
            ..chunk(S, 0, 20, &[0, 10])
        };
        core.write_group(day, vec![PreparedBatch { chunks: vec![received] }])
            .unwrap();
        let wal_path = tmp.path().join(WAL_FILE);
        let logged = std::fs::read(&wal_path).unwrap();
        core.commit().unwrap();
        assert_eq!(count(&store), 2);
        assert_eq!(
            std::fs::metadata(&wal_path).unwrap().len(),
            0,
            "a commit empties the log"
        );
        // As if the process died between the commit and emptying the log.
        drop(core);
        drop(store);
        std::fs::write(&wal_path, logged).unwrap();
        let (store, _core) = open_with_wal(tmp.path());
        assert_eq!(count(&store), 2);
    }
}
