//! The metric read API: `GET /api/v1/metrics/series`, `GET /api/v1/hosts`
//! and `GET /api/v1/metrics/prometheus`.
//! Parameters are checked here; the SQLite reads run on the blocking pool.
//!
//! `/api/v1/metrics/series` parameters:
//!
//! | parameter | meaning |
//! |---|---|
//! | `host` | required, exact host name |
//! | `name` | required, metric name such as `fs.used_percent` |
//! | `start`, `end` | RFC 3339 or Unix ms; `[start, end)`; default the hour before `end`, `end` default now |
//! | `step` | optional duration (`30s`, `5m`, `1h`): average the points into epoch-aligned buckets this wide |
//! | `label.<key>` | optional, repeatable for different keys: only series whose label `<key>` equals the value, e.g. `label.mount=/` |
//!
//! The answer is `{"resolution": "raw"|"1m"|"1h", "step_ms": N|null, "series":
//! [{"labels": {...}, "points": [[unix_ms, value], ...]}]}`: one series per
//! label set, points as `[unix_ms, value]` number pairs. Ranges up to 24 h
//! come from raw samples, up to 7 days as 1-minute averages, longer ones
//! from 1-hour roll-ups (see [`crate::metricstore::rollup::Tier::for_query`]);
//! an averaged point is the bucket's average, stamped with the bucket's start.
//!
//! `/api/v1/hosts` takes no parameters and answers `{"hosts": [...]}`, one
//! [`HostSummary`] per host, sorted by host.
//!
//! `/api/v1/metrics/prometheus` takes no parameters and answers the newest
//! value of every series reported in the last 10 minutes in Prometheus's
//! text format ([`crate::metricstore::exposition`]), for a scraper.

use super::AppState;
use super::error::ApiError;
use super::params::Params;
use crate::ingest::validate::check_metric_name;
use crate::metricstore::MetricStore;
use crate::metricstore::exposition;
use crate::metricstore::query::{HostSummary, SeriesAnswer, SeriesQuery};
use crate::metricstore::rollup::HOUR_MS;
use axum::Json;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use lookout_shared::time::now_ms;
use serde::Serialize;
use std::collections::BTreeMap;

/// Most points per series a `step` may ask for: a week of minutes (10,080)
/// or a day of 10-second samples (8,640) fits, a year of seconds does not.
const MAX_POINTS: i64 = 11_000;

/// Answer of `/api/v1/hosts`.
#[derive(Serialize)]
pub struct HostsAnswer {
    hosts: Vec<HostSummary>,
}

/// The points of one metric of one host, one series per label set.
pub async fn series(State(app): State<AppState>, uri: Uri) -> Result<Json<SeriesAnswer>, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let host = params
        .text("host")
        .ok_or_else(|| ApiError::bad_request("parameter `host` is required"))?;
    let name = params
        .text("name")
        .ok_or_else(|| ApiError::bad_request("parameter `name` is required"))?;
    check_metric_name(&name).map_err(|err| ApiError::bad_request(format!("parameter `name`: {err}")))?;
    let start = params.time("start")?;
    let end = params.time("end")?;
    let step_ms = params.duration_ms("step")?;
    let mut labels = BTreeMap::new();
    for (key, value) in params.prefixed("label.") {
        if key.is_empty() {
            return Err(ApiError::bad_request(
                "parameter `label.`: name the label, as in `label.mount=/`",
            ));
        }
        if value.is_empty() {
            return Err(ApiError::bad_request(format!(
                "parameter `label.{key}`: give the value the label must have"
            )));
        }
        labels.insert(key, value);
    }
    params.finish()?;
    let end_ms = end.unwrap_or_else(now_ms);
    let start_ms = start.unwrap_or(end_ms.saturating_sub(HOUR_MS));
    if start_ms >= end_ms {
        return Err(ApiError::bad_request("parameter `start` must be before `end`"));
    }
    if let Some(step) = step_ms
        && (end_ms - start_ms) / step > MAX_POINTS
    {
        return Err(ApiError::bad_request(format!(
            "parameter `step`: {step} ms over this range gives more than {MAX_POINTS} points; use a larger step"
        )));
    }
    let query = SeriesQuery {
        host: host.trim().to_owned(),
        name,
        labels,
        start_ms,
        end_ms,
        step_ms,
    };
    let answer = blocking(app.metric_store.clone(), move |store| store.series(&query)).await?;
    Ok(Json(answer))
}

/// Every host that sent metrics or logs, with its latest headline values.
pub async fn hosts(State(app): State<AppState>, uri: Uri) -> Result<Json<HostsAnswer>, ApiError> {
    Params::from_uri(&uri)?.finish()?;
    // From memory: no blocking call.
    let hosts = app.metric_store.hosts(now_ms());
    Ok(Json(HostsAnswer { hosts }))
}

/// Runs a metric store read on the blocking pool: SQLite calls block.
async fn blocking<T: Send + 'static>(
    store: MetricStore,
    work: impl FnOnce(&MetricStore) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|err| ApiError::internal("the metric query failed", &err))?
        .map_err(|err| ApiError::internal("the metric query failed", &err))
}

/// `GET /api/v1/metrics/prometheus`: the newest value of every series that
/// reported within [`exposition::EXPORTED_WITHIN`], in Prometheus's text
/// format (from memory; rendered on the blocking pool).
pub async fn prometheus(State(app): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    Params::from_uri(&uri)?.finish()?;
    let since = now_ms().saturating_sub(i64::try_from(exposition::EXPORTED_WITHIN.as_millis()).unwrap_or(i64::MAX));
    let store = app.metric_store.clone();
    let text = tokio::task::spawn_blocking(move || exposition::render(&store.latest(since)))
        .await
        .map_err(|err| ApiError::internal("rendering the metrics failed", &err))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}
