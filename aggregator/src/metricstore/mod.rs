//! The metric store: host metric samples in SQLite (`data_dir/metrics.sqlite`),
//! every sample kept (the last hour's as rows, older ones in compressed
//! hourly blocks per series) plus a 1-hour roll-up, and the hosts'
//! last-seen times.
//!
//! - [`schema`]: tables, pragmas, opening connections, canonical label text.
//! - [`chunk`]: one series' hour of samples as a compressed block.
//! - [`rollup`]: the three resolutions and which one answers a query.
//! - [`writer`]: the writer thread (one transaction per batch, the roll-up at
//!   ingest, compaction into blocks, chunked retention, hosts' last-seen
//!   times).
//! - [`query`]: series queries, and the hosts list's summaries.
//! - [`recent`]: every series' newest samples and every host's last-seen
//!   time in memory, which the alert rules, the hosts list and the
//!   Prometheus scrape read.
//! - [`exposition`]: the newest values in Prometheus's text format.
//!
//! Connections: one read-write connection, owned by the writer thread; the
//! read API borrows read-only connections from a small pool in [`MetricStore`]
//! and runs on the blocking pool. In WAL mode readers and the writer never
//! wait for each other. Data flows one way: ingest hands batches to the
//! [`writer::MetricWriterHandle`]; the query API reads through [`MetricStore`],
//! from memory where [`recent::Recent`] holds the answer.

pub mod chunk;
pub mod exposition;
pub mod feed;
pub mod query;
pub mod recent;
pub mod rollup;
pub mod schema;
pub mod writer;

use query::{HostSummary, LabelFilter, RecentSamples, SeriesAnswer, SeriesQuery};
use recent::{HostActivity, Recent};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Idle read connections kept open; more are opened under load and closed
/// afterwards. Each keeps its own statement cache, hence worth keeping.
const MAX_IDLE_READERS: usize = 4;

/// The read side of the metric store, shared by request handlers (cheap to
/// clone). Its methods block: call them off the async runtime.
#[derive(Clone)]
pub struct MetricStore {
    pool: Arc<ReadPool>,
    recent: Arc<Recent>,
}

struct ReadPool {
    data_dir: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl MetricStore {
    /// Opens the read side over `data_dir/metrics.sqlite`, which the
    /// [`writer::MetricWriter`] must have created, and over the writer's
    /// [`Recent`] samples.
    pub fn open(data_dir: &Path, recent: Arc<Recent>) -> rusqlite::Result<MetricStore> {
        let first = schema::open_reader(data_dir)?;
        Ok(MetricStore {
            pool: Arc::new(ReadPool {
                data_dir: data_dir.to_path_buf(),
                idle: Mutex::new(vec![first]),
            }),
            recent,
        })
    }

    /// The points of the series `query` selects.
    pub fn series(&self, query: &SeriesQuery) -> rusqlite::Result<SeriesAnswer> {
        self.with_reader(|conn| query::series(conn, query))
    }

    /// Every known host with its headline values, as of `now_ms` (from memory).
    pub fn hosts(&self, now_ms: i64) -> Vec<HostSummary> {
        self.recent.hosts(now_ms)
    }

    /// The newest sample of every series, if at or after `since_ms` (from memory).
    pub fn latest(&self, since_ms: i64) -> Vec<recent::LatestSample> {
        self.recent.latest(since_ms)
    }

    /// Every known host's last-seen time and interval (from memory).
    pub fn activity(&self) -> Vec<HostActivity> {
        self.recent.activity()
    }

    /// The newest samples (at most `per_series`, none before `since_ms`) of
    /// every series of metric `name` whose labels are `wanted`, across hosts:
    /// from memory unless more samples per series are asked for than it keeps.
    pub fn recent_samples(
        &self,
        name: &str,
        since_ms: i64,
        per_series: usize,
        wanted: LabelFilter<'_>,
    ) -> rusqlite::Result<Vec<RecentSamples>> {
        match self.recent.recent_samples(name, since_ms, per_series, wanted) {
            Some(answer) => Ok(answer),
            None => self.with_reader(|conn| query::recent_samples(conn, name, since_ms, per_series, wanted)),
        }
    }

    fn with_reader<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let pooled = self.idle().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => schema::open_reader(&self.pool.data_dir)?,
        };
        let result = work(&conn);
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    // A poisoned lock only means a thread panicked while holding it; the list
    // of idle connections is still valid (single push/pop).
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.pool.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::rollup::{DAY_MS, HOUR_MS, MINUTE_MS, bucket_start};
    use super::writer::{MetricBatch, MetricWriter, PreparedSample};
    use super::*;
    use crate::metrics::Metrics;

    fn query(start_ms: i64, end_ms: i64, step_ms: Option<i64>) -> SeriesQuery {
        SeriesQuery {
            host: "h".into(),
            name: "fs.used_percent".into(),
            labels: Default::default(),
            start_ms,
            end_ms,
            step_ms,
        }
    }

