//! Every refusal of the HTTP API: a status, a JSON `{"error": "..."}` body
//! that says what is wrong, and a [`RejectReason`] for the metrics.

use crate::ingest::IngestError;
use crate::metrics::{Metrics, RejectReason};
use crate::metricstore::writer::MetricWriteError;
use crate::store::search::SearchError;
use crate::store::writer::WriteError;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lookout_shared::wire::ErrorBody;
use std::sync::Arc;

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "5";

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: RejectReason,
    message: String,
}

impl ApiError {
    /// An answer with `status`, counted under `reason`.
    pub fn new(status: StatusCode, reason: RejectReason, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason,
            message: message.into(),
        }
    }

    /// 400 for a malformed read request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, RejectReason::BadQuery, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, RejectReason::Unauthorized, message)
    }

    /// 500, for failures on our side; the cause is logged, not sent.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            RejectReason::Internal,
            format!("{context}; see the aggregator's log"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.message })).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response.extensions_mut().insert(self.reason);
        response
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        let (status, reason) = match &err {
            IngestError::UnsupportedEncoding(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, RejectReason::UnsupportedEncoding)
            }
            IngestError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, RejectReason::TooLarge),
            IngestError::BadEncoding(_) => (StatusCode::BAD_REQUEST, RejectReason::BadEncoding),
            IngestError::BadBatch(_) => (StatusCode::BAD_REQUEST, RejectReason::BadBatch),
            IngestError::Forbidden(_) => (StatusCode::FORBIDDEN, RejectReason::Forbidden),
        };
        ApiError::new(status, reason, err.to_string())
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RejectReason::Unavailable,
            format!("{err}; retry later"),
        )
    }
}

impl From<MetricWriteError> for ApiError {
    fn from(err: MetricWriteError) -> Self {
        match err {
            MetricWriteError::TooManySeries { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, RejectReason::BadBatch, err.to_string())
            }
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                RejectReason::Unavailable,
                format!("{other}; retry later"),
            ),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(err: SearchError) -> Self {
        match err {
            SearchError::BadRequest(message) => ApiError::bad_request(message),
            SearchError::NotFound(message) => ApiError::new(StatusCode::NOT_FOUND, RejectReason::NotFound, message),
            SearchError::Index(err) => ApiError::internal("the search failed", &err),
        }
    }
}

/// Unknown path: 404 with a JSON body.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        RejectReason::NotFound,
        format!("no endpoint {method} {}", uri.path()),
    )
}

/// Known path, wrong method: 405 with a JSON body.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        RejectReason::NotFound,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// Longest plain-text rejection turned into a JSON body (axum's are one line).
const MAX_REJECTION_TEXT: usize = 4096;

/// Middleware: counts each refused request under its reason, and gives the
/// refusals axum's extractors write as plain text (a path that is not
/// UTF-8, a body over its limit) the JSON error body every other refusal has.
pub async fn count_rejections(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(reason) = response.extensions().get::<RejectReason>() {
        metrics.rejected(*reason);
        return response;
    }
    let status = response.status();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !is_text {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), MAX_REJECTION_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => status.canonical_reason().unwrap_or("refused").to_owned(),
    };
    let reason = match status {
        StatusCode::PAYLOAD_TOO_LARGE => RejectReason::TooLarge,
        StatusCode::UNAUTHORIZED => RejectReason::Unauthorized,
        StatusCode::FORBIDDEN => RejectReason::Forbidden,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => RejectReason::NotFound,
        status if status.is_server_error() => RejectReason::Internal,
        _ => RejectReason::BadQuery,
    };
    metrics.rejected(reason);
    ApiError::new(status, reason, text).into_response()
}
