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
use crate::ingest::patterns::PatternBook;
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
    /// an id of an earlier generation, or given before first times were
    /// kept, whose history is not known).
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

/// The series' buckets: the first one's start and the width (Unix ms,
/// whole seconds, as `_time(…)` takes them) and how many.
#[derive(Clone, Copy)]
struct Buckets {
    first: i64,
    width: i64,
    count: usize,
}

impl Buckets {
    /// At most `wanted` + 1 buckets of whole seconds, aligned to the epoch,
    /// over `[start, end)`; `None` for an empty range or no bucket.
    fn over(start: i64, end: i64, wanted: u64) -> Option<Buckets> {
        if wanted == 0 || start >= end {
            return None;
        }
        let span = u64::try_from(end.checked_sub(start)?).ok()?;
        let width_ms = span.div_ceil(wanted).max(1000).div_ceil(1000).checked_mul(1000)?;
        let width = i64::try_from(width_ms).ok()?;
        let first = start.checked_sub(start.rem_euclid(width))?;
        let count = usize::try_from(u64::try_from(end.checked_sub(first)?).ok()?.div_ceil(width_ms)).ok()?;
        Some(Buckets { first, width, count })
    }
}

/// The lines of one stored id (`None`: lines without a pattern).
struct IdLines {
    id: Option<String>,
    count: u64,
    first: i64,
    last: i64,
    /// Per bucket, when the series was asked.
    series: Vec<u64>,
}

/// What [`find`] found.
struct Found {
    ids: Vec<IdLines>,
    /// Ids found, and ids kept (the general path keeps at most a table's rows).
    ids_found: usize,
    ids_kept: usize,
    /// The series' buckets, when it was asked and made (fewer than asked
    /// on the general path when ids × buckets would pass a table's rows).
    buckets: Option<Buckets>,
}

/// The lines per stored id of what `filter` and `expr` select, and with
/// `series` (the range and the buckets wanted) per bucket: in one scan of
/// the columns when the selection is by event time and exact host, source
/// and level alone ([`crate::store::LogStore::pattern_lines`]), else from
/// `| stats` tables
/// (the busiest ids first when they are more than a table holds).
async fn find(
    app: &AppState,
    filter: &LogFilter,
    expr: &Expr,
    series: Option<(i64, i64, u64)>,
) -> Result<Found, ApiError> {
    let wanted = series.and_then(|(start, end, buckets)| Buckets::over(start, end, buckets));
    let (scan_filter, scan_expr) = (filter.clone(), expr.clone());
    let scanned = blocking(app.store.clone(), move |store| {
        store.pattern_lines(&scan_filter, &scan_expr, wanted.map(|b| (b.first, b.width, b.count)))
    })
    .await?;
    if let Some(mut lines) = scanned {
        // The same bound as a table's: the busiest ids.
        let ids_found = lines.len();
        lines.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.pattern.cmp(&b.pattern)));
        lines.truncate(MAX_ROWS);
        let ids: Vec<IdLines> = lines
            .into_iter()
            .map(|lines| IdLines {
                id: Some(lines.pattern),
                count: lines.count,
                first: lines.first,
                last: lines.last,
                series: lines.series,
            })
            .collect();
        return Ok(Found {
            ids_found,
            ids_kept: ids.len(),
            ids,
            buckets: wanted,
        });
    }
    // The most lines first, so that the bound on rows keeps the busiest ids.
    let totals = plan("* | stats count(), min(_time), max(_time) by pattern | sort by count() desc")?;
    let (totals_filter, totals_expr) = (filter.clone(), expr.clone());
    let table = blocking(app.store.clone(), move |store| {
        store.stats(&totals_filter, &totals_expr, &totals)
    })
    .await?;
    let mut ids: Vec<IdLines> = table
        .rows
        .iter()
        .filter_map(|row| match row.as_slice() {
            [id, Value::Count(count), Value::Time(first), Value::Time(last)] => Some(IdLines {
                id: match id {
                    Value::Text(id) => Some(id.clone()),
                    _ => None,
                },
                count: *count,
                first: *first,
                last: *last,
                series: Vec::new(),
            }),
            _ => None,
        })
        .collect();
    // Fewer buckets when ids × buckets would pass the rows a table holds
    // (the `+ 1`: the range may straddle one more bucket).
    let most = u64::try_from((MAX_ROWS / table.groups.max(1)).saturating_sub(1)).unwrap_or(0);
    let buckets = series.and_then(|(start, end, buckets)| Buckets::over(start, end, buckets.min(most)));
    if let Some(buckets) = buckets
        && !ids.is_empty()
    {
        let plan = plan(&format!(
            "* | stats count() by _time({}s), pattern",
            buckets.width / 1000
        ))?;
        let (series_filter, series_expr) = (filter.clone(), expr.clone());
        let table = blocking(app.store.clone(), move |store| {
            store.stats(&series_filter, &series_expr, &plan)
        })
        .await?;
        let at: HashMap<String, usize> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, lines)| Some((lines.id.clone()?, i)))
            .collect();
        for lines in &mut ids {
            lines.series = vec![0; buckets.count];
        }
        for row in &table.rows {
            let [Value::Time(bucket), Value::Text(id), Value::Count(n)] = row.as_slice() else {
                continue;
            };
            if let (Some(&i), Ok(slot)) = (at.get(id), usize::try_from((bucket - buckets.first) / buckets.width))
                && slot < buckets.count
            {
                ids[i].series[slot] += n;
            }
        }
    }
    Ok(Found {
        ids,
        ids_found: table.groups,
        ids_kept: table.rows.len(),
        buckets,
    })
}

