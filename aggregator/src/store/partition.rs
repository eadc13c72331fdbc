//! One tantivy index per UTC ingest day, under `data_dir/logs/YYYY-MM-DD/`.
//!
//! Partitions go by the day a record *arrived*, not its event time: replayed
//! old logs carry old timestamps, and this way only one partition is written at
//! a time, so each commit and its dedup payload are atomic. Retention deletes
//! whole partitions.
//!
//! Each commit carries a [`Payload`] (tantivy's commit payload, stored in
//! `meta.json` together with the segment list): the byte ranges held per stream
//! and the event-time range of the partition's records.

use super::intervals::StreamIntervals;
use super::schema::{LogSchema, NumbersLayout};
use anyhow::Context as _;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use tantivy::directory::MmapDirectory;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexReader, IndexSettings, ReloadPolicy, Searcher};

/// zstd level of new partitions' doc stores. At this block size level 4
/// compresses the benchmark dataset's text 8 % smaller than level 3 (0.20 ×
/// against 0.22 ×) at about half the speed (135 against 255 MB/s on one
/// core: some 6 CPU-s more per 10 M lines, a few percent of indexing);
/// level 7 took 15 % of the aggregator's CPU under ingest.
const DOCSTORE_ZSTD_LEVEL: i32 = 4;
/// Bytes of documents compressed together: a larger block compresses
/// better (the benchmark dataset's text at level 3: 64 KiB 0.27 ×, 128 KiB
/// 0.24 ×, 256 KiB 0.22 ×, 1 MiB 0.17 ×), and costs that much decompression
/// per hit fetched from a block not yet cached. A page of 100 hits
/// scattered over the index touches up to 100 blocks: on 10 M lines
/// `q=*` newest 100 took 29 ms at 128 KiB, 34–43 ms at 256 KiB and 55–74 ms
/// at 512 KiB.
const DOCSTORE_BLOCK_BYTES: usize = 256 * 1024;
/// Decompressed doc-store blocks a searcher keeps per segment: 1 MiB
/// (tantivy's default is 100, which at this block size could hold 25 MiB
/// per segment, and a search over all days touches every segment).
const DOCSTORE_CACHED_BLOCKS: usize = 4;

/// What each commit records besides the documents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Format version, for future migrations.
    pub version: u32,
    /// Earliest event time (Unix ms) in the partition.
    pub min_ts: Option<i64>,
    /// Latest event time (Unix ms) in the partition.
    pub max_ts: Option<i64>,
    /// Byte ranges of each stream this partition holds.
    pub streams: StreamIntervals,
    /// The last write-ahead log entry this commit covers (0: none; version
    /// 1 payloads, written before the log, have none).
    #[serde(default)]
    pub wal_seq: u64,
}

/// The payload format written today.
pub const PAYLOAD_VERSION: u32 = 2;

/// One day's index and its reader, shared by the writer and searches.
pub struct Partition {
    day: Date,
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    numbers: NumbersLayout,
    // Event-time range of the committed records, for skipping partitions a
    // query's time range cannot match; i64::MAX / i64::MIN while empty.
    min_ts: AtomicI64,
    max_ts: AtomicI64,
}

impl Partition {
    /// The directory of `day`'s partition under `logs_dir`.
    pub fn dir_for(logs_dir: &Path, day: Date) -> PathBuf {
        logs_dir.join(day.to_string())
    }

    /// The day a directory name stands for, if it is a partition's name.
    pub fn day_of_dir_name(name: &str) -> Option<Date> {
        let day: Date = name.parse().ok()?;
        (day.to_string() == name).then_some(day)
    }

