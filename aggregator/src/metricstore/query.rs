//! The reads behind `GET /api/v1/metrics/series` and the alert rules' recent
//! samples, and the summary `GET /api/v1/hosts` builds from
//! [`super::recent::Recent`]. Each read runs in one read transaction, so it
//! sees a single consistent snapshot while the writer goes on committing (WAL).

use super::chunk;
use super::rollup::{HOUR_MS, Tier, bucket_start};
use super::schema::parse_labels;
use lookout_shared::time::rfc3339;
use rusqlite::Connection;
use rusqlite::types::Type;
use serde::Serialize;
use std::collections::BTreeMap;

/// Interval assumed for a host whose interval cannot be estimated yet.
pub const DEFAULT_INTERVAL_MS: i64 = 10_000;
/// Shortest interval an estimate may give.
const MIN_INTERVAL_MS: i64 = 1_000;
/// A host is silent after this many of its intervals without data.
const SILENT_INTERVALS: i64 = 3;
/// Recent samples of `cpu.usage_percent` the interval is estimated from.
pub(super) const INTERVAL_SAMPLES: usize = 6;

/// What `/api/v1/metrics/series` asks for.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    /// Exact host.
    pub host: String,
    /// Exact metric name.
    pub name: String,
    /// Only series having each of these labels with exactly this value.
    pub labels: BTreeMap<String, String>,
    /// Unix ms, inclusive.
    pub start_ms: i64,
    /// Unix ms, exclusive; after `start_ms`.
    pub end_ms: i64,
    /// Average into buckets this wide (ms, at least 1), if given.
    pub step_ms: Option<i64>,
}

/// The answer of `/api/v1/metrics/series`.
#[derive(Debug, Serialize)]
pub struct SeriesAnswer {
    /// Where the points come from: `raw` (samples), `1m` or `1h` (roll-ups).
    pub resolution: &'static str,
    /// With buckets, their width: each point is the average of the samples
    /// in `[t, t + step_ms)`. `null` when the points are the raw samples.
    pub step_ms: Option<i64>,
    /// One entry per label set (one per mount, interface, ...), sorted by labels.
    pub series: Vec<Series>,
}

/// One series of the answer.
#[derive(Debug, Serialize)]
pub struct Series {
    /// The series' labels besides host and name (`{}` for host-level metrics).
    pub labels: BTreeMap<String, String>,
    /// `[unix_ms, value]` pairs, oldest first: plain numbers rather than
    /// objects or RFC 3339 strings, since a day of 10-second samples is 8640
    /// points and a chart wants numbers anyway.
    pub points: Vec<(i64, f64)>,
}

/// One entry of `/api/v1/hosts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSummary {
    /// Host name, as the agent sends it.
    pub host: String,
    /// When the aggregator last received a batch (metrics or logs) from it, RFC 3339.
    pub last_seen: String,
    /// No batch for 3 of its intervals.
    pub silent: bool,
    /// The host's collection interval, estimated from the spacing of its
    /// recent `cpu.usage_percent` samples (10 s when unknown).
    pub interval_ms: i64,
    /// Latest host-level `cpu.usage_percent` (no labels).
    pub cpu_usage_percent: Option<f64>,
    /// Latest `memory.used_percent`.
    pub memory_used_percent: Option<f64>,
    /// The mount with the highest latest `fs.used_percent`.
    pub fullest_filesystem: Option<Filesystem>,
    /// The interface with the highest latest rx + tx bytes per second.
    pub busiest_interface: Option<Interface>,
}

/// A filesystem in [`HostSummary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filesystem {
    /// Mount point.
    pub mount: String,
    /// Latest `fs.used_percent`.
    pub used_percent: f64,
}

/// A network interface in [`HostSummary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interface {
    /// Interface name.
    pub interface: String,
    /// Latest `net.rx_bytes_per_sec` (0 if it has none).
    pub rx_bytes_per_sec: f64,
    /// Latest `net.tx_bytes_per_sec` (0 if it has none).
    pub tx_bytes_per_sec: f64,
}

/// The points of every series of `query.host` and `query.name` matching its labels.
pub fn series(conn: &Connection, query: &SeriesQuery) -> rusqlite::Result<SeriesAnswer> {
    let tier = Tier::for_query(query.end_ms.saturating_sub(query.start_ms), query.step_ms);
    // A roll-up cannot be finer than its buckets.
    let step = match tier.width_ms() {
        None => query.step_ms,
        Some(width) => Some(query.step_ms.map_or(width, |step| step.max(width))),
    };
    // With buckets, the first one is whole: it starts at or before `start`.
    let start = match (step, tier.width_ms()) {
        (Some(step), Some(width)) => bucket_start(query.start_ms, step).min(bucket_start(query.start_ms, width)),
        (Some(step), None) => bucket_start(query.start_ms, step),
        (None, _) => query.start_ms,
    };
    let tx = conn.unchecked_transaction()?;
    let mut candidates =
        tx.prepare_cached("SELECT id, labels FROM series WHERE host = ?1 AND name = ?2 ORDER BY labels")?;
    let mut matching = Vec::new();
    let rows = candidates.query_map((&query.host, &query.name), |row| {
        Ok((row.get::<_, i64>(0)?, labels_column(row, 1)?))
    })?;
    for row in rows {
        let (id, labels) = row?;
        if query.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            matching.push((id, labels));
        }
    }
    let mut series = Vec::with_capacity(matching.len());
    for (id, labels) in matching {
        let points = match (tier, step) {
            (Tier::Hour, Some(step)) => hourly_averages(&tx, id, start, query.end_ms, step)?,
            (_, None) => raw_points(&tx, id, start, query.end_ms)?,
            (_, Some(step)) => averages(&raw_points(&tx, id, start, query.end_ms)?, step),
        };
        series.push(Series { labels, points });
    }
    Ok(SeriesAnswer {
        resolution: tier.label(),
        step_ms: step,
        series,
    })
}

