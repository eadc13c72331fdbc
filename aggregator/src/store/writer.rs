//! The single writer: a dedicated thread owning tantivy's `IndexWriter` for
//! the current day's partition and the held byte ranges of every stream.
//!
//! Handlers send prepared batches over a bounded channel, each with a oneshot
//! for its answer. The thread takes everything queued, drops records it
//! already holds, adds the rest, and commits once with the updated ranges as
//! the commit payload (group commit); only then, with the batch durable and
//! searchable, does each handler get its [`IngestResponse`]. A commit happens
//! only when something changed, so an all-duplicate re-send costs none.
//!
//! One thread, because the dedup decision and the commit must be serialised
//! anyway, and tantivy allows one writer per index.
//!
//! Live tail: after each successful commit the thread publishes the records
//! it added, as [`Hit`]s, on a bounded broadcast channel
//! ([`WriterHandle::subscribe_records`]). Only committed records are
//! published, so a tail never shows a line a search could not find; hits are
//! built only while someone listens.

use super::LogStore;
use super::intervals::{IntervalSet, StreamIntervals};
use super::partition::{PAYLOAD_VERSION, Partition, Payload};
use super::schema::Hit;
use crate::metrics::Metrics;
use crate::writer_thread::WriterThread;
use jiff::civil::Date;
use lookout_shared::wire::IngestResponse;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tantivy::{IndexWriter, TantivyDocument};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Indexing memory of the writer. Between 64 and 128 MB tantivy flushes
/// segments rarely enough for throughput while the process stays small.
const WRITER_MEMORY_BYTES: usize = 96 * 1024 * 1024;

/// Commits kept for live-tail subscribers; one that falls further behind
/// skips ahead and is told how many commits it missed.
const TAIL_CAPACITY: usize = 1024;

/// The records one commit added, in the order they were added.
pub type CommittedRecords = Arc<[Hit]>;

/// A batch ready for the index: decoded, validated, enriched.
#[derive(Default)]
pub struct PreparedBatch {
    /// One entry per chunk of the request, in request order.
    pub chunks: Vec<PreparedChunk>,
}

/// One stream's chunk with its records' documents.
pub struct PreparedChunk {
    /// The host that sent it: held ranges are kept per host and stream, so
    /// a batch can never mark bytes of another host's stream as held.
    pub host: String,
    /// Stream id.
    pub stream: String,
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

/// One record: its offset (for dedup) and its document.
pub struct PreparedRecord {
    /// Byte offset in the stream.
    pub offset: u64,
    /// The document to add.
    pub doc: TantivyDocument,
}

/// Why a batch was not stored; the client should retry later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The writer has stopped or is stopping.
    #[error("the log index is shutting down")]
    ShuttingDown,
    /// Opening the partition, adding or committing failed; nothing of the
    /// batch was kept.
    #[error("the log index could not store the batch: {0}")]
    CommitFailed(String),
}

enum Command {
    Write(WriteRequest),
    Retention { cutoff: Date },
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
    tails_closing: watch::Receiver<bool>,
}

/// What a live-tail subscriber receives next.
#[derive(Debug)]
pub enum FeedEvent {
    /// The records of one commit.
    Records(CommittedRecords),
    /// This many commits were skipped because the subscriber fell behind.
    Lagged(u64),
    /// The store is shutting down: no more records will come.
    Closed,
}

/// A subscription to committed records (see [`WriterHandle::subscribe_records`]).
pub struct RecordFeed {
    records: broadcast::Receiver<CommittedRecords>,
    closing: watch::Receiver<bool>,
}

impl RecordFeed {
    /// Waits for the next commit (or the end of the feed).
    pub async fn next(&mut self) -> FeedEvent {
        if *self.closing.borrow() {
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
    /// Stores `batch`; answers once it is committed and searchable.
    pub async fn write(&self, batch: PreparedBatch) -> Result<IngestResponse, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Write(WriteRequest { batch, reply }))
            .await
            .map_err(|_| WriteError::ShuttingDown)?;
        answer.await.map_err(|_| WriteError::ShuttingDown)?
    }

