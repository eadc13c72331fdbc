//! Operational endpoints: `GET /healthz` (no auth) and `GET /metrics`.

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// 200 `ok` while both stores take batches, 503 once a writer has stopped.
pub async fn healthz(State(app): State<AppState>) -> Response {
    if !app.writer.is_running() {
        (StatusCode::SERVICE_UNAVAILABLE, "the log index writer has stopped").into_response()
    } else if !app.metric_writer.is_running() {
        (StatusCode::SERVICE_UNAVAILABLE, "the metric store writer has stopped").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

/// The process's counters in Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        app.metrics.render() + &app.alerts.statuses.render(),
    )
        .into_response()
}
