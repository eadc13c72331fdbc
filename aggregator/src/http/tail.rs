//! Live tail: `GET /api/v1/logs/tail?q=&host=&source=&level=`, a stream of
//! newly committed records as server-sent events (`text/event-stream`).
//!
//! Each matching record is one event, `data: {"id", "timestamp", "host",
//! "source", "level", "message"}` (the search API's hit), in commit order,
//! oldest first. The stream opens with a comment (`: live tail started`), so a
//! client knows it is subscribed as soon as the first bytes arrive; a comment
//! every 15 s keeps proxies from closing an idle stream. A subscriber that
//! falls more than a thousand commits behind gets `event: lagged` with the
//! number of commits it missed as data, and continues with the newest.
//!
//! Records come from the log writer's commit feed
//! ([`crate::store::writer::WriterHandle::subscribe_records`]), so a tail shows
//! a line only once a search can find it. Matching happens here, record by
//! record, without the index (running tantivy per commit and subscriber would
//! cost far more than the lines themselves), by [`crate::query::matcher`],
//! which gives the whole query language the meaning the index gives it.
//!
//! At most [`MAX_TAILS`] streams are open at once; beyond, 429. Ending the
//! feed (shutdown) ends every stream, so the server's graceful stop does not
//! wait for browsers.

use super::error::ApiError;
use super::params::Params;
use crate::metrics::RejectReason;
use crate::query::matcher::Matcher;
use crate::query::{self, Expr, Keyword, Leaf};
use crate::store::writer::{FeedEvent, RecordFeed, WriterHandle};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most live-tail streams open at once.
pub const MAX_TAILS: usize = 64;
/// Interval of keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the tail route needs: the commit feed and the subscriber slots.
#[derive(Clone)]
pub struct TailState {
    writer: WriterHandle,
    slots: Arc<Semaphore>,
}

impl TailState {
    /// Tails the commits of `writer`.
    pub fn new(writer: WriterHandle) -> Self {
        TailState {
            writer,
            slots: Arc::new(Semaphore::new(MAX_TAILS)),
        }
    }
}

/// Streams newly committed records that match the filter.
pub async fn tail(State(state): State<TailState>, uri: Uri) -> Result<Response, ApiError> {
    let mut params = Params::from_uri(&uri)?;
    let q = params.text("q").unwrap_or_default();
    let host = params.text("host");
    let source = params.text("source");
    let level = params.text("level");
    params.finish()?;
    // The same errors (with their positions) as the search.
    let mut parts = vec![query::parse(&q).map_err(|err| ApiError::bad_request(err.to_string()))?];
    for (field, value) in [
        (Keyword::Host, host),
        (Keyword::Source, source),
        (Keyword::Level, level),
    ] {
        if let Some(value) = value {
            parts.push(Expr::Leaf(Leaf::Keyword(field, value)));
        }
    }
    let matcher = Matcher::new(Expr::And(parts));
    let Ok(permit) = state.slots.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            RejectReason::Unavailable,
            format!("{MAX_TAILS} live tails are already open; close one or retry later"),
        ));
    };
    let tail = Tail {
        feed: state.writer.subscribe_records(),
        matcher,
        pending: VecDeque::from([Event::default().comment("live tail started")]),
        _permit: permit,
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let event = tail.next().await?;
        Some((Ok::<_, Infallible>(event), tail))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// One subscriber's state; dropping it (client gone) frees its slot.
struct Tail {
    feed: RecordFeed,
    matcher: Matcher,
    pending: VecDeque<Event>,
    _permit: OwnedSemaphorePermit,
}

impl Tail {
    /// The next event, or `None` when the feed has ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            match self.feed.next().await {
                FeedEvent::Records(records) => {
                    for hit in records.iter().filter(|hit| self.matcher.matches(hit)) {
                        match serde_json::to_string(hit) {
                            Ok(json) => self.pending.push_back(Event::default().data(json)),
                            Err(err) => tracing::warn!(error = %err, "cannot encode a live-tail record"),
                        }
                    }
                }
                FeedEvent::Lagged(missed) => {
                    self.pending
                        .push_back(Event::default().event("lagged").data(missed.to_string()));
                }
                FeedEvent::Closed => return None,
            }
        }
    }
}
