//! `GET /api/v1/logs/patterns`: the patterns of the lines the search's
//! filters select, most lines first: each with its template, the ids that
//! stand for it, its count, the first and last of its lines in the range,
//! and a count per time bucket (`buckets`, default 30, at most 200, fewer
//! when ids × buckets would pass the rows a table holds).
//!
//! `order` chooses which patterns come first (and so which `limit` keeps):
//! - `count` (the default): the most lines;
//! - `new`: those whose first line ever (`firstEver`) is in the range, the
//!   newest first, then the rest by count;
//! - `changed`: the largest difference between `count` and `previous`, the
//!   lines of the range of the same length just before `start`.
//!
//! Counted from the stored `pattern` of each line, as `| stats … by
//! pattern` does, with the ids that turned out to be one pattern added up
//! under the oldest ([`crate::ingest::patterns::PatternBook`]).

use super::AppState;
use super::error::ApiError;
use super::logs::blocking;
use super::params::Params;
use crate::query::Expr;
use crate::query::aggregate::Value;
use crate::query::pipe::MAX_ROWS;
use crate::query::{self, pipe::Stats};
use crate::store::search::LogFilter;
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use lookout_shared::time::rfc3339;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

/// Buckets of the series unless asked.
const DEFAULT_BUCKETS: u64 = 30;
/// Most buckets.
const MAX_BUCKETS: u64 = 200;
/// Patterns answered unless asked (`limit`, at most [`MAX_LIMIT`]).
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

/// One pattern of the answer.
#[derive(Serialize)]
struct PatternRow {
    /// The oldest id that stands for it.
    pattern: String,
    /// Every id its lines carry, in the range.
    ids: Vec<String>,
    /// Its template as the miner has it now (`null` for an id of an earlier generation).
    template: Option<String>,
    count: u64,
    /// The first and last of its lines in the range, Unix ms.
    #[serde(rename = "firstSeen", serialize_with = "as_time")]
    first_seen: i64,
    #[serde(rename = "lastSeen", serialize_with = "as_time")]
    last_seen: i64,
    /// The first of its lines ever seen, in or before the range (`null`:
    /// an id of an earlier generation, whose history is not kept).
    #[serde(rename = "firstEver", serialize_with = "as_optional_time")]
    first_ever: Option<i64>,
    /// Its first line ever is in the range.
    new: bool,
    /// With `order=changed`: its lines in the range just before.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<u64>,
    /// Lines per bucket.
    series: Vec<u64>,
}

/// `order`: which patterns come first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Count,
    New,
    Changed,
}

impl Order {
    fn parse(text: Option<String>) -> Result<Order, ApiError> {
        match text.as_deref() {
            None | Some("count") => Ok(Order::Count),
            Some("new") => Ok(Order::New),
            Some("changed") => Ok(Order::Changed),
            Some(other) => Err(ApiError::bad_request(format!(
                "parameter `order`: `{other}` is not one of count, new, changed"
            ))),
        }
    }
}

/// The patterns of some lines, merged, before ordering.
struct Counted {
    rows: Vec<PatternRow>,
    unpatterned: u64,
    /// The first and last line found (`i64::MAX`, `i64::MIN`: none).
    earliest: i64,
    latest: i64,
    /// Ids found, and ids kept (at most a table's rows).
    ids_found: usize,
    ids_kept: usize,
}

/// The answer.
#[derive(Serialize)]
pub struct PatternsAnswer {
    patterns: Vec<PatternRow>,
    /// Patterns found (more than listed when `limit` cut them).
    total: usize,
    /// More ids were found than a table holds (10,000): the least frequent
    /// are left out, and `total` and `unpatterned` count only those kept.
    cut: bool,
    /// Lines without a pattern (stored before patterns were mined, or with mining off).
    unpatterned: u64,
    /// The series' buckets: the first one's start and the width.
    #[serde(rename = "bucketStart")]
    bucket_start: Option<String>,
    #[serde(rename = "bucketMs")]
    bucket_ms: i64,
    took_ms: u64,
}

/// Stats plan for `text` (a pipe this module writes, so it parses).
fn plan(text: &str) -> Result<Stats, ApiError> {
    query::parse_query(text)
        .ok()
        .and_then(|parsed| parsed.stats)
        .ok_or_else(|| ApiError::internal("the patterns plan does not parse", &text))
}

