//! `[archive]`: each day's logs, before retention deletes them, written as
//! compressed NDJSON to a folder or an S3-compatible bucket (through
//! `object_store`), and `archive restore --day D` to make a day searchable
//! again.
//!
//! Under `to`:
//!
//! - `YYYY-MM-DD/<host>-<hash>.ndjson.zst`: one object per day and host, one
//!   [`ArchivedRecord`] per line, zstd-compressed;
//! - `YYYY-MM-DD/manifest.json` ([`Manifest`]), written after the objects:
//!   a day is archived once its manifest exists.
//!
//! Retention asks [`Archiver::archive_due`] first and deletes no day that is
//! not archived, so a bucket that is down keeps days on disk (and says so
//! in the log and `/metrics`) rather than losing them.
//!
//! Writing streams: a blocking thread reads the partition host by host (the
//! host's postings, in document order) and compresses, sending 1 MiB
//! pieces through a bounded channel to the upload, which goes multipart
//! past 10 MiB. Memory stays bounded whatever a day holds.
//!
//! A restore downloads each object to a scratch file in `data_dir`, checks
//! its size and hash, then sends its records to the log writer in batches
//! ([`RestoreBatcher`]): they keep their ids, event and arrival times
//! (so log alert windows, which count arrivals, do not fire on them), and
//! land in today's partition, so retention keeps them `logs_days` more.

mod record;

pub use record::{Manifest, ManifestObject};

use record::{ArchivedRecord, HeldBefore, MANIFEST_NAME, MANIFEST_VERSION, RestoreBatcher};

use crate::config::{ArchiveConfig, ArchiveTarget, Config};
use crate::metrics::Metrics;
use crate::retention::cutoff;
use crate::store::LogStore;
use crate::store::partition::Partition;
use crate::store::schema::{LogSchema, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, MetaColumns, names};
use crate::store::writer::{LogWriter, WriterHandle};
use anyhow::Context as _;
use futures_util::StreamExt as _;
use jiff::civil::Date;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tantivy::columnar::Column;
use tantivy::schema::IndexRecordOption;
use tantivy::{DateTime, DocSet as _, TERMINATED, TantivyDocument, Term};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use xxhash_rust::xxh3::Xxh3;

/// zstd level of the objects: an archive is written once and kept long.
/// On 2 M benchmark lines from one host, level 9 wrote 0.243 × raw in
/// 27.7 CPU-s, level 3 0.331 × raw in 18.0 (BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 9;
/// Compressed bytes sent to the upload at a time.
const PIECE_BYTES: usize = 1 << 20;
/// Largest manifest read: tens of bytes per host.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// The configured destination, and how to name it in logs (never with
/// credentials).
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    shown: String,
}

