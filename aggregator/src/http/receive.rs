//! The HTTP receivers: the Elasticsearch bulk API (`POST` or `PUT` of
//! `/_bulk` and `/{index}/_bulk`), Loki's push API (`POST
//! /loki/api/v1/push`) and OTLP/HTTP logs (`POST /v1/logs`); and the
//! probes shippers send first (`GET /`, Elasticsearch's health paths,
//! Loki's `/ready`), answered by [`super::access`] for ingest credentials
//! since `/` is also the UI's.
//!
//! Each handler reads the body within `[ingest]`'s limits, has its
//! protocol's module ([`crate::receivers`]) read it off the async threads,
//! refuses lines of hosts the token may not write, stores the rest through
//! the [`Intake`](crate::receivers::Intake) and answers only after the
//! commit, in the protocol's own shape. A failed commit is a 503, which
//! every shipper retries; a body whose lines would take more than twice
//! `max_decompressed_bytes` is a 413.

use super::AppState;
use super::auth::HostGrant;
use super::error::ApiError;
use super::ingest::{content_encoding, read_body};
use crate::config::host_allowed;
use crate::ingest::IngestError;
use crate::ingest::decode::{self, ContentEncoding};
use crate::metrics::RejectReason;
use crate::metrics::{Received, Receiver};
use crate::receivers::IntakeError;
use crate::receivers::elasticsearch::{self, ItemError};
use crate::receivers::{loki, otlp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// The header Elasticsearch's own clients check to know they reached it.
const ELASTIC_PRODUCT: (HeaderName, HeaderValue) = (
    HeaderName::from_static("x-elastic-product"),
    HeaderValue::from_static("Elasticsearch"),
);

/// `POST /_bulk`.
pub async fn bulk(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    receive_bulk(app, None, extensions, headers, body).await
}

/// `POST /{index}/_bulk`.
pub async fn index_bulk(
    State(app): State<AppState>,
    Path(index): Path<String>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    receive_bulk(app, Some(index), extensions, headers, body).await
}

/// The paths shippers probe before sending: Elasticsearch's version (`/`)
/// and health (Vector's `/_cluster/health`, rsyslog's `/_cat/health`), and
/// Loki's readiness (`/ready`, Vector's Loki health check).
pub const SHIPPER_PROBES: [&str; 4] = ["/", "/_cluster/health", "/_cat/health", "/ready"];

/// The answer to a shipper's probe of `path` (one of [`SHIPPER_PROBES`]).
pub fn shipper_probe(method: &Method, path: &str) -> Response {
    let (body, content_type) = match path {
        "/ready" => ("ready\n".to_owned(), "text/plain; charset=UTF-8"),
        "/_cat/health" => (elasticsearch::cat_health(), "text/plain; charset=UTF-8"),
        "/_cluster/health" => (elasticsearch::cluster_health().to_string(), "application/json"),
        _ => (elasticsearch::root().to_string(), "application/json"),
    };
    let body = if method == Method::HEAD { String::new() } else { body };
    (
        [
            ELASTIC_PRODUCT,
            (axum::http::header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        ],
        body,
    )
        .into_response()
}

async fn receive_bulk(
    app: AppState,
    index: Option<String>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut items = read_request(&app, &extensions, &headers, body, move |body, encoding, max, peer| {
        let text = decode::decompress(&body, encoding, max)?;
        Ok(elasticsearch::read_bulk(&text, index.as_deref(), peer, budget(max))?)
    })
    .await?;
    let grant = extensions.get::<HostGrant>();
    let mut lines = Vec::with_capacity(items.len());
    let (mut invalid, mut refused) = (0, 0);
    for item in &mut items {
        match &mut item.outcome {
            Ok(line) if !may_write(grant, &line.host) => {
                refused += 1;
                item.outcome = Err(ItemError::new(
                    403,
                    "security_exception",
                    format!("this ingest token may not send as host `{}`", line.host),
                ));
            }
            Ok(line) => lines.push(std::mem::take(line)),
            Err(_) => invalid += 1,
        }
    }
    count(&app, Receiver::Elasticsearch, invalid, refused);
    let ids = app.intake.store(Receiver::Elasticsearch, lines).await?;
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(([ELASTIC_PRODUCT], Json(elasticsearch::response(&items, &ids, took))).into_response())
}

/// `POST /loki/api/v1/push`: JSON (`Content-Type: application/json`,
/// optionally gzip) or snappy-compressed protobuf; 204 once stored. A line
/// of a host the token may not write refuses the whole request (403): the
/// push API has no per-line answer.
pub async fn loki_push(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let json = is_json(&headers);
    let lines = read_request(&app, &extensions, &headers, body, move |body, encoding, max, peer| {
        Ok(if json {
            let text = decode::decompress(&body, encoding, max)?;
            loki::read_json(&text, peer, budget(max))?
        } else {
            loki::read_protobuf(&body, max, peer, budget(max))?
        })
    })
    .await?;
    let grant = extensions.get::<HostGrant>();
    if let Some(line) = lines.iter().find(|line| !may_write(grant, &line.host)) {
        count(&app, Receiver::Loki, 0, lines.len() as u64);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            RejectReason::Forbidden,
            format!(
                "this ingest token may not send as host `{}`; nothing was stored",
                line.host
            ),
        ));
    }
    app.intake.store(Receiver::Loki, lines).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/logs`: OTLP/HTTP, protobuf or JSON by `Content-Type`,
/// optionally gzip. Answers once stored, in the request's encoding; records
/// of hosts the token may not write are refused through OTLP's partial
/// success, and the rest stored.
pub async fn otlp_logs(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let json = is_json(&headers);
    let mut lines = read_request(&app, &extensions, &headers, body, move |body, encoding, max, peer| {
        let bytes = decode::decompress(&body, encoding, max)?;
        Ok(if json {
            otlp::read_json(&bytes, peer, budget(max))?
        } else {
            otlp::read_protobuf(&bytes, peer, budget(max))?
        })
    })
    .await?;
    let grant = extensions.get::<HostGrant>();
    let mut refused_host = None;
    let before = lines.len();
    lines.retain(|line| {
        let allowed = may_write(grant, &line.host);
        if !allowed {
            refused_host.get_or_insert_with(|| line.host.clone());
        }
        allowed
    });
    let refused = (before - lines.len()) as u64;
    count(&app, Receiver::Otlp, 0, refused);
    app.intake.store(Receiver::Otlp, lines).await?;
    let message = refused_host
        .map(|host| format!("this ingest token may not send as host `{host}`"))
        .unwrap_or_default();
    let content_type = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        otlp::response(refused, &message, json),
    )
        .into_response())
}

/// Whether the body is JSON by its `Content-Type` (else protobuf).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

/// Reads the body within `[ingest]`'s limits and has `read` turn it into
/// what the protocol sends, off the async threads. `read` gets the body as
/// sent, its `Content-Encoding`, the bound on its decompressed size and
/// the sender's address.
async fn read_request<T: Send + 'static>(
    app: &AppState,
    extensions: &Extensions,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    read: impl FnOnce(Bytes, ContentEncoding, u64, IpAddr) -> Result<T, IngestError> + Send + 'static,
) -> Result<T, ApiError> {
    let encoding = content_encoding(headers)?;
    let body = read_body(body, &app.ingest)?;
    let peer = peer(extensions);
    let max = app.ingest.max_decompressed_bytes.bytes();
    tokio::task::spawn_blocking(move || read(body, encoding, max, peer))
        .await
        .map_err(|err| ApiError::internal("reading the request failed", &err))?
        .map_err(ApiError::from)
}

/// The memory a request's lines may take: twice what its body may
/// decompress to, as much as an agent's batch of that size takes.
fn budget(max_decompressed: u64) -> u64 {
    max_decompressed.saturating_mul(2)
}

/// The sender's address: the host of lines that name none.
fn peer(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// Whether a request with `grant` may store lines of `host`.
fn may_write(grant: Option<&HostGrant>, host: &str) -> bool {
    grant.is_none_or(|HostGrant(hosts)| host_allowed(hosts, host))
}

fn count(app: &AppState, receiver: Receiver, invalid: u64, refused: u64) {
    app.metrics.received(receiver, Received::Invalid, invalid);
    app.metrics.received(receiver, Received::Dropped, refused);
}

impl From<IntakeError> for ApiError {
    fn from(err: IntakeError) -> Self {
        match err {
            IntakeError::Invalid(err) => err.into(),
            IntakeError::Write(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_grant_limits_the_hosts() {
        let grant = HostGrant(Arc::from(vec!["web-*".to_owned()]));
        assert!(may_write(None, "anything"));
        assert!(may_write(Some(&grant), "web-1"));
        assert!(!may_write(Some(&grant), "db-1"));
    }
}
