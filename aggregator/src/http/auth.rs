//! Bearer-token checks: one token list for ingest, one for the read API
//! (which [`super::access`] also accepts a login session for).
//!
//! Tokens are compared in constant time (for equal lengths) against every
//! configured token, and never logged: a refusal says only whether the header
//! was missing or the token not accepted.

use super::error::ApiError;
use crate::config::{IngestToken, Secret};
use crate::users::secret::constant_time_eq;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The tokens one group of routes accepts.
#[derive(Clone, Debug)]
pub struct Tokens {
    tokens: Arc<[Secret]>,
    /// Per token, the hosts it may send as (`None`: any).
    hosts: Arc<[Option<HostGrant>]>,
    purpose: &'static str,
}

/// The host names (or `*`-ended prefixes) an ingest token may send as: put
/// into the request's extensions for the ingest handler to check.
#[derive(Clone, Debug)]
pub struct HostGrant(pub Arc<[String]>);

impl Tokens {
    /// Accepts `tokens`; `purpose` ("ingest", "API") goes into refusals.
    pub fn new(tokens: &[Secret], purpose: &'static str) -> Self {
        Tokens {
            tokens: tokens.into(),
            hosts: tokens.iter().map(|_| None).collect(),
            purpose,
        }
    }

    /// Accepts the ingest tokens, each with the hosts it is bound to.
    pub fn ingest(tokens: &[IngestToken]) -> Self {
        Tokens {
            tokens: tokens.iter().map(|token| token.secret().clone()).collect(),
            hosts: tokens
                .iter()
                .map(|token| token.hosts().map(|hosts| HostGrant(hosts.into())))
                .collect(),
            purpose: "ingest",
        }
    }

    /// Whether `presented` is one of the tokens.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        self.matching(presented).is_some()
    }

    /// The index of the token `presented` is.
    fn matching(&self, presented: &[u8]) -> Option<usize> {
        // Check every token, without stopping early, so timing says nothing
        // about which one came close.
        self.tokens.iter().enumerate().fold(None, |found, (i, token)| {
            let equal = constant_time_eq(presented, token.expose().as_bytes());
            if equal { Some(i) } else { found }
        })
    }
}

/// Middleware: lets the request through only with an accepted bearer token.
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()));
    match presented {
        None => ApiError::unauthorized(format!(
            "missing `Authorization: Bearer <token>` header (an {} token is required)",
            tokens.purpose
        ))
        .into_response(),
        Some(token) if let Some(i) = tokens.matching(token) => {
            let mut request = request;
            if let Some(grant) = tokens.hosts.get(i).cloned().flatten() {
                request.extensions_mut().insert(grant);
            }
            next.run(request).await
        }
        Some(_) => {
            ApiError::unauthorized(format!("the bearer token is not a valid {} token", tokens.purpose)).into_response()
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii()).filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn accepts_only_configured_tokens() {
        let tokens = Tokens::new(&[Secret::new("one"), Secret::new("two")], "API");
        assert!(tokens.accepts(b"one") && tokens.accepts(b"two"));
        assert!(!tokens.accepts(b"on") && !tokens.accepts(b"three") && !tokens.accepts(b""));
    }
}
