//! The HTTP API (docs/SPEC.md) and the web UI's pages: routes, access control,
//! security headers and error answers.
//!
//! | route | access | handler |
//! |---|---|---|
//! | `GET /healthz` | none | [`ops::healthz`] |
//! | `GET /login`, `POST /login`, `GET /assets/{name}` | none | [`pages`] |
//! | `POST /api/v1/ingest` | ingest token | [`ingest::ingest`] |
//! | `POST`/`PUT /_bulk`, `/{index}/_bulk`; `GET`/`HEAD` of `/`, `/_cluster/health`, `/_cat/health`, `/ready` with ingest credentials | ingest token | [`receive`] |
//! | `POST /loki/api/v1/push` | ingest token | [`receive::loki_push`] |
//! | `POST /v1/logs` (OTLP/HTTP) | ingest token | [`receive::otlp_logs`] |
//! | `GET /metrics` | API token or session | [`ops::metrics`] |
//! | `GET /api/v1/logs/search`, `/histogram`, `/context`, `/stats`, `/facets` | API token or session | [`logs`], [`facets`] |
//! | `GET /api/v1/logs/patterns` | API token or session | [`patterns`] |
//! | `GET /api/v1/logs/export` (NDJSON or CSV, streamed) | API token or session | [`export`] |
//! | `GET /api/v1/logs/tail` (server-sent events) | API token or session | [`tail`] |
//! | `GET /api/v1/metrics/series`, `GET /api/v1/metrics/prometheus`, `GET /api/v1/hosts` | API token or session | [`hosts`] |
//! | `GET /api/v1/alerts[/rules,/history,/outbox]`, `GET /api/v1/silences` | API token or session | [`alerts`] |
//! | `GET/POST /api/v1/searches`, `DELETE /api/v1/searches/{id}`, `GET …/{id}/rule` | API token or session (+ CSRF) | [`searches`] |
//! | `POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`, `POST /api/v1/alerts/rules`, `DELETE /api/v1/alerts/rules/{name}` | API token or admin session (+ CSRF) | [`alerts`] |
//! | `GET /api/v1/dashboards/{name}` | API token or session | [`ui::dashboard`] |
//! | `GET /api/v1/session` | API token or session | [`pages::session_info`] |
//! | `GET /`, `/search`, `/hosts`, `/hosts/{name}`, `/alerts` | session (else 302 to `/login`) | [`ui`] |
//! | `POST /logout` | session | [`pages`] |
//! | `GET /login`, `POST /login`, `/assets/...` | none | [`pages`], [`ui`] |
//!
//! [`access::access`] decides by path, deny-by-default: a new route is
//! behind the login (pages) or the 401 (under `/api/`) without further work;
//! see its module for how to add a page. Every refusal of the API is JSON
//! `{"error": "..."}` (see [`error`]); unknown routes are 404 and wrong
//! methods 405 once past the access check. [`headers`] adds the
//! Content-Security-Policy and friends to every answer.

pub mod access;
pub mod alerts;
pub mod auth;
pub mod error;
pub mod export;
pub mod facets;
pub mod headers;
pub mod hosts;
pub mod ingest;
pub mod limits;
pub mod logs;
pub mod ops;
pub mod pages;
pub mod params;
pub mod patterns;
pub mod ratelimit;
pub mod receive;
pub mod searches;
pub mod tail;
pub mod ui;

use crate::config::IngestConfig;
use crate::metrics::Metrics;
use crate::metricstore::MetricStore;
use crate::metricstore::writer::MetricWriterHandle;
use crate::store::LogStore;
use crate::store::writer::WriterHandle;
use access::Access;
use auth::require_token;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
pub(crate) use lookout_shared::wire::INGEST_PATH;
use std::sync::Arc;

