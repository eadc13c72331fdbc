//! The newest samples of every series and every host's last-seen time, in
//! memory: what the threshold and silent-host rules and `GET /api/v1/hosts`
//! read on every pass. Asked of SQLite, one pass at 2,000 hosts ran some
//! 50,000 queries; here it is a walk over a map.
//!
//! [`Recent`] mirrors the database, never leads it: the metric writer adds a
//! sample only after the transaction that stored it has committed (and only
//! if it was stored: a re-sent sample is not added twice), and retention
//! trims it in the same steps that delete rows. It is loaded from the
//! database at start. Each series keeps its newest [`DEPTH`] samples, newest
//! first; a question that needs more goes to SQLite. The one thing memory
//! knows first is a host seen through logs: [`Recent::touch`] records it at
//! once, and the database has it within the writer's next flush.

use super::query::{HostSummary, LabelFilter, Latest, RecentSamples, estimate_interval, newest_points, summarise};
use super::schema::parse_labels;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Samples kept per series: enough for the interval estimate of the hosts
/// list (6) and for rules' `datapoints = "N of M"` with M up to 10.
pub const DEPTH: usize = 10;

/// Metric names whose newest value the hosts list shows.
const HEADLINE: [&str; 5] = [
    "cpu.usage_percent",
    "memory.used_percent",
    "fs.used_percent",
    "net.rx_bytes_per_sec",
    "net.tx_bytes_per_sec",
];

/// See the module docs. Shared by the metric writer (which updates it) and
/// the read side ([`super::MetricStore`]).
#[derive(Default)]
pub struct Recent {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every series by its database id.
    series: HashMap<i64, Kept>,
    /// Series ids per metric name, ordered as SQL's `ORDER BY host, labels`.
    by_name: HashMap<Arc<str>, BTreeMap<HostAndLabels, i64>>,
    /// Headline series ids per host (see [`HEADLINE`]).
    headline_of: HashMap<Arc<str>, Vec<i64>>,
    /// Every known host's last-seen time (Unix ms), by name.
    last_seen: BTreeMap<String, i64>,
}

/// When a host was last seen and how often it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct HostActivity {
    /// Host name.
    pub host: String,
    /// When the aggregator last received a batch from it, Unix ms.
    pub last_seen_ms: i64,
    /// Its collection interval (see [`HostSummary::interval_ms`]).
    pub interval_ms: i64,
}

/// The newest sample of one series ([`Recent::latest`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LatestSample {
    /// Metric name, `cpu.usage_percent`.
    pub name: String,
    /// Host.
    pub host: String,
    /// The series' labels (`cpu`, `mount`, …).
    pub labels: BTreeMap<String, String>,
    /// When, Unix ms.
    pub time_ms: i64,
    /// The value.
    pub value: f64,
}

/// What a series is ([`Recent::describe`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesKey {
    /// Metric name, `cpu.usage_percent`.
    pub name: Arc<str>,
    /// Host.
    pub host: Arc<str>,
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
}

/// A series' host and canonical label text: its key within its metric.
type HostAndLabels = (Arc<str>, Arc<str>);

/// One series and its newest samples.
struct Kept {
    host: Arc<str>,
    name: Arc<str>,
    /// Canonical label JSON, as stored.
    labels_text: Arc<str>,
    labels: BTreeMap<String, String>,
    /// `(unix_ms, value)`, newest first, distinct times, at most [`DEPTH`].
    points: VecDeque<(i64, f64)>,
}

impl Recent {
    /// Loads every series' newest samples and every host's last-seen time
    /// from the database.
    pub fn load(conn: &Connection) -> rusqlite::Result<Recent> {
        let recent = Recent::default();
        let series: Vec<(i64, String, String, String)> = conn
            .prepare("SELECT id, host, name, labels FROM series")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        {
            let mut inner = recent.write();
            for (id, host, name, labels) in series {
                inner.ensure_series(id, &host, &name, &labels);
                let points = newest_points(conn, id, i64::MIN, DEPTH)?;
                if let Some(kept) = inner.series.get_mut(&id) {
                    kept.points = points.into();
                }
            }
            let hosts = conn
                .prepare("SELECT host, last_seen_ms FROM hosts")?
                .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            inner.last_seen.extend(hosts);
        }
        Ok(recent)
    }

    /// Makes series `id` known (after the transaction that created or found
    /// it committed).
    pub fn ensure_series(&self, id: i64, host: &str, name: &str, labels_text: &str) {
        self.write().ensure_series(id, host, name, labels_text);
    }