impl Destination {
    /// Opens `[archive] to`: a folder (created private when missing and
    /// `create` is set: the aggregator does, the CLI does not) or the S3
    /// client (`AWS_*` environment variables fill what the section leaves
    /// out). Nothing is sent yet.
    pub fn open(config: &ArchiveConfig, create: bool) -> anyhow::Result<Destination> {
        let target = config
            .target()
            .map_err(|reason| anyhow::anyhow!("archive.to {reason}"))?;
        let store: Arc<dyn ObjectStore> = match &target {
            ArchiveTarget::Folder(folder) => {
                // Created private when missing; an existing folder (a mount
                // point, say) keeps the owner and mode it was given.
                if create && !folder.exists() {
                    lookout_shared::process::private_dir(folder)
                        .with_context(|| format!("cannot create the archive folder {}", folder.display()))?;
                }
                // fsync: retention deletes the day right after its archive
                // is written, so that must be on disk first.
                Arc::new(
                    LocalFileSystem::new_with_prefix(folder)
                        .with_context(|| format!("cannot open the archive folder {}", folder.display()))?
                        .with_fsync(true),
                )
            }
            ArchiveTarget::S3 { bucket, prefix } => {
                lookout_shared::tls::install_crypto_provider();
                // A few quick retries: an archive pass that fails is tried
                // again an hour later, and meanwhile retention waits.
                let retry = object_store::RetryConfig {
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(20 * 60),
                    ..Default::default()
                };
                // Parts of 10 MiB on a slow uplink: 30 s per request (the
                // default) would fail them all. Set as a key, so that the
                // client options `AWS_*` variables gave stay.
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry)
                    .with_config(
                        object_store::aws::AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout),
                        "300s",
                    );
                if let Some(endpoint) = &config.s3_endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some(region) = &config.s3_region {
                    builder = builder.with_region(region);
                }
                if let (Some(id), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key) {
                    builder = builder
                        .with_access_key_id(id.expose())
                        .with_secret_access_key(secret.expose());
                }
                // The error names the setting, never a key's value.
                let s3 = builder.build().context("cannot set up the S3 client of [archive]")?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
        };
        Ok(Destination {
            store,
            shown: config.to.clone(),
        })
    }

    /// `to` as configured, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The manifest of `day`, or `None` when the day is not archived.
    pub async fn manifest(&self, day: Date) -> anyhow::Result<Option<Manifest>> {
        let path = manifest_path(day);
        let bytes = match self.store.get(&path).await {
            Ok(found) if found.meta.size > MAX_MANIFEST_BYTES => {
                anyhow::bail!("{path} in {} is {} bytes, not a manifest", self.shown, found.meta.size)
            }
            Ok(found) => found.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => Err(err),
        }
        .with_context(|| format!("cannot read {path} from {}", self.shown))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).with_context(|| format!("{path} in {} is not a manifest", self.shown))?;
        anyhow::ensure!(
            manifest.version == MANIFEST_VERSION,
            "{path} in {} is of version {}; this build reads version {MANIFEST_VERSION}",
            self.shown,
            manifest.version
        );
        anyhow::ensure!(
            manifest.day == day.to_string(),
            "{path} in {} is the manifest of {}, not of {day}",
            self.shown,
            manifest.day
        );
        Ok(Some(manifest))
    }

    /// The manifests of the archived days, oldest first (a day's folder
    /// without one is a day not archived).
    pub async fn manifests(&self) -> anyhow::Result<Vec<Manifest>> {
        let listed = self
            .store
            .list_with_delimiter(None)
            .await
            .with_context(|| format!("cannot list {}", self.shown))?;
        let mut days: Vec<Date> = listed
            .common_prefixes
            .iter()
            .filter_map(|folder| folder.filename().and_then(Partition::day_of_dir_name))
            .collect();
        days.sort();
        let mut manifests = Vec::new();
        for day in days {
            manifests.extend(self.manifest(day).await?);
        }
        Ok(manifests)
    }
}

/// What `check-config` checks of `[archive]` beyond the config file: the
/// S3 client can be set up (a folder is created only when the aggregator
/// starts, as its user).
pub fn check(config: &ArchiveConfig) -> anyhow::Result<()> {
    if let Ok(ArchiveTarget::S3 { .. }) = config.target() {
        Destination::open(config, false)?;
    }
    Ok(())
}

fn manifest_path(day: Date) -> ObjectPath {
    ObjectPath::from(day.to_string()).join(MANIFEST_NAME)
}

fn object_path(day: Date, host: &str) -> ObjectPath {
    ObjectPath::from(day.to_string()).join(PathPart::from(record::object_name(host).as_str()))
}

/// Archives the days that are due; retention asks it before deleting.
pub struct Archiver {
    destination: Destination,
    logs: LogStore,
    after_days: u32,
    metrics: Arc<Metrics>,
    /// Days whose manifest was found or written: a past partition does not
    /// change, so it is not asked again.
    archived: BTreeSet<Date>,
}

impl Archiver {
    /// An archiver of `logs` to `destination`.
    pub fn new(destination: Destination, logs: LogStore, after_days: u32, metrics: Arc<Metrics>) -> Archiver {
        Archiver {
            destination,
            logs,
            after_days,
            metrics,
            archived: BTreeSet::new(),
        }
    }

