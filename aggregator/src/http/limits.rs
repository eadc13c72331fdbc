//! Bounds on what a client can hold open (`[http]` in `aggregator.toml`):
//!
//! - `max_connections`: a connection beyond it is closed as soon as it is
//!   accepted ([`LimitAcceptor`]); the permit goes with the connection.
//! - `header_timeout`: the first request must arrive, and each request's
//!   head be read, within it (hyper's `header_read_timeout` and
//!   axum-server's `first_request_timeout`), so half a header does not hold a
//!   connection.
//! - `request_timeout` ([`deadline`]): a request must be answered within it
//!   (ingest, which waits for a commit: twice it), body read included; a
//!   body announced and never sent ends in a 408. Live tail streams are
//!   exempt: they are meant to stay open, and are bounded in number.

use super::error::ApiError;
use crate::metrics::RejectReason;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_server::accept::Accept;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Ingest requests whose bodies are read, decoded and prepared at once at
/// most: each may hold `ingest.max_body_bytes` as sent,
/// `ingest.max_decompressed_bytes` decoded and, for the receivers, lines of
/// twice that, so their number bounds memory.
pub const MAX_CONCURRENT_INGESTS: usize = 4;

/// Middleware on the ingest route: waits for one of the
/// [`MAX_CONCURRENT_INGESTS`] permits before the body is read.
pub async fn few_ingests_at_once(State(permits): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match permits.acquire().await {
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RejectReason::Unavailable,
            "shutting down",
        )
        .into_response(),
    }
}

/// An acceptor that admits at most a number of connections at once.
#[derive(Clone)]
pub struct LimitAcceptor<A> {
    inner: A,
    slots: Arc<Semaphore>,
}

impl<A> LimitAcceptor<A> {
    /// Limits the connections `inner` accepts to `limit`.
    pub fn new(inner: A, limit: usize) -> Self {
        LimitAcceptor {
            inner,
            slots: Arc::new(Semaphore::new(limit)),
        }
    }
}

impl<A, I, S> Accept<I, S> for LimitAcceptor<A>
where
    A: Accept<Limited<I>, S> + Clone + Send + 'static,
    A::Future: Send,
    A::Stream: Send,
    A::Service: Send,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!("http.max_connections connections are open; closing a new one");
            return Box::pin(std::future::ready(Err(io::Error::other("too many connections"))));
        };
        let inner = self.inner.clone();
        Box::pin(async move {
            inner
                .accept(
                    Limited {
                        inner: stream,
                        _permit: permit,
                    },
                    service,
                )
                .await
        })
    }
}

/// A connection's stream and its slot: closing the connection frees the slot.
pub struct Limited<I> {
    inner: I,
    _permit: OwnedSemaphorePermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Limited<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Limited<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Middleware: answers 408 when a request (body read included) takes longer
/// than `request_timeout` (ingest and the receivers: twice it, since their
/// answer waits for a commit).
pub async fn deadline(State(request_timeout): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let limit = if path == "/api/v1/logs/tail" {
        return next.run(request).await;
    } else if super::access::Area::of(path) == super::access::Area::Ingest {
        request_timeout.saturating_mul(2)
    } else {
        request_timeout
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            RejectReason::BadQuery,
            format!(
                "the request was not complete within {:?}; send the whole body at once",
                limit
            ),
        )
        .into_response(),
    }
}