    /// What each of `ids` is (name, host, labels); ids retention dropped are
    /// left out.
    pub fn describe(&self, ids: impl IntoIterator<Item = i64>) -> HashMap<i64, SeriesKey> {
        let inner = self.read();
        ids.into_iter()
            .filter_map(|id| {
                let kept = inner.series.get(&id)?;
                Some((
                    id,
                    SeriesKey {
                        name: kept.name.clone(),
                        host: kept.host.clone(),
                        labels: kept.labels.clone(),
                    },
                ))
            })
            .collect()
    }

    /// Adds committed, newly stored samples `(series id, unix_ms, value)`.
    pub fn add(&self, samples: &[(i64, i64, f64)]) {
        let mut inner = self.write();
        for &(id, time_ms, value) in samples {
            if let Some(kept) = inner.series.get_mut(&id) {
                kept.insert(time_ms, value);
            }
        }
    }

    /// Records that `host` sent something at `seen_ms` (never moving back).
    pub fn touch(&self, host: &str, seen_ms: i64) {
        let mut inner = self.write();
        match inner.last_seen.get_mut(host) {
            Some(seen) => *seen = (*seen).max(seen_ms),
            None => {
                inner.last_seen.insert(host.to_owned(), seen_ms);
            }
        }
    }

    /// Drops samples before `cutoff_ms`, as retention deleted them.
    pub fn trim(&self, cutoff_ms: i64) {
        let mut inner = self.write();
        for kept in inner.series.values_mut() {
            while kept.points.back().is_some_and(|&(time, _)| time < cutoff_ms) {
                kept.points.pop_back();
            }
        }
    }

