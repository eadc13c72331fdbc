//! `GET /api/v1/logs/patterns`: the patterns of the lines the search's
//! filters select, most lines first: each with its template, the ids that
//! stand for it, its count, the first and last of its lines in the range,
//! and a count per time bucket (`buckets`, default 30, at most 200, fewer
//! when ids × buckets would pass the rows a table holds).
//!
//! Counted from the stored `pattern` of each line, as `| stats … by
//! pattern` does, with the ids that turned out to be one pattern added up
//! under the oldest ([`crate::ingest::patterns::PatternBook`]).

use super::AppState;
use super::error::ApiError;
use super::logs::blocking;
use super::params::Params;
use crate::query::aggregate::Value;
use crate::query::pipe::MAX_ROWS;
use crate::query::{self, pipe::Stats};
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
    /// Lines per bucket.
    series: Vec<u64>,
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
        .ok_or_else(|| ApiError::bad_request(format!("internal plan `{text}` does not parse")))
}

/// The patterns of the lines `q` (no pipe) and the filters select.
pub async fn patterns(State(app): State<AppState>, uri: Uri) -> Result<Json<PatternsAnswer>, ApiError> {
    let started = Instant::now();
    let mut params = Params::from_uri(&uri)?;
    let filter = params.filter()?;
    let buckets = params.number("buckets", 1, MAX_BUCKETS)?.unwrap_or(DEFAULT_BUCKETS);
    let limit = params.number("limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT) as usize;
    params.finish()?;
    let parsed = query::parse_query(&filter.q).map_err(|err| ApiError::bad_request(err.to_string()))?;
    if parsed.stats.is_some() {
        return Err(ApiError::bad_request(
            "patterns are counted over lines: give the query without a pipe",
        ));
    }
    let expr = parsed.filter;
    // The most lines first, so that the bound on rows keeps the busiest ids.
    let totals = plan("* | stats count(), min(_time), max(_time) by pattern | sort by count() desc")?;
    let (by_pattern, for_series) = (filter.clone(), expr.clone());
    let table = blocking(app.store.clone(), move |store| store.stats(&by_pattern, &expr, &totals)).await?;

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
    let mut unpatterned = 0;
    let (mut earliest, mut latest) = (i64::MAX, i64::MIN);
    for row in &table.rows {
        let [id, Value::Count(count), Value::Time(first), Value::Time(last)] = row.as_slice() else {
            continue;
        };
        (earliest, latest) = (earliest.min(*first), latest.max(*last));
        let Value::Text(id) = id else {
            unpatterned += count;
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
            series: Vec::new(),
        });
        entry.ids.push(id.clone());
        entry.count += count;
        entry.first_seen = entry.first_seen.min(*first);
        entry.last_seen = entry.last_seen.max(*last);
    }
    let mut rows: Vec<PatternRow> = merged.into_values().collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.pattern.cmp(&b.pattern)));
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
    let ids = table.groups.max(1);
    let buckets = buckets.min(u64::try_from((MAX_ROWS / ids).saturating_sub(1)).unwrap_or(0));
    let range_start = filter.start.unwrap_or(earliest);
    let range_end = filter.end.unwrap_or(latest.saturating_add(1));
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
        cut: table.groups > table.rows.len(),
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
