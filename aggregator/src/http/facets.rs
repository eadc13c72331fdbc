//! `GET /api/v1/logs/facets`: how many matching records each host, source or
//! level has, for the search page's filter lists.
//!
//! Takes the search's filters (`q`, `start`, `end`, `host`, `source`,
//! `level`) and `field` (`host`, `source` or `level`); answers
//! `{"field": "...", "values": [{"value": "...", "count": N}], "other": M}`:
//! the [`MAX_VALUES`] values with the most records, most first (ties by
//! value), and in `other` the records of the values left out. A record
//! without a level counts under the value `""`.
//!
//! One pass of [`LogStore::count_by_group`] over the fast field, instead of a
//! count per candidate value: the cost does not grow with the number of hosts.

use super::AppState;
use super::error::ApiError;
use super::params::Params;
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::Serialize;

/// Values listed at most.
pub const MAX_VALUES: usize = 20;

/// Answer of `/api/v1/logs/facets`.
#[derive(Debug, Serialize)]
pub struct FacetsAnswer {
    field: &'static str,
    values: Vec<FacetValue>,
    other: u64,
}

/// One value and its count.
#[derive(Debug, Serialize, PartialEq)]
pub struct FacetValue {
    value: String,
    count: u64,
}

/// Counts the matching records per value of `field`.
pub async fn facets(State(app): State<AppState>, uri: Uri) -> Result<Json<FacetsAnswer>, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let filter = params.filter()?;
    let field = match params.text("field").as_deref().map(str::trim) {
        Some("host") => "host",
        Some("source") => "source",
        Some("level") => "level",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "parameter `field`: `{other}` is not one of host, source, level"
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "parameter `field` (host, source or level) is required",
            ));
        }
    };
    params.finish()?;
    let store = app.store.clone();
    let counts = tokio::task::spawn_blocking(move || store.count_by_group(&filter, &[field]))
        .await
        .map_err(|err| ApiError::internal("the facet count failed", &err))??;
    let mut values: Vec<FacetValue> = counts
        .into_iter()
        .map(|(mut key, count)| FacetValue {
            value: key.pop().unwrap_or_default(),
            count,
        })
        .collect();
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    let other = values.iter().skip(MAX_VALUES).map(|v| v.count).sum();
    values.truncate(MAX_VALUES);
    Ok(Json(FacetsAnswer { field, values, other }))
}