    /// Archives every partition of a day at least `after_days` days before
    /// today (1: every day that has ended) that has no manifest yet. Days
    /// are counted from ten minutes ago, so that what arrived just before
    /// midnight is committed before its day is read. Each failure is logged
    /// and counted. Returns the days known to be archived: retention
    /// deletes no other.
    pub async fn archive_due(&mut self) -> Vec<Date> {
        let settled = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
        let due_before = cutoff(settled.to_zoned(jiff::tz::TimeZone::UTC).date(), self.after_days - 1);
        let partitions = self.logs.partitions();
        self.archived.retain(|day| partitions.iter().any(|p| p.day() == *day));
        for partition in partitions {
            let day = partition.day();
            if day >= due_before {
                break;
            }
            if self.archived.contains(&day) {
                continue;
            }
            let outcome = match self.is_archived(&partition).await {
                Ok(true) => {
                    self.archived.insert(day);
                    continue;
                }
                Ok(false) => self.archive_day(partition).await,
                Err(err) => Err(err),
            };
            match outcome {
                Ok(manifest) => {
                    self.archived.insert(day);
                    self.metrics.archive_day(true);
                    tracing::info!(
                        %day,
                        to = self.destination.shown(),
                        records = manifest.records,
                        hosts = manifest.objects.len(),
                        bytes = manifest.objects.iter().map(|o| o.bytes).sum::<u64>(),
                        "archived a day of logs"
                    );
                }
                Err(err) => {
                    self.metrics.archive_day(false);
                    tracing::error!(
                        %day,
                        to = self.destination.shown(),
                        "cannot archive a day of logs, retention keeps it until it is archived: {err:#}"
                    );
                }
            }
        }
        self.archived.iter().copied().collect()
    }

    /// Whether `partition`'s day has a manifest that holds as many records
    /// as the partition: one that does not (another aggregator writing to
    /// the same place, say) is an error, and is not overwritten.
    async fn is_archived(&self, partition: &Partition) -> anyhow::Result<bool> {
        let day = partition.day();
        let Some(manifest) = self.destination.manifest(day).await? else {
            return Ok(false);
        };
        partition.reload()?;
        let held = partition.searcher().num_docs();
        anyhow::ensure!(
            manifest.records == held,
            "{} already holds an archive of {day} with {} records, and this aggregator's partition of that day \
             has {held}: is another aggregator archiving to the same place? Give each its own `to`",
            self.destination.shown(),
            manifest.records
        );
        Ok(true)
    }

    /// Writes `partition`'s objects, then its manifest.
    async fn archive_day(&self, partition: Arc<Partition>) -> anyhow::Result<Manifest> {
        let day = partition.day();
        // The last commit of the day is in what is read.
        partition.reload()?;
        let (pieces, mut received) = mpsc::channel(4);
        let schema = self.logs.schema().clone();
        let reader = tokio::task::spawn_blocking(move || read_partition(&partition, &schema, &pieces));
        let mut objects = Vec::new();
        let mut upload: Option<Upload> = None;
        let uploaded: anyhow::Result<()> = async {
            while let Some(piece) = received.recv().await {
                match piece {
                    Piece::Start(host) => {
                        upload = Some(Upload::new(self.destination.store.clone(), day, host));
                    }
                    Piece::Data(bytes) => {
                        let Some(upload) = upload.as_mut() else {
                            anyhow::bail!("compressed bytes came before their object began");
                        };
                        upload.write(&bytes).await?;
                    }
                    Piece::End { records } => {
                        let Some(upload) = upload.take() else {
                            anyhow::bail!("an object ended that had not begun");
                        };
                        objects.push(upload.finish(records).await?);
                    }
                }
            }
            Ok(())
        }
        .await;
        // An upload that failed drops the channel: the reader stops too.
        drop(received);
        if let Some(unfinished) = upload {
            unfinished.abort().await;
        }
        let read = reader.await.context("the archive reader stopped")?;
        uploaded.with_context(|| format!("cannot write to {}", self.destination.shown()))?;
        let held = read?;
        let written: u64 = objects.iter().map(|o: &ManifestObject| o.records).sum();
        anyhow::ensure!(
            written == held,
            "wrote {written} records of {day}, and its partition holds {held}"
        );
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            day: day.to_string(),
            archived_at: jiff::Timestamp::now().to_string(),
            records: written,
            objects,
        };
        let body = serde_json::to_vec_pretty(&manifest)?;
        self.destination
            .store
            .put(&manifest_path(day), PutPayload::from(body))
            .await
            .with_context(|| format!("cannot write the manifest of {day} to {}", self.destination.shown()))?;
        Ok(manifest)
    }
}

