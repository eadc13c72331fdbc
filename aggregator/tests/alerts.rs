//! The alert engine in-process: rules from a rules file, metric and log data
//! through the real ingest endpoint, notifications to a real HTTP webhook
//! receiver, state across a restart, silences and the outbox through the API.

mod common;

use common::{Server, batch, chunk, metrics_batch, now_ms, sample};
use lookout_aggregator::config::Config;
use lookout_tests::webhook::{WebhookReceiver, validate_alertmanager_v4};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// A config with one webhook notifier, fast alerting timings and `rules`.
fn alert_config(dir: &Path, hook: &WebhookReceiver, rules: &str, group_interval: &str) -> Config {
    let rules_path = dir.join("rules.toml");
    std::fs::write(&rules_path, format!("default_rules = false\n{rules}")).unwrap();
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\nrules_file = {rules:?}\n\
         [auth]\ningest_tokens = [\"{ingest}\"]\napi_tokens = [\"{api}\"]\n\
         [alerting]\nevaluation_interval = \"1s\"\ngroup_wait = \"0s\"\ngroup_interval = \"{group_interval}\"\n\
         repeat_interval = \"1h\"\nexternal_url = \"http://lookout.example\"\n\
         [[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n",
        data = dir.join("data").display().to_string(),
        rules = rules_path.display().to_string(),
        ingest = common::INGEST_TOKEN,
        api = common::API_TOKEN,
        url = hook.url("/hook"),
    );
    Config::from_toml(Path::new("test.toml"), &text).unwrap()
}

const DISK_RULE: &str = r#"
[[rules]]
name = "DiskFull"
kind = "threshold"
metric = "fs.used_percent"
op = ">="
threshold = 80.0
clear_threshold = 75.0
interval = "1s"
labels = { severity = "critical" }
annotations = { summary = "{{ host }} {{ mount }} is {{ value }}% full" }
"#;

async fn wait_for(what: &str, condition: impl AsyncFnMut() -> bool) {
    common::wait_for(what, LIMIT, condition).await;
}

async fn disk(server: &Server, mount: &str, value: f64) {
    let samples = vec![sample("fs.used_percent", &[("mount", mount)], now_ms(), value)];
    server.ingest_ok(&metrics_batch("web-1", samples)).await;
}

async fn alerts(server: &Server) -> Vec<Value> {
    server.get_ok("/api/v1/alerts").await["alerts"]
        .as_array()
        .unwrap()
        .clone()
}

fn state_of(alerts: &[Value], mount: &str) -> Option<String> {
    alerts
        .iter()
        .find(|a| a["labels"]["mount"] == mount)
        .map(|a| a["state"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn threshold_fires_once_holds_through_flapping_and_resolves_once() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let server = Server::start(alert_config(dir.path(), &hook, DISK_RULE, "1s")).await;

    disk(&server, "/var", 85.0).await;
    wait_for("one firing notification", async || hook.requests().len() == 1).await;
    let firing = hook.requests()[0].json();
    validate_alertmanager_v4(&firing).unwrap();
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "hook");
    assert_eq!(firing["groupLabels"], json!({"alertname": "DiskFull"}));
    assert_eq!(firing["commonLabels"]["mount"], "/var");
    assert_eq!(firing["commonLabels"]["severity"], "critical");
    assert_eq!(firing["alerts"][0]["annotations"]["summary"], "web-1 /var is 85% full");
    assert_eq!(firing["externalURL"], "http://lookout.example");
    let listed = alerts(&server).await;
    assert_eq!(state_of(&listed, "/var").as_deref(), Some("firing"));
    assert_eq!(listed[0]["value"], 85.0);

    // Around the threshold but above the clear threshold: still firing, and
    // no new message, though group_interval (1 s) passes several times.
    for value in [79.0, 81.0, 77.0, 82.0, 76.0] {
        disk(&server, "/var", value).await;
        wait_for("the value to be evaluated", async || {
            alerts(&server).await.iter().any(|a| a["value"] == value)
        })
        .await;
        assert_eq!(state_of(&alerts(&server).await, "/var").as_deref(), Some("firing"));
    }
    assert_eq!(hook.requests().len(), 1, "hysteresis: flapping sends nothing more");

    disk(&server, "/var", 70.0).await;
    wait_for("the resolved notification", async || hook.requests().len() == 2).await;
    let resolved = hook.requests()[1].json();
    validate_alertmanager_v4(&resolved).unwrap();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        firing["alerts"][0]["fingerprint"], resolved["alerts"][0]["fingerprint"],
        "the fingerprint is stable"
    );
    let history = server.get_ok("/api/v1/alerts/history").await;
    let states: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["resolved", "firing"]);
    server.stop().await;
}