    /// Opens `dir` as `day`'s partition, creating the index if needed, and
    /// returns it with its last committed payload.
    pub fn open(dir: PathBuf, day: Date, schema: &LogSchema) -> anyhow::Result<(Partition, Payload)> {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let directory = MmapDirectory::open(&dir).with_context(|| format!("cannot open {}", dir.display()))?;
        // A new partition's stored documents are compressed with zstd: log
        // lines compress several times better than with LZ4, and the doc
        // store is most of the index. One that exists keeps the compressor
        // it was written with (its meta.json says which).
        let settings = IndexSettings {
            docstore_compression: Compressor::Zstd(ZstdCompressor {
                compression_level: Some(DOCSTORE_ZSTD_LEVEL),
            }),
            docstore_blocksize: DOCSTORE_BLOCK_BYTES,
            ..IndexSettings::default()
        };
        let exists = Index::exists(&directory).with_context(|| format!("cannot read {}", dir.display()))?;
        let index = if exists {
            // An existing partition keeps the schema it was written with;
            // searches and the writer use it through the same field handles.
            let index =
                Index::open(directory).with_context(|| format!("cannot open the log index in {}", dir.display()))?;
            if !schema.is_compatible_with(&index.schema()) {
                anyhow::bail!(
                    "the log index in {} was written by a Lookout build with other index fields (builds before \
                     extracted fields, for one) and this build cannot read or add to it; move the folder out of \
                     data_dir to start, and keep it for the build that wrote it",
                    dir.display()
                );
            }
            index
        } else {
            Index::builder()
                .schema(schema.schema().clone())
                .settings(settings)
                .open_or_create(directory)
                .with_context(|| format!("cannot create the log index in {}", dir.display()))?
        };
        let payload = match index.load_metas()?.payload {
            Some(text) => serde_json::from_str::<Payload>(&text)
                .with_context(|| format!("the commit payload of {} is unreadable", dir.display()))?,
            None => Payload::default(),
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(DOCSTORE_CACHED_BLOCKS)
            .try_into()?;
        let partition = Partition {
            day,
            dir,
            numbers: LogSchema::numbers_layout(&index.schema()),
            index,
            reader,
            min_ts: AtomicI64::new(payload.min_ts.unwrap_or(i64::MAX)),
            max_ts: AtomicI64::new(payload.max_ts.unwrap_or(i64::MIN)),
        };
        Ok((partition, payload))
    }

    /// The ingest day.
    pub fn day(&self) -> Date {
        self.day
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index (for the writer).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Where this partition keeps extracted numbers (its index's schema says).
    pub fn numbers_layout(&self) -> NumbersLayout {
        self.numbers
    }

    /// A searcher over the last reloaded commit.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Makes the latest commit visible to searches.
    pub fn reload(&self) -> tantivy::Result<()> {
        self.reader.reload()
    }

    /// Event-time range (Unix ms, inclusive) of committed records; `None` while empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (min, max) = (self.min_ts.load(Ordering::Acquire), self.max_ts.load(Ordering::Acquire));
        (min <= max).then_some((min, max))
    }

    /// Records the event-time range after a commit.
    pub fn set_time_range(&self, range: Option<(i64, i64)>) {
        let (min, max) = range.unwrap_or((i64::MAX, i64::MIN));
        self.min_ts.store(min, Ordering::Release);
        self.max_ts.store(max, Ordering::Release);
    }

    /// Whether records in `[start, end)` (Unix ms; `None` = unbounded) may be here.
    pub fn may_overlap(&self, start: Option<i64>, end: Option<i64>) -> bool {
        match self.time_range() {
            None => false,
            Some((min, max)) => start.is_none_or(|s| max >= s) && end.is_none_or(|e| min < e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_round_trip() {
        let day = Date::new(2024, 3, 9).unwrap();
        let dir = Partition::dir_for(Path::new("/d/logs"), day);
        assert_eq!(dir, Path::new("/d/logs/2024-03-09"));
        assert_eq!(Partition::day_of_dir_name("2024-03-09"), Some(day));
        for bad in ["2024-3-9", "tmp", "2024-02-30", ""] {
            assert_eq!(Partition::day_of_dir_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_index_with_other_fields_is_refused_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let day = Date::new(2024, 1, 2).unwrap();
        let dir = Partition::dir_for(tmp.path(), day);
        std::fs::create_dir_all(&dir).unwrap();
        let mut older = tantivy::schema::Schema::builder();
        older.add_text_field("message", tantivy::schema::TEXT);
        Index::create_in_dir(&dir, older.build()).unwrap();
        let err = Partition::open(dir.clone(), day, &LogSchema::new())
            .err()
            .expect("a partition with other fields is refused");
        let message = err.to_string();
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains("move the folder out of data_dir"), "{message}");
    }

    #[test]
    fn payload_survives_reopen_and_time_range_filters() {
        let tmp = tempfile::tempdir().unwrap();
        let schema = LogSchema::new();
        let day = Date::new(2024, 1, 2).unwrap();
        let dir = Partition::dir_for(tmp.path(), day);
        let (partition, payload) = Partition::open(dir.clone(), day, &schema).unwrap();
        assert!(payload.streams.is_empty() && partition.time_range().is_none());
        assert!(!partition.may_overlap(None, None), "an empty partition matches nothing");

        let mut writer: tantivy::IndexWriter = partition.index().writer(15_000_000).unwrap();
        let mut payload = Payload {
            version: PAYLOAD_VERSION,
            min_ts: Some(100),
            max_ts: Some(200),
            ..Payload::default()
        };
        payload.streams.entry("s".into()).or_default().insert(0, 10);
        let mut commit = writer.prepare_commit().unwrap();
        commit.set_payload(&serde_json::to_string(&payload).unwrap());
        commit.commit().unwrap();
        drop(writer);
        drop(partition);

        let (partition, reopened) = Partition::open(dir, day, &schema).unwrap();
        assert_eq!(reopened.streams["s"].ranges(), &[(0, 10)]);
        assert_eq!(partition.time_range(), Some((100, 200)));
        assert!(partition.may_overlap(Some(200), None));
        assert!(!partition.may_overlap(Some(201), None));
        assert!(partition.may_overlap(None, Some(101)));
        assert!(!partition.may_overlap(None, Some(100)));
    }
}
