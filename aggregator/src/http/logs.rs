//! The log read API: `GET /api/v1/logs/search`, `/histogram`, `/context`
//! and `/stats`. Parameters are checked here; the searches run on the
//! blocking pool.

use super::AppState;
use super::error::ApiError;
use super::params::Params;
use crate::query::highlight::Highlighter;
use crate::query::{self, aggregate::Value};
use crate::store::LogStore;
use crate::store::schema::{Hit, MAX_LISTED_MESSAGE_BYTES};
use crate::store::search::{Bucket, Context, HistogramSpec, MAX_BUCKETS, SearchError, SearchRequest};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::Serialize;
use std::time::Instant;

/// Page size without `limit`.
const DEFAULT_LIMIT: u64 = 100;
/// Largest page.
const MAX_LIMIT: u64 = 10_000;
/// Deepest `offset + limit`: each page costs that many candidates per partition.
const MAX_WINDOW: u64 = 100_000;
/// Histogram buckets without `buckets` or `interval`.
const DEFAULT_BUCKETS: u64 = 60;
/// Context lines each side without `before` / `after`.
const DEFAULT_CONTEXT: u64 = 10;
/// Most context lines each side.
const MAX_CONTEXT: u64 = 1_000;
/// Most message bytes in one search answer: a page stops early (and says
/// `"limited": true`) rather than grow without bound.
const MAX_ANSWER_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Answer of `/api/v1/logs/search`.
#[derive(Serialize)]
pub struct SearchAnswer {
    total: u64,
    hits: Vec<Hit>,
    /// Present (true) when fewer hits than `limit` are shown because the
    /// answer reached its size bound; page on with `offset`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    limited: bool,
    took_ms: u64,
}

/// Answer of `/api/v1/logs/histogram`.
#[derive(Serialize)]
pub struct HistogramAnswer {
    buckets: Vec<Bucket>,
}

/// Matching records, newest (or oldest) first, one page at a time.
pub async fn search(State(app): State<AppState>, uri: Uri) -> Result<Json<SearchAnswer>, ApiError> {
    let started = Instant::now();
    let mut params = Params::from_uri(&uri)?;
    let filter = params.filter()?;
    let limit = params.number("limit", 0, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let offset = params.number("offset", 0, MAX_WINDOW)?.unwrap_or(0);
    let order = params.order()?;
    params.finish()?;
    if offset + limit > MAX_WINDOW {
        return Err(ApiError::bad_request(format!(
            "`offset` + `limit` may be at most {MAX_WINDOW}; narrow the time range instead of paging this deep"
        )));
    }
    let request = SearchRequest {
        filter,
        // Both are at most MAX_WINDOW, far below usize::MAX.
        limit: limit as usize,
        offset: offset as usize,
        order,
    };
    let result = blocking(app.store.clone(), move |store| store.search(&request)).await?;
    let mut hits = result.hits;
    let mut highlighter = Highlighter::new(&result.query);
    let mut bytes = 0;
    let mut shown = 0;
    for hit in &mut hits {
        hit.marks = highlighter.marks(&hit.message);
        hit.cut_message(MAX_LISTED_MESSAGE_BYTES);
        bytes += hit.message.len();
        if bytes > MAX_ANSWER_MESSAGE_BYTES {
            break;
        }
        shown += 1;
    }
    let limited = shown < hits.len();
    hits.truncate(shown);
    Ok(Json(SearchAnswer {
        total: result.total,
        hits,
        limited,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// Matching records counted per time bucket.
pub async fn histogram(State(app): State<AppState>, uri: Uri) -> Result<Json<HistogramAnswer>, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let filter = params.filter()?;
    let buckets = params.number("buckets", 1, MAX_BUCKETS as u64)?;
    let interval = params.duration_ms("interval")?;
    params.finish()?;
    let spec = match (buckets, interval) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give either `buckets` or `interval`, not both"));
        }
        (_, Some(ms)) => HistogramSpec::Interval(ms),
        (buckets, None) => HistogramSpec::Buckets(buckets.unwrap_or(DEFAULT_BUCKETS) as usize),
    };
    let buckets = blocking(app.store.clone(), move |store| store.histogram(&filter, spec)).await?;
    Ok(Json(HistogramAnswer { buckets }))
}

/// Answer of `/api/v1/logs/stats`.
#[derive(Serialize)]
pub struct StatsAnswer {
    columns: Vec<String>,
    /// How many of the columns are group keys (the first ones).
    keys: usize,
    rows: Vec<Vec<Value>>,
    /// Groups found: more than the rows when `| limit` (or the row bound) cut them.
    groups: usize,
    /// `q` before its first pipe: the query of the lines behind the rows.
    filter: String,
    took_ms: u64,
}

/// The table a query's pipe asks for (`error | stats count() by host`).
pub async fn stats(State(app): State<AppState>, uri: Uri) -> Result<Json<StatsAnswer>, ApiError> {
    let started = Instant::now();
    let mut params = Params::from_uri(&uri)?;
    let filter = params.filter()?;
    params.finish()?;
    let parsed = query::parse_query(&filter.q).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let Some(stats) = parsed.stats else {
        return Err(ApiError::bad_request(
            "the query has no pipe: a table is asked with `| stats …` or `| top …` (`error | stats count() by host`); \
             lines are searched at /api/v1/logs/search",
        ));
    };
    let expr = parsed.filter;
    let table = blocking(app.store.clone(), move |store| store.stats(&filter, &expr, &stats)).await?;
    Ok(Json(StatsAnswer {
        columns: table.columns,
        keys: table.keys,
        rows: table.rows,
        groups: table.groups,
        filter: parsed.filter_text,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// The lines before and after one record, in file order.
pub async fn context(State(app): State<AppState>, uri: Uri) -> Result<Json<Context>, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let Some(id) = params.text("id") else {
        return Err(ApiError::bad_request("parameter `id` is required"));
    };
    let before = params.number("before", 0, MAX_CONTEXT)?.unwrap_or(DEFAULT_CONTEXT) as usize;
    let after = params.number("after", 0, MAX_CONTEXT)?.unwrap_or(DEFAULT_CONTEXT) as usize;
    params.finish()?;
    let mut context = blocking(app.store.clone(), move |store| store.context(id.trim(), before, after)).await?;
    for hit in context.before.iter_mut().chain(context.after.iter_mut()) {
        hit.cut_message(MAX_LISTED_MESSAGE_BYTES);
    }
    Ok(Json(context))
}

/// Runs a search on the blocking pool: tantivy work is CPU and disk bound.
pub(super) async fn blocking<T: Send + 'static>(
    store: LogStore,
    work: impl FnOnce(&LogStore) -> Result<T, SearchError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|err| ApiError::internal("the search failed", &err))?
        .map_err(ApiError::from)
}