/// Series `id`'s samples in `[start, end)`, oldest first: those of the head
/// and those of the compressed blocks of the hours the range touches.
pub(super) fn raw_points(conn: &Connection, id: i64, start: i64, end: i64) -> rusqlite::Result<Vec<(i64, f64)>> {
    let mut points: Vec<(i64, f64)> = conn
        .prepare_cached("SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts")?
        .query_map((id, start, end), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let head = points.len();
    let mut blocks = conn.prepare_cached(
        "SELECT hour, data FROM chunks WHERE series_id = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
    )?;
    let mut rows = blocks.query((id, bucket_start(start, HOUR_MS), end))?;
    while let Some(row) = rows.next()? {
        let block = chunk::read_stored(id, row.get(0)?, row.get_ref(1)?.as_blob()?);
        points.extend(block.into_iter().filter(|&(ts, _)| ts >= start && ts < end));
    }
    // A sample is in the head or in a block, never both (the writer checks
    // the block before storing a late one), so times stay distinct.
    if points.len() > head {
        points.sort_unstable_by_key(|&(ts, _)| ts);
    }
    Ok(points)
}

/// The newest samples of series `id` (at most `limit`, none before
/// `since`), newest first, from the head and the blocks.
pub(super) fn newest_points(conn: &Connection, id: i64, since: i64, limit: usize) -> rusqlite::Result<Vec<(i64, f64)>> {
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut points: Vec<(i64, f64)> = conn
        .prepare_cached("SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 ORDER BY ts DESC LIMIT ?3")?
        .query_map((id, since, limit_sql), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // Blocks hold disjoint hours: the newest ones hold the newest samples.
    let mut blocks =
        conn.prepare_cached("SELECT hour, data FROM chunks WHERE series_id = ?1 AND hour >= ?2 ORDER BY hour DESC")?;
    let mut rows = blocks.query((id, bucket_start(since, HOUR_MS)))?;
    let mut from_blocks = 0;
    while from_blocks < limit
        && let Some(row) = rows.next()?
    {
        let decoded = chunk::read_stored(id, row.get(0)?, row.get_ref(1)?.as_blob()?);
        let before = points.len();
        points.extend(decoded.into_iter().rev().filter(|&(ts, _)| ts >= since));
        from_blocks += points.len() - before;
    }
    points.sort_unstable_by_key(|&(ts, _)| std::cmp::Reverse(ts));
    points.truncate(limit);
    Ok(points)
}

/// The average of `points` (oldest first) per `step`-wide bucket, each at
/// its bucket's start, summed in time order (SQLite's `avg`, which answered
/// before, sums with compensation: the last bits may differ).
fn averages(points: &[(i64, f64)], step: i64) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    let mut current: Option<(i64, f64, u64)> = None;
    for &(ts, value) in points {
        let bucket = bucket_start(ts, step.max(1));
        match &mut current {
            Some((start, sum, count)) if *start == bucket => {
                *sum += value;
                *count += 1;
            }
            _ => {
                if let Some((start, sum, count)) = current {
                    out.push((start, sum / count as f64));
                }
                current = Some((bucket, value, 1));
            }
        }
    }
    if let Some((start, sum, count)) = current {
        out.push((start, sum / count as f64));
    }
    out
}

/// Averages per `step` (a whole number of hours) from the hourly roll-up:
/// bucket sums over bucket counts, exactly the samples' average.
fn hourly_averages(conn: &Connection, id: i64, start: i64, end: i64, step: i64) -> rusqlite::Result<Vec<(i64, f64)>> {
    conn.prepare_cached(
        "SELECT ts - (ts % ?4) AS bucket, sum(vsum) / sum(cnt) FROM rollup_1h \
         WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY bucket ORDER BY bucket",
    )?
    .query_map((id, start, end, step), |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}

/// The latest sample of one series, for [`summarise`].
pub(super) struct Latest<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub ts: i64,
    pub value: f64,
}

/// One host's entry of `/api/v1/hosts` from its headline series' latest
/// samples (host-level CPU and memory, every mount's and interface's).
pub(super) fn summarise(
    host: String,
    last_seen_ms: i64,
    interval_ms: i64,
    values: &[Latest<'_>],
    now_ms: i64,
) -> HostSummary {
    let stale_after = SILENT_INTERVALS.saturating_mul(interval_ms);
    let host_level = |name: &str| {
        values
            .iter()
            .find(|v| v.name == name && v.labels.is_empty())
            .map(|v| v.value)
    };
    // Per mount (interface): its latest value, among those still reported: a
    // series whose newest sample is several intervals older than the newest
    // of its metric belongs to something unmounted (removed) since.
    let current = |name: &str, label: &str| -> BTreeMap<String, f64> {
        let of_name: Vec<&Latest<'_>> = values.iter().filter(|v| v.name == name).collect();
        let newest = of_name.iter().map(|v| v.ts).max().unwrap_or(0);
        of_name
            .into_iter()
            .filter(|v| v.ts >= newest.saturating_sub(stale_after))
            .filter_map(|v| Some((v.labels.get(label)?.clone(), v.value)))
            .collect()
    };
    let fullest_filesystem = current("fs.used_percent", "mount")
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(mount, used_percent)| Filesystem { mount, used_percent });
    let rx = current("net.rx_bytes_per_sec", "interface");
    let tx = current("net.tx_bytes_per_sec", "interface");
    let mut interfaces: Vec<String> = rx.keys().chain(tx.keys()).cloned().collect();
    interfaces.sort();
    interfaces.dedup();
    let busiest_interface = interfaces
        .into_iter()
        .map(|interface| Interface {
            rx_bytes_per_sec: rx.get(&interface).copied().unwrap_or(0.0),
            tx_bytes_per_sec: tx.get(&interface).copied().unwrap_or(0.0),
            interface,
        })
        .max_by(|a, b| (a.rx_bytes_per_sec + a.tx_bytes_per_sec).total_cmp(&(b.rx_bytes_per_sec + b.tx_bytes_per_sec)));
    HostSummary {
        host,
        last_seen: rfc3339(last_seen_ms),
        silent: now_ms.saturating_sub(last_seen_ms) > stale_after,
        interval_ms,
        cpu_usage_percent: host_level("cpu.usage_percent"),
        memory_used_percent: host_level("memory.used_percent"),
        fullest_filesystem,
        busiest_interface,
    }
}

/// The median spacing of sample times (newest first), within 1 s and 1 h;
/// the default without two samples. The median ignores one missed or
/// doubled sample.
pub(super) fn estimate_interval(times_desc: &[i64]) -> i64 {
    let mut gaps: Vec<i64> = times_desc.windows(2).map(|w| w[0] - w[1]).filter(|g| *g > 0).collect();
    if gaps.is_empty() {
        return DEFAULT_INTERVAL_MS;
    }
    gaps.sort_unstable();
    gaps[gaps.len() / 2].clamp(MIN_INTERVAL_MS, HOUR_MS)
}

/// Column `index` parsed from canonical label JSON.
fn labels_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<BTreeMap<String, String>> {
    let text: String = row.get(index)?;
    parse_labels(&text).map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_the_median_gap() {
        assert_eq!(estimate_interval(&[]), DEFAULT_INTERVAL_MS);
        assert_eq!(estimate_interval(&[5_000]), DEFAULT_INTERVAL_MS);
        assert_eq!(estimate_interval(&[50_000, 40_000, 30_000, 10_000, 0]), 10_000);
        assert_eq!(estimate_interval(&[60_000, 0]), 60_000);
        assert_eq!(estimate_interval(&[300, 200, 100]), MIN_INTERVAL_MS);
    }
}

/// Which series a question is about, by their labels (besides host and
/// name); the others are skipped before their samples are copied.
pub type LabelFilter<'a> = &'a dyn Fn(&BTreeMap<String, String>) -> bool;

/// The recent samples of one series, for alert rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentSamples {
    /// Host.
    pub host: String,
    /// The series' labels besides host and name.
    pub labels: BTreeMap<String, String>,
    /// `(unix_ms, value)`, newest first, at most the number asked for.
    pub points: Vec<(i64, f64)>,
}

/// For every series of metric `name` (all hosts) whose labels are `wanted`
/// and with a sample at or after `since_ms`: its newest samples, at most
/// `per_series`, none older than `since_ms`.
pub fn recent_samples(
    conn: &Connection,
    name: &str,
    since_ms: i64,
    per_series: usize,
    wanted: LabelFilter<'_>,
) -> rusqlite::Result<Vec<RecentSamples>> {
    let tx = conn.unchecked_transaction()?;
    let series: Vec<(i64, String, BTreeMap<String, String>)> = tx
        .prepare_cached("SELECT id, host, labels FROM series WHERE name = ?1 ORDER BY host, labels")?
        .query_map([name], |row| Ok((row.get(0)?, row.get(1)?, labels_column(row, 2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut answer = Vec::new();
    for (id, host, labels) in series.into_iter().filter(|(_, _, labels)| wanted(labels)) {
        let points = newest_points(&tx, id, since_ms, per_series)?;
        if !points.is_empty() {
            answer.push(RecentSamples { host, labels, points });
        }
    }
    Ok(answer)
}
