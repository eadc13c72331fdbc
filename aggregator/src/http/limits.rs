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

/// What bounds ingest's memory: [`MAX_CONCURRENT_INGESTS`] requests being
/// read and prepared, and prepared batches waiting for their commits (the
/// agent's ingest hands its permit over for a share of a budget of as many
/// `max_decompressed_bytes` batches, see [`IngestPermit::hand_over`]). So
/// thousands of small batches can wait for one group commit together, while
/// what they hold stays bounded.
#[derive(Clone)]
pub struct IngestGate {
    preparing: Arc<Semaphore>,
    /// The budget of queued batches, in KiB.
    queued: Arc<Semaphore>,
    queued_kib: u32,
}

impl IngestGate {
    /// A gate for batches of at most `max_decompressed_bytes` each.
    pub fn new(max_decompressed_bytes: u64) -> IngestGate {
        let queued_kib =
            u32::try_from((MAX_CONCURRENT_INGESTS as u64).saturating_mul(max_decompressed_bytes.div_ceil(1024)))
                .unwrap_or(u32::MAX)
                .min(Semaphore::MAX_PERMITS as u32);
        IngestGate {
            preparing: Arc::new(Semaphore::new(MAX_CONCURRENT_INGESTS)),
            queued: Arc::new(Semaphore::new(queued_kib as usize)),
            queued_kib,
        }
    }
}

/// A request's place among the [`MAX_CONCURRENT_INGESTS`] preparing ones;
/// released when the request ends, or earlier by [`IngestPermit::hand_over`].
#[derive(Clone)]
pub struct IngestPermit {
    gate: IngestGate,
    preparing: Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>,
}

/// A prepared batch's share of the queued budget, held until its commit
/// answers (dropped with the request).
pub struct QueuedShare {
    _share: OwnedSemaphorePermit,
}

impl IngestPermit {
    /// Trades the preparing place for a share of the queued budget the size
    /// of a prepared batch of `bytes` (waiting while queued batches fill it),
    /// so that the next request can be prepared while this one waits for
    /// its commit.
    pub async fn hand_over(&self, bytes: u64) -> Result<QueuedShare, ApiError> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.gate.queued_kib.max(1));
        let share = self
            .gate
            .queued
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| shutting_down())?;
        self.preparing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        Ok(QueuedShare { _share: share })
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        RejectReason::Unavailable,
        "shutting down",
    )
}

/// Middleware on the ingest routes: waits for one of the
/// [`MAX_CONCURRENT_INGESTS`] preparing places before the body is read, and
/// hands the request its [`IngestPermit`].
pub async fn few_ingests_at_once(State(gate): State<IngestGate>, mut request: Request, next: Next) -> Response {
    match gate.preparing.clone().acquire_owned().await {
        Ok(place) => {
            let permit = IngestPermit {
                gate,
                preparing: Arc::new(std::sync::Mutex::new(Some(place))),
            };
            request.extensions_mut().insert(permit);
            next.run(request).await
        }
        Err(_) => shutting_down().into_response(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn permit(gate: &IngestGate) -> Option<IngestPermit> {
        let place = gate.preparing.clone().try_acquire_owned().ok()?;
        Some(IngestPermit {
            gate: gate.clone(),
            preparing: Arc::new(std::sync::Mutex::new(Some(place))),
        })
    }

    #[tokio::test]
    async fn queued_batches_stay_within_their_budget() {
        // Batches of at most 8 KiB: a budget of 32 KiB queued.
        let gate = IngestGate::new(8 * 1024);
        let preparing: Vec<IngestPermit> = (0..MAX_CONCURRENT_INGESTS).filter_map(|_| permit(&gate)).collect();
        assert_eq!(preparing.len(), MAX_CONCURRENT_INGESTS);
        assert!(permit(&gate).is_none(), "a fifth request waits to be prepared");

        // Handing over frees the preparing place at once.
        let first = preparing[0].hand_over(8 * 1024).await.unwrap();
        let fifth = permit(&gate).expect("a place is free again");
        let mut queued = vec![first];
        for permit in &preparing[1..] {
            queued.push(permit.hand_over(8 * 1024).await.unwrap());
        }
        // The budget is full: the next hand-over waits until a share goes.
        let waiting = tokio::spawn(async move { fifth.hand_over(1).await.map(drop).is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a batch beyond the budget waits");
        drop(queued.pop());
        assert!(
            tokio::time::timeout(Duration::from_secs(10), waiting)
                .await
                .unwrap()
                .unwrap(),
            "once a queued batch is committed, the next one goes on"
        );
        // Every place is free once the requests are done.
        drop(preparing);
        assert_eq!(gate.preparing.available_permits(), MAX_CONCURRENT_INGESTS);
    }
}