    /// Asks the writer to delete partitions of days before `cutoff`.
    pub async fn apply_retention(&self, cutoff: Date) -> Result<(), WriteError> {
        self.tx
            .send(Command::Retention { cutoff })
            .await
            .map_err(|_| WriteError::ShuttingDown)
    }

    /// Whether the writer thread still takes work.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Subscribes to the records of every commit from now on (live tail).
    pub fn subscribe_records(&self) -> RecordFeed {
        RecordFeed {
            records: self.records.subscribe(),
            closing: self.tails_closing.clone(),
        }
    }
}

/// Owns the writer thread; [`LogWriter::shutdown`] drains and stops it.
pub struct LogWriter {
    thread: WriterThread<Command>,
    records: broadcast::Sender<CommittedRecords>,
    tails_closing: watch::Sender<bool>,
}

impl LogWriter {
    /// Starts the writer thread over `store`, with the payloads the store's
    /// partitions were opened with.
    pub fn spawn(
        store: LogStore,
        payloads: BTreeMap<Date, Payload>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<LogWriter> {
        let mut core = WriterCore::new(store, payloads, metrics);
        // Open today's writer now, so that a second process on the same
        // data_dir fails at startup rather than on its first batch.
        core.ensure_current(today())?;
        let records = core.records.clone();
        let thread = WriterThread::spawn("log-writer", move |rx| run(core, rx))?;
        let (tails_closing, _) = watch::channel(false);
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
        self.tails_closing.send_replace(true);
    }

    /// Commits what is queued before this call, then stops the thread.
    /// Batches sent afterwards are answered with [`WriteError::ShuttingDown`].
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.end_live_tails();
        self.thread.shutdown(Command::Shutdown).await
    }
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
                Command::Retention { cutoff } => retention = Some(cutoff),
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
        if let Some(cutoff) = retention {
            core.apply_retention(cutoff);
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
}

/// The writer's state and logic, free of threads and channels (tested directly).
struct WriterCore {
    store: LogStore,
    metrics: Arc<Metrics>,
    // Live tail: the records of each commit, for whoever listens.
    records: broadcast::Sender<CommittedRecords>,
    // Committed held ranges per partition. A record is a duplicate when any
    // partition holds its offset; each partition's own ranges go into its
    // commit payload.
    held: BTreeMap<Date, StreamIntervals>,
    current: Option<Current>,
}

impl WriterCore {
    fn new(store: LogStore, payloads: BTreeMap<Date, Payload>, metrics: Arc<Metrics>) -> Self {
        let held = payloads.into_iter().map(|(day, p)| (day, p.streams)).collect();
        let (records, _) = broadcast::channel(TAIL_CAPACITY);
        WriterCore {
            store,
            metrics,
            records,
            held,
            current: None,
        }
    }

    /// Makes `day`'s partition the one written to.
    fn ensure_current(&mut self, day: Date) -> anyhow::Result<()> {
        if self.current.as_ref().is_some_and(|c| c.partition.day() == day) {
            return Ok(());
        }
        self.close();
        let partition = self.store.create_partition(day)?;
        let writer = partition.index().writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
        self.held.entry(day).or_default();
        tracing::info!(%day, "writing to log partition");
        self.current = Some(Current { partition, writer });
        Ok(())
    }

