//! The HTTP API (SPEC.md): routes, authentication and error answers.
//!
//! | route | auth | handler |
//! |---|---|---|
//! | `GET /healthz` | none | [`ops::healthz`] |
//! | `GET /metrics` | API token | [`ops::metrics`] |
//! | `POST /api/v1/ingest` | ingest token | [`ingest::ingest`] |
//! | `GET /api/v1/logs/search`, `/histogram`, `/context` | API token | [`logs`] |
//! | `GET /api/v1/metrics/series`, `GET /api/v1/hosts` | API token | [`hosts`] |
//! | `GET /api/v1/alerts[/rules,/history,/outbox]`, `GET/POST /api/v1/silences`, `DELETE /api/v1/silences/{id}` | API token | [`alerts`] |
//! | `GET /api/v1/logs/facets` | API token | [`facets`] |
//! | `GET /api/v1/logs/tail` (server-sent events) | API token | [`tail`] |
//! | `GET /api/v1/dashboards/{name}` | API token | [`ui::dashboard`] |
//! | `GET /`, `/search`, `/hosts`, `/hosts/{name}`, `/alerts`, `/assets/...` | none | [`ui`] |
//!
//! Every refusal is JSON `{"error": "..."}` (see [`error`]); unknown routes
//! are 404 and wrong methods 405, both without needing a token.

pub mod alerts;
pub mod auth;
pub mod error;
pub mod facets;
pub mod hosts;
pub mod ingest;
pub mod logs;
pub mod ops;
pub mod params;
pub mod tail;
pub mod ui;

use crate::config::{AuthConfig, IngestConfig};
use crate::metrics::Metrics;
use crate::metricstore::MetricStore;
use crate::metricstore::writer::MetricWriterHandle;
use crate::store::LogStore;
use crate::store::writer::WriterHandle;
use auth::{Tokens, require_token};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use lookout_shared::wire::INGEST_PATH;
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The read side of the log store.
    pub store: LogStore,
    /// The write side of the log store.
    pub writer: WriterHandle,
    /// The read side of the metric store.
    pub metric_store: MetricStore,
    /// The write side of the metric store.
    pub metric_writer: MetricWriterHandle,
    /// Own counters.
    pub metrics: Arc<Metrics>,
    /// Body size limits.
    pub ingest: IngestConfig,
    /// Alert state, outbox, silences and rules.
    pub alerts: alerts::AlertsApi,
}

/// The router with all routes and middleware.
pub fn router(state: AppState, auth: &AuthConfig) -> Router {
    let body_limit = usize::try_from(state.ingest.max_body_bytes.bytes()).unwrap_or(usize::MAX);
    let ingest_routes = Router::new()
        .route(INGEST_PATH, post(ingest::ingest))
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(middleware::from_fn_with_state(
            Tokens::new(&auth.ingest_tokens, "ingest"),
            require_token,
        ));
    let read_routes = Router::new()
        .route("/api/v1/logs/search", get(logs::search))
        .route("/api/v1/logs/histogram", get(logs::histogram))
        .route("/api/v1/logs/context", get(logs::context))
        .route("/api/v1/metrics/series", get(hosts::series))
        .route("/api/v1/hosts", get(hosts::hosts))
        .route("/api/v1/alerts", get(alerts::alerts))
        .route("/api/v1/alerts/rules", get(alerts::rules))
        .route("/api/v1/alerts/history", get(alerts::history))
        .route("/api/v1/alerts/outbox", get(alerts::outbox))
        .route("/api/v1/silences", get(alerts::silences).post(alerts::create_silence))
        .route("/api/v1/silences/{id}", axum::routing::delete(alerts::expire_silence))
        .route("/metrics", get(ops::metrics))
        .route_layer(middleware::from_fn_with_state(
            Tokens::new(&auth.api_tokens, "API"),
            require_token,
        ));
    // --- Web UI (http::ui, http::facets, http::tail) ---
    // The data routes need the API token like the rest of the read API; the
    // pages and assets hold no data and are public (the login page needs the CSS).
    let tail_state = tail::TailState::new(state.writer.clone(), state.store.clone());
    let ui_data_routes = Router::new()
        .route("/api/v1/logs/facets", get(facets::facets))
        .route("/api/v1/logs/tail", get(tail::tail).with_state(tail_state))
        .route("/api/v1/dashboards/{name}", get(ui::dashboard))
        .route_layer(middleware::from_fn_with_state(
            Tokens::new(&auth.api_tokens, "API"),
            require_token,
        ));
    let ui_pages = ui::routes();
    // --- end of Web UI ---
    Router::new()
        .route("/healthz", get(ops::healthz))
        .merge(ingest_routes)
        .merge(read_routes)
        .merge(ui_data_routes)
        .merge(ui_pages)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            error::count_rejections,
        ))
        .with_state(state)
}
