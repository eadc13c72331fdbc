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
//! record, without the index: running tantivy per commit and subscriber would
//! cost far more than the lines themselves. So live tail supports what can be
//! checked on one line cheaply and exactly as the search would:
//!
//! - words and `"phrases"`, all of which must occur in the message (matched
//!   on the same tokens as the index: runs of letters and digits, any case);
//! - `host:`, `source:`, `level:` (exact values, as the filters) and
//!   `message:` terms; an explicit `AND` and a leading `+`.
//!
//! `OR`, `NOT`, `-word`, groups, wildcards, ranges and other fields answer
//! 400 with a message saying so; the search API still takes them.
//!
//! At most [`MAX_TAILS`] streams are open at once; beyond, 429. Ending the
//! feed (shutdown) ends every stream, so the server's graceful stop does not
//! wait for browsers.

use super::error::ApiError;
use super::params::Params;
use crate::metrics::RejectReason;
use crate::store::LogStore;
use crate::store::schema::Hit;
use crate::store::search::LogFilter;
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
/// Tokens longer than this are dropped by the index's tokenizer, so here too.
const MAX_TOKEN_BYTES: usize = 40;

/// What the tail route needs: the commit feed and the subscriber slots.
#[derive(Clone)]
pub struct TailState {
    writer: WriterHandle,
    store: LogStore,
    slots: Arc<Semaphore>,
}

