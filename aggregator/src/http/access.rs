//! Who is calling, and whether they may: one middleware, [`access`], in
//! front of every route.
//!
//! It sorts each request by its path ([`Area`]) and is deny-by-default:
//!
//! - **public**: `/healthz`, `/login`, `/assets/...`: passes untouched.
//! - **ingest**: `POST /api/v1/ingest` and the receivers' paths
//!   (`/v1/logs`, `/_bulk`, `/{index}/_bulk`, `/loki/api/v1/push`): passes
//!   here; their own route layer accepts only ingest tokens
//!   ([`super::auth::require_token`]). `GET /` (and Elasticsearch's
//!   health paths, Loki's `/ready`) with an ingest token are a shipper's
//!   probe, answered here.
//! - **API**: `/api/...` and `/metrics`: an API token (`Authorization:
//!   Bearer`) or a session cookie; without either, 401 JSON.
//! - **page**: every other path: a session cookie (or an API token); without
//!   one, a 302 to `/login?next=<path>`.
//!
//! A request that passes carries a [`Caller`] in its extensions; handlers
//! take it as an argument and call [`Caller::require_admin`] where only
//! admins may act. API tokens from the config file count as admin: the
//! operator wrote them.
//!
//! **CSRF.** A cookie is sent by the browser on its own, so a request that
//! changes state (POST, PUT, PATCH, DELETE) and is authenticated by the
//! session cookie must also show the session's CSRF token, in the
//! `X-CSRF-Token` header or, for HTML forms, a `csrf` form field (compared in
//! constant time), and a present `Origin` header must be this server's own
//! origin. Otherwise: 403 JSON. Bearer-token requests are exempt: nothing
//! sends that header without the caller's say. The cookie is also
//! `SameSite=Strict`, so this is a second fence, not the only one.
//!
//! **Adding a UI page**: add its route to the router in [`super::router`];
//! since every path that is not public, ingest or API is a page, the page is
//! behind the login without further work, and its handler takes a
//! [`Caller`] to know who is looking. A form that POSTs includes a hidden
//! `csrf` field with [`Caller::csrf_token`]; a script sends `X-CSRF-Token`
//! with the `csrf_token` of `GET /api/v1/session`.

use super::AppState;
use super::error::ApiError;
use crate::metrics::RejectReason;
use crate::users::{Role, Session, SessionPolicy, UserStore, secret};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lookout_shared::wire::INGEST_PATH;
use std::sync::Arc;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lookout_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field that carries the CSRF token in HTML forms.
pub const CSRF_FIELD: &str = "csrf";
/// The largest form body read to find the CSRF field.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Who made a request that [`access`] let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A bearer API token from the config file (counts as admin).
    ApiToken,
    /// A logged-in user of the web UI.
    User(Session),
}

impl Caller {
    /// Whether the caller may do admin things (silences, users, tokens).
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::ApiToken => true,
            Caller::User(session) => session.role == Role::Admin,
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                RejectReason::Forbidden,
                "this needs the admin role",
            ))
        }
    }

    /// The user's name; `None` for an API token.
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Caller::ApiToken => None,
            Caller::User(session) => Some(&session.user),
        }
    }

    /// The CSRF token forms must include; `None` for an API token.
    pub fn csrf_token(&self) -> Option<&str> {
        match self {
            Caller::ApiToken => None,
            Caller::User(session) => Some(&session.csrf_token),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("not signed in"))
    }
}

/// What [`access`] does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// No credentials needed.
    Public,
    /// The ingest route: ingest tokens, checked by its own layer.
    Ingest,
    /// JSON API and `/metrics`: 401 without credentials.
    Api,
    /// A UI page: a redirect to the login without a session.
    Page,
}

impl Area {
    /// The area of `path`.
    pub fn of(path: &str) -> Area {
        if path == "/healthz" || path == "/login" || path.starts_with("/assets/") {
            Area::Public
        } else if path == INGEST_PATH || is_receiver_path(path) {
            Area::Ingest
        } else if path == "/api" || path.starts_with("/api/") || path == "/metrics" {
            Area::Api
        } else {
            Area::Page
        }
    }
}