/// What the handlers share: one pointer, since axum clones the state for
/// every request (cloning the parts themselves, each a handful of `Arc`s,
/// was 2 % of the aggregator's CPU under a 2,000-host fleet).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts` with every handler.
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The stores, writers, settings and access rules the handlers use.
pub struct AppParts {
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
    /// Users, sessions, API tokens and login limits.
    pub access: Arc<Access>,
    /// The bound on extracted field names per source.
    pub field_names: Arc<crate::ingest::field_names::FieldNames>,
    /// Each record's pattern, mined at ingest.
    pub patterns: Arc<crate::ingest::patterns::PatternBook>,
    /// Where the HTTP receivers store what they read.
    pub intake: crate::receivers::Intake,
    /// Bounds on exports.
    pub export: crate::config::ExportConfig,
    /// Exports running at once ([`export::MAX_EXPORTS`]).
    pub exports: Arc<tokio::sync::Semaphore>,
}

/// The router with all routes and middleware.
pub fn router(state: AppState, request_timeout: std::time::Duration) -> Router {
    let body_limit = usize::try_from(state.ingest.max_body_bytes.bytes()).unwrap_or(usize::MAX);
    let ingest_routes = Router::new()
        .route(INGEST_PATH, post(ingest::ingest))
        .route("/_bulk", post(receive::bulk).put(receive::bulk))
        .route("/{index}/_bulk", post(receive::index_bulk).put(receive::index_bulk))
        .route("/loki/api/v1/push", post(receive::loki_push))
        .route("/v1/logs", post(receive::otlp_logs))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            limits::IngestGate::new(state.ingest.max_decompressed_bytes.bytes()),
            limits::few_ingests_at_once,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.access.ingest_tokens.clone(),
            require_token,
        ));
    // Behind `access::access`: an API token or a session.
    let read_routes = Router::new()
        .route("/api/v1/logs/search", get(logs::search))
        .route("/api/v1/logs/histogram", get(logs::histogram))
        .route("/api/v1/logs/context", get(logs::context))
        .route("/api/v1/logs/stats", get(logs::stats))
        .route("/api/v1/logs/patterns", get(patterns::patterns))
        .route("/api/v1/logs/export", get(export::export))
        .route("/api/v1/metrics/series", get(hosts::series))
        .route("/api/v1/metrics/prometheus", get(hosts::prometheus))
        .route("/api/v1/hosts", get(hosts::hosts))
        .route("/api/v1/alerts", get(alerts::alerts))
        .route("/api/v1/alerts/rules", get(alerts::rules).post(alerts::create_rule))
        .route(
            "/api/v1/alerts/rules/{name}",
            axum::routing::delete(alerts::remove_rule),
        )
        .route("/api/v1/alerts/history", get(alerts::history))
        .route("/api/v1/alerts/outbox", get(alerts::outbox))
        .route("/api/v1/silences", get(alerts::silences).post(alerts::create_silence))
        .route("/api/v1/silences/{id}", axum::routing::delete(alerts::expire_silence))
        .route("/api/v1/searches", get(searches::list).post(searches::create))
        .route("/api/v1/searches/{id}", axum::routing::delete(searches::remove))
        .route("/api/v1/searches/{id}/rule", get(searches::rule))
        .route("/api/v1/logs/facets", get(facets::facets))
        .route(
            "/api/v1/logs/tail",
            get(tail::tail).with_state(tail::TailState::new(state.writer.clone(), state.patterns.clone())),
        )
        .route("/api/v1/dashboards/{name}", get(ui::dashboard))
        .route("/api/v1/session", get(pages::session_info))
        .route("/metrics", get(ops::metrics));
    // Pages: behind `access::access` too (a session, or a redirect to the login).
    let page_routes = ui::pages().route("/logout", post(pages::logout));
    let public_routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/login", get(pages::show_login).post(pages::login))
        .merge(ui::assets());
    let tls = state.access.tls;
    Router::new()
        .merge(public_routes)
        .merge(ingest_routes)
        .merge(read_routes)
        .merge(page_routes)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), access::access))
        .layer(middleware::from_fn_with_state(request_timeout, limits::deadline))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            error::count_rejections,
        ))
        .layer(middleware::from_fn_with_state(tls, headers::security_headers))
        .with_state(state)
}
