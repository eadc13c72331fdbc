//! Live tail: `GET /api/v1/logs/tail?q=&host=&source=&level=`, a stream of
//! newly committed records as server-sent events (`text/event-stream`).
//!
//! Each matching record is one event, `data: {"id", "timestamp", "host",
//! "source", "level", "message"}` (the search API's hit), in commit order,
//! oldest first. The stream opens with a comment (`: live tail started`), so a
//! client knows it is subscribed as soon as the first bytes arrive; a comment
//! every 15 s keeps proxies from closing an idle stream. Each subscriber's
//! matching records wait in a queue of at most [`MAX_QUEUED_BYTES`]; a client
//! that reads more slowly than lines arrive gets `event: lagged` with the
//! number of records (or commits) it missed as data, and continues with the
//! newest. Messages are cut to 16 KiB, as in search lists.
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
use crate::ingest::patterns::PatternBook;
use crate::metrics::RejectReason;
use crate::query::highlight::Highlighter;
use crate::query::matcher::Matcher;
use crate::query::{self, Expr, Keyword, Leaf};
use crate::store::schema::MAX_LISTED_MESSAGE_BYTES;
use crate::store::schema::PATTERN_FIELD;
use crate::store::writer::{FeedEvent, RecordFeed, WriterHandle};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Most live-tail streams open at once.
pub const MAX_TAILS: usize = 64;
/// Interval of keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the tail route needs: the commit feed and the subscriber slots.
#[derive(Clone)]
pub struct TailState {
    writer: WriterHandle,
    patterns: Arc<PatternBook>,
    slots: Arc<Semaphore>,
}

impl TailState {
    /// Tails the commits of `writer`; `pattern:<id>` follows `patterns`' aliases.
    pub fn new(writer: WriterHandle, patterns: Arc<PatternBook>) -> Self {
        TailState {
            writer,
            patterns,
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
    let highlighter = Highlighter::new(&parts[0]);
    let patterns = state.patterns.clone();
    let matcher = Matcher::new(query::expand_field(Expr::And(parts), PATTERN_FIELD, &|id| {
        patterns.aliases(id)
    }));
    let Ok(permit) = state.slots.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            RejectReason::Unavailable,
            format!("{MAX_TAILS} live tails are already open; close one or retry later"),
        ));
    };
    let queue = Arc::new(TailQueue::default());
    let drain = tokio::spawn(drain(
        state.writer.subscribe_records(),
        matcher,
        highlighter,
        queue.clone(),
    ));
    let tail = Tail {
        queue,
        started: false,
        drain: AbortOnDrop(drain),
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

/// Most bytes of encoded events one subscriber may have waiting. The commit
/// feed is drained at once by [`drain`], so a client that does not read holds
/// at most this much, not a thousand commits.
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// One subscriber's matched, encoded records, oldest first, bounded in bytes.
#[derive(Default)]
struct TailQueue {
    state: std::sync::Mutex<QueueState>,
    changed: Notify,
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<String>,
    bytes: usize,
    /// Records dropped (oldest first) since the client last read.
    dropped: u64,
    closed: bool,
}

impl TailQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, json: String) {
        let mut state = self.lock();
        state.bytes += json.len();
        state.events.push_back(json);
        while state.bytes > MAX_QUEUED_BYTES {
            let Some(oldest) = state.events.pop_front() else {
                break;
            };
            state.bytes -= oldest.len();
            state.dropped += 1;
        }
        drop(state);
        self.changed.notify_one();
    }

    fn lagged(&self, missed: u64) {
        self.lock().dropped += missed;
        self.changed.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_one();
    }
}

/// Reads the commit feed as it comes, keeping the records `matcher` matches.
async fn drain(mut feed: RecordFeed, mut matcher: Matcher, mut highlighter: Highlighter, queue: Arc<TailQueue>) {
    loop {
        match feed.next().await {
            FeedEvent::Records(records) => {
                for hit in records.iter().filter(|hit| matcher.matches(hit)) {
                    let mut hit = hit.clone();
                    hit.marks = highlighter.marks(&hit.message);
                    hit.cut_message(MAX_LISTED_MESSAGE_BYTES);
                    match serde_json::to_string(&hit) {
                        Ok(json) => queue.push(json),
                        Err(err) => tracing::warn!(error = %err, "cannot encode a live-tail record"),
                    }
                }
            }
            // Counted in commits by the feed; the client sees "some missed".
            FeedEvent::Lagged(missed) => queue.lagged(missed),
            FeedEvent::Closed => {
                queue.close();
                return;
            }
        }
    }
}

/// Aborts the drain task when the stream (the client) goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One subscriber's stream; dropping it (client gone) frees its slot.
struct Tail {
    queue: Arc<TailQueue>,
    started: bool,
    drain: AbortOnDrop,
    _permit: OwnedSemaphorePermit,
}

impl Tail {
    /// The next event, or `None` when the feed has ended.
    async fn next(&mut self) -> Option<Event> {
        if !self.started {
            self.started = true;
            return Some(Event::default().comment("live tail started"));
        }
        loop {
            let notified = self.queue.changed.notified();
            {
                let mut state = self.queue.lock();
                if state.dropped > 0 {
                    let dropped = std::mem::take(&mut state.dropped);
                    return Some(Event::default().event("lagged").data(dropped.to_string()));
                }
                if let Some(json) = state.events.pop_front() {
                    state.bytes -= json.len();
                    return Some(Event::default().data(json));
                }
                if state.closed || self.drain.0.is_finished() {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_that_is_not_read_keeps_at_most_its_byte_bound() {
        let queue = TailQueue::default();
        let line = "x".repeat(16 * 1024);
        for _ in 0..1000 {
            queue.push(line.clone());
        }
        let state = queue.lock();
        assert!(state.bytes <= MAX_QUEUED_BYTES, "{}", state.bytes);
        assert_eq!(state.events.len(), MAX_QUEUED_BYTES / line.len());
        assert_eq!(state.dropped, 1000 - state.events.len() as u64);
    }
}
