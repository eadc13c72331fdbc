//! The HTTP API (SPEC.md) and the web UI's pages: routes, access control,
//! security headers and error answers.
//!
//! | route | access | handler |
//! |---|---|---|
//! | `GET /healthz` | none | [`ops::healthz`] |
//! | `GET /login`, `POST /login`, `GET /assets/{name}` | none | [`pages`] |
//! | `POST /api/v1/ingest` | ingest token | [`ingest::ingest`] |
//! | `GET /metrics` | API token or session | [`ops::metrics`] |
//! | `GET /api/v1/logs/search`, `/histogram`, `/context` | API token or session | [`logs`] |
//! | `GET /api/v1/metrics/series`, `GET /api/v1/hosts` | API token or session | [`hosts`] |
//! | `GET /api/v1/session` | API token or session | [`pages::session_info`] |
//! | `GET /`, `POST /logout` | session (else 302 to `/login`) | [`pages`] |
//!
//! [`access::access`] decides by path, deny-by-default: a new route is
//! behind the login (pages) or the 401 (under `/api/`) without further work;
//! see its module for how to add a page. Every refusal of the API is JSON
//! `{"error": "..."}` (see [`error`]); unknown routes are 404 and wrong
//! methods 405 once past the access check. [`headers`] adds the
//! Content-Security-Policy and friends to every answer.

pub mod access;
pub mod auth;
pub mod error;
pub mod headers;
pub mod hosts;
pub mod ingest;
pub mod logs;
pub mod ops;
pub mod pages;
pub mod params;
pub mod ratelimit;

use crate::config::{AuthConfig, IngestConfig};
use crate::metrics::Metrics;
use crate::metricstore::MetricStore;
use crate::metricstore::writer::MetricWriterHandle;
use crate::store::LogStore;
use crate::store::writer::WriterHandle;
use access::Access;
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
    /// Users, sessions, API tokens and login limits.
    pub access: Arc<Access>,
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
    // Behind `access::access`: an API token or a session.
    let read_routes = Router::new()
        .route("/api/v1/logs/search", get(logs::search))
        .route("/api/v1/logs/histogram", get(logs::histogram))
        .route("/api/v1/logs/context", get(logs::context))
        .route("/api/v1/metrics/series", get(hosts::series))
        .route("/api/v1/hosts", get(hosts::hosts))
        .route("/api/v1/session", get(pages::session_info))
        .route("/metrics", get(ops::metrics));
    // Pages: behind `access::access` too (a session, or a redirect to the login).
    let page_routes = Router::new()
        .route("/", get(pages::home))
        .route("/logout", post(pages::logout));
    let public_routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/login", get(pages::show_login).post(pages::login))
        .route("/assets/{name}", get(pages::asset));
    let tls = state.access.tls;
    Router::new()
        .merge(public_routes)
        .merge(ingest_routes)
        .merge(read_routes)
        .merge(page_routes)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), access::access))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            error::count_rejections,
        ))
        .layer(middleware::from_fn_with_state(tls, headers::security_headers))
        .with_state(state)
}