#[tokio::test]
async fn a_restart_neither_resends_nor_forgets_a_firing_alert() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let config = alert_config(dir.path(), &hook, DISK_RULE, "1s");
    let server = Server::start(config.clone()).await;
    disk(&server, "/var", 90.0).await;
    wait_for("the firing notification", async || hook.requests().len() == 1).await;
    server.stop().await;

    let server = Server::start(config).await;
    assert_eq!(state_of(&alerts(&server).await, "/var").as_deref(), Some("firing"));
    // A second mount fills: the next message holds both alerts, and none
    // came before it, so the restart re-sent nothing.
    disk(&server, "/var", 90.0).await;
    disk(&server, "/data", 95.0).await;
    wait_for("the group's second notification", async || hook.requests().len() >= 2).await;
    let second = hook.requests()[1].json();
    let mounts: Vec<&str> = second["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["mount"].as_str().unwrap())
        .collect();
    assert_eq!(mounts.len(), 2, "{second}");
    assert!(mounts.contains(&"/var") && mounts.contains(&"/data"), "{second}");
    assert_eq!(hook.requests().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn silenced_alerts_are_not_notified_and_silences_validate_input() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let server = Server::start(alert_config(dir.path(), &hook, DISK_RULE, "1s")).await;
    let post = |body: Value| {
        let request = server
            .client
            .post(format!("{}/api/v1/silences", server.base))
            .header("Authorization", format!("Bearer {}", common::API_TOKEN))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send();
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let bad = [
        (
            json!({"matchers": [], "comment": "x", "duration": "1h"}),
            "at least one matcher",
        ),
        (
            json!({"matchers": [{"name": "mount", "value": "/var"}], "duration": "1h"}),
            "comment",
        ),
        (
            json!({"matchers": [{"name": "mount", "value": "/var"}], "comment": "x"}),
            "`endsAt` or `duration`",
        ),
        (
            json!({"matchers": [{"name": "mount", "value": "(", "isRegex": true}], "comment": "x", "duration": "1h"}),
            "regular expression",
        ),
        (
            json!({"matchers": [{"name": "mount", "value": "/var"}], "comment": "x", "duration": "soon"}),
            "duration",
        ),
        (
            json!({"matchers": [{"name": "mount", "value": "/var"}], "comment": "x", "endsAt": "2001-01-01T00:00:00Z"}),
            "in the future",
        ),
        (json!({"matchers": "all", "comment": "x", "duration": "1h"}), "matchers"),
    ];
    for (body, expected) in bad {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(expected), "{body}: {error}");
    }
    let (status, created) = post(json!({
        "matchers": [{"name": "alertname", "value": "DiskFull"}, {"name": "mount", "value": "/v.r", "isRegex": true}],
        "comment": "resizing /var",
        "createdBy": "alice",
        "duration": "2h",
    }))
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    disk(&server, "/var", 91.0).await;
    disk(&server, "/data", 92.0).await;
    wait_for("a notification", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    let alerts_sent = sent["alerts"].as_array().unwrap();
    assert_eq!(alerts_sent.len(), 1, "{sent}");
    assert_eq!(alerts_sent[0]["labels"]["mount"], "/data");
    let listed = alerts(&server).await;
    let var = listed.iter().find(|a| a["labels"]["mount"] == "/var").unwrap();
    assert_eq!(var["state"], "firing");
    assert_eq!(var["silencedBy"], json!([id]));

    let silences = server.get_ok("/api/v1/silences").await;
    assert_eq!(silences["silences"][0]["active"], true);
    assert_eq!(silences["silences"][0]["createdBy"], "alice");
    let expire = |id: String| {
        let request = server
            .client
            .delete(format!("{}/api/v1/silences/{id}", server.base))
            .header("Authorization", format!("Bearer {}", common::API_TOKEN))
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(expire("nope".into()).await, 404);
    assert_eq!(expire(id).await, 200);
    // Unsilenced, /var joins the group: one more message with both.
    wait_for("a notification with both mounts", async || {
        hook.requests()
            .last()
            .is_some_and(|r| r.json()["alerts"].as_array().unwrap().len() == 2)
    })
    .await;
    assert_eq!(server.get_ok("/api/v1/silences").await["silences"][0]["active"], false);
    server.stop().await;
}

/// GETs `path` as a signed-in user with the viewer role.
async fn as_viewer(server: &Server, dir: &Path, path: &str) -> Value {
    const PASSWORD: &str = "a viewer's long password";
    let users = lookout_aggregator::users::UserStore::open(&dir.join("data")).unwrap();
    let _ = users.add_user("viewer", PASSWORD, lookout_aggregator::users::Role::Viewer);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{}/login", server.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", &server.base)
        .body(format!("username=viewer&password={}&next=%2F", common::enc(PASSWORD)))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303, "the viewer signs in");
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("lookout_session="))
        .and_then(|value| value.split(';').next())
        .unwrap()
        .to_owned();
    let answer = client
        .get(format!("{}{path}", server.base))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_outbox_retries_until_the_receiver_is_back_and_shows_the_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    hook.respond_with(503, "maintenance");
    let server = Server::start(alert_config(dir.path(), &hook, DISK_RULE, "1s")).await;
    disk(&server, "/var", 88.0).await;
    wait_for("a failed attempt in the outbox", async || {
        let outbox = server.get_ok("/api/v1/alerts/outbox").await;
        outbox["outbox"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("503"))
    })
    .await;
    let outbox = server.get_ok("/api/v1/alerts/outbox").await;
    assert_eq!(outbox["outbox"][0]["delivered"], false);
    assert!(outbox["outbox"][0]["nextAttempt"].is_string());
    // What the receiver answered is for admins; a viewer sees only that delivery failed.
    let viewer_outbox = as_viewer(&server, dir.path(), "/api/v1/alerts/outbox").await;
    assert_eq!(
        viewer_outbox["outbox"][0]["lastError"], "delivery failed (details for admins)",
        "{viewer_outbox}"
    );
    let failed_attempts = hook.requests().len();
    assert!(failed_attempts >= 1);

    hook.respond_with(200, "");
    wait_for("the delivery", async || {
        server.get_ok("/api/v1/alerts/outbox").await["outbox"][0]["delivered"] == true
    })
    .await;
    let requests = hook.requests();
    let delivered: Vec<Value> = requests[failed_attempts..].iter().map(|r| r.json()).collect();
    assert_eq!(delivered.len(), 1, "delivered once: {delivered:?}");
    assert_eq!(delivered[0]["status"], "firing");
    assert_eq!(
        requests[0].body, requests[failed_attempts].body,
        "the same message, re-sent"
    );
    server.stop().await;
}

