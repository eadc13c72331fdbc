//! Access control as a browser and an API client see it: the login page and
//! its cookie, wrong passwords and the rate limit, 401 for the API and a
//! redirect to the login for pages without a session, CSRF, open redirects,
//! session expiry, logout, and the security headers.

mod common;

use common::{API_TOKEN, Line, Server, batch, chunk, config, enc, now_ms, stream};
use lookout_aggregator::users::{Role, UserStore};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use std::path::Path;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

/// Every read API route; the context route names the one line
/// [`ingest_one_line`] stores.
const API_ROUTES: &[&str] = &[
    "/api/v1/logs/search",
    "/api/v1/logs/histogram",
    "/api/v1/logs/context?id=STREAM-0",
    "/api/v1/hosts",
    "/api/v1/metrics/series?host=web-1&name=cpu.usage_percent",
    "/metrics",
];

/// A server with users `alice` (viewer) and `root` (admin) created through the library.
async fn server_with_users(dir: &Path, extra: &str) -> Server {
    let users = UserStore::open(&dir.join("data")).unwrap();
    users.add_user("alice", PASSWORD, Role::Viewer).unwrap();
    users.add_user("root", PASSWORD, Role::Admin).unwrap();
    Server::start(config(&dir.join("data"), extra)).await
}

/// Stores one log line of host `web-1` and returns the id of its stream.
async fn ingest_one_line(server: &Server) -> String {
    let id = stream("web-1", 1);
    let line = Line {
        message: "GET /index.html 200",
        read_at_ms: now_ms(),
    };
    server
        .ingest_ok(&batch("web-1", vec![chunk(&id, "/var/log/app.log", 0, &[line])]))
        .await;
    id
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    lookout_shared::tls::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn read(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

async fn post_login(server: &Server, user: &str, password: &str, next: &str) -> Answer {
    let body = format!("username={}&password={}&next={}", enc(user), enc(password), enc(next));
    let response = browser()
        .post(format!("{}/login", server.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    read(response).await
}

/// The `Set-Cookie` header for the session.
fn set_cookie(answer: &Answer) -> String {
    answer
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("lookout_session="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", answer.headers))
}

/// Logs in and returns the `Cookie` header value to send.
async fn log_in(server: &Server, user: &str) -> String {
    let answer = post_login(server, user, PASSWORD, "/").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let cookie = set_cookie(&answer);
    cookie.split(';').next().unwrap().to_owned()
}

async fn get(server: &Server, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = browser().get(format!("{}{path}", server.base));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    read(request.send().await.unwrap()).await
}

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_str(&answer.body).unwrap_or_else(|err| panic!("not JSON ({err}): {}", answer.body))
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_that_opens_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;

    let page = get(&server, "/login?next=%2Fsearch", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<form method=\"post\" action=\"/login\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("name=\"password\" type=\"password\""),
        "{}",
        page.body
    );
    // The stylesheet the login page links to is served without a session.
    let href = page
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let css = get(&server, href, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));

    let answer = post_login(&server, "alice", PASSWORD, "/search?q=error").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.headers[LOCATION], "/search?q=error");
    let cookie = set_cookie(&answer);
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for expected in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(attributes.contains(&expected), "{expected} missing from {cookie}");
    }
    assert!(
        !attributes.contains(&"Secure"),
        "plain HTTP: no Secure flag in {cookie}"
    );
    let token = attributes[0].strip_prefix("lookout_session=").unwrap();
    assert!(token.len() >= 32, "a token of at least 128 bits: {token}");

    let cookie = attributes[0];
    let stream = ingest_one_line(&server).await;
    for route in API_ROUTES {
        let route = route.replace("STREAM", &stream);
        let answer = get(&server, &route, Some(cookie)).await;
        assert_eq!(answer.status, StatusCode::OK, "{route}: {}", answer.body);
    }
    let home = get(&server, "/", Some(cookie)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("id=\"query\""), "the search page: {}", home.body);

    let session = json(&get(&server, "/api/v1/session", Some(cookie)).await);
    assert_eq!(session["user"], "alice");
    assert_eq!(session["role"], "viewer");
    assert!(session["csrf_token"].as_str().unwrap().len() >= 32, "{session}");
    assert!(session["expires"].as_str().unwrap().ends_with('Z'), "{session}");

    let admin = json(&get(&server, "/api/v1/session", Some(&log_in(&server, "root").await)).await);
    assert_eq!(admin["role"], "admin");
    server.stop().await;
}