/// The paths of the HTTP receivers (OTLP, Elasticsearch bulk, Loki push),
/// which take ingest tokens like `/api/v1/ingest`.
fn is_receiver_path(path: &str) -> bool {
    if matches!(path, "/v1/logs" | "/_bulk" | "/loki/api/v1/push") {
        return true;
    }
    // `/{index}/_bulk`: one segment, then `_bulk`.
    path.strip_prefix('/')
        .and_then(|rest| rest.strip_suffix("/_bulk"))
        .is_some_and(|index| !index.is_empty() && !index.contains('/'))
}

/// The access settings the middleware and the login handlers share.
#[derive(Debug)]
pub struct Access {
    /// Users and sessions.
    pub users: UserStore,
    /// How long sessions last.
    pub policy: SessionPolicy,
    /// The read API's bearer tokens.
    pub api_tokens: super::auth::Tokens,
    /// The ingest tokens: `GET /` with one is an Elasticsearch client's probe.
    pub ingest_tokens: super::auth::Tokens,
    /// Whether the server speaks HTTPS (cookies get `Secure`, answers HSTS).
    pub tls: bool,
    /// Failed-login counting.
    pub limiter: super::ratelimit::LoginLimiter,
    /// The one thread that checks passwords (argon2, about 19 MiB each).
    pub password_thread: crate::users::hasher::PasswordThread,
}

/// Middleware: authenticates by area, checks CSRF, and puts a [`Caller`]
/// into the request's extensions.
pub async fn access(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let area = match Area::of(request.uri().path()) {
        // Ingest paths take only writes; anything else there (`GET
        // /hosts/_bulk` would reach the page `/hosts/{name}`) is a page.
        Area::Ingest if !matches!(*request.method(), Method::POST | Method::PUT) => Area::Page,
        area => area,
    };
    if matches!(area, Area::Public | Area::Ingest) {
        return next.run(request).await;
    }
    let access = Arc::clone(&app.access);
    if is_shipper_probe(&request, &access.ingest_tokens) {
        return super::receive::shipper_probe(request.method(), request.uri().path());
    }
    let mut request = request;
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        return match super::auth::bearer(value.as_bytes()) {
            Some(token) if access.api_tokens.accepts(token) => {
                request.extensions_mut().insert(Caller::ApiToken);
                next.run(request).await
            }
            _ => ApiError::unauthorized("the bearer token is not a valid API token").into_response(),
        };
    }
    let session = match session_token(request.headers()) {
        Some(token) => match lookup(&access.users, token, access.policy).await {
            Ok(session) => session,
            Err(response) => return response,
        },
        None => None,
    };
    let Some(session) = session else {
        return match area {
            Area::Page => redirect_to_login(&request),
            _ => ApiError::unauthorized("not signed in: log in at /login, or send `Authorization: Bearer <API token>`")
                .into_response(),
        };
    };
    if changes_state(request.method()) {
        if let Err(refusal) = check_origin(request.headers(), request_host(&request), access.tls) {
            return refusal.into_response();
        }
        request = match check_csrf(request, &session.csrf_token).await {
            Ok(request) => request,
            Err(refusal) => return refusal.into_response(),
        };
    }
    request.extensions_mut().insert(Caller::User(session));
    next.run(request).await
}

/// Whether `request` is a shipper's probe (`GET` or `HEAD` of `/`,
/// Elasticsearch's health paths or Loki's `/ready`), known by its ingest
/// credentials: `/` is also the UI's home page, which browsers (with a
/// session cookie, or none) still get.
fn is_shipper_probe(request: &Request, ingest_tokens: &super::auth::Tokens) -> bool {
    super::receive::SHIPPER_PROBES.contains(&request.uri().path())
        && matches!(*request.method(), Method::GET | Method::HEAD)
        && request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| super::auth::presented_token(value.as_bytes()))
            .is_some_and(|token| ingest_tokens.accepts(&token))
}

/// Looks the session up off the async threads.
async fn lookup(users: &UserStore, token: String, policy: SessionPolicy) -> Result<Option<Session>, Response> {
    let users = users.clone();
    match tokio::task::spawn_blocking(move || users.session(&token, policy)).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(err)) => Err(ApiError::internal("cannot read the session", &err).into_response()),
        Err(err) => Err(ApiError::internal("cannot read the session", &err).into_response()),
    }
}

/// The value of the `lookout_session` cookie, if any. The cookie's value is
/// always hex, so the `Cookie` header is split by hand, without quoting rules.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 128)
}