/// What the partition reader sends the upload.
enum Piece {
    /// A host's object begins.
    Start(String),
    /// Compressed bytes of it.
    Data(Vec<u8>),
    /// It ends, with this many records.
    End { records: u64 },
}

/// One object being written, and its size and hash so far.
struct Upload {
    writer: BufWriter,
    host: String,
    object: ObjectPath,
    bytes: u64,
    hash: Xxh3,
}

impl Upload {
    fn new(store: Arc<dyn ObjectStore>, day: Date, host: String) -> Upload {
        let object = object_path(day, &host);
        Upload {
            // Two parts in flight: enough to keep an upload busy.
            writer: BufWriter::new(store, object.clone()).with_max_concurrency(2),
            host,
            object,
            bytes: 0,
            hash: Xxh3::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.writer.write_all(bytes).await
    }

    /// Gives up the object (and, on S3, its multipart upload, which would
    /// otherwise be kept and billed).
    async fn abort(mut self) {
        if let Err(err) = self.writer.abort().await {
            tracing::warn!(object = %self.object, "cannot abort an unfinished archive upload: {err}");
        }
    }

    async fn finish(mut self, records: u64) -> anyhow::Result<ManifestObject> {
        self.writer
            .shutdown()
            .await
            .with_context(|| format!("cannot finish {}", self.object))?;
        Ok(ManifestObject {
            host: self.host,
            object: self.object.to_string(),
            records,
            bytes: self.bytes,
            xxh3: format!("{:016x}", self.hash.digest()),
        })
    }
}

/// Sends compressed bytes on in [`PIECE_BYTES`] pieces.
struct PieceWriter<'a> {
    out: &'a mpsc::Sender<Piece>,
    buffer: Vec<u8>,
}

impl PieceWriter<'_> {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buffer, Vec::with_capacity(PIECE_BYTES));
        self.out
            .blocking_send(Piece::Data(piece))
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl Write for PieceWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PIECE_BYTES {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// One segment's readers.
struct SegmentParts {
    hosts: Arc<tantivy::InvertedIndexReader>,
    store: tantivy::store::StoreReader,
    columns: MetaColumns,
    ingested: Column<DateTime>,
    reader: tantivy::SegmentReader,
}

/// Reads every record of `partition`, host by host, as compressed NDJSON
/// pieces (on a blocking thread); returns how many records the partition
/// holds.
fn read_partition(partition: &Partition, schema: &LogSchema, out: &mpsc::Sender<Piece>) -> anyhow::Result<u64> {
    let stopped = || anyhow::anyhow!("the upload stopped");
    let searcher = partition.searcher();
    let mut hosts = BTreeSet::new();
    let mut segments = Vec::new();
    for reader in searcher.segment_readers() {
        let host_index = reader.inverted_index(schema.host)?;
        let mut terms = host_index.terms().stream()?;
        while terms.advance() {
            hosts.insert(String::from_utf8_lossy(terms.key()).into_owned());
        }
        segments.push(SegmentParts {
            hosts: host_index.clone(),
            // Documents are read in order: one cached block serves a run.
            store: reader.get_store_reader(1)?,
            columns: MetaColumns::open(reader)?,
            ingested: reader.fast_fields().date(names::INGESTED)?,
            reader: reader.clone(),
        });
    }
    let mut line = Vec::new();
    for host in hosts {
        out.blocking_send(Piece::Start(host.clone())).map_err(|_| stopped())?;
        let pieces = PieceWriter {
            out,
            buffer: Vec::with_capacity(PIECE_BYTES),
        };
        let mut encoder = zstd::Encoder::new(pieces, ZSTD_LEVEL)?;
        let term = Term::from_field_text(schema.host, &host);
        let mut records = 0u64;
        for segment in &segments {
            let Some(mut postings) = segment.hosts.read_postings(&term, IndexRecordOption::Basic)? else {
                continue;
            };
            let alive = segment.reader.alive_bitset();
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|alive| alive.is_alive(doc)) {
                    let stored: TantivyDocument = segment.store.get(doc)?;
                    let meta = segment.columns.read(doc)?;
                    let (stream, offset, timestamp_ms) = (meta.stream.clone(), meta.offset, meta.timestamp_ms);
                    let ingested_ms = segment.ingested.first(doc).map_or(0, DateTime::into_timestamp_millis);
                    let record = ArchivedRecord::from_hit(
                        schema.stored_hit(&stored, meta),
                        stream,
                        offset,
                        timestamp_ms,
                        ingested_ms,
                    );
                    line.clear();
                    serde_json::to_writer(&mut line, &record)?;
                    line.push(b'\n');
                    encoder.write_all(&line)?;
                    records += 1;
                }
                doc = postings.advance();
            }
        }
        encoder.finish()?.flush()?;
        out.blocking_send(Piece::End { records }).map_err(|_| stopped())?;
    }
    Ok(searcher.num_docs())
}