impl TailState {
    /// Tails the commits of `writer`; `store` checks query syntax.
    pub fn new(writer: WriterHandle, store: LogStore) -> Self {
        TailState {
            writer,
            store,
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
    // The same syntax errors (with their positions) as the search.
    let filter = LogFilter {
        q: q.clone(),
        ..LogFilter::default()
    };
    state.store.queries().build(&filter)?;
    let mut matcher = LiveFilter::parse(&q).map_err(ApiError::bad_request)?;
    matcher.host.extend(host.map(|h| h.trim().to_owned()));
    matcher.source.extend(source.map(|s| s.trim().to_owned()));
    matcher.level.extend(level.map(|l| l.trim().to_owned()));
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
    matcher: LiveFilter,
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

/// A query live tail can check on one record: every field constraint must
/// hold exactly and every term must occur in the message.
#[derive(Debug, Default, PartialEq)]
pub struct LiveFilter {
    /// Required hosts (all must equal the record's: more than one different never matches).
    pub host: Vec<String>,
    /// Required sources.
    pub source: Vec<String>,
    /// Required levels.
    pub level: Vec<String>,
    /// Token sequences that must occur in the message, lower-cased.
    pub terms: Vec<Vec<String>>,
}

impl LiveFilter {
    /// Parses `q`; the error says which part live tail cannot match.
    pub fn parse(q: &str) -> Result<LiveFilter, String> {
        let mut filter = LiveFilter::default();
        let mut rest = q.trim_start();
        while !rest.is_empty() {
            let (part, tail) = next_part(rest)?;
            rest = tail.trim_start();
            filter.add(part)?;
        }
        Ok(filter)
    }

    fn add(&mut self, part: Part<'_>) -> Result<(), String> {
        let unsupported = |what: &str| {
            Err(format!(
                "live tail cannot match {what}; it supports words, \"phrases\" and host:, source:, level:, \
                 message: terms (all must match). Search without live tail for the full syntax"
            ))
        };
        match part {
            Part::Phrase(text) => self.add_term(text),
            Part::Bare("AND") => {}
            Part::Bare("OR") => return unsupported("`OR`"),
            Part::Bare("NOT") => return unsupported("`NOT`"),
            Part::Bare(word) if word.starts_with('-') => return unsupported(&format!("`{word}` (NOT)")),
            Part::Bare(word) => {
                let word = word.strip_prefix('+').unwrap_or(word);
                if let Some(c) = word.chars().find(|c| "()[]{}*?^~\\!<>=".contains(*c)) {
                    return unsupported(&format!("`{c}` in `{word}`"));
                }
                match word.split_once(':') {
                    None => self.add_term(word),
                    Some((field, value)) => self.add_field(field, value, unsupported)?,
                }
            }
            Part::Field(field, value) => self.add_field(field, value, unsupported)?,
        }
        Ok(())
    }

    fn add_field(
        &mut self,
        field: &str,
        value: &str,
        unsupported: impl Fn(&str) -> Result<(), String>,
    ) -> Result<(), String> {
        match field {
            "host" => self.host.push(value.to_owned()),
            "source" => self.source.push(value.to_owned()),
            "level" => self.level.push(value.to_owned()),
            "message" => self.add_term(value),
            other => return unsupported(&format!("the field `{other}`")),
        }
        Ok(())
    }

    fn add_term(&mut self, text: &str) {
        let tokens = tokens(text);
        if !tokens.is_empty() {
            self.terms.push(tokens);
        }
    }

    /// Whether `hit` matches.
    pub fn matches(&self, hit: &Hit) -> bool {
        let exact = |wanted: &[String], value: &str| wanted.iter().all(|w| w == value);
        if !exact(&self.host, &hit.host) || !exact(&self.source, &hit.source) || !exact(&self.level, &hit.level) {
            return false;
        }
        if self.terms.is_empty() {
            return true;
        }
        let message = tokens(&hit.message);
        self.terms
            .iter()
            .all(|term| message.windows(term.len()).any(|window| window == term.as_slice()))
    }
}

/// One piece of a query string.
#[derive(Debug, PartialEq)]
enum Part<'a> {
    /// A bare word (may hold `field:value`).
    Bare(&'a str),
    /// A quoted phrase.
    Phrase(&'a str),
    /// `field:"quoted value"`.
    Field(&'a str, &'a str),
}

/// Splits the next part off `text` (which starts with a non-space).
fn next_part(text: &str) -> Result<(Part<'_>, &str), String> {
    if let Some(inner) = text.strip_prefix('"') {
        let (phrase, rest) = until_quote(inner)?;
        return Ok((Part::Phrase(phrase), rest));
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let word = &text[..end];
    if let Some((field, value)) = word.split_once(':')
        && value.starts_with('"')
    {
        let start = field.len() + 2;
        let (value, rest) = until_quote(&text[start..])?;
        return Ok((Part::Field(field, value), rest));
    }
    if word.contains('"') {
        return Err(format!("live tail cannot match `{word}`: a quote must start a phrase"));
    }
    Ok((Part::Bare(word), &text[end..]))
}

/// The text up to the next `"`, and what follows it.
fn until_quote(text: &str) -> Result<(&str, &str), String> {
    match text.find('"') {
        Some(end) => Ok((&text[..end], &text[end + 1..])),
        None => Err("a phrase has no closing `\"`".into()),
    }
}

/// The index's tokens of `text`: runs of letters and digits, lower-cased,
/// those longer than 40 bytes dropped (tantivy's default tokenizer).
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(host: &str, level: &str, message: &str) -> Hit {
        Hit {
            id: "x-0".into(),
            timestamp: "2024-01-01T00:00:00Z".into(),
            host: host.into(),
            source: "/var/log/app.log".into(),
            level: level.into(),
            message: message.into(),
            truncated: false,
            labels: Default::default(),
        }
    }

    #[test]
    fn words_phrases_and_fields() {
        let f = LiveFilter::parse("Disk \"is full\" host:web-1 AND level:error +now").unwrap();
        assert_eq!(f.host, vec!["web-1"]);
        assert_eq!(f.level, vec!["error"]);
        assert_eq!(f.terms, vec![vec!["disk"], vec!["is", "full"], vec!["now"]]);
        assert!(f.matches(&hit("web-1", "error", "now: DISK /var is full!")));
        assert!(!f.matches(&hit("web-1", "error", "now: disk is almost full")));
        assert!(!f.matches(&hit("web-2", "error", "now: disk is full")));
        assert!(!f.matches(&hit("web-1", "warn", "now: disk is full")));
        // Tokens, not substrings: `disk` does not match `disks`.
        assert!(!f.matches(&hit("web-1", "error", "now disks is full")));
        let quoted = LiveFilter::parse("source:\"/var/log/my app.log\" message:timeout").unwrap();
        assert_eq!(quoted.source, vec!["/var/log/my app.log"]);
        assert_eq!(quoted.terms, vec![vec!["timeout"]]);
        assert_eq!(LiveFilter::parse("  ").unwrap(), LiveFilter::default());
        assert!(LiveFilter::default().matches(&hit("a", "", "anything")));
    }

    #[test]
    fn what_live_tail_cannot_match_is_refused() {
        for q in [
            "a OR b",
            "NOT debug",
            "-debug",
            "(a b)",
            "err*",
            "stream:abc",
            "timestamp:[1 TO 2]",
            "a\"b",
        ] {
            let err = LiveFilter::parse(q).unwrap_err();
            assert!(err.starts_with("live tail cannot match"), "{q}: {err}");
        }
        assert!(LiveFilter::parse("\"open").unwrap_err().contains("closing"));
    }
}
