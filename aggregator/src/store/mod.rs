//! The log store: day partitions of tantivy indexes, one writer thread that
//! adds batches exactly once, and the searches the query API runs.
//!
//! - [`schema`]: fields of a record in the index.
//! - [`intervals`]: byte ranges held per stream (exactly-once ingest).
//! - [`partition`]: one index per UTC ingest day, with its commit payload.
//! - [`writer`]: the writer thread (group commit, dedup, retention).
//! - [`wal`]: the write-ahead log of what is acknowledged but not yet committed.
//! - [`search`] and [`collectors`]: search, histogram and context queries.
//! - [`phrase`]: phrases, checked on the stored message (the index keeps
//!   no positions).
//! - [`scan`]: the same answers for what selects by event time alone, read
//!   straight from the columns.
//! - [`stats`]: tables of `| stats` (grouped counts, sums, percentiles…).
//!
//! Data flows one way: the ingest module hands prepared batches to the
//! [`writer::WriterHandle`]; the query API reads through [`LogStore`].

pub mod collectors;
pub mod intervals;
pub mod partition;
pub mod pattern;
pub mod phrase;
pub mod scan;
pub mod schema;
pub mod search;
pub mod stats;
pub mod wal;
pub mod writer;

use anyhow::Context as _;
use jiff::civil::Date;
use partition::{Partition, Payload};
use schema::LogSchema;
use search::QueryBuilder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The read side of the store, shared by request handlers (cheap to clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    schema: LogSchema,
    queries: QueryBuilder,
    logs_dir: PathBuf,
    // Sorted by day. The writer adds and removes partitions; searches take a
    // snapshot of the list and keep their `Arc`s until they are done.
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl LogStore {
    /// Opens every partition under `data_dir/logs/`, returning the store and
    /// each partition's last committed payload (for the writer's dedup state).
    pub fn open(data_dir: &Path) -> anyhow::Result<(LogStore, BTreeMap<Date, Payload>)> {
        let logs_dir = data_dir.join("logs");
        std::fs::create_dir_all(&logs_dir).with_context(|| format!("cannot create {}", logs_dir.display()))?;
        let schema = LogSchema::new();
        let mut partitions = Vec::new();
        let mut payloads = BTreeMap::new();
        let entries = std::fs::read_dir(&logs_dir).with_context(|| format!("cannot list {}", logs_dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", logs_dir.display()))?;
            let name = entry.file_name();
            let Some(day) = name.to_str().and_then(Partition::day_of_dir_name) else {
                tracing::warn!(path = %entry.path().display(), "ignoring a file that is not a log partition");
                continue;
            };
            let (partition, payload) = Partition::open(entry.path(), day, &schema)?;
            partitions.push(Arc::new(partition));
            payloads.insert(day, payload);
        }
        partitions.sort_by_key(|p| p.day());
        tracing::info!(partitions = partitions.len(), dir = %logs_dir.display(), "log store opened");
        let inner = Inner {
            queries: QueryBuilder::new(schema.clone()),
            schema,
            logs_dir,
            partitions: RwLock::new(partitions),
        };
        Ok((LogStore { inner: Arc::new(inner) }, payloads))
    }

    /// The schema.
    pub fn schema(&self) -> &LogSchema {
        &self.inner.schema
    }

    /// Turns filters into queries.
    pub fn queries(&self) -> &QueryBuilder {
        &self.inner.queries
    }

    /// A snapshot of the partitions, oldest first.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.read_partitions().clone()
    }

    /// The partition of `day`, if it exists.
    pub fn partition(&self, day: Date) -> Option<Arc<Partition>> {
        self.read_partitions().iter().find(|p| p.day() == day).cloned()
    }

    /// Opens (creating if needed) and publishes `day`'s partition.
    fn create_partition(&self, day: Date) -> anyhow::Result<Arc<Partition>> {
        if let Some(existing) = self.partition(day) {
            return Ok(existing);
        }
        let dir = Partition::dir_for(&self.inner.logs_dir, day);
        let (partition, _empty) = Partition::open(dir, day, &self.inner.schema)?;
        let partition = Arc::new(partition);
        let mut list = self.write_partitions();
        list.push(partition.clone());
        list.sort_by_key(|p| p.day());
        Ok(partition)
    }

    /// Unpublishes `day`'s partition: searches that start afterwards no
    /// longer see it (running ones keep their snapshot).
    fn remove_partition(&self, day: Date) -> Option<Arc<Partition>> {
        let mut list = self.write_partitions();
        let position = list.iter().position(|p| p.day() == day)?;
        Some(list.remove(position))
    }

    // A poisoned lock only means a thread panicked while holding it; the list
    // itself is always consistent (single push/remove), so keep using it.
    fn read_partitions(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Partition>>> {
        self.inner.partitions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_partitions(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Partition>>> {
        self.inner.partitions.write().unwrap_or_else(|e| e.into_inner())
    }
}