    /// Retention's last step: forgets series without samples (the database
    /// deleted them, or they answer nothing anyway; a new sample makes them
    /// known again) and hosts last seen before `before_ms`.
    pub fn forget(&self, before_ms: i64) {
        let mut inner = self.write();
        let empty: Vec<i64> = inner
            .series
            .iter()
            .filter(|(_, kept)| kept.points.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in empty {
            inner.remove_series(id);
        }
        inner.last_seen.retain(|_, seen| *seen >= before_ms);
    }

    /// For every series of metric `name` whose labels are `wanted` and with a
    /// sample at or after `since_ms`: its newest samples, at most
    /// `per_series`, none before `since_ms`, ordered by host and labels.
    /// `None` when more than [`DEPTH`] samples per series are asked for.
    pub fn recent_samples(
        &self,
        name: &str,
        since_ms: i64,
        per_series: usize,
        wanted: LabelFilter<'_>,
    ) -> Option<Vec<RecentSamples>> {
        if per_series > DEPTH {
            return None;
        }
        let inner = self.read();
        let Some(ids) = inner.by_name.get(name) else {
            return Some(Vec::new());
        };
        let answer = ids
            .values()
            .filter_map(|id| inner.series.get(id))
            .filter(|kept| wanted(&kept.labels))
            .filter_map(|kept| {
                let points: Vec<(i64, f64)> = kept
                    .points
                    .iter()
                    .take_while(|(time, _)| *time >= since_ms)
                    .take(per_series)
                    .copied()
                    .collect();
                (!points.is_empty()).then(|| RecentSamples {
                    host: kept.host.to_string(),
                    labels: kept.labels.clone(),
                    points,
                })
            })
            .collect();
        Some(answer)
    }

    /// Every known host, sorted by name, with its latest headline values as
    /// of `now_ms`.
    pub fn hosts(&self, now_ms: i64) -> Vec<HostSummary> {
        let inner = self.read();
        inner
            .last_seen
            .iter()
            .map(|(host, &last_seen_ms)| {
                let headline = inner.headline(host);
                let values: Vec<Latest<'_>> = headline
                    .iter()
                    .filter_map(|kept| {
                        let &(ts, value) = kept.points.front()?;
                        Some(Latest {
                            name: &kept.name,
                            labels: &kept.labels,
                            ts,
                            value,
                        })
                    })
                    .collect();
                summarise(host.clone(), last_seen_ms, interval_of(&headline), &values, now_ms)
            })
            .collect()
    }

    /// Every known host, sorted by name, with its last-seen time and
    /// collection interval: what the silent-host rule needs, without the
    /// headline values of [`Recent::hosts`].
    pub fn activity(&self) -> Vec<HostActivity> {
        let inner = self.read();
        inner
            .last_seen
            .iter()
            .map(|(host, &last_seen_ms)| {
                let headline = inner.headline(host);
                HostActivity {
                    host: host.clone(),
                    last_seen_ms,
                    interval_ms: interval_of(&headline),
                }
            })
            .collect()
    }

    /// Every known host's last-seen time (Unix ms), by name: what the
    /// tests compare with the database.
    #[cfg(test)]
    pub fn last_seen(&self) -> BTreeMap<String, i64> {
        self.read().last_seen.clone()
    }

    /// The newest sample of every series, if at or after `since_ms`, by
    /// metric name, then host and labels.
    pub fn latest(&self, since_ms: i64) -> Vec<LatestSample> {
        let inner = self.read();
        let mut names: Vec<&Arc<str>> = inner.by_name.keys().collect();
        names.sort();
        names
            .into_iter()
            .flat_map(|name| inner.by_name[name].values())
            .filter_map(|id| inner.series.get(id))
            .filter_map(|kept| {
                let &(time_ms, value) = kept.points.front()?;
                (time_ms >= since_ms).then(|| LatestSample {
                    name: kept.name.to_string(),
                    host: kept.host.to_string(),
                    labels: kept.labels.clone(),
                    time_ms,
                    value,
                })
            })
            .collect()
    }

    // A poisoned lock means a thread panicked while holding it; every
    // mutation leaves the maps consistent between statements, so go on.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// The headline series of `host` (see [`HEADLINE`]).
    fn headline(&self, host: &str) -> Vec<&Kept> {
        self.headline_of
            .get(host)
            .into_iter()
            .flatten()
            .filter_map(|id| self.series.get(id))
            .collect()
    }

    fn ensure_series(&mut self, id: i64, host: &str, name: &str, labels_text: &str) {
        if self.series.contains_key(&id) {
            return;
        }
        // Labels come from the database, written canonical by the writer;
        // a row that does not parse answers with no labels rather than failing
        // every rule.
        let labels = parse_labels(labels_text).unwrap_or_default();
        let host: Arc<str> = self
            .headline_of
            .get_key_value(host)
            .map_or_else(|| host.into(), |(known, _)| known.clone());
        let name: Arc<str> = self
            .by_name
            .get_key_value(name)
            .map_or_else(|| name.into(), |(known, _)| known.clone());
        let labels_text: Arc<str> = labels_text.into();
        self.by_name
            .entry(name.clone())
            .or_default()
            .insert((host.clone(), labels_text.clone()), id);
        // Host-level CPU and memory only: a 64-core host has 64 per-CPU
        // series whose latest values the list does not show.
        let headline = match &*name {
            "cpu.usage_percent" | "memory.used_percent" => labels.is_empty(),
            other => HEADLINE.contains(&other),
        };
        if headline {
            self.headline_of.entry(host.clone()).or_default().push(id);
        }
        self.series.insert(
            id,
            Kept {
                host,
                name,
                labels_text,
                labels,
                points: VecDeque::new(),
            },
        );
    }

    fn remove_series(&mut self, id: i64) {
        let Some(kept) = self.series.remove(&id) else {
            return;
        };
        if let Some(ids) = self.by_name.get_mut(&kept.name) {
            ids.remove(&(kept.host.clone(), kept.labels_text.clone()));
            if ids.is_empty() {
                self.by_name.remove(&kept.name);
            }
        }
        if let Some(ids) = self.headline_of.get_mut(&kept.host) {
            ids.retain(|known| *known != id);
            if ids.is_empty() {
                self.headline_of.remove(&kept.host);
            }
        }
    }
}

impl Kept {
    /// Inserts a sample at its place by time, keeping the newest [`DEPTH`];
    /// a time already held is ignored (the database stores it once too).
    fn insert(&mut self, time_ms: i64, value: f64) {
        let place = self.points.partition_point(|&(time, _)| time > time_ms);
        if self.points.get(place).is_some_and(|&(time, _)| time == time_ms) {
            return;
        }
        if place >= DEPTH {
            return;
        }
        self.points.insert(place, (time_ms, value));
        self.points.truncate(DEPTH);
    }
}

/// A host's collection interval, estimated from the spacing of its
/// host-level `cpu.usage_percent` samples among its `headline` series.
fn interval_of(headline: &[&Kept]) -> i64 {
    let cpu = headline
        .iter()
        .find(|kept| &*kept.name == "cpu.usage_percent" && kept.labels.is_empty());
    let times: Vec<i64> = cpu
        .map(|kept| {
            kept.points
                .iter()
                .take(super::query::INTERVAL_SAMPLES)
                .map(|p| p.0)
                .collect()
        })
        .unwrap_or_default();
    estimate_interval(&times)
}