    #[tokio::test]
    async fn each_range_is_answered_from_its_tier_with_exact_averages() {
        let dir = tempfile::tempdir().unwrap();
        let writer = MetricWriter::spawn(dir.path(), 30, usize::MAX, Arc::new(Metrics::default()), None).unwrap();
        let store = MetricStore::open(dir.path(), writer.recent()).unwrap();
        let now = lookout_shared::time::now_ms();
        let t0 = bucket_start(now - 10 * DAY_MS, HOUR_MS);
        // Two mounts; on `/`, the value is the minute of the hour, every 30 s
        // for 10 days: each minute averages to itself, each hour to 29.5.
        let mut samples = Vec::new();
        for i in 0..(10 * DAY_MS / 30_000) {
            let ts = t0 + i * 30_000;
            let minute = ((ts / MINUTE_MS) % 60) as f64;
            samples.push(PreparedSample {
                name: "fs.used_percent".into(),
                labels: r#"{"mount":"/"}"#.into(),
                time_ms: ts,
                value: minute,
            });
        }
        samples.push(PreparedSample {
            name: "fs.used_percent".into(),
            labels: r#"{"mount":"/data"}"#.into(),
            time_ms: t0,
            value: 1.0,
        });
        let outcome = writer
            .handle()
            .write(MetricBatch {
                host: "h".into(),
                samples,
            })
            .await
            .unwrap();
        assert_eq!(outcome.accepted, 28_801);

        let raw = store.series(&query(t0, t0 + HOUR_MS, None)).unwrap();
        assert_eq!((raw.resolution, raw.step_ms, raw.series.len()), ("raw", None, 2));
        assert_eq!(raw.series[0].labels["mount"], "/");
        assert_eq!(raw.series[0].points.len(), 120);
        assert_eq!(raw.series[1].points, vec![(t0, 1.0)]);

        let stepped = store.series(&query(t0 + 1, t0 + HOUR_MS, Some(90_000))).unwrap();
        assert_eq!((stepped.resolution, stepped.step_ms), ("raw", Some(90_000)));
        // The first bucket is whole: it starts at the step boundary before `start`.
        assert_eq!(stepped.series[0].points[0].0, bucket_start(t0, 90_000));

        let week = store.series(&query(t0, t0 + 7 * DAY_MS, None)).unwrap();
        assert_eq!((week.resolution, week.step_ms), ("1m", Some(MINUTE_MS)));
        let points = &week.series[0].points;
        assert_eq!(points.len(), 7 * 24 * 60);
        assert!(points.iter().all(|(ts, v)| *v == ((ts / MINUTE_MS) % 60) as f64));

        let all = store.series(&query(t0 - 20 * DAY_MS, now, None)).unwrap();
        assert_eq!((all.resolution, all.step_ms), ("1h", Some(HOUR_MS)));
        let points = &all.series[0].points;
        assert_eq!(points.len(), 10 * 24);
        assert!(points.iter().all(|(_, v)| *v == 29.5), "{:?}", &points[..3]);

        // A step of whole minutes answers at the minute tier, with the same averages as raw.
        let five = store.series(&query(t0, t0 + HOUR_MS, Some(5 * MINUTE_MS))).unwrap();
        assert_eq!(five.resolution, "1m");
        let values: Vec<f64> = five.series[0].points.iter().map(|p| p.1).collect();
        assert_eq!(values, (0..12).map(|k| (5 * k) as f64 + 2.0).collect::<Vec<_>>());

        let filtered = SeriesQuery {
            labels: [("mount".to_owned(), "/data".to_owned())].into(),
            ..query(t0, t0 + HOUR_MS, None)
        };
        let filtered = store.series(&filtered).unwrap();
        assert_eq!(filtered.series.len(), 1);
        assert_eq!(filtered.series[0].labels["mount"], "/data");

        // A flush runs a compaction step: the 10 days but the last hour or
        // two move into hourly blocks, and every answer stays the same.
        let queries = [
            query(t0, t0 + HOUR_MS, None),
            query(t0 + 1, t0 + HOUR_MS, Some(90_000)),
            query(t0, t0 + 7 * DAY_MS, None),
            query(t0 - 20 * DAY_MS, now, None),
            query(t0, t0 + HOUR_MS, Some(5 * MINUTE_MS)),
            query(now - 3 * HOUR_MS, now, None),
        ];
        let answers = |store: &MetricStore| -> Vec<String> {
            queries
                .iter()
                .map(|q| format!("{:?}", store.series(q).unwrap()))
                .collect()
        };
        let before = answers(&store);
        writer.handle().flush().await.unwrap();
        writer.shutdown().await.unwrap();
        let conn = schema::open_reader(dir.path()).unwrap();
        let blocks: i64 = conn.query_row("SELECT count(*) FROM chunks", [], |r| r.get(0)).unwrap();
        assert!(blocks >= 10 * 24, "{blocks} blocks");
        assert_eq!(answers(&store), before);
    }
}
