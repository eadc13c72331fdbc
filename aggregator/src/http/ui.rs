//! The web UI: HTML pages, their CSS and JavaScript, and the dashboard
//! definitions, all compiled into the binary.
//!
//! | route | what | cache |
//! |---|---|---|
//! | `GET /`, `/search` | log search | `no-store` |
//! | `GET /hosts`, `/hosts/{name}` | hosts table, one host's charts | `no-store` |
//! | `GET /alerts` | alerts, silences, rules | `no-store` |
//! | `GET /assets/{version}/{path}` | CSS, JS (ES modules), icon | a year, `immutable` |
//! | `GET /api/v1/dashboards/{name}` | `dashboards/<name>.json` (API token) | `no-cache` |
//!
//! **Embedding.** Files are embedded with `include_bytes!` through a small
//! table ([`ASSETS`]) rather than `include_dir` or `rust-embed`: there are a
//! dozen files, the table costs no dependency and no build script, and a unit
//! test fails when a file under `aggregator/ui/` is missing from it.
//!
//! **Caching.** The asset URL carries a version: the first 16 hex digits of
//! an XXH3 hash over every asset's name and bytes, computed once at startup.
//! Any change to any asset changes every URL, so browsers may keep assets a
//! year (`max-age=31536000, immutable`), and relative `import`s between
//! modules stay inside the same version without a bundler. A request for
//! another version (a page from before an upgrade) gets today's file with
//! `no-cache`, so it works and is not kept under the old name. Pages are
//! `no-store`: they name the current version.
//!
//! **Security.** Pages and assets hold no data, so they need no token; the
//! JavaScript reads everything through the API (`ui/js/api.js`), which does.
//! Pages are sent with a Content-Security-Policy that allows scripts, styles
//! and connections only from this origin and no inline script or style, so
//! the pages are written without any; data is always set as text.

use super::error::ApiError;
use crate::metrics::RejectReason;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::LazyLock;

/// Where asset URLs start; the version follows.
pub const ASSETS_PREFIX: &str = "/assets";

/// Content-Security-Policy of every page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
pub struct Asset {
    /// Path under `aggregator/ui/`, as in the URL after the version.
    pub path: &'static str,
    /// The file.
    pub bytes: &'static [u8],
}

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(Asset { path: $path, bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)) }),*]
    };
}

/// Every asset (everything under `aggregator/ui/` except the pages and tests).
pub static ASSETS: &[Asset] = embed![
    "css/app.css",
    "css/login.css",
    "img/icon.svg",
    "js/alerts.js",
    "js/api.js",
    "js/chart-math.js",
    "js/chart.js",
    "js/dom.js",
    "js/host.js",
    "js/hosts.js",
    "js/query.js",
    "js/saved.js",
    "js/search.js",
];

/// The pages: name, the top bar's section it belongs to, and its HTML
/// (`{{topbar}}` stands for `ui/topbar.html`, `{{assets}}` for the
/// versioned asset prefix).
static PAGES: &[(&str, &str, &str)] = &[
    ("search", "search", include_str!("../../ui/search.html")),
    ("hosts", "hosts", include_str!("../../ui/hosts.html")),
    ("host", "hosts", include_str!("../../ui/host.html")),
    ("alerts", "alerts", include_str!("../../ui/alerts.html")),
];

/// The top bar every page shares; its link to the page's section is marked current.
const TOPBAR: &str = include_str!("../../ui/topbar.html");

/// The dashboard definitions (`dashboards/*.json`).
static DASHBOARDS: &[(&str, &str)] = &[("host", include_str!("../../../dashboards/host.json"))];

/// What is computed once: the version and the pages with it filled in.
struct Built {
    version: String,
    pages: Vec<(&'static str, String)>,
}

static BUILT: LazyLock<Built> = LazyLock::new(|| {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for asset in ASSETS {
        hasher.update(asset.path.as_bytes());
        hasher.update(&[0]);
        hasher.update(&(asset.bytes.len() as u64).to_le_bytes());
        hasher.update(asset.bytes);
    }
    let version = format!("{:016x}", hasher.digest());
    let prefix = format!("{ASSETS_PREFIX}/{version}");
    let pages = PAGES
        .iter()
        .map(|(name, section, html)| {
            let current = format!("data-section=\"{section}\"");
            let topbar = TOPBAR.replace(&current, &format!("{current} aria-current=\"page\""));
            let html = html
                .replace("{{topbar}}", topbar.trim_end())
                .replace("{{assets}}", &prefix);
            (*name, html)
        })
        .collect();
    Built { version, pages }
});

/// The current asset version (part of every asset URL).
pub fn asset_version() -> &'static str {
    &BUILT.version
}

/// The routes of the pages (behind the login session, see `http::access`).
pub fn pages<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(search_page))
        .route("/search", get(search_page))
        .route("/hosts", get(hosts_page))
        .route("/hosts/{name}", get(host_page))
        .route("/alerts", get(alerts_page))
}

/// The route of the assets (public: the login page needs its stylesheet).
pub fn assets<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/assets/{version}/{*path}", get(asset))
}

async fn search_page() -> Response {
    page("search")
}

async fn hosts_page() -> Response {
    page("hosts")
}

async fn host_page() -> Response {
    // The script reads the host's name from the path.
    page("host")
}

async fn alerts_page() -> Response {
    page("alerts")
}

fn page(name: &str) -> Response {
    let Some((_, html)) = BUILT.pages.iter().find(|(page, _)| *page == name) else {
        return not_found(name);
    };
    let mut response = html.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// One asset: long-lived under the current version, `no-cache` under another.
async fn asset(Path((version, path)): Path<(String, String)>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) else {
        return not_found(&path);
    };
    let cache = if version == BUILT.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    static_response(asset.bytes, content_type(asset.path), cache)
}

/// `GET /api/v1/dashboards/{name}`: a dashboard definition.
pub async fn dashboard(Path(name): Path<String>) -> Response {
    match DASHBOARDS.iter().find(|(dashboard, _)| *dashboard == name) {
        Some((_, json)) => static_response(json.as_bytes(), "application/json", "no-cache"),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            RejectReason::NotFound,
            format!("no dashboard named {name:?}"),
        )
        .into_response(),
    }
}

fn static_response(bytes: &'static [u8], content_type: &'static str, cache: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 3] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (headers, bytes).into_response()
}

fn not_found(what: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        RejectReason::NotFound,
        format!("no UI file {what:?}"),
    )
    .into_response()
}

/// The media type of an asset, by extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every file under `ui/` is embedded: a page, an asset, or a test.
    #[test]
    fn every_ui_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut stack = vec![root.clone()];
        let mut missing = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                let page =
                    relative == "topbar.html" || PAGES.iter().any(|(name, _, _)| relative == format!("{name}.html"));
                if !page && !ASSETS.iter().any(|a| a.path == relative) {
                    missing.push(relative);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "add these to ASSETS or PAGES in http/ui.rs: {missing:?}"
        );
    }

    #[test]
    fn dashboards_are_valid_json_and_types_known() {
        for (name, json) in DASHBOARDS {
            let value: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(value["panels"].as_array().is_some_and(|p| !p.is_empty()), "{name}");
        }
        for asset in ASSETS {
            assert_ne!(content_type(asset.path), "application/octet-stream", "{}", asset.path);
        }
        assert_eq!(asset_version().len(), 16);
    }
}