    /// Adds the new records of `batches` to `day`'s partition and commits.
    /// All or nothing: on error the partition is as before.
    fn write_group(&mut self, day: Date, batches: Vec<PreparedBatch>) -> Result<Vec<IngestResponse>, WriteError> {
        self.ensure_current(day)
            .map_err(|err| WriteError::CommitFailed(format!("{err:#}")))?;
        let Some(current) = self.current.as_mut() else {
            return Err(WriteError::CommitFailed("no partition is open".into()));
        };
        // Work on a copy of this partition's ranges: it becomes the committed
        // state only if the commit succeeds.
        let mut next = self.held.get(&day).cloned().unwrap_or_default();
        let mut time_range = current.partition.time_range();
        let mut changed = false;
        let mut responses = Vec::with_capacity(batches.len());
        // Hits for live tail, built only while someone listens.
        let live = self.records.receiver_count() > 0;
        let mut added_hits = Vec::new();
        for batch in batches {
            let mut response = IngestResponse {
                accepted: 0,
                duplicates: 0,
            };
            for chunk in batch.chunks {
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
                    held.extend(next.get(key));
                    held.extend(next.get(&chunk.stream));
                    // Only ranges touching the chunk can make its records duplicates.
                    held.retain(|set| set.overlaps(chunk.start, chunk.end));
                }
                let mut added = false;
                for record in chunk.records {
                    if held.iter().any(|set| set.contains(record.offset)) {
                        response.duplicates += 1;
                        continue;
                    }
                    if live {
                        added_hits.push(self.store.schema().hit(&record.doc));
                    }
                    if let Err(err) = current.writer.add_document(record.doc) {
                        return Err(abort(current, &self.metrics, &err));
                    }
                    response.accepted += 1;
                    added = true;
                }
                if added {
                    time_range = union(time_range, chunk.time_range);
                }
                if let Some(key) = key {
                    changed |= next.entry(key).or_default().insert(chunk.start, chunk.end);
                }
            }
            changed |= response.accepted > 0;
            responses.push(response);
        }
        if changed {
            let payload = Payload {
                version: PAYLOAD_VERSION,
                min_ts: time_range.map(|r| r.0),
                max_ts: time_range.map(|r| r.1),
                streams: next,
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
            current.partition.set_time_range(time_range);
            if let Err(err) = current.partition.reload() {
                // The batch is durable; it becomes searchable on the next reload.
                tracing::warn!(error = %err, "reloading the log index reader failed");
            }
            self.held.insert(day, payload.streams);
            if !added_hits.is_empty() {
                // No receiver left is fine: nobody is tailing.
                let _ = self.records.send(added_hits.into());
            }
        }
        for response in &responses {
            self.metrics.batch_done(response.accepted, response.duplicates);
        }
        Ok(responses)
    }