/// What a restore did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Records the archive held.
    pub records: u64,
    /// Records stored again.
    pub stored: u64,
    /// Records the index already held (a second restore, or a day still kept).
    pub already_held: u64,
}

/// Stores `day`'s archived records again through `writer`, checking each
/// object's size and hash first and leaving out what `held_before` (the
/// index's ranges before the restore) covers; `scratch` is a private folder
/// for the object being read.
async fn restore_day(
    destination: &Destination,
    manifest: &Manifest,
    writer: &WriterHandle,
    scratch: &Path,
    held_before: HeldBefore,
) -> anyhow::Result<Restored> {
    let day = &manifest.day;
    let mut restored = Restored::default();
    let scratch_file = ScratchFile(scratch.join(format!("archive-restore-{day}.tmp")));
    let held_before = Arc::new(held_before);
    for object in &manifest.objects {
        let path = ObjectPath::parse(&object.object)
            .with_context(|| format!("the manifest of {day} names an invalid object {:?}", object.object))?;
        download(destination, &path, &scratch_file.0, object).await?;
        let (batches, mut received) = mpsc::channel(2);
        let decode = {
            let file = scratch_file.0.clone();
            let object = object.clone();
            let held = held_before.clone();
            tokio::task::spawn_blocking(move || decode_object(&file, &object, held, &batches))
        };
        while let Some(batch) = received.recv().await {
            let answer = writer
                .write(batch)
                .await
                .context("the log index did not store a batch")?;
            // Restored records are sent unchecked: none is a duplicate here.
            restored.stored += answer.accepted;
        }
        let (records, left_out) = decode.await.context("the archive decoder stopped")??;
        restored.records += records;
        restored.already_held += left_out;
    }
    Ok(restored)
}

/// A file removed when dropped, whatever the way out.
struct ScratchFile(std::path::PathBuf);

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `archive restore --day D`: opens the data folder's log index, stores
/// `day`'s archived records again and commits. The aggregator must be
/// stopped: its index and write-ahead log are locked while it runs, and
/// the error says so. A day still in the index is not restored: its
/// records are there (and received ones, which carry no byte ranges, would
/// be stored twice).
pub async fn restore_offline(config: &Config, day: Date) -> anyhow::Result<Restored> {
    let archive = config
        .archive
        .as_ref()
        .context("the configuration has no [archive] section")?;
    let data_dir = config.data_dir.clone();
    let (store, payloads) = tokio::task::spawn_blocking(move || LogStore::open(&data_dir)).await??;
    anyhow::ensure!(
        store.partition(day).is_none(),
        "{day} is still in the index (retention has not deleted it): its records are searchable as they are"
    );
    let destination = Destination::open(archive, false)?;
    let manifest = destination.manifest(day).await?.with_context(|| {
        format!(
            "{} holds no archive of {day} (no {})",
            destination.shown(),
            manifest_path(day)
        )
    })?;
    let writer = LogWriter::spawn(
        store,
        payloads,
        Arc::new(Metrics::default()),
        &config.data_dir,
        config.ingest.commit_interval.get(),
    )
    .context("cannot open the log index for writing (stop the aggregator before a restore)")?;
    // The ranges held now: opening the writer committed what its
    // write-ahead log held (the batches of a restore cut short, say).
    let data_dir = config.data_dir.clone();
    let held_before = tokio::task::spawn_blocking(move || -> anyhow::Result<HeldBefore> {
        let (_, payloads) = LogStore::open(&data_dir)?;
        let mut held = HeldBefore::new();
        for payload in payloads.into_values() {
            for (key, ranges) in payload.streams {
                let set = held.entry(key).or_default();
                for &(start, end) in ranges.ranges() {
                    set.insert(start, end);
                }
            }
        }
        Ok(held)
    })
    .await??;
    let restored = restore_day(&destination, &manifest, &writer.handle(), &config.data_dir, held_before).await;
    writer.shutdown().await?;
    restored
}

