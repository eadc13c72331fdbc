//! The web UI as served: pages, assets and their caching, the facets and
//! dashboard endpoints the pages use, and live tail (server-sent events).
//! What the pages do in a browser is for the browser tests; these check what
//! the server promises them.

mod common;

use common::*;
use lookout_aggregator::users::{Role, UserStore};
use lookout_shared::parse::{Level, detect_level};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::{Instant, timeout};

const PAGES: [&str; 5] = ["/", "/search", "/hosts", "/hosts/web-1", "/alerts"];

const PASSWORD: &str = "a long enough password";

/// A server with a viewer `eve`, and the `Cookie` of her session.
async fn start() -> (tempfile::TempDir, Server, String) {
    let tmp = tempfile::tempdir().unwrap();
    let users = UserStore::open(tmp.path()).unwrap();
    users.add_user("eve", PASSWORD, Role::Viewer).unwrap();
    let server = Server::start(config(tmp.path(), "")).await;
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", server.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("username=eve&password={}&next=%2F", PASSWORD.replace(' ', "+")))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lookout_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    (tmp, server, cookie)
}

/// GET with the session cookie (pages need a session; assets need nothing).
async fn get_page(server: &Server, cookie: &str, path: &str) -> reqwest::Response {
    server
        .client
        .get(format!("{}{path}", server.base))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// GET without a token or session: only public paths (assets) answer.
async fn get_public(server: &Server, path: &str) -> reqwest::Response {
    server
        .client
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header on {}", response.url()))
}

/// The values of `attribute="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// Checks one page's HTML for what the Content-Security-Policy forbids and
/// returns the asset URLs it references.
fn check_page(path: &str, html: &str) -> Vec<String> {
    assert!(html.starts_with("<!doctype html>"), "{path}: not an HTML document");
    let lower = html.to_ascii_lowercase();
    // Every script is an external module with nothing inside the tag.
    let scripts: Vec<_> = lower.match_indices("<script").collect();
    assert!(!scripts.is_empty(), "{path}: no script");
    for (at, _) in scripts {
        let tag_end = at + lower[at..].find('>').unwrap();
        let tag = &lower[at..=tag_end];
        assert!(
            tag.contains("type=\"module\"") && tag.contains(" src=\""),
            "{path}: {tag} is not an external module"
        );
        assert!(
            lower[tag_end + 1..].starts_with("</script>"),
            "{path}: inline script content after {tag}"
        );
    }
    assert!(!lower.contains("style="), "{path}: has a style attribute");
    assert!(!lower.contains("<style"), "{path}: has a style element");
    assert!(!lower.contains("javascript:"), "{path}: has a javascript: URL");
    for (at, _) in lower.match_indices(" on") {
        let name: String = lower[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        assert!(
            !lower[at + 1 + name.len()..].starts_with('='),
            "{path}: inline event handler {name}"
        );
    }
    let mut assets: Vec<String> = ["src", "href"]
        .iter()
        .flat_map(|attribute| attribute_values(html, attribute))
        .filter(|url| url.starts_with("/assets/"))
        .map(str::to_owned)
        .collect();
    assets.sort();
    assets.dedup();
    assert!(
        assets.iter().any(|a| a.ends_with(".css")) && assets.iter().any(|a| a.ends_with(".js")),
        "{path}: {assets:?}"
    );
    assets
}

/// The relative imports (`from './x.js'`) of a module at `url`, as absolute paths.
fn imports(url: &str, js: &str) -> Vec<String> {
    let dir = &url[..url.rfind('/').unwrap()];
    js.match_indices("from './")
        .filter_map(|(at, _)| {
            let rest = &js[at + "from './".len()..];
            rest.find('\'').map(|end| format!("{dir}/{}", &rest[..end]))
        })
        .collect()
}

#[tokio::test]
async fn pages_are_html_with_module_scripts_and_nothing_inline() {
    let (_tmp, server, cookie) = start().await;
    for path in PAGES {
        let response = get_page(&server, &cookie, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8", "{path}");
        assert_eq!(header(&response, "cache-control"), "no-store", "{path}");
        let csp = header(&response, "content-security-policy").to_owned();
        // The pages' own, stricter policy, not replaced by the server-wide one.
        assert_eq!(csp, lookout_aggregator::http::ui::CONTENT_SECURITY_POLICY, "{path}");
        let html = response.text().await.unwrap();
        check_page(path, &html);
        assert!(html.contains("id=\"user-menu\""), "{path}: no #user-menu");
    }
    // The elements the browser tests rely on are in the pages.
    let search = get_page(&server, &cookie, "/search").await.text().await.unwrap();
    for id in [
        "query",
        "search-form",
        "result-count",
        "histogram",
        "results",
        "context",
        "live-toggle",
        "filter-host",
        "filter-level",
        "filter-source",
        "load-more",
        "empty-state",
    ] {
        assert!(search.contains(&format!("id=\"{id}\"")), "search page: no #{id}");
    }
    let alerts = get_page(&server, &cookie, "/alerts").await.text().await.unwrap();
    for id in ["alerts-firing", "silence-form", "silences"] {
        assert!(alerts.contains(&format!("id=\"{id}\"")), "alerts page: no #{id}");
    }
    let hosts = get_page(&server, &cookie, "/hosts").await.text().await.unwrap();
    assert!(hosts.contains("id=\"hosts-table\""));
    server.stop().await;
}

#[tokio::test]
async fn assets_are_served_with_their_type_and_cached_for_a_year() {
    let (_tmp, server, cookie) = start().await;
    // Every asset the pages reference, and every module those import.
    let mut pending: Vec<String> = Vec::new();
    for path in PAGES {
        let html = get_page(&server, &cookie, path).await.text().await.unwrap();
        pending.extend(check_page(path, &html));
    }
    let mut seen = BTreeSet::new();
    while let Some(url) = pending.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let response = get_public(&server, &url).await;
        assert_eq!(response.status(), 200, "{url}");
        let expected = match url.rsplit_once('.').unwrap().1 {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other} for {url}"),
        };
        assert_eq!(header(&response, "content-type"), expected, "{url}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{url}");
        let body = response.text().await.unwrap();
        assert!(!body.is_empty(), "{url} is empty");
        if url.ends_with(".js") {
            assert!(!body.contains("innerHTML"), "{url} uses innerHTML");
            pending.extend(imports(&url, &body));
        }
    }
    for module in [
        "api.js",
        "chart.js",
        "chart-math.js",
        "search.js",
        "hosts.js",
        "host.js",
        "alerts.js",
    ] {
        assert!(
            seen.iter().any(|url| url.ends_with(&format!("/js/{module}"))),
            "{module} never loaded"
        );
    }

    // All assets share one version; another version still works but is not kept.
    let any_js = seen.iter().find(|u| u.ends_with("/js/api.js")).unwrap().clone();
    let version = any_js.split('/').nth(2).unwrap().to_owned();
    assert!(
        seen.iter().all(|u| u.split('/').nth(2) == Some(version.as_str())),
        "{seen:?}"
    );
    let old = get_public(&server, "/assets/0000000000000000/js/api.js").await;
    assert_eq!(old.status(), 200);
    assert_eq!(header(&old, "cache-control"), "no-cache");

    for missing in [
        format!("/assets/{version}/js/nope.js"),
        format!("/assets/{version}/search.html"),
        format!("/assets/{version}/../Cargo.toml"),
        "/assets/".to_owned(),
    ] {
        let response = get_public(&server, &missing).await;
        assert_eq!(response.status(), 404, "{missing}");
    }
    server.stop().await;
}

/// Lines on two hosts: web-1 has 3 errors and 2 info lines, web-2 1 warning.
async fn ingest_levels(server: &Server) -> i64 {
    let base = now_ms() - 60_000;
    let web1 = [
        "ERROR disk full on /var",
        "ERROR disk full on /var again",
        "INFO request served",
        "ERROR cannot write",
        "INFO request served again",
    ];
    let lines: Vec<Line<'_>> = web1
        .iter()
        .enumerate()
        .map(|(i, message)| Line {
            message,
            read_at_ms: base + i as i64,
        })
        .collect();
    server
        .ingest_ok(&batch(
            "web-1",
            vec![chunk(&stream("web-1", 1), "/var/log/app.log", 0, &lines)],
        ))
        .await;
    let warn = [Line {
        message: "WARN slow disk",
        read_at_ms: base,
    }];
    server
        .ingest_ok(&batch(
            "web-2",
            vec![chunk(&stream("web-2", 1), "/var/log/db.log", 0, &warn)],
        ))
        .await;
    for line in web1.iter().chain(["WARN slow disk"].iter()) {
        assert!(detect_level(line).is_some(), "{line}: the test needs a detected level");
    }
    assert_eq!(detect_level("WARN slow disk"), Some(Level::Warn));
    base
}

fn facet_counts(answer: &Value) -> Vec<(String, u64)> {
    answer["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["value"].as_str().unwrap().to_owned(), v["count"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn facets_count_matching_lines_per_value() {
    let (_tmp, server, _) = start().await;
    ingest_levels(&server).await;
    let hosts = server.get_ok("/api/v1/logs/facets?field=host").await;
    assert_eq!(hosts["field"], "host");
    assert_eq!(facet_counts(&hosts), [("web-1".to_owned(), 5), ("web-2".to_owned(), 1)]);
    let levels = server.get_ok("/api/v1/logs/facets?field=level&host=web-1").await;
    assert_eq!(facet_counts(&levels), [("error".to_owned(), 3), ("info".to_owned(), 2)]);
    // The search's filters apply: words, level, time.
    let disk = server.get_ok("/api/v1/logs/facets?field=host&q=disk").await;
    assert_eq!(facet_counts(&disk), [("web-1".to_owned(), 2), ("web-2".to_owned(), 1)]);
    let sources = server.get_ok("/api/v1/logs/facets?field=source&level=warn").await;
    assert_eq!(facet_counts(&sources), [("/var/log/db.log".to_owned(), 1)]);
    let future = now_ms() + 3_600_000;
    let none = server
        .get_ok(&format!("/api/v1/logs/facets?field=host&start={future}"))
        .await;
    assert_eq!(facet_counts(&none), []);
    assert_eq!(none["other"], 0);

    for (query, expected) in [
        ("field=message", "`message` is not one of host, source, level"),
        ("", "parameter `field`"),
        ("field=host&q=%22open", "query syntax error at position"),
        ("field=host&colour=red", "unknown parameter `colour`"),
    ] {
        let answer = server.get(&format!("/api/v1/logs/facets?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {answer:?}");
        assert!(answer.error().contains(expected), "{query}: {}", answer.error());
    }
    assert_eq!(
        server.get_with("/api/v1/logs/facets?field=host", None).await.status,
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn dashboards_are_served_as_json() {
    let (_tmp, server, _) = start().await;
    let answer = server.get("/api/v1/dashboards/host").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert!(answer.body["title"].is_string());
    let panels = answer.body["panels"].as_array().unwrap();
    let metrics: Vec<&str> = panels.iter().map(|p| p["metric"].as_str().unwrap()).collect();
    for wanted in [
        "cpu.usage_percent",
        "memory.used_percent",
        "fs.used_percent",
        "net.rx_bytes_per_sec",
    ] {
        assert!(metrics.contains(&wanted), "{wanted} not in {metrics:?}");
    }
    for panel in panels {
        assert!(panel["title"].is_string(), "{panel}");
        let unit = panel["unit"].as_str().unwrap();
        assert!(
            ["percent", "bytes", "bytes_per_sec", "number"].contains(&unit),
            "{panel}"
        );
        assert!(panel["split_by"].is_null() || panel["split_by"].is_string(), "{panel}");
    }
    let fs = panels.iter().find(|p| p["metric"] == "fs.used_percent").unwrap();
    assert_eq!(fs["split_by"], "mount");
    assert_eq!(server.get("/api/v1/dashboards/nope").await.status, 404);
    assert_eq!(server.get_with("/api/v1/dashboards/host", None).await.status, 401);
    server.stop().await;
}

/// Reads server-sent events from a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next complete event block (comments included), waiting until `deadline`.
    async fn next(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return Some(block);
            }
            let chunk = timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.response.chunk(),
            )
            .await
            .ok()?
            .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `data:` event's JSON, skipping comments, until `deadline`.
    async fn next_data(&mut self, deadline: Instant) -> Option<Value> {
        while let Some(block) = self.next(deadline).await {
            if let Some(data) = block.lines().find_map(|line| line.strip_prefix("data: ")) {
                assert!(!block.contains("event:"), "unexpected event {block}");
                return Some(serde_json::from_str(data).unwrap());
            }
        }
        None
    }
}

async fn subscribe(server: &Server, query: &str) -> Events {
    let response = server
        .client
        .get(format!("{}/api/v1/logs/tail?{query}", server.base))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    // The opening comment says the subscription is in place.
    let first = events.next(Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(first.as_deref(), Some(": live tail started"));
    events
}

#[tokio::test]
async fn live_tail_streams_new_matching_lines_only() {
    let (_tmp, server, _) = start().await;
    ingest_levels(&server).await; // before subscribing: never streamed
    let mut tail = subscribe(&server, &format!("q={}&host=web-1", enc("disk \"is full\""))).await;
    let mut everything = subscribe(&server, "").await;

    let now = now_ms();
    let other_host = [Line {
        message: "disk is full",
        read_at_ms: now,
    }];
    server
        .ingest_ok(&batch(
            "web-2",
            vec![chunk(&stream("web-2", 2), "/var/log/x.log", 0, &other_host)],
        ))
        .await;
    let lines = [
        Line {
            message: "ERROR the disks are full",
            read_at_ms: now,
        },
        Line {
            message: "ERROR Disk /data is FULL now",
            read_at_ms: now + 1,
        },
    ];
    server
        .ingest_ok(&batch(
            "web-1",
            vec![chunk(&stream("web-1", 2), "/var/log/y.log", 0, &lines)],
        ))
        .await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let hit = tail.next_data(deadline).await.expect("no matching line within 10 s");
    assert_eq!(hit["message"], "ERROR Disk /data is FULL now");
    assert_eq!(hit["host"], "web-1");
    assert_eq!(hit["source"], "/var/log/y.log");
    assert_eq!(hit["level"], "error");
    assert!(hit["id"].as_str().unwrap().starts_with(&stream("web-1", 2)));
    // The words the tail's query found are marked (in characters): Disk, is, FULL.
    assert_eq!(hit["marks"], serde_json::json!([[6, 10], [17, 19], [20, 24]]));
    // The same record as the search finds, whose query marks its own word.
    let found = server.get_ok("/api/v1/logs/search?q=data&host=web-1").await;
    let mut found = found["hits"][0].clone();
    assert_eq!(found["marks"], serde_json::json!([[12, 16]]));
    let mut hit = hit;
    found.as_object_mut().unwrap().remove("marks");
    hit.as_object_mut().unwrap().remove("marks");
    assert_eq!(found, hit);

    // Without a filter, every new line arrives, in commit order.
    let mut messages = Vec::new();
    for _ in 0..3 {
        let hit = everything
            .next_data(deadline)
            .await
            .expect("line missing from the unfiltered tail");
        messages.push(hit["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        messages,
        [
            "disk is full",
            "ERROR the disks are full",
            "ERROR Disk /data is FULL now"
        ]
    );
    // A duplicate re-send is not new.
    server
        .ingest_ok(&batch(
            "web-1",
            vec![chunk(&stream("web-1", 2), "/var/log/y.log", 0, &lines)],
        ))
        .await;
    let quiet = everything.next_data(Instant::now() + Duration::from_millis(500)).await;
    assert!(quiet.is_none(), "a duplicate was streamed: {quiet:?}");
    drop(tail);
    drop(everything);
    timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server did not stop after the tail clients left");
}

#[tokio::test]
async fn live_tail_refuses_what_search_refuses() {
    let (_tmp, server, _) = start().await;
    for (q, expected) in [
        ("fields:x", "`fields:` needs a name"),
        ("offset:[a TO 2]", "whole number"),
        ("\"open", "query syntax error at position"),
    ] {
        let answer = server.get(&format!("/api/v1/logs/tail?q={}", enc(q))).await;
        assert_eq!(answer.status, 400, "{q}: {answer:?}");
        assert!(answer.error().contains(expected), "{q}: {}", answer.error());
    }
    assert_eq!(server.get("/api/v1/logs/tail?levle=error").await.status, 400);
    assert_eq!(server.get_with("/api/v1/logs/tail", None).await.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn live_tails_are_bounded_and_a_closed_one_frees_its_slot() {
    let (_tmp, server, _) = start().await;
    let mut open = Vec::new();
    for _ in 0..lookout_aggregator::http::tail::MAX_TAILS {
        open.push(subscribe(&server, "").await);
    }
    let refused = server.get("/api/v1/logs/tail").await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(
        refused.error().contains("live tails are already open"),
        "{}",
        refused.error()
    );
    open.pop();
    // The server frees the slot once it sees the client gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = server
            .client
            .get(format!("{}/api/v1/logs/tail", server.base))
            .header("Authorization", format!("Bearer {API_TOKEN}"))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(Instant::now() < deadline, "the closed tail's slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server did not stop after the tail clients left");
}
