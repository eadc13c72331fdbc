//! The server-rendered pages: login and logout, and the session API the web
//! UI's scripts read (user, role, CSRF token).
//!
//! Pages are minijinja templates (`templates/`, compiled into the binary)
//! rendered with HTML auto-escaping, so a value from the data or the request
//! is always text, never markup. They use no inline script or style: the
//! stylesheet is the UI's versioned `css/login.css` asset, which the
//! Content-Security-Policy of [`super::headers`] allows as `'self'`.
//!
//! Login answers say only "wrong user name or password", whichever was wrong,
//! and take as long for an unknown name as for a wrong password. Failed
//! attempts are counted by [`super::ratelimit`].

use super::AppState;
use super::access::{Caller, SESSION_COOKIE, check_origin, safe_next, session_token};
use super::error::ApiError;
use crate::metrics::RejectReason;
use axum::Json;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Form, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The one answer to a failed login, whatever was wrong.
pub const WRONG_CREDENTIALS: &str = "Wrong user name or password.";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("login.html", include_str!("templates/login.html")),
    ] {
        // The templates are part of the binary and checked by the tests.
        if let Err(err) = env.add_template(name, source) {
            tracing::error!(template = name, error = %err, "a built-in template does not compile");
        }
    }
    // The stylesheet is one of the web UI's versioned assets. The prefix is
    // ours, not data: marked safe so its `/` are not escaped to `&#x2f;`.
    let assets = format!("{}/{}", super::ui::ASSETS_PREFIX, super::ui::asset_version());
    env.add_global("assets", minijinja::Value::from_safe_string(assets));
    env
});

/// Renders template `name` (auto-escaped: its name ends in `.html`).
pub fn render(name: &str, context: minijinja::Value) -> Result<Html<String>, ApiError> {
    TEMPLATES
        .get_template(name)
        .and_then(|template| template.render(context))
        .map(Html)
        .map_err(|err| ApiError::internal("cannot render the page", &err))
}

/// `?next=` of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    /// Where to go after the login.
    #[serde(default)]
    next: String,
}

/// The login form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

fn login_page(status: StatusCode, next: &str, username: &str, error: Option<&str>) -> Response {
    match render("login.html", context! { next, username, error }) {
        Ok(page) => (status, page).into_response(),
        Err(err) => err.into_response(),
    }
}

/// `GET /login`: the login form.
pub async fn show_login(Query(param): Query<NextParam>) -> Response {
    login_page(StatusCode::OK, safe_next(&param.next), "", None)
}

/// `POST /login`: checks the password, starts a session, and redirects (303)
/// to `next`; 401 with the form again on wrong credentials; 429 with
/// `Retry-After` once too many attempts failed.
pub async fn login(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<LoginForm>,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()));
    if let Err(refusal) = check_origin(&headers, host, app.access.tls) {
        return refusal.into_response();
    }
    let next = safe_next(&form.next).to_owned();
    let address = extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    let access = app.access.clone();
    let attempted = Instant::now();
    if let Err(wait) = access.limiter.attempt(&form.username, address, attempted) {
        let seconds = wait.as_secs().max(1);
        let message = format!(
            "Too many failed logins. Try again in {} minute(s).",
            seconds.div_ceil(60)
        );
        let mut response = login_page(StatusCode::TOO_MANY_REQUESTS, &next, &form.username, Some(&message));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let users = access.users.clone();
    let policy = access.policy;
    let (username, password) = (form.username.clone(), form.password);
    // On the one password thread (see `users::hasher`), one check at a time.
    let outcome = access
        .password_thread
        .run(move || match users.check_password(&username, &password)? {
            Some(user) => users.create_session(&user.name, policy).map(Some),
            None => Ok(None),
        })
        .await;
    match outcome {
        Ok(Ok(Some(new))) => {
            access.limiter.succeeded(&form.username, address, attempted);
            tracing::info!(user = %new.session.user, "login");
            let cookie = session_cookie(&new.token, policy.absolute, access.tls);
            see_other(&next, Some(cookie))
        }
        Ok(Ok(None)) => {
            tracing::info!(user = %form.username.escape_debug(), "failed login");
            login_page(StatusCode::UNAUTHORIZED, &next, &form.username, Some(WRONG_CREDENTIALS))
        }
        Ok(Err(err)) => ApiError::internal("cannot check the login", &err).into_response(),
        Err(err) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RejectReason::Unavailable,
            err.to_string(),
        )
        .into_response(),
    }
}

/// `POST /logout` (session and CSRF checked by the access layer): ends the
/// session, clears the cookie, and redirects to the login page.
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        let users = app.access.users.clone();
        match tokio::task::spawn_blocking(move || users.end_session(&token)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return ApiError::internal("cannot end the session", &err).into_response(),
            Err(err) => return ApiError::internal("cannot end the session", &err).into_response(),
        }
    }
    see_other("/login", Some(session_cookie("", Duration::ZERO, app.access.tls)))
}

/// The answer of `GET /api/v1/session`.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    /// The user's name; `null` for an API token.
    pub user: Option<String>,
    /// `viewer` or `admin`.
    pub role: &'static str,
    /// What state-changing requests send as `X-CSRF-Token`; `null` for an API token.
    pub csrf_token: Option<String>,
    /// When the session ends at the latest (RFC 3339); `null` for an API token.
    pub expires: Option<String>,
}

/// `GET /api/v1/session`: who the caller is, for the UI's scripts.
pub async fn session_info(caller: Caller) -> Json<SessionInfo> {
    Json(match caller {
        Caller::ApiToken => SessionInfo {
            user: None,
            role: "admin",
            csrf_token: None,
            expires: None,
        },
        Caller::User(session) => SessionInfo {
            expires: jiff::Timestamp::from_millisecond(session.expires_ms)
                .ok()
                .map(|time| time.to_string()),
            user: Some(session.user),
            role: session.role.as_str(),
            csrf_token: Some(session.csrf_token),
        },
    })
}

/// `Set-Cookie` for the session: `HttpOnly`, `SameSite=Strict`, `Path=/`,
/// `Max-Age` (0 clears it), and `Secure` under TLS. The token is hex, so it
/// needs no quoting.
pub fn session_cookie(token: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let mut cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        max_age.as_secs()
    );
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("lookout_session=; Max-Age=0"))
}

/// 303 to a local path, optionally setting a cookie.
fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let page = render(
            "login.html",
            context! { next => "/x\"><script>", username => "<b>", error => "e" },
        )
        .unwrap()
        .0;
        assert!(page.contains("x&quot;&gt;&lt;script&gt;\""), "{page}");
        assert!(!page.contains("<script>") && !page.contains("<b>"), "{page}");
        let stylesheet = format!("href=\"/assets/{}/css/login.css\"", super::super::ui::asset_version());
        assert!(page.contains(&stylesheet), "{page}");
    }

    #[test]
    fn cookies_carry_their_attributes() {
        let cookie = session_cookie("ab", Duration::from_secs(60), true);
        assert_eq!(
            cookie.to_str().unwrap(),
            "lookout_session=ab; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure"
        );
    }
}