/// Ingests `messages` as one file of `host`, read one millisecond apart from now.
async fn ingest_lines(server: &Server, host: &str, source: &str, messages: &[&str]) {
    let now = now_ms();
    let lines: Vec<common::Line<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| common::Line {
            message,
            read_at_ms: now + i as i64,
        })
        .collect();
    server
        .ingest_ok(&batch(host, vec![chunk(&common::stream(host, 1), source, 0, &lines)]))
        .await;
}

#[tokio::test]
async fn log_match_fires_with_the_first_matching_lines() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "BreakIn"
kind = "log_match"
query = "\"POSSIBLE BREAK-IN ATTEMPT\""
window = "5m"
count = 1
interval = "1s"
sample_lines = 2
annotations = { summary = "{{ value }} break-in attempts on {{ host }}" }
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    // Three matching lines in the window: more than `count = 1`.
    ingest_lines(
        &server,
        "bastion",
        "/var/log/auth.log",
        &[
            "sshd[1]: reverse mapping checking getaddrinfo for x [1.2.3.4] failed - POSSIBLE BREAK-IN ATTEMPT!",
            "sshd[2]: Accepted password for bob",
            "sshd[3]: reverse mapping checking getaddrinfo for <script>y</script> failed - POSSIBLE BREAK-IN ATTEMPT!",
            "sshd[4]: reverse mapping checking getaddrinfo for z failed - POSSIBLE BREAK-IN ATTEMPT!",
        ],
    )
    .await;
    wait_for("the log_match notification", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    validate_alertmanager_v4(&sent).unwrap();
    assert_eq!(sent["alerts"][0]["labels"]["host"], "bastion");
    assert_eq!(
        sent["alerts"][0]["annotations"]["summary"],
        "3 break-in attempts on bastion"
    );
    let listed = alerts(&server).await;
    let samples = listed[0]["sampleLines"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "sample_lines = 2");
    assert!(samples[0]["message"].as_str().unwrap().contains("[1.2.3.4]"));
    assert!(samples[1]["message"].as_str().unwrap().contains("<script>y</script>"));
    // The patterns of the matching lines, their counts adding up to the three.
    let top = listed[0]["topPatterns"].as_array().unwrap();
    assert_eq!(
        top.iter().map(|p| p["count"].as_u64().unwrap()).sum::<u64>(),
        3,
        "{top:?}"
    );
    assert!(
        top.iter()
            .all(|p| p["template"].as_str().unwrap().contains("POSSIBLE BREAK-IN ATTEMPT"))
    );
    let listed_in_hook = sent["alerts"][0]["annotations"]["top_patterns"].as_str().unwrap();
    assert!(
        listed_in_hook.contains("1 × <*> reverse mapping checking getaddrinfo for"),
        "{listed_in_hook}"
    );
    server.stop().await;
}