/// Downloads `path` to `file` and checks it against the manifest.
async fn download(
    destination: &Destination,
    path: &ObjectPath,
    file: &Path,
    expected: &ManifestObject,
) -> anyhow::Result<()> {
    let shown = destination.shown();
    let mut stream = destination
        .store
        .get(path)
        .await
        .with_context(|| format!("cannot read {path} from {shown}"))?
        .into_stream();
    let mut out = tokio::fs::File::create(file)
        .await
        .with_context(|| format!("cannot create {}", file.display()))?;
    let (mut bytes, mut hash) = (0u64, Xxh3::new());
    while let Some(piece) = stream.next().await {
        let piece = piece.with_context(|| format!("cannot read {path} from {shown}"))?;
        bytes += piece.len() as u64;
        anyhow::ensure!(
            bytes <= expected.bytes,
            "{path} in {shown} is longer than its manifest says ({} bytes)",
            expected.bytes
        );
        hash.update(&piece);
        out.write_all(&piece)
            .await
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    out.flush().await?;
    let digest = format!("{:016x}", hash.digest());
    anyhow::ensure!(
        bytes == expected.bytes && digest == expected.xxh3,
        "{path} in {shown} is damaged: {bytes} bytes with hash {digest}, its manifest says {} bytes with {}",
        expected.bytes,
        expected.xxh3
    );
    Ok(())
}

/// Reads a downloaded object's records into batches (on a blocking
/// thread); returns how many it held and how many the index already held.
fn decode_object(
    file: &Path,
    object: &ManifestObject,
    held_before: Arc<HeldBefore>,
    out: &mpsc::Sender<crate::store::writer::PreparedBatch>,
) -> anyhow::Result<(u64, u64)> {
    let shown = &object.object;
    let opened = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let decoder = zstd::Decoder::new(opened).with_context(|| format!("cannot decompress {shown}"))?;
    let mut batcher = RestoreBatcher::new(held_before);
    let mut number = 0u64;
    let stopped = || anyhow::anyhow!("the restore stopped");
    // Buffered: serde_json reads a reader byte by byte.
    let buffered = std::io::BufReader::with_capacity(64 << 10, decoder);
    for record in serde_json::Deserializer::from_reader(buffered).into_iter::<ArchivedRecord>() {
        number += 1;
        let record = record.with_context(|| format!("{shown}: record {number} is not an archived record"))?;
        anyhow::ensure!(
            record.host == object.host,
            "{shown}: record {number} is of host {:?}, the manifest says the object holds {:?}",
            record.host,
            object.host
        );
        let times = MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS;
        anyhow::ensure!(
            times.contains(&record.timestamp_ms) && times.contains(&record.ingested_ms),
            "{shown}: record {number} has a time out of range"
        );
        if let Some(batch) = batcher.push(record) {
            out.blocking_send(batch).map_err(|_| stopped())?;
        }
    }
    anyhow::ensure!(
        number == object.records,
        "{shown} holds {number} records, its manifest says {}",
        object.records
    );
    let finished = batcher.finish();
    // The claims go last: the writer stores batches in the order sent.
    for batch in finished.last.into_iter().chain(finished.claim) {
        out.blocking_send(batch).map_err(|_| stopped())?;
    }
    Ok((number, finished.already_held))
}
