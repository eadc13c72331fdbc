//! HTTPS end to end: the aggregator serves `[tls]` with a certificate signed
//! by a private CA (made here with the real `openssl` CLI), answers over
//! HTTP/2 (negotiated by ALPN) with `Strict-Transport-Security`, and an agent
//! that trusts that CA through `ca_file` ships lines that become searchable.
//! An agent without the CA refuses the certificate instead of sending. A
//! renewed certificate is served after SIGHUP, without a restart.

use lookout_tests::certs::make_certificates;
use lookout_tests::{API_TOKEN, Agent, Aggregator, test_dir, wait_until};
use std::fs;
use std::path::Path;
use std::time::Duration;

/// A blocking client that trusts only the test CA.
fn client(dir: &Path) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `total` of a search for `query` (one plain word) over HTTPS.
fn count(client: &reqwest::blocking::Client, url: &str, query: &str) -> u64 {
    let response = client
        .get(format!("{url}/api/v1/logs/search?q={query}&limit=1"))
        .bearer_auth(API_TOKEN)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    body["total"].as_u64().unwrap()
}

#[test]
fn agents_ship_over_https_to_an_aggregator_with_a_private_ca() {
    let dir = test_dir("tls");
    make_certificates(&dir);
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    );
    let mut aggregator = Aggregator::start_with(&dir, "", &tls);
    assert!(aggregator.url.starts_with("https://127.0.0.1:"), "{}", aggregator.url);
    let client = client(&dir);

    // HTTP/2 by ALPN, and HSTS on the answer.
    let response = client.get(format!("{}/healthz", aggregator.url)).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000");
    // An HTTP/1.1-only client is served too.
    let http1 = {
        let ca = reqwest::Certificate::from_pem(&fs::read(dir.join("ca.pem")).unwrap()).unwrap();
        reqwest::blocking::Client::builder()
            .tls_certs_only([ca])
            .http1_only()
            .build()
            .unwrap()
    };
    let response = http1.get(format!("{}/healthz", aggregator.url)).send().unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.text().unwrap(), "ok");
    // The first admin's password, printed once in the log, logs in; under
    // TLS the session cookie is `Secure`.
    let log = fs::read_to_string(aggregator.log()).unwrap();
    let password = log
        .lines()
        .skip_while(|line| !line.contains("the user `admin` was created"))
        .find_map(|line| line.strip_prefix("    "))
        .unwrap_or_else(|| panic!("no first-admin password in the log:\n{log}"))
        .trim()
        .to_owned();
    let ca = reqwest::Certificate::from_pem(&fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let browser = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = browser
        .post(format!("{}/login", aggregator.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={password}&next=%2F"))
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.ends_with("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    let session = cookie.split(';').next().unwrap();
    let me = browser
        .get(format!("{}/api/v1/session", aggregator.url))
        .header("Cookie", session)
        .send()
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = serde_json::from_str(&me.text().unwrap()).unwrap();
    assert_eq!(
        (me["user"].as_str(), me["role"].as_str()),
        (Some("admin"), Some("admin"))
    );

    // An agent that trusts the CA ships its lines.
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let lines: String = (0..50)
        .map(|i| format!("2026-01-01T00:00:00Z INFO secure line {i}\n"))
        .collect();
    fs::write(logs.join("app.log"), &lines).unwrap();
    let good_dir = dir.join("agent-with-ca");
    fs::create_dir_all(&good_dir).unwrap();
    let sources = format!(
        "ca_file = \"{}\"\n[[logs]]\npaths = [\"{}/app.log\"]\n[metrics]\nenabled = false\n",
        dir.join("ca.pem").display(),
        logs.display()
    );
    let mut agent = Agent::start(&good_dir, &aggregator.url, &sources);
    wait_until("the lines shipped over HTTPS", Duration::from_secs(60), || {
        count(&client, &aggregator.url, "secure") == 50
    });
    assert_eq!(agent.terminate(), Some(0));

    // An agent without the CA refuses the certificate and ships nothing.
    fs::write(logs.join("other.log"), "2026-01-01T00:00:00Z INFO untrusted line\n").unwrap();
    let bad_dir = dir.join("agent-without-ca");
    fs::create_dir_all(&bad_dir).unwrap();
    let sources = format!(
        "[[logs]]\npaths = [\"{}/other.log\"]\n[metrics]\nenabled = false\n",
        logs.display()
    );
    let mut untrusting = Agent::start(&bad_dir, &aggregator.url, &sources);
    wait_until(
        "a certificate error in the agent's log",
        Duration::from_secs(60),
        || {
            fs::read_to_string(untrusting.log())
                .is_ok_and(|log| log.contains("sending a batch failed") && log.to_lowercase().contains("certificate"))
        },
    );
    assert_eq!(count(&client, &aggregator.url, "untrusted"), 0);
    assert_eq!(untrusting.terminate(), Some(0));

    // A renewed certificate (from another CA here, so that the test can
    // tell them apart) is served after SIGHUP to new connections, while the
    // connection already open goes on.
    let renewed = dir.join("renewed");
    fs::create_dir_all(&renewed).unwrap();
    make_certificates(&renewed);
    assert_eq!(count(&client, &aggregator.url, "secure"), 50);
    for file in ["server.pem", "server.key"] {
        fs::copy(renewed.join(file), dir.join(file)).unwrap();
    }
    assert!(aggregator.reload(), "the renewed certificate is taken");
    assert_eq!(
        count(&client, &aggregator.url, "secure"),
        50,
        "the open HTTP/2 connection still answers"
    );
    let fresh = crate::client(&renewed);
    assert_eq!(
        count(&fresh, &aggregator.url, "secure"),
        50,
        "new connections get the renewed certificate"
    );
    let refused = crate::client(&dir).get(format!("{}/healthz", aggregator.url)).send();
    assert!(
        refused.is_err(),
        "the old CA does not vouch for the renewed certificate"
    );
    // A key that does not match its certificate is refused; the renewed pair stays.
    fs::copy(dir.join("ca.key"), dir.join("server.key")).unwrap();
    assert!(!aggregator.reload(), "a mismatched key is refused");
    let log = fs::read_to_string(aggregator.log()).unwrap();
    assert!(
        log.lines()
            .any(|line| line.contains("configuration not reloaded") && line.contains("tls.key")),
        "{log}"
    );
    assert_eq!(count(&crate::client(&renewed), &aggregator.url, "secure"), 50);

    // The HTTPS server stops cleanly on SIGTERM.
    assert_eq!(aggregator.terminate(), Some(0));
    let log = fs::read_to_string(aggregator.log()).unwrap();
    assert!(log.contains("lookout-aggregator stopped"), "{log}");
}
