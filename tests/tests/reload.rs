//! Configuration reload by SIGHUP, end to end on the real binaries: the
//! aggregator takes new API and ingest tokens, rules and notifiers while an
//! agent ships lines and a client holds a keep-alive connection open; none
//! of them is cut off and no line is lost or doubled. An invalid file is
//! refused with its error in the log, and the configuration in force stays.

use lookout_tests::webhook::WebhookReceiver;
use lookout_tests::{API_TOKEN, Agent, Aggregator, INGEST_TOKEN, http, numbered, ship_steadily, test_dir, wait_until};
use serde_json::Value;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const NEW_API_TOKEN: &str = "reloaded-api-token";
const OLD_INGEST_TOKEN: &str = "retired-ingest-token";
const NEW_INGEST_TOKEN: &str = "reloaded-ingest-token";
/// Lines the agent ships while the aggregator reloads.
const STEADY_LINES: u64 = 3000;

/// The status of `GET path` with `token`.
fn status_with(url: &str, path: &str, token: &str) -> u16 {
    http()
        .get(format!("{url}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map(|response| response.status().as_u16())
        .unwrap_or(0)
}

/// The status of an Elasticsearch bulk request of one line with `token`;
/// a 200 must have stored the line.
fn bulk_status(url: &str, token: &str, message: &str) -> u16 {
    let mut response = http()
        .post(format!("{url}/app/_bulk"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/x-ndjson")
        .send(format!(
            "{{\"index\":{{}}}}\n{{\"message\":\"{message}\",\"host\":\"bulk-host\"}}\n"
        ))
        .expect("the bulk request is answered");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if status == 200 {
        assert!(body.contains("\"errors\":false"), "{body}");
    }
    status
}

/// A GET of `/healthz` on an open HTTP/1.1 connection; panics unless it
/// is answered `ok` on that same connection.
fn healthz_on(connection: &mut TcpStream) {
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("the connection is still open");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok") {
        let read = connection.read(&mut buf).expect("an answer on the same connection");
        assert!(
            read > 0,
            "the connection was closed: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..read]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

fn rule_names(aggregator: &Aggregator, token: &str) -> Vec<String> {
    let response = http()
        .get(format!("{}/api/v1/alerts/rules", aggregator.url))
        .header("Authorization", format!("Bearer {token}"))
        .call();
    let mut response = response.expect("the rules answer");
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["name"].as_str().unwrap().to_owned())
        .collect()
}

fn metrics(aggregator: &Aggregator, token: &str) -> String {
    let mut response = http()
        .get(format!("{}/metrics", aggregator.url))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("/metrics answers");
    response.body_mut().read_to_string().unwrap()
}

/// The aggregator's config file with `api` and `ingest` tokens and `tail`
/// (the notifiers and the rest) after them.
fn write_config(aggregator: &Aggregator, api: &[&str], ingest: &[&str], tail: &str) {
    let text = fs::read_to_string(aggregator.config()).unwrap();
    let head = text.split("[auth]").next().unwrap();
    fs::write(
        aggregator.config(),
        format!("{head}[auth]\ningest_tokens = {ingest:?}\napi_tokens = {api:?}\n{tail}"),
    )
    .unwrap();
}

fn rule(name: &str, word: &str, notifier: &str) -> String {
    format!(
        "[[rules]]\nname = \"{name}\"\nkind = \"log_match\"\nquery = \"{word}\"\nwindow = \"1m\"\ncount = 0\n\
         notify = [\"{notifier}\"]\n"
    )
}

fn webhook(name: &str, receiver: &WebhookReceiver) -> String {
    format!(
        "[[notifiers]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        receiver.url("/hook")
    )
}

#[test]
fn the_aggregator_reloads_tokens_rules_and_notifiers_without_cutting_off_anyone() {
    let dir = test_dir("reload_aggregator");
    let rules = dir.join("rules.toml");
    fs::write(
        &rules,
        format!("default_rules = false\n{}", rule("FirstRule", "alpha", "first")),
    )
    .unwrap();
    let (first_hook, second_hook) = (WebhookReceiver::start(), WebhookReceiver::start());
    let alerting = "[alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n";
    let aggregator = Aggregator::start_with(
        &dir,
        &format!("rules_file = {:?}", rules.display().to_string()),
        &format!("{alerting}{}", webhook("first", &first_hook)),
    );
    write_config(
        &aggregator,
        &[API_TOKEN],
        &[INGEST_TOKEN, OLD_INGEST_TOKEN],
        &format!("{alerting}{}", webhook("first", &first_hook)),
    );
    assert!(aggregator.reload(), "the same settings reload");
    assert_eq!(bulk_status(&aggregator.url, OLD_INGEST_TOKEN, "before the reload"), 200);
    assert_eq!(rule_names(&aggregator, API_TOKEN), ["FirstRule"]);

    // An agent ships numbered lines the whole time; a client holds a connection.
    let (_agent, writer) = ship_steadily(
        &dir,
        &aggregator.url,
        "enabled = false",
        STEADY_LINES,
        (1, Duration::from_millis(2)),
    );
    let mut connection = TcpStream::connect(aggregator.url.trim_start_matches("http://")).unwrap();
    connection.set_read_timeout(Some(LIMIT)).unwrap();
    healthz_on(&mut connection);

    // New tokens, a new rule file and a new notifier.
    let second_settings = |api: &[&str], more: &str| {
        fs::write(
            &rules,
            format!("default_rules = false\n{}", rule("SecondRule", "beta", "second")),
        )
        .unwrap();
        let notifiers = format!("{}{}", webhook("first", &first_hook), webhook("second", &second_hook));
        write_config(
            &aggregator,
            api,
            &[INGEST_TOKEN, NEW_INGEST_TOKEN],
            &format!("{alerting}{notifiers}{more}"),
        );
    };
    // A live tail opened with the token the reload removes.
    let tail = {
        let url = format!("{}/api/v1/logs/tail", aggregator.url);
        // No time limit of the client's own: only the server can end it.
        let client: ureq::Agent = ureq::Agent::config_builder().build().into();
        let mut response = client
            .get(url)
            .header("Authorization", format!("Bearer {API_TOKEN}"))
            .call()
            .unwrap();
        assert_eq!(response.status(), 200);
        std::thread::spawn(move || {
            // Returns once the server ends the stream.
            let _ = response.body_mut().read_to_vec();
        })
    };
    second_settings(&[NEW_API_TOKEN], "");
    assert!(aggregator.reload(), "the new settings reload");
    wait_until("the old token's live tail to end", LIMIT, || tail.is_finished());
    healthz_on(&mut connection);
    assert_eq!(
        status_with(&aggregator.url, "/api/v1/hosts", API_TOKEN),
        401,
        "the old API token is refused"
    );
    assert_eq!(status_with(&aggregator.url, "/api/v1/hosts", NEW_API_TOKEN), 200);
    assert_eq!(bulk_status(&aggregator.url, OLD_INGEST_TOKEN, "after the reload"), 401);
    assert_eq!(bulk_status(&aggregator.url, NEW_INGEST_TOKEN, "beta arrives"), 200);
    assert_eq!(rule_names(&aggregator, NEW_API_TOKEN), ["SecondRule"]);
    // The new rule fires through the new notifier.
    wait_until("SecondRule's notification at the second webhook", LIMIT, || {
        second_hook.requests().iter().any(|request| {
            let body = request.json();
            body["status"] == "firing" && body["commonLabels"]["alertname"] == "SecondRule"
        })
    });
    assert!(
        first_hook.requests().is_empty(),
        "the first rule never fired, so the first webhook heard nothing"
    );

    // An invalid file is refused with its reason; everything in force stays.
    fs::write(
        &rules,
        format!("default_rules = false\n{}", rule("ThirdRule", "gamma", "nobody")),
    )
    .unwrap();
    assert!(!aggregator.reload(), "a rule naming an unknown notifier is refused");
    let log = fs::read_to_string(aggregator.log()).unwrap();
    let refusal = log
        .lines()
        .find(|line| line.contains("configuration not reloaded"))
        .unwrap();
    assert!(
        refusal.contains("nobody") && refusal.contains("rules.toml"),
        "{refusal}"
    );
    assert_eq!(rule_names(&aggregator, NEW_API_TOKEN), ["SecondRule"]);
    fs::write(
        &rules,
        format!("default_rules = false\n{}", rule("SecondRule", "beta", "second")),
    )
    .unwrap();
    write_config(&aggregator, &["short"], &[INGEST_TOKEN], alerting);
    assert!(!aggregator.reload(), "a token too short is refused");
    let log = fs::read_to_string(aggregator.log()).unwrap();
    let refusal = log
        .lines()
        .rfind(|line| line.contains("configuration not reloaded"))
        .unwrap();
    assert!(refusal.contains("auth.api_tokens[0]"), "{refusal}");
    assert_eq!(status_with(&aggregator.url, "/api/v1/hosts", NEW_API_TOKEN), 200);
    assert_eq!(bulk_status(&aggregator.url, NEW_INGEST_TOKEN, "still accepted"), 200);
    let exposition = metrics(&aggregator, NEW_API_TOKEN);
    assert!(
        exposition.contains("lookout_config_reloads_total{result=\"applied\"} 2\n")
            && exposition.contains("lookout_config_reloads_total{result=\"refused\"} 2\n")
            && exposition.contains("lookout_config_last_reload_successful 0\n"),
        "{exposition}"
    );
    // A setting that needs a restart is named in the log; the first API token is back.
    second_settings(&[NEW_API_TOKEN, API_TOKEN], "[retention]\nlogs_days = 3\n");
    assert!(aggregator.reload());
    let log = fs::read_to_string(aggregator.log()).unwrap();
    assert!(
        log.contains("take effect only at a restart: retention"),
        "the log names the setting waiting for a restart"
    );
    assert!(
        !log.contains(NEW_API_TOKEN) && !log.contains(NEW_INGEST_TOKEN),
        "no token in the log"
    );
    healthz_on(&mut connection);

    writer.join().unwrap();
    aggregator.numbered_once("steady", STEADY_LINES);
}

/// The agent's config file: its connection settings and `sources`.
fn write_agent_config(agent: &Agent, token: &str, sources: &str) {
    let text = fs::read_to_string(agent.config()).unwrap();
    let connection: String = text
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter(|line| !line.starts_with("token"))
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(agent.config(), format!("{connection}token = \"{token}\"\n{sources}")).unwrap();
}

fn source(dir: &Path, extra: &str) -> String {
    format!("[[logs]]\npaths = [\"{}/*.log\"]\n{extra}", dir.display())
}

fn append(file: &Path, line: &str) {
    let mut out = fs::OpenOptions::new().create(true).append(true).open(file).unwrap();
    writeln!(out, "2026-01-01T00:00:00Z INFO {line}").unwrap();
}

#[test]
fn the_agent_reloads_its_sources_and_token_without_losing_or_doubling_a_line() {
    let dir = test_dir("reload_agent");
    let aggregator = Aggregator::start(&dir);
    let (first, second) = (dir.join("first"), dir.join("second"));
    fs::create_dir_all(&first).unwrap();
    fs::create_dir_all(&second).unwrap();
    // Written before the second source exists: its `start_at = "end"` skips it.
    append(&second.join("app.log"), "history line");
    let agent_dir = dir.join("agent");
    fs::create_dir_all(&agent_dir).unwrap();
    let no_metrics = "[metrics]\nenabled = false\n";
    let metrics = "[metrics]\ninterval = \"1s\"\n";
    let agent = Agent::start(
        &agent_dir,
        &aggregator.url,
        &format!("{}{no_metrics}", source(&first, "")),
    );
    let writer = {
        let file = first.join("app.log");
        std::thread::spawn(move || {
            for i in 0..STEADY_LINES {
                append(&file, &format!("steady {}", numbered(i)));
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    wait_until("the first steady lines", LIMIT, || aggregator.count("steady") > 0);

    // The second source is added while the first goes on, and metrics are
    // switched on (their thread starts); the token is rotated: the
    // aggregator takes both, the agent the new one, then the aggregator only
    // the new one.
    write_config(&aggregator, &[API_TOKEN], &[INGEST_TOKEN, NEW_INGEST_TOKEN], "");
    assert!(aggregator.reload());
    write_agent_config(
        &agent,
        NEW_INGEST_TOKEN,
        &format!(
            "{}{}[metrics]\ninterval = \"1s\"\n",
            source(&first, ""),
            source(&second, "start_at = \"end\"\n")
        ),
    );
    assert!(agent.reload(), "the agent takes the added source and the new token");
    let log = fs::read_to_string(agent.log()).unwrap();
    assert!(log.contains("restarted=\"metrics\""), "the metrics thread started");
    write_config(&aggregator, &[API_TOKEN], &[NEW_INGEST_TOKEN], "");
    assert!(aggregator.reload());
    // Lines written before the source first looks at its file are `start_at = "end"`'s to skip.
    let watched = format!("reading file={}", second.join("app.log").display());
    wait_until("the added source to find its file", LIMIT, || {
        fs::read_to_string(agent.log()).is_ok_and(|log| log.contains(&watched))
    });
    append(&second.join("app.log"), "fresh line one");
    append(&second.join("app.log"), "fresh line two");
    writer.join().unwrap();
    aggregator.numbered_once("steady", STEADY_LINES);
    wait_until("the second source's new lines", LIMIT, || {
        aggregator.count("fresh") == 2
    });
    wait_until("the host's metrics, collected since the reload", LIMIT, || {
        aggregator.get_json("/api/v1/hosts", &[])["hosts"]
            .as_array()
            .is_some_and(|hosts| {
                hosts
                    .iter()
                    .any(|host| host["host"] == "e2e-host" && host["cpu_usage_percent"].is_number())
            })
    });
    assert_eq!(
        aggregator.count("history"),
        0,
        "start_at = \"end\" held for the added source"
    );

    // The first source is removed: its file is no longer read.
    let tailer_reloads = || {
        fs::read_to_string(agent.log())
            .unwrap_or_default()
            .matches("file sources reloaded")
            .count()
    };
    write_agent_config(&agent, NEW_INGEST_TOKEN, &format!("{}{metrics}", source(&second, "")));
    assert!(agent.reload());
    wait_until("the tailer to take the second reload", LIMIT, || tailer_reloads() == 2);
    append(&first.join("app.log"), "orphan line");
    append(&second.join("app.log"), "marker line");
    wait_until("the marker line", LIMIT, || aggregator.count("marker") == 1);
    assert_eq!(aggregator.count("orphan"), 0, "a removed source's file is not read");

    // An invalid file is refused; the agent goes on with what is in force.
    write_agent_config(
        &agent,
        NEW_INGEST_TOKEN,
        &format!(
            "{}multiline = {{ start_pattern = \"(\" }}\n{metrics}",
            source(&second, "")
        ),
    );
    assert!(!agent.reload(), "a broken regex is refused");
    let log = fs::read_to_string(agent.log()).unwrap();
    let refusal = log
        .lines()
        .find(|line| line.contains("configuration not reloaded"))
        .unwrap();
    assert!(refusal.contains("start_pattern"), "{refusal}");
    append(&second.join("app.log"), "still shipped");
    wait_until("a line after the refused reload", LIMIT, || {
        aggregator.count("\"still shipped\"") == 1
    });
    assert!(!log.contains(NEW_INGEST_TOKEN), "no token in the agent's log");
    wait_until("agent.config_reload_ok = 0 after the refusal", LIMIT, || {
        aggregator
            .get_text("/api/v1/metrics/prometheus")
            .lines()
            .any(|line| line == "lookout_agent_config_reload_ok{host=\"e2e-host\"} 0")
    });
}