#[tokio::test]
async fn wrong_credentials_get_401_and_the_same_words_for_any_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;
    let wrong_password = post_login(&server, "alice", "not the password", "/").await;
    let unknown_user = post_login(&server, "mallory", PASSWORD, "/").await;
    for answer in [&wrong_password, &unknown_user] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
        assert!(answer.body.contains("Wrong user name or password."), "{}", answer.body);
        assert!(answer.headers.get(SET_COOKIE).is_none());
    }
    // The pages differ only in the name typed back into the form.
    assert_eq!(
        wrong_password.body.replace("alice", "X"),
        unknown_user.body.replace("mallory", "X")
    );
    server.stop().await;
}

#[tokio::test]
async fn the_sixth_attempt_after_five_failures_is_429_even_with_the_right_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;
    for attempt in 1..=5 {
        let answer = post_login(&server, "alice", "guess number one", "/").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let blocked = post_login(&server, "alice", PASSWORD, "/").await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS, "{}", blocked.body);
    let retry_after: u64 = blocked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert!(blocked.headers.get(SET_COOKIE).is_none());
    assert!(blocked.body.contains("Too many failed logins"), "{}", blocked.body);
    server.stop().await;
}

#[tokio::test]
async fn without_credentials_the_api_is_401_and_pages_redirect_to_the_login() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;
    for route in API_ROUTES.iter().chain(&["/api/v1/session", "/api/v1/alerts"]) {
        let answer = get(&server, route, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{route}: {}", answer.body);
        assert!(json(&answer)["error"].as_str().unwrap().contains("log in"), "{route}");
        let forged = get(&server, route, Some("lookout_session=00ff")).await;
        assert_eq!(
            forged.status,
            StatusCode::UNAUTHORIZED,
            "{route} with a made-up session"
        );
    }
    for (page, next) in [
        ("/", "%2F"),
        ("/search", "%2Fsearch"),
        ("/hosts/web-1", "%2Fhosts%2Fweb-1"),
        ("/alerts", "%2Falerts"),
        ("/search?q=level%3Aerror", "%2Fsearch%3Fq%3Dlevel%253Aerror"),
    ] {
        let answer = get(&server, page, None).await;
        assert_eq!(answer.status, StatusCode::FOUND, "{page}");
        assert_eq!(
            answer.headers[LOCATION],
            format!("/login?next={next}").as_str(),
            "{page}"
        );
    }
    // Logging in from the redirect lands on the page first asked for.
    let back = post_login(&server, "alice", PASSWORD, "/hosts/web-1").await;
    assert_eq!(back.headers[LOCATION], "/hosts/web-1");
    assert_eq!(get(&server, "/healthz", None).await.status, StatusCode::OK);
    // The API token still works alone, on the API and on pages.
    let token = server.get_with("/api/v1/hosts", Some(API_TOKEN)).await;
    assert_eq!(token.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn state_changing_requests_with_a_session_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;
    let cookie = log_in(&server, "alice").await;
    let session = json(&get(&server, "/api/v1/session", Some(&cookie)).await);
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();
    let client = browser();
    let post = |path: &str| client.post(format!("{}{path}", server.base)).header("Cookie", &cookie);

    // A JSON API call: the header is required.
    let without = read(post("/api/v1/session").send().await.unwrap()).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN, "{}", without.body);
    assert!(
        json(&without)["error"].as_str().unwrap().contains("CSRF"),
        "{}",
        without.body
    );
    let wrong = read(
        post("/api/v1/session")
            .header("X-CSRF-Token", "0".repeat(64))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let with = read(
        post("/api/v1/session")
            .header("X-CSRF-Token", &csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        with.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "past the CSRF check: {}",
        with.body
    );
    // Bearer-token calls carry no ambient credentials and need no CSRF token.
    let bearer = client
        .post(format!("{}/api/v1/session", server.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::METHOD_NOT_ALLOWED);

    // An HTML form: the `csrf` field, and no foreign Origin.
    let form = |body: String| {
        post("/logout")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let no_field = read(form(String::new()).send().await.unwrap()).await;
    assert_eq!(no_field.status, StatusCode::FORBIDDEN);
    let foreign = read(
        form(format!("csrf={csrf}"))
            .header("Origin", "http://evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{}", foreign.body);
    assert_eq!(
        get(&server, "/api/v1/hosts", Some(&cookie)).await.status,
        StatusCode::OK,
        "still logged in"
    );

    let own_origin = server.base.clone();
    let logout = read(
        form(format!("csrf={csrf}"))
            .header("Origin", own_origin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER, "{}", logout.body);
    assert_eq!(logout.headers[LOCATION], "/login");
    assert!(set_cookie(&logout).contains("Max-Age=0"), "the cookie is cleared");
    // The old cookie no longer opens anything.
    assert_eq!(
        get(&server, "/api/v1/hosts", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(&server, "/", Some(&cookie)).await.status, StatusCode::FOUND);
    server.stop().await;
}

#[tokio::test]
async fn next_never_leads_off_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;
    for next in [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "evil.example",
    ] {
        let answer = post_login(&server, "alice", PASSWORD, next).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(answer.headers[LOCATION], "/", "{next}");
        let page = get(&server, &format!("/login?next={}", enc(next)), None).await;
        assert!(!page.body.contains("evil"), "{next}: {}", page.body);
    }
    server.stop().await;
}

/// Polls the API with `cookie` until it answers 401; panics after 15 s.
async fn wait_for_401(server: &Server, cookie: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = get(server, "/api/v1/hosts", Some(cookie)).await.status;
        if status == StatusCode::UNAUTHORIZED {
            return;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "the session did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_idle_session_expires() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "[sessions]\nidle_timeout = \"1s\"\n").await;
    let cookie = log_in(&server, "alice").await;
    assert_eq!(
        get(&server, "/api/v1/hosts", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // Idle time is the point here, and any request would reset it: wait it out.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let answer = get(&server, "/api/v1/hosts", Some(&cookie)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(get(&server, "/", Some(&cookie)).await.status, StatusCode::FOUND);
    server.stop().await;
}

#[tokio::test]
async fn a_session_in_use_still_ends_at_its_absolute_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[sessions]\nidle_timeout = \"1s\"\nabsolute_timeout = \"2s\"\n";
    let server = server_with_users(dir.path(), extra).await;
    let answer = post_login(&server, "alice", PASSWORD, "/").await;
    assert!(set_cookie(&answer).contains("Max-Age=2"), "{}", set_cookie(&answer));
    let cookie = log_in(&server, "alice").await;
    // Used every 100 ms, it never idles out; only the absolute expiry ends it.
    wait_for_401(&server, &cookie).await;
    server.stop().await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;
    let cookie = log_in(&server, "alice").await;
    for (path, cookie) in [
        ("/login", None),
        ("/", None),
        ("/", Some(cookie.as_str())),
        ("/api/v1/hosts", Some(cookie.as_str())),
        ("/api/v1/hosts", None),
        ("/healthz", None),
    ] {
        let answer = get(&server, path, cookie).await;
        let header = |name: &str| {
            answer.headers.get(name).map_or_else(
                || panic!("{path}: no {name} in {:?}", answer.headers),
                |value| value.to_str().unwrap().to_owned(),
            )
        };
        let csp = header("content-security-policy");
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|directive| directive.starts_with("script-src"))
            .unwrap_or_else(|| panic!("no script-src in {csp}"));
        assert_eq!(script_src, "script-src 'self'");
        assert!(
            !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("referrer-policy"), "same-origin");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert!(
            answer.headers.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
    server.stop().await;
}

/// A client whose connections come from `address` (a loopback address of
/// its own, so that each address has its own attempts).
fn client_from(address: std::net::IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address)
        .build()
        .unwrap()
}

/// A wrong login for `user`.
async fn wrong_login(client: &reqwest::Client, base: &str, user: &str) -> StatusCode {
    client
        .post(format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", base)
        .body(format!("username={user}&password=wrong-password-1234&next=%2F"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_is_counted_before_hashing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_users(tmp.path(), "").await;

    // 60 at once for one name from one address: five are checked, the rest refused.
    let home = client_from("127.0.0.1".parse().unwrap());
    let base = server.base.clone();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let (client, base) = (home.clone(), base.clone());
        attempts.spawn(async move { wrong_login(&client, &base, "alice").await });
    }
    let statuses = attempts.join_all().await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (5, 55), "{statuses:?}");

    // 1000 at once from 200 addresses, and the memory they take:
    // tests/tests/login_flood.rs, against the binary.
    server.stop().await;
}

/// A signed-in user's JSON call with the session's CSRF token.
async fn call(
    server: &Server,
    cookie: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Answer {
    let session = json(&get(server, "/api/v1/session", Some(cookie)).await);
    let mut request = browser()
        .request(method, format!("{}{path}", server.base))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", session["csrf_token"].as_str().unwrap());
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn saved_searches_are_each_users_own_unless_shared() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path(), "").await;
    let alice = log_in(&server, "alice").await;
    let root = log_in(&server, "root").await;
    let save = |cookie: &str, body: serde_json::Value| {
        let cookie = cookie.to_owned();
        let server = &server;
        async move { call(server, &cookie, reqwest::Method::POST, "/api/v1/searches", Some(body)).await }
    };
    let mine = save(
        &alice,
        serde_json::json!({"name": "5xx by path", "q": "status:>=500 | stats count() by path", "range": "24h"}),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.body);
    let mine = json(&mine)["id"].as_i64().unwrap();
    let team = save(
        &root,
        serde_json::json!({"name": "errors", "q": "level:error", "host": "web-1", "shared": true}),
    )
    .await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let team = json(&team)["id"].as_i64().unwrap();
    assert_eq!(
        save(&root, serde_json::json!({"name": "private", "q": "x"}))
            .await
            .status,
        StatusCode::CREATED
    );

    let listed = |cookie: &str| {
        let cookie = cookie.to_owned();
        let server = &server;
        async move {
            let answer = json(&get(server, "/api/v1/searches", Some(&cookie)).await);
            answer["searches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap().to_owned(),
                        s["owner"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let own_and_shared = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(n, o)| (n.to_string(), o.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(&alice).await,
        own_and_shared(&[("5xx by path", "alice"), ("errors", "root")])
    );
    assert_eq!(
        listed(&root).await,
        own_and_shared(&[("errors", "root"), ("private", "root")])
    );

    // What cannot be saved is refused with the reason.
    for (body, status, needle) in [
        (
            serde_json::json!({"name": "5xx by path", "q": "x"}),
            StatusCode::CONFLICT,
            "exists already",
        ),
        (
            serde_json::json!({"name": "", "q": "x"}),
            StatusCode::BAD_REQUEST,
            "`name`",
        ),
        (
            serde_json::json!({"name": "bad", "q": "\"open"}),
            StatusCode::BAD_REQUEST,
            "position",
        ),
        (
            serde_json::json!({"name": "bad", "q": "x", "range": "2h"}),
            StatusCode::BAD_REQUEST,
            "`range`",
        ),
        (
            serde_json::json!({"name": "bad", "owner": "root"}),
            StatusCode::BAD_REQUEST,
            "owner",
        ),
    ] {
        let answer = save(&alice, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert!(answer.body.contains(needle), "{body}: {}", answer.body);
    }

    // A search becomes a rules-file entry of the kind its query fits.
    let rule = json(
        &get(
            &server,
            &format!("/api/v1/searches/{team}/rule?kind=error_rate"),
            Some(&alice),
        )
        .await,
    );
    assert_eq!(rule["kind"], "error_rate");
    assert!(
        rule["toml"]
            .as_str()
            .unwrap()
            .contains(r#"query = "(level:error) host:\"web-1\"""#),
        "{rule}"
    );
    let rule = json(&get(&server, &format!("/api/v1/searches/{mine}/rule"), Some(&alice)).await);
    assert_eq!(rule["kind"], "log_stats");
    assert_eq!(
        get(&server, &format!("/api/v1/searches/{mine}/rule"), Some(&root))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Only the owner removes a private one; an admin also a shared one.
    let remove = |cookie: &str, id: i64| {
        let cookie = cookie.to_owned();
        let server = &server;
        async move {
            call(
                server,
                &cookie,
                reqwest::Method::DELETE,
                &format!("/api/v1/searches/{id}"),
                None,
            )
            .await
            .status
        }
    };
    assert_eq!(remove(&root, mine).await, StatusCode::NOT_FOUND);
    assert_eq!(remove(&alice, team).await, StatusCode::NOT_FOUND);
    assert_eq!(remove(&root, team).await, StatusCode::NO_CONTENT);
    assert_eq!(remove(&alice, mine).await, StatusCode::NO_CONTENT);
    assert!(listed(&alice).await.is_empty());
    assert_eq!(
        get(&server, "/api/v1/searches", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}