/// When the rule last finished a pass, Unix ms (0: never).
async fn last_evaluation(server: &Server, rule: &str) -> i64 {
    let rules = server.get_ok("/api/v1/alerts/rules").await;
    listed_rule(&rules, rule)
        .and_then(|rule| rule["lastEvaluation"].as_str().map(str::to_owned))
        .and_then(|at| at.parse::<jiff::Timestamp>().ok())
        .map_or(0, |at| at.as_millisecond())
}

#[tokio::test]
async fn a_new_pattern_at_or_above_the_level_fires_once_per_source_and_resolves_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "NewErrors"
kind = "new_pattern"
level = "warn"
window = "10s"
count = 2
interval = "1s"
sample_lines = 5
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    let source = "/var/log/app.log";
    // Each batch from another host: a stream of its own, nothing a duplicate.
    // The source's first lines: nothing is new on a source seen for the first time.
    ingest_lines(
        &server,
        "web-1",
        source,
        &["ERROR disk sda1 is full", "ERROR disk sdb2 is full"],
    )
    .await;
    // Taken once the lines are in: their arrival is at or before it.
    let first = now_ms();
    wait_for("a pass after the first lines", async || {
        last_evaluation(&server, "NewErrors").await > first + 1000
    })
    .await;
    assert!(alerts(&server).await.is_empty(), "a new source's patterns are not news");
    // Still within the source's first window: not news either, even once
    // the source is older than the window.
    wait_for("5.5 s after the first lines", async || now_ms() > first + 5500).await;
    ingest_lines(
        &server,
        "web-2",
        source,
        &["ERROR config file missing", "ERROR config file missing"],
    )
    .await;
    // Once the source is older than the window: an old pattern, a new one
    // below the level, and a new error pattern (once, then twice).
    wait_for("the source to be older than the window", async || {
        now_ms() > first + 10_500
    })
    .await;
    ingest_lines(
        &server,
        "web-3",
        source,
        &[
            "ERROR disk sdc3 is full",
            "INFO user 7 logged in",
            "INFO user 8 logged in",
            "ERROR kernel panic in module ext4",
        ],
    )
    .await;
    let once = now_ms();
    wait_for("a pass after the first panic", async || {
        last_evaluation(&server, "NewErrors").await > once + 1000
    })
    .await;
    assert!(alerts(&server).await.is_empty(), "one line, below count = 2");
    ingest_lines(&server, "web-4", source, &["ERROR kernel panic in module xfs"]).await;
    wait_for("the new pattern's notification", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    validate_alertmanager_v4(&sent).unwrap();
    assert_eq!(sent["status"], "firing");
    let alert = &sent["alerts"][0];
    assert_eq!(alert["labels"]["source"], source);
    let pattern = alert["labels"]["pattern"].as_str().unwrap().to_owned();
    assert_eq!(
        alert["annotations"]["top_patterns"],
        "2 × ERROR kernel panic in module <*>"
    );
    let listed = alerts(&server).await;
    assert_eq!(listed.len(), 1, "only the new error pattern: {listed:?}");
    assert_eq!(listed[0]["value"], 2.0);
    let samples: Vec<&str> = listed[0]["sampleLines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        samples,
        ["ERROR kernel panic in module ext4", "ERROR kernel panic in module xfs"]
    );
    // Every line was stored: `pattern:<id>` finds the panics, and the
    // other batches' lines are there.
    let found = server.get_ok(&format!("/api/v1/logs/search?q=pattern:{pattern}")).await;
    assert_eq!(found["total"], 2);
    let all = server.get_ok("/api/v1/logs/search?q=*").await;
    assert_eq!(all["total"], 9);
    // A window later it is no longer new: resolved, once.
    wait_for("the resolved notification", async || {
        hook.requests()
            .iter()
            .any(|request| request.json()["status"] == "resolved")
    })
    .await;
    let firing = hook
        .requests()
        .iter()
        .filter(|request| request.json()["status"] == "firing")
        .count();
    assert_eq!(firing, 1, "notified once");
    server.stop().await;
}