    /// Deletes the partitions of days before `cutoff` (never the one being written).
    fn apply_retention(&mut self, cutoff: Date) {
        let current_day = self.current.as_ref().map(|c| c.partition.day());
        for partition in self.store.partitions() {
            let day = partition.day();
            if day >= cutoff || Some(day) == current_day {
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

/// Rolls back what the failed group added and returns the error to answer.
fn abort(current: &mut Current, metrics: &Metrics, err: &dyn std::fmt::Display) -> WriteError {
    metrics.commit_failed();
    tracing::error!(error = %err, "log index write failed; rolling back the batches");
    if let Err(rollback) = current.writer.rollback() {
        tracing::error!(error = %rollback, "log index rollback failed");
    }
    WriteError::CommitFailed(err.to_string())
}

fn union(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The key of a stream's held ranges in a partition's payload: `host/stream`.
fn held_key(host: &str, stream: &str) -> String {
    format!("{host}/{stream}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{LogSchema, RecordFields};

    fn chunk(
        schema: &crate::store::schema::LogSchema,
        stream: &str,
        start: u64,
        end: u64,
        offsets: &[u64],
    ) -> PreparedChunk {
        let records = offsets
            .iter()
            .map(|&offset| {
                let message = format!("line at {offset}");
                let doc = schema.document(&RecordFields {
                    stream,
                    offset,
                    timestamp_ms: 1_000 + offset as i64,
                    ingested_ms: 1_000,
                    host: "h",
                    source: "/s",
                    level: "",
                    message: &message,
                    labels: None,
                    truncated: false,
                    fields: None,
                });
                PreparedRecord { offset, doc }
            })
            .collect();
        PreparedChunk {
            host: "h".to_owned(),
            stream: stream.to_owned(),
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
    fn dedup_spans_partitions_and_retention_deletes_old_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, mut core) = open(tmp.path());
        let schema = store.schema().clone();
        let old_day = Date::new(2020, 1, 1).unwrap();
        let new_day = Date::new(2020, 1, 20).unwrap();

        let batch = |chunks| PreparedBatch { chunks };
        let r = core
            .write_group(old_day, vec![batch(vec![chunk(&schema, S, 0, 30, &[0, 10, 20])])])
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (3, 0));

        // Next day, an overlapping re-send: only offset 30 is new.
        let r = core
            .write_group(new_day, vec![batch(vec![chunk(&schema, S, 10, 40, &[10, 20, 30])])])
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (1, 2));
        assert_eq!(count(&store), 4);
        assert_eq!(store.partitions().len(), 2);

        core.apply_retention(Date::new(2020, 1, 10).unwrap());
        assert_eq!(store.partitions().len(), 1);
        assert!(!Partition::dir_for(&tmp.path().join("logs"), old_day).exists());
        assert_eq!(count(&store), 1);
        core.close();
        drop(core);
        drop(store);

        // The surviving partition's ranges come back from its payload.
        let (_store, mut core) = open(tmp.path());
        let r = core
            .write_group(new_day, vec![batch(vec![chunk(&schema, S, 30, 50, &[30, 40])])])
            .unwrap();
        assert_eq!((r[0].accepted, r[0].duplicates), (1, 1));
    }

    #[tokio::test]
    async fn shutdown_commits_then_refuses_new_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, payloads) = LogStore::open(tmp.path()).unwrap();
        let schema = store.schema().clone();
        let writer = LogWriter::spawn(store.clone(), payloads, Arc::new(Metrics::default())).unwrap();
        let handle = writer.handle();
        let batch = PreparedBatch {
            chunks: vec![chunk(&schema, S, 0, 20, &[0, 10])],
        };
        let response = handle.write(batch).await.unwrap();
        assert_eq!((response.accepted, response.duplicates), (2, 0));
        writer.shutdown().await.unwrap();
        assert!(!handle.is_running());
        let late = PreparedBatch {
            chunks: vec![chunk(&schema, S, 20, 30, &[20])],
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
        let schema = store.schema().clone();
        let day = Date::new(2021, 6, 1).unwrap();
        let batches = vec![
            PreparedBatch {
                chunks: vec![chunk(&schema, S, 0, 20, &[0, 10])],
            },
            PreparedBatch {
                chunks: vec![chunk(&schema, S, 0, 20, &[0, 10])],
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
        let schema = store.schema().clone();
        let day = Date::new(2021, 6, 1).unwrap();
        let received = || PreparedBatch {
            chunks: vec![PreparedChunk {
                dedup: false,
                ..chunk(&schema, S, 0, 20, &[0, 10])
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
                    chunks: vec![chunk(&schema, S, 0, 20, &[0, 10])],
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
        for record in chunk(&schema, S, 0, 20, &[0, 10]).records {
            writer.add_document(record.doc).unwrap();
        }
        let payload = Payload {
            version: PAYLOAD_VERSION,
            min_ts: Some(1_000),
            max_ts: Some(1_010),
            streams: StreamIntervals::default(),
        };
        let mut commit = writer.prepare_commit().unwrap();
        commit.set_payload(&serde_json::to_string(&payload).unwrap());
        commit.commit().unwrap();
        drop(writer);

        let (store, mut core) = open(tmp.path());
        let r = core
            .write_group(
                day,
                vec![PreparedBatch {
                    chunks: vec![chunk(&schema, S, 20, 40, &[20, 30])],
                }],
            )
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
        // Ids, offsets and times are found in both kinds of segment.
        for o in [10, 30] {
            assert_eq!(search(&format!("id:{S}-{o}")).hits[0].message, format!("line at {o}"));
        }
        let context = store.context(&format!("{S}-10"), 5, 5).unwrap();
        assert_eq!((context.before.len(), context.after.len()), (1, 2));
    }
}
