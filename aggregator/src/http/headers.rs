//! Security headers on every answer.
//!
//! The Content-Security-Policy allows scripts, styles, images, fetches and
//! form targets from this server only, with no `unsafe-inline`: even if a
//! value from the logs slipped into a page as markup, it could not run.
//! Pages may not be framed (`frame-ancestors 'none'`, `X-Frame-Options`), and
//! browsers may not guess content types (`nosniff`). Under TLS, HSTS tells
//! browsers to come back only over HTTPS. API and HTML answers are
//! `Cache-Control: no-store` (they hold log data or a CSRF token); the
//! static assets may be cached briefly.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The Content-Security-Policy of every answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// `Strict-Transport-Security` under TLS: one year.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Middleware: adds the headers; `tls` says whether the server speaks HTTPS.
/// An answer that set a stricter policy of its own (the UI's pages) keeps it.
pub async fn security_headers(State(tls): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
