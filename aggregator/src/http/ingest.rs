//! `POST /api/v1/ingest`: body → prepared batch (off the runtime) → metric
//! writer → log writer; the answer waits until both have committed. Once
//! prepared, the request hands its preparing place over for a share of the
//! queued budget ([`super::limits::IngestPermit`]), so many batches can wait
//! for one group commit.
//!
//! Samples are stored first. If the log commit then fails, the agent re-sends
//! the whole batch, and the samples it already stored count as duplicates:
//! both stores are idempotent, so the order costs nothing on a retry, and a
//! 200 always means both are durable.

use super::AppState;
use super::auth::HostGrant;
use super::error::ApiError;
use super::limits::IngestPermit;
use crate::config::IngestConfig;
use crate::ingest::{self, decode::ContentEncoding};
use crate::metrics::RejectReason;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use lookout_shared::wire::IngestResponse;

/// Stores one batch exactly once; answers how many records were new. The
/// answer says nothing about samples (the wire type has no field for them
/// yet); `/metrics` counts them.
pub async fn ingest(
    State(app): State<AppState>,
    grant: Option<Extension<HostGrant>>,
    permit: Option<Extension<IngestPermit>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let encoding = content_encoding(&headers)?;
    let limits = app.ingest;
    let body = read_body(body, &limits)?;
    let sent = body.len() as u64;
    let max_decompressed = limits.max_decompressed_bytes.bytes();
    let (field_names, patterns) = (app.field_names.clone(), app.patterns.clone());
    let hosts = grant.map(|Extension(HostGrant(hosts))| hosts);
    let prepared = tokio::task::spawn_blocking(move || {
        ingest::prepare(
            &body,
            encoding,
            max_decompressed,
            &field_names,
            &patterns,
            hosts.as_deref(),
        )
    })
    .await
    .map_err(|err| ApiError::internal("preparing the batch failed", &err))??;
    app.metrics.body_received(sent, prepared.decompressed_bytes);
    app.metrics.fields_dropped(prepared.fields_dropped);
    let _queued = match permit {
        Some(Extension(permit)) => Some(permit.hand_over(prepared.decompressed_bytes).await?),
        None => None,
    };
    let ingest::Prepared { batch, metrics, .. } = prepared;
    let logs_only_host = if metrics.samples.is_empty() {
        Some(metrics.host)
    } else {
        // Durable before the logs are handed on; marks the host as seen too.
        app.metric_writer.write(metrics).await?;
        None
    };
    let response = app.writer.write(batch).await?;
    if let Some(host) = logs_only_host {
        app.metric_writer.touch(host);
    }
    Ok(Json(response))
}

/// The request's `Content-Encoding` (zstd, gzip or none), else 415.
pub(super) fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, ApiError> {
    match headers.get(header::CONTENT_ENCODING) {
        None => Ok(ContentEncoding::Identity),
        Some(value) => {
            let value = value.to_str().map_err(|_| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    RejectReason::UnsupportedEncoding,
                    "the Content-Encoding header is not readable text",
                )
            })?;
            Ok(ContentEncoding::from_header(Some(value))?)
        }
    }
}

/// The body as read within `ingest.max_body_bytes`, else 413 (or 400 when
/// it could not be read).
pub(super) fn read_body(body: Result<Bytes, BytesRejection>, limits: &IngestConfig) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                RejectReason::TooLarge,
                format!(
                    "the request body is larger than ingest.max_body_bytes ({} bytes); send smaller batches",
                    limits.max_body_bytes.bytes()
                ),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                RejectReason::BadBatch,
                format!("the request body could not be read: {}", rejection.body_text()),
            )
        }
    })
}