fn changes_state(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, RejectReason::Forbidden, message)
}

/// The host the client addressed: `Host` (HTTP/1.1) or the URI's
/// authority (HTTP/2's `:authority`).
pub fn request_host<B>(request: &axum::http::Request<B>) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| request.uri().authority().map(|authority| authority.as_str()))
}

/// Refuses a present `Origin` that is not this server's own origin (scheme
/// and `host`). Browsers send `Origin` on every cross-site POST.
pub fn check_origin(headers: &HeaderMap, host: Option<&str>, tls: bool) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let scheme = if tls { "https" } else { "http" };
    let same = match (origin.to_str(), host) {
        (Ok(origin), Some(host)) => origin.eq_ignore_ascii_case(&format!("{scheme}://{host}")),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(forbidden("the request comes from another origin"))
    }
}

/// Lets the request through only if it shows `expected`; reads (and puts
/// back) a form body when the header is absent.
async fn check_csrf(request: Request, expected: &str) -> Result<Request, ApiError> {
    if let Some(value) = request.headers().get(CSRF_HEADER) {
        return if secret::constant_time_eq(value.as_bytes(), expected.as_bytes()) {
            Ok(request)
        } else {
            Err(forbidden("the X-CSRF-Token header does not match the session"))
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden("missing X-CSRF-Token header (see GET /api/v1/session)"));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| forbidden("the form is too large to look for its csrf field"))?;
    let presented = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    match presented {
        Some(value) if secret::constant_time_eq(value.as_bytes(), expected.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        Some(_) => Err(forbidden("the csrf form field does not match the session")),
        None => Err(forbidden("missing csrf form field or X-CSRF-Token header")),
    }
}

/// 302 to `/login?next=<path and query>`.
fn redirect_to_login(request: &Request) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let location = format!("/login?next={next}");
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::FOUND,
            [(header::LOCATION, HeaderValue::from_static("/login"))],
        )
            .into_response(),
    }
}

/// `next` if it is a path on this server (`/...`, not `//host` or `/\host`,
/// no control characters); `/` otherwise. Keeps the login from being an
/// open redirect.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2048;
    if local { next } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas() {
        assert_eq!(Area::of("/healthz"), Area::Public);
        assert_eq!(Area::of("/login"), Area::Public);
        assert_eq!(Area::of("/assets/lookout.css"), Area::Public);
        assert_eq!(Area::of("/api/v1/ingest"), Area::Ingest);
        assert_eq!(Area::of("/api/v1/logs/search"), Area::Api);
        assert_eq!(Area::of("/api/v1/nothing"), Area::Api);
        assert_eq!(Area::of("/metrics"), Area::Api);
        assert_eq!(Area::of("/"), Area::Page);
        assert_eq!(Area::of("/logout"), Area::Page);
        assert_eq!(Area::of("/loginx"), Area::Page);
        assert_eq!(Area::of("/apiary"), Area::Page);
    }

    #[test]
    fn only_admins_and_api_tokens_pass_require_admin() {
        let session = |role| {
            Caller::User(Session {
                user: "u".into(),
                role,
                csrf_token: "c".into(),
                expires_ms: 0,
            })
        };
        assert!(Caller::ApiToken.require_admin().is_ok());
        assert!(session(Role::Admin).require_admin().is_ok());
        let refused = session(Role::Viewer).require_admin().unwrap_err().into_response();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next("/search?q=a"), "/search?q=a");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("http://evil.example/"), "/");
        assert_eq!(safe_next("evil"), "/");
        assert_eq!(safe_next(""), "/");
        assert_eq!(safe_next("/a\nb"), "/");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lookout_session=abc; b=2"),
        );
        assert_eq!(session_token(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("lookout_sessionx=abc"));
        assert_eq!(session_token(&headers), None);
    }

    #[test]
    fn origin_must_be_our_own() {
        let mut headers = HeaderMap::new();
        let host = Some("127.0.0.1:7070");
        assert!(check_origin(&headers, host, false).is_ok(), "no Origin: allowed");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:7070"));
        assert!(check_origin(&headers, host, false).is_ok());
        assert!(check_origin(&headers, host, true).is_err(), "scheme differs");
        assert!(check_origin(&headers, None, false).is_err(), "no host to compare with");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(check_origin(&headers, host, false).is_err());
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_origin(&headers, host, false).is_err());
    }
}