/// The patterns of the lines `filter` and `expr` select, ids of one
/// pattern added up under the oldest; the busiest first when the ids are
/// more than a table holds.
async fn count(app: &AppState, filter: LogFilter, expr: Expr) -> Result<Counted, ApiError> {
    let totals = plan("* | stats count(), min(_time), max(_time) by pattern | sort by count() desc")?;
    let table = blocking(app.store.clone(), move |store| store.stats(&filter, &expr, &totals)).await?;
    // Ids that are one pattern, added up under the oldest (looked up at once).
    let ids: Vec<String> = table
        .rows
        .iter()
        .filter_map(|row| match row.first() {
            Some(Value::Text(id)) => Some(id.clone()),
            _ => None,
        })
        .collect();
    let book = app.patterns.clone();
    let canonicals = tokio::task::spawn_blocking(move || book.canonicals(&ids))
        .await
        .map_err(|err| ApiError::internal("the pattern lookup failed", &err))?;
    let mut merged: HashMap<String, PatternRow> = HashMap::new();
    let mut counted = Counted {
        rows: Vec::new(),
        unpatterned: 0,
        earliest: i64::MAX,
        latest: i64::MIN,
        ids_found: table.groups,
        ids_kept: table.rows.len(),
    };
    for row in &table.rows {
        let [id, Value::Count(count), Value::Time(first), Value::Time(last)] = row.as_slice() else {
            continue;
        };
        counted.earliest = counted.earliest.min(*first);
        counted.latest = counted.latest.max(*last);
        let Value::Text(id) = id else {
            counted.unpatterned += count;
            continue;
        };
        let canonical = canonicals.get(id).cloned().unwrap_or_else(|| id.clone());
        let entry = merged.entry(canonical.clone()).or_insert_with(|| PatternRow {
            template: None,
            pattern: canonical,
            ids: Vec::new(),
            count: 0,
            first_seen: i64::MAX,
            last_seen: i64::MIN,
            first_ever: None,
            new: false,
            previous: None,
            series: Vec::new(),
        });
        entry.ids.push(id.clone());
        entry.count += count;
        entry.first_seen = entry.first_seen.min(*first);
        entry.last_seen = entry.last_seen.max(*last);
    }
    counted.rows = merged.into_values().collect();
    Ok(counted)
}