#[tokio::test]
async fn log_rules_count_lines_by_their_extracted_fields() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "ServerErrors"
kind = "log_match"
query = "status:>=500 AND has:trace_id"
window = "5m"
count = 1
interval = "1s"
annotations = { summary = "{{ value }} traced 5xx on {{ host }}" }
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    ingest_lines(
        &server,
        "api-1",
        "/var/log/api.log",
        &[
            r#"{"msg":"pay","status":502,"trace_id":"a1"}"#,
            r#"{"msg":"pay","status":503}"#,
            r#"{"msg":"cart","status":200,"trace_id":"a2"}"#,
            "ts=2024-01-01T00:00:00Z status=500 trace_id=a3 msg=boom",
            "status 500 in the text only, trace_id none",
        ],
    )
    .await;
    wait_for("the field rule's notification", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    assert_eq!(sent["alerts"][0]["annotations"]["summary"], "2 traced 5xx on api-1");
    server.stop().await;
}

#[tokio::test]
async fn a_stats_rule_fires_per_row_past_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "SlowPaths"
kind = "log_stats"
query = "method:GET | stats count(), p95(took) as slow by path"
column = "slow"
op = ">"
threshold = 500
window = "5m"
interval = "1s"
sample_lines = 2
annotations = { summary = "p95 of {{ path }} is {{ value }} ms" }
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    // /fast at 100-199 ms, /slow at 900-999 ms; POSTs to /slow do not count.
    let lines: Vec<String> = (0..100)
        .flat_map(|i| {
            [
                format!(r#"{{"method":"GET","path":"/fast","took":{}}}"#, 100 + i),
                format!(r#"{{"method":"GET","path":"/slow","took":{}}}"#, 900 + i),
                format!(r#"{{"method":"POST","path":"/other","took":{}}}"#, 5000 + i),
            ]
        })
        .collect();
    let messages: Vec<&str> = lines.iter().map(String::as_str).collect();
    ingest_lines(&server, "api-1", "/var/log/api.log", &messages).await;
    wait_for("the stats rule's notification", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    validate_alertmanager_v4(&sent).unwrap();
    let fired = sent["alerts"].as_array().unwrap();
    assert_eq!(fired.len(), 1, "only /slow: {fired:?}");
    assert_eq!(fired[0]["labels"]["path"], "/slow");
    assert_eq!(fired[0]["labels"]["alertname"], "SlowPaths");
    let summary = fired[0]["annotations"]["summary"].as_str().unwrap();
    let value: f64 = summary
        .trim_start_matches("p95 of /slow is ")
        .trim_end_matches(" ms")
        .parse()
        .unwrap_or_else(|_| panic!("{summary}"));
    // The exact p95 (rank 94 of 900..999) is 994; the sketch is within 1 %.
    assert!((value - 994.0).abs() <= 9.94, "{summary}");
    let listed = alerts(&server).await;
    let samples = listed[0]["sampleLines"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "sample_lines = 2");
    for line in samples {
        let message = line["message"].as_str().unwrap();
        assert!(
            message.contains(r#""path":"/slow""#) && message.contains("GET"),
            "{message}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_heartbeat_rule_fires_for_the_host_whose_lines_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "BackupHeartbeat"
kind = "log_match"
query = "heartbeat"
op = "<"
count = 1
window = "2s"
interval = "1s"
annotations = { summary = "{{ host }}: {{ value }} heartbeats in 2s" }
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    ingest_lines(&server, "quiet-1", "/var/log/backup.log", &["heartbeat ok"]).await;
    // busy-1 keeps beating (a new stream each time: each batch is new lines).
    let deadline = Instant::now() + LIMIT;
    let mut beat = 0u64;
    while hook.requests().is_empty() {
        assert!(Instant::now() < deadline, "no heartbeat alert within {LIMIT:?}");
        beat += 1;
        let line = format!("heartbeat {beat}");
        let lines = [common::Line {
            message: &line,
            read_at_ms: now_ms(),
        }];
        server
            .ingest_ok(&batch(
                "busy-1",
                vec![chunk(&common::stream("busy-1", beat), "/var/log/backup.log", 0, &lines)],
            ))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sent = hook.requests()[0].json();
    let fired = sent["alerts"].as_array().unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["labels"]["host"], "quiet-1");
    assert_eq!(fired[0]["annotations"]["summary"], "quiet-1: 0 heartbeats in 2s");
    server.stop().await;
}

#[tokio::test]
async fn a_fewer_than_rule_without_groups_watches_everything_even_before_any_line() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "NoOrders"
kind = "log_match"
query = "order placed"
op = "<"
count = 1
window = "1m"
group_by = []
interval = "1s"
annotations = { summary = "{{ value }} orders in a minute" }
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    wait_for("the no-orders notification", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    assert_eq!(sent["alerts"][0]["labels"]["alertname"], "NoOrders");
    assert_eq!(sent["alerts"][0]["annotations"]["summary"], "0 orders in a minute");
    server.stop().await;
}

#[tokio::test]
async fn alert_api_refuses_bad_parameters_and_missing_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let server = Server::start(alert_config(dir.path(), &hook, DISK_RULE, "1s")).await;
    for path in [
        "/api/v1/alerts",
        "/api/v1/alerts/rules",
        "/api/v1/silences",
        "/api/v1/alerts/outbox",
    ] {
        assert_eq!(server.get_with(path, None).await.status, 401, "{path}");
    }
    let answer = server.get("/api/v1/alerts?state=burning").await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("state"), "{}", answer.error());
    assert_eq!(server.get("/api/v1/alerts/history?limit=0").await.status, 400);
    let rules = server.get_ok("/api/v1/alerts/rules").await;
    assert_eq!(rules["rules"][0]["name"], "DiskFull");
    assert_eq!(rules["rules"][0]["state"], "inactive");
    let garbage = server
        .client
        .post(format!("{}/api/v1/silences", server.base))
        .header("Authorization", format!("Bearer {}", common::API_TOKEN))
        .body(vec![0xff, 0x00, 0x7b])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    server.stop().await;
}

#[tokio::test]
async fn datapoints_fire_on_m_of_the_last_n_samples() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "BusyLink"
kind = "threshold"
metric = "net.rx_utilization_percent"
threshold = 80.0
datapoints = "3 of 5"
interval = "1s"
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    let now = now_ms();
    let link = |offset: i64, value: f64| {
        sample(
            "net.rx_utilization_percent",
            &[("interface", "eth0")],
            now + offset,
            value,
        )
    };
    // Two breaching samples of five: not yet.
    let calm: Vec<_> = [10.0, 10.0, 90.0, 10.0, 90.0]
        .iter()
        .enumerate()
        .map(|(i, v)| link(i as i64 * 1000 - 10_000, *v))
        .collect();
    server.ingest_ok(&metrics_batch("web-1", calm)).await;
    let evaluated = || async {
        server.get_ok("/api/v1/alerts/rules").await["rules"][0]["lastEvaluation"]
            .as_str()
            .map(str::to_string)
    };
    let first = evaluated().await;
    wait_for("an evaluation after the samples", async || evaluated().await != first).await;
    let second = evaluated().await;
    wait_for("one more evaluation", async || evaluated().await != second).await;
    assert!(alerts(&server).await.is_empty(), "2 of 5 must not fire");
    // A third breaching sample among the last five fires it.
    server.ingest_ok(&metrics_batch("web-1", vec![link(0, 95.0)])).await;
    wait_for("the 3-of-5 alert", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    assert_eq!(sent["alerts"][0]["labels"]["interface"], "eth0");
    server.stop().await;
}

#[tokio::test]
async fn a_host_that_stops_sending_fires_no_data_and_resolves_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let rules = r#"
[[rules]]
name = "HostSilent"
kind = "no_data"
intervals = 2
interval = "1s"
"#;
    let server = Server::start(alert_config(dir.path(), &hook, rules, "1s")).await;
    // Samples 1 s apart: the host's interval is 1 s, so 2 s without data is silence.
    let beat = |offset: i64| sample("cpu.usage_percent", &[], now_ms() + offset, 5.0);
    server
        .ingest_ok(&metrics_batch("db-1", vec![beat(-2000), beat(-1000), beat(0)]))
        .await;
    wait_for("the silent-host alert", async || !hook.requests().is_empty()).await;
    let fired = hook.requests()[0].json();
    assert_eq!(fired["status"], "firing");
    assert_eq!(fired["alerts"][0]["labels"]["host"], "db-1");
    server.ingest_ok(&metrics_batch("db-1", vec![beat(0)])).await;
    wait_for("the resolved message", async || {
        hook.requests().iter().any(|r| r.json()["status"] == "resolved")
    })
    .await;
    server.stop().await;
}

/// Sends `body` as JSON to `path` with the API token and `method`.
async fn api_call(server: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .header("Authorization", format!("Bearer {}", common::API_TOKEN));
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn listed_rule(rules: &Value, name: &str) -> Option<Value> {
    rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

#[tokio::test]
async fn a_saved_search_becomes_a_rule_in_force_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let config = alert_config(dir.path(), &hook, DISK_RULE, "1s");
    let server = Server::start(config.clone()).await;
    let (status, saved) = api_call(
        &server,
        reqwest::Method::POST,
        "/api/v1/searches",
        Some(json!({"name": "Payments failing", "q": "\"payment failed\"", "host": "shop-1"})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    let entry = server.get_ok(&format!("/api/v1/searches/{}/rule", saved["id"])).await["toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let post_rule = async |entry: &str| {
        api_call(
            &server,
            reqwest::Method::POST,
            "/api/v1/alerts/rules",
            Some(json!({ "entry": entry })),
        )
        .await
    };
    let (status, made) = post_rule(&entry).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["origin"].as_str(), made["kind"].as_str()),
        (Some("app"), Some("log_match"))
    );
    assert_eq!(made["createdBy"], "API token");
    let (status, again) = post_rule(&entry).await;
    assert_eq!(status, 409, "the name is taken: {again}");
    let broken = entry.replace("count = 0", "count = \"many\"");
    let (status, refused) = post_rule(&broken).await;
    assert_eq!(status, 400);
    assert!(
        refused["error"].as_str().unwrap().contains("count"),
        "names the key: {refused}"
    );

    // In force at once: a matching line on shop-1 (and one elsewhere, which the page's host filter leaves out).
    ingest_lines(
        &server,
        "shop-1",
        "/var/log/shop.log",
        &["order 7: payment failed (card declined)"],
    )
    .await;
    ingest_lines(
        &server,
        "shop-2",
        "/var/log/shop.log",
        &["order 8: payment failed (card declined)"],
    )
    .await;
    wait_for("the new rule's notification", async || !hook.requests().is_empty()).await;
    let sent = hook.requests()[0].json();
    validate_alertmanager_v4(&sent).unwrap();
    let fired = sent["alerts"].as_array().unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["labels"]["alertname"], "Payments failing");
    assert_eq!(fired[0]["labels"]["host"], "shop-1");

    // Kept across a restart, beside the rules file's.
    server.stop().await;
    let server = Server::start(config).await;
    let rules = server.get_ok("/api/v1/alerts/rules").await;
    assert_eq!(listed_rule(&rules, "DiskFull").unwrap()["origin"], "config");
    let kept = listed_rule(&rules, "Payments failing").expect("still in force");
    assert_eq!(kept["origin"], "app");
    assert_eq!(kept["entry"].as_str(), Some(entry.as_str()));

    let delete = async |name: &str| {
        let path = format!("/api/v1/alerts/rules/{}", common::enc(name));
        api_call(&server, reqwest::Method::DELETE, &path, None).await.0
    };
    assert_eq!(delete("DiskFull").await, 409, "a configured rule changes in its file");
    assert_eq!(delete("Payments failing").await, 204);
    wait_for("the deleted rule's alert to resolve", async || {
        alerts(&server)
            .await
            .iter()
            .filter(|a| a["labels"]["alertname"] == "Payments failing")
            .map(|a| a["state"] == "resolved")
            .collect::<Vec<_>>()
            == [true]
    })
    .await;
    assert!(listed_rule(&server.get_ok("/api/v1/alerts/rules").await, "Payments failing").is_none());
    assert_eq!(delete("Payments failing").await, 404);
    server.stop().await;
}

/// Alertmanager's answer to `GET /api/v2/alerts`, if it answered.
async fn alertmanager_alerts(url: &str) -> Option<Vec<Value>> {
    let answer = reqwest::get(format!("{url}/api/v2/alerts")).await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    serde_json::from_slice(&answer.bytes().await.ok()?).ok()
}

#[tokio::test]
async fn alerts_are_pushed_to_a_real_alertmanager_which_notifies_its_own_receiver() {
    // The test's own requests to Alertmanager use rustls too.
    lookout_shared::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    // Alertmanager's receiver: a webhook of its own.
    let hook = WebhookReceiver::start();
    let manager = lookout_tests::alertmanager::start(
        dir.path(),
        &format!(
            "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  \
             repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{}'\n        \
             send_resolved: true\n",
            hook.url("/from-alertmanager")
        ),
    );
    wait_for("Alertmanager to be ready", async || {
        reqwest::get(format!("{}/-/ready", manager.url))
            .await
            .is_ok_and(|answer| answer.status().is_success())
    })
    .await;
    let rules_path = dir.path().join("rules.toml");
    std::fs::write(&rules_path, format!("default_rules = false\n{DISK_RULE}")).unwrap();
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\nrules_file = {rules:?}\n\
         [auth]\ningest_tokens = [\"{ingest}\"]\napi_tokens = [\"{api}\"]\n\
         [alerting]\nevaluation_interval = \"1s\"\nexternal_url = \"http://lookout.example\"\n\
         [[notifiers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{url}\"\nresend_interval = \"2s\"\n",
        data = dir.path().join("data").display().to_string(),
        rules = rules_path.display().to_string(),
        ingest = common::INGEST_TOKEN,
        api = common::API_TOKEN,
        url = manager.url,
    );
    let server = Server::start(Config::from_toml(Path::new("test.toml"), &text).unwrap()).await;

    disk(&server, "/var", 91.0).await;
    wait_for("the alert in Alertmanager's API", async || {
        alertmanager_alerts(&manager.url)
            .await
            .unwrap_or_default()
            .iter()
            .any(|alert| alert["labels"]["alertname"] == "DiskFull" && alert["status"]["state"] == "active")
    })
    .await;
    let pushed = alertmanager_alerts(&manager.url).await.expect("Alertmanager answers");
    let alert = &pushed[0];
    assert_eq!(alert["labels"]["host"], "web-1");
    assert_eq!(alert["labels"]["mount"], "/var");
    assert_eq!(alert["annotations"]["summary"], "web-1 /var is 91% full");
    assert_eq!(alert["generatorURL"], "http://lookout.example/alerts?rule=DiskFull");
    // Alertmanager groups and notifies its own receiver, in its own format.
    wait_for("Alertmanager's firing notification", async || {
        hook.requests()
            .iter()
            .any(|request| request.json()["status"] == "firing")
    })
    .await;
    let firing = hook.requests()[0].json();
    validate_alertmanager_v4(&firing).unwrap();
    assert_eq!(firing["alerts"][0]["labels"]["alertname"], "DiskFull");
    // Nothing of it went through Lookout's outbox.
    let outbox = server.get_ok("/api/v1/alerts/outbox").await;
    assert_eq!(outbox["outbox"].as_array().map(Vec::len), Some(0), "{outbox}");

    disk(&server, "/var", 50.0).await;
    wait_for("Alertmanager's resolved notification", async || {
        hook.requests()
            .iter()
            .any(|request| request.json()["status"] == "resolved")
    })
    .await;
    let resolved = hook
        .requests()
        .into_iter()
        .map(|request| request.json())
        .find(|body| body["status"] == "resolved")
        .unwrap();
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // Alertmanager lists alerts that have not ended: DiskFull is gone.
    assert!(
        !alertmanager_alerts(&manager.url)
            .await
            .expect("Alertmanager answers")
            .iter()
            .any(|alert| alert["labels"]["alertname"] == "DiskFull"),
        "resolved in Alertmanager too"
    );
    server.stop().await;
}
