//! Token checks: one token list for ingest, one for the read API (which
//! [`super::access`] also accepts a login session for). Ingest takes the
//! token as `Authorization: Bearer` or as the password of HTTP Basic, which
//! is what most log shippers can be given.
//!
//! Tokens are compared in constant time (for equal lengths) against every
//! configured token, and never logged: a refusal says only whether the header
//! was missing or the token not accepted. A configuration reload replaces
//! the lists ([`Tokens::replace`]); requests already let in are not touched.

use super::error::ApiError;
use crate::config::{IngestToken, Secret};
use crate::users::secret::constant_time_eq;
use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::borrow::Cow;
use std::sync::Arc;

/// The tokens one group of routes accepts. Clones share the list, so a
/// [`Tokens::replace`] reaches every route that checks them.
#[derive(Clone, Debug)]
pub struct Tokens {
    list: Arc<ArcSwap<TokenList>>,
    purpose: &'static str,
}

/// The tokens at one moment, each with its hosts.
#[derive(Debug)]
struct TokenList {
    tokens: Vec<Secret>,
    /// Per token, the hosts it may send as (`None`: any).
    hosts: Vec<Option<HostGrant>>,
}

/// The host names (or `*`-ended prefixes) an ingest token may send as: put
/// into the request's extensions for the ingest handler to check.
#[derive(Clone, Debug)]
pub struct HostGrant(pub Arc<[String]>);

impl Tokens {
    /// Accepts `tokens`; `purpose` ("ingest", "API") goes into refusals.
    pub fn new(tokens: &[Secret], purpose: &'static str) -> Self {
        let list = TokenList {
            tokens: tokens.to_vec(),
            hosts: tokens.iter().map(|_| None).collect(),
        };
        Tokens {
            list: Arc::new(ArcSwap::from_pointee(list)),
            purpose,
        }
    }

    /// Accepts the ingest tokens, each with the hosts it is bound to.
    pub fn ingest(tokens: &[IngestToken]) -> Self {
        let list = TokenList {
            tokens: tokens.iter().map(|token| token.secret().clone()).collect(),
            hosts: tokens
                .iter()
                .map(|token| token.hosts().map(|hosts| HostGrant(hosts.into())))
                .collect(),
        };
        Tokens {
            list: Arc::new(ArcSwap::from_pointee(list)),
            purpose: "ingest",
        }
    }

    /// From now on accepts the tokens `newer` accepts (and only those),
    /// here and in every clone.
    pub fn replace(&self, newer: &Tokens) {
        self.list.store(newer.list.load_full());
    }

    /// Whether `other` accepts exactly the same tokens (with the same hosts).
    pub fn same_as(&self, other: &Tokens) -> bool {
        let (mine, theirs) = (self.list.load(), other.list.load());
        let hosts = |list: &TokenList| -> Vec<Option<Vec<String>>> {
            list.hosts
                .iter()
                .map(|grant| grant.as_ref().map(|g| g.0.to_vec()))
                .collect()
        };
        mine.tokens == theirs.tokens && hosts(&mine) == hosts(&theirs)
    }

    /// Whether `presented` is one of the tokens.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        self.matching(presented).is_some()
    }

    /// Whether `presented` is one of the tokens, and with which hosts.
    fn matching(&self, presented: &[u8]) -> Option<Option<HostGrant>> {
        let list = self.list.load();
        // Check every token, without stopping early, so timing says nothing
        // about which one came close.
        let found = list.tokens.iter().enumerate().fold(None, |found, (i, token)| {
            let equal = constant_time_eq(presented, token.expose().as_bytes());
            if equal { Some(i) } else { found }
        })?;
        Some(list.hosts.get(found).cloned().flatten())
    }
}

/// Middleware: lets the request through only with an accepted token, sent
/// as a bearer token or as the password of HTTP Basic.
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| presented_token(value.as_bytes()));
    match presented {
        None => ApiError::unauthorized(format!(
            "missing `Authorization: Bearer <token>` header, or HTTP Basic with the token as password (an {} token is required)",
            tokens.purpose
        ))
        .into_response(),
        Some(token) if let Some(hosts) = tokens.matching(&token) => {
            let mut request = request;
            if let Some(grant) = hosts {
                request.extensions_mut().insert(grant);
            }
            next.run(request).await
        }
        Some(_) => {
            ApiError::unauthorized(format!("the bearer token is not a valid {} token", tokens.purpose)).into_response()
        }
    }
}

/// The token an `Authorization` value presents: a bearer token, or the
/// password of `Basic` credentials (the user name is not looked at).
pub fn presented_token(value: &[u8]) -> Option<Cow<'_, [u8]>> {
    if let Some(token) = bearer(value) {
        return Some(Cow::Borrowed(token));
    }
    let (scheme, credentials) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    // Bounded by the server's header size limit.
    let decoded = STANDARD.decode(credentials.trim_ascii()).ok()?;
    let (_, password) = decoded.split_at(decoded.iter().position(|b| *b == b':')? + 1);
    (!password.is_empty()).then(|| Cow::Owned(password.to_vec()))
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
    fn basic_credentials_present_their_password() {
        let basic = |credentials: &str| format!("Basic {}", STANDARD.encode(credentials));
        assert_eq!(
            presented_token(basic("vector:s3cret-token").as_bytes()).as_deref(),
            Some(&b"s3cret-token"[..])
        );
        assert_eq!(
            presented_token(basic(":pass:with:colons").as_bytes()).as_deref(),
            Some(&b"pass:with:colons"[..])
        );
        assert_eq!(presented_token(basic("user-only").as_bytes()), None, "no colon");
        assert_eq!(presented_token(basic("user:").as_bytes()), None, "no password");
        assert_eq!(presented_token(b"Basic !!not base64!!"), None);
        assert_eq!(presented_token(b"Bearer abc").as_deref(), Some(&b"abc"[..]));
        assert_eq!(presented_token(b"Digest abc"), None);
    }

    #[test]
    fn accepts_only_configured_tokens() {
        let tokens = Tokens::new(&[Secret::new("one"), Secret::new("two")], "API");
        assert!(tokens.accepts(b"one") && tokens.accepts(b"two"));
        assert!(!tokens.accepts(b"on") && !tokens.accepts(b"three") && !tokens.accepts(b""));
    }

    #[test]
    fn a_replaced_list_holds_in_every_clone() {
        let tokens = Tokens::new(&[Secret::new("old-token")], "API");
        let routes = tokens.clone();
        tokens.replace(&Tokens::new(&[Secret::new("new-token")], "API"));
        assert!(routes.accepts(b"new-token"));
        assert!(!routes.accepts(b"old-token"), "an old token is refused at once");
    }
}