/// `ask` of the pattern book, on the blocking pool (it takes the miner's lock).
async fn look_up<T: Send + 'static>(
    app: &AppState,
    ask: impl FnOnce(&PatternBook) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let book = app.patterns.clone();
    tokio::task::spawn_blocking(move || ask(&book))
        .await
        .map_err(|err| ApiError::internal("the pattern lookup failed", &err))
}

/// The patterns of some lines: ids that are one pattern added up under
/// the oldest (looked up at once), and the lines without a pattern.
async fn merge(app: &AppState, found: Vec<IdLines>) -> Result<(Vec<PatternRow>, u64), ApiError> {
    let ids: Vec<String> = found.iter().filter_map(|lines| lines.id.clone()).collect();
    let canonicals = look_up(app, move |book| book.canonicals(&ids)).await?;
    let mut merged: HashMap<String, PatternRow> = HashMap::new();
    let mut unpatterned = 0;
    for lines in found {
        let Some(id) = lines.id else {
            unpatterned += lines.count;
            continue;
        };
        let canonical = canonicals.get(&id).cloned().unwrap_or_else(|| id.clone());
        let row = merged.entry(canonical.clone()).or_insert_with(|| PatternRow {
            template: None,
            pattern: canonical,
            ids: Vec::new(),
            count: 0,
            first_seen: i64::MAX,
            last_seen: i64::MIN,
            first_ever: None,
            new: false,
            previous: None,
            series: vec![0; lines.series.len()],
        });
        row.ids.push(id);
        row.count += lines.count;
        row.first_seen = row.first_seen.min(lines.first);
        row.last_seen = row.last_seen.max(lines.last);
        for (sum, n) in row.series.iter_mut().zip(&lines.series) {
            *sum += n;
        }
    }
    Ok((merged.into_values().collect(), unpatterned))
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
    // With both ends of the range given, the series comes in the same pass;
    // otherwise it spans the lines found, counted again once they are.
    let range = filter.start.zip(filter.end);
    let mut found = find(&app, &filter, &expr, range.map(|(start, end)| (start, end, buckets))).await?;
    let (earliest, latest) = found.ids.iter().fold((i64::MAX, i64::MIN), |(low, high), lines| {
        (low.min(lines.first), high.max(lines.last))
    });
    let range_start = filter.start.unwrap_or(earliest);
    let range_end = filter.end.unwrap_or(latest.saturating_add(1));
    if range.is_none() && !found.ids.is_empty() {
        found = find(&app, &filter, &expr, Some((range_start, range_end, buckets))).await?;
    }
    let Found {
        ids,
        ids_found,
        ids_kept,
        buckets,
    } = found;
    let (mut rows, unpatterned) = merge(&app, ids).await?;

    // When each was first seen, and what is new in the range.
    let wanted: Vec<String> = rows.iter().map(|row| row.pattern.clone()).collect();
    let firsts = look_up(&app, move |book| book.first_seen(&wanted)).await?;
    for (row, first) in rows.iter_mut().zip(firsts) {
        // The miner's first time may be later than a line counted here (a
        // line stored before mining began, or with a clock behind).
        row.first_ever = first.map(|first| first.time_ms.min(row.first_seen));
        row.new = filter.start.is_some() && row.first_ever.is_some_and(|at| at >= range_start);
    }
    if let Some(before) = before {
        let previous = find(&app, &before, &expr, None).await?;
        let (previous, _) = merge(&app, previous.ids).await?;
        let by_pattern: HashMap<String, u64> = previous.into_iter().map(|row| (row.pattern, row.count)).collect();
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
    let templates = look_up(&app, move |book| book.templates(&wanted)).await?;
    for (row, template) in rows.iter_mut().zip(templates) {
        row.template = template;
    }
    Ok(Json(PatternsAnswer {
        patterns: rows,
        total,
        cut: ids_found > ids_kept,
        unpatterned,
        bucket_start: buckets.map(|b| rfc3339(b.first)),
        bucket_ms: buckets.map_or(0, |b| b.width),
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