/// The patterns of the lines `q` (no pipe) and the filters select.
pub async fn patterns(State(app): State<AppState>, uri: Uri) -> Result<Json<PatternsAnswer>, ApiError> {
    let started = Instant::now();
    let mut params = Params::from_uri(&uri)?;
    let filter = params.filter()?;
    let buckets = params.number("buckets", 1, MAX_BUCKETS)?.unwrap_or(DEFAULT_BUCKETS);
    let limit = params.number("limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT) as usize;
    let order = Order::parse(params.text("order"))?;
    params.finish()?;
    // The range just before, of the same length, for `changed`.
    let before = match (order, filter.start) {
        (Order::Changed, Some(start)) => {
            let end = filter.end.unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
            Some(LogFilter {
                start: Some(start.saturating_sub(end.saturating_sub(start))),
                end: Some(start),
                ..filter.clone()
            })
        }
        (Order::Changed, None) => {
            return Err(ApiError::bad_request(
                "`order=changed` compares with the range before `start`: give a start",
            ));
        }
        _ => None,
    };
    let parsed = query::parse_query(&filter.q).map_err(|err| ApiError::bad_request(err.to_string()))?;
    if parsed.stats.is_some() {
        return Err(ApiError::bad_request(
            "patterns are counted over lines: give the query without a pipe",
        ));
    }
    let expr = parsed.filter;
    let for_series = expr.clone();
    let Counted {
        mut rows,
        unpatterned,
        earliest,
        latest,
        ids_found,
        ids_kept,
    } = count(&app, filter.clone(), expr.clone()).await?;
    let range_start = filter.start.unwrap_or(earliest);
    let range_end = filter.end.unwrap_or(latest.saturating_add(1));

    // When each was first seen, and what is new in the range.
    let wanted: Vec<String> = rows.iter().map(|row| row.pattern.clone()).collect();
    let book = app.patterns.clone();
    let firsts = tokio::task::spawn_blocking(move || book.first_seen(&wanted))
        .await
        .map_err(|err| ApiError::internal("the pattern lookup failed", &err))?;
    for (row, first) in rows.iter_mut().zip(firsts) {
        // The miner's first time may be later than a line counted here (a
        // line stored before mining began, or with a clock behind).
        row.first_ever = first.map(|first| first.time_ms.min(row.first_seen));
        row.new = filter.start.is_some() && row.first_ever.is_some_and(|at| at >= range_start);
    }
    if let Some(before) = before {
        let previous = count(&app, before, expr).await?;
        let by_pattern: HashMap<String, u64> = previous.rows.into_iter().map(|row| (row.pattern, row.count)).collect();
        for row in &mut rows {
            row.previous = Some(by_pattern.get(&row.pattern).copied().unwrap_or(0));
        }
    }
    let by_count = |a: &PatternRow, b: &PatternRow| b.count.cmp(&a.count).then_with(|| a.pattern.cmp(&b.pattern));
    match order {
        Order::Count => rows.sort_by(by_count),
        Order::New => rows.sort_by(|a, b| {
            b.new
                .cmp(&a.new)
                .then_with(|| {
                    if a.new {
                        b.first_ever.cmp(&a.first_ever)
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .then_with(|| by_count(a, b))
        }),
        Order::Changed => rows.sort_by(|a, b| {
            let change = |row: &PatternRow| row.count.abs_diff(row.previous.unwrap_or(0));
            change(b).cmp(&change(a)).then_with(|| by_count(a, b))
        }),
    }
    let total = rows.len();
    rows.truncate(limit);
    let wanted: Vec<String> = rows.iter().map(|row| row.pattern.clone()).collect();
    let book = app.patterns.clone();
    let templates = tokio::task::spawn_blocking(move || book.templates(&wanted))
        .await
        .map_err(|err| ApiError::internal("the pattern lookup failed", &err))?;
    for (row, template) in rows.iter_mut().zip(templates) {
        row.template = template;
    }

    // The series: counts per bucket of the range (or of the lines found),
    // in fewer buckets when ids × buckets would pass the rows a table
    // holds (the `+ 1`: the range may straddle one more bucket).
    let buckets = buckets.min(u64::try_from((MAX_ROWS / ids_found.max(1)).saturating_sub(1)).unwrap_or(0));
    let (mut bucket_start, mut bucket_ms) = (None, 0);
    if !rows.is_empty() && buckets > 0 && range_start < range_end {
        let span = u64::try_from(range_end.saturating_sub(range_start)).unwrap_or(0);
        // Whole seconds, as `_time(…)` takes them; so at most `buckets` + 1 of them.
        let width_ms = span.div_ceil(buckets).max(1000).div_ceil(1000) * 1000;
        let width = i64::try_from(width_ms).unwrap_or(i64::MAX);
        let aligned = range_start - range_start.rem_euclid(width);
        let count = usize::try_from(u64::try_from(range_end - aligned).unwrap_or(0).div_ceil(width_ms)).unwrap_or(0);
        let series = plan(&format!("* | stats count() by _time({}s), pattern", width / 1000))?;
        let table = blocking(app.store.clone(), move |store| {
            store.stats(&filter, &for_series, &series)
        })
        .await?;
        // Each id to its row, as the lines were counted above.
        let at: HashMap<&str, usize> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, row)| row.ids.iter().map(move |id| (id.as_str(), i)))
            .collect();
        let mut counts = vec![vec![0u64; count]; rows.len()];
        for row in &table.rows {
            let [Value::Time(bucket), Value::Text(id), Value::Count(n)] = row.as_slice() else {
                continue;
            };
            if let (Some(&i), Ok(slot)) = (at.get(id.as_str()), usize::try_from((bucket - aligned) / width))
                && slot < count
            {
                counts[i][slot] += n;
            }
        }
        for (row, series) in rows.iter_mut().zip(counts) {
            row.series = series;
        }
        bucket_start = Some(rfc3339(aligned));
        bucket_ms = width;
    }
    Ok(Json(PatternsAnswer {
        patterns: rows,
        total,
        cut: ids_found > ids_kept,
        unpatterned,
        bucket_start,
        bucket_ms,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// A time in Unix ms as RFC 3339.
fn as_time<S: serde::Serializer>(ms: &i64, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_str(&rfc3339(*ms))
}

fn as_optional_time<S: serde::Serializer>(ms: &Option<i64>, out: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => out.serialize_str(&rfc3339(*ms)),
        None => out.serialize_none(),
    }
}
