//! Notifications delivered to real receivers: a real SMTP server (Debian's
//! aiosmtpd, run by `lookout_tests::smtp::SmtpSink`) and an HTTP webhook
//! receiver, both on loopback. Checks what an on-call engineer and a
//! webhook consumer see, and how failures are classified for the outbox
//! (retry or give up).

use hmac::{Hmac, KeyInit, Mac};
use lookout_aggregator::alert::model::{Alert, AlertState, Notification, NotificationStatus, PatternCount, SampleLine};
use lookout_aggregator::alert::notify::Notifiers;
use lookout_aggregator::config::Config;
use lookout_tests::smtp::SmtpSink;
use lookout_tests::webhook::{WebhookReceiver, validate_alertmanager_v4};
use lookout_tests::{free_port, test_dir};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn config(extra: &str) -> Config {
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"unused\"\n[auth]\ningest_tokens = [\"ingest-token-i\"]\napi_tokens = [\"reader-token-a\"]\n{extra}"
    );
    Config::from_toml(Path::new("test.toml"), &text).expect("the test config is valid")
}

fn smtp_config(port: u16, to: &str) -> Config {
    config(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"lookout@example.com\"\n\
         timeout = \"5s\"\n\
         [[notifiers]]\nname = \"oncall-email\"\nkind = \"email\"\nto = [\"{to}\"]\n"
    ))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A log rule's alert on web-1 with hostile sample lines.
fn log_alert(state: AlertState) -> Alert {
    let now = jiff::Timestamp::now().as_millisecond();
    Alert {
        rule: "AppErrors".into(),
        fingerprint: "3f2a9c0d5e6b7a81".into(),
        state,
        labels: labels(&[
            ("alertname", "AppErrors"),
            ("host", "web-1"),
            ("source", "/var/log/app.log"),
            ("severity", "warning"),
        ]),
        annotations: labels(&[("summary", "error rate 12% on web-1 /var/log/app.log")]),
        value: Some(0.12),
        threshold: Some(0.05),
        op: Some(">".into()),
        starts_at_ms: now - 10 * 60_000,
        ends_at_ms: (state == AlertState::Resolved).then_some(now),
        sample_lines: vec![
            SampleLine {
                timestamp: "2024-05-01T11:59:58Z".into(),
                host: "web-1".into(),
                source: "/var/log/app.log".into(),
                message: "ERROR <script>alert(1)</script> in /login".into(),
            },
            SampleLine {
                timestamp: "2024-05-01T11:59:59Z".into(),
                host: "web-1".into(),
                source: "/var/log/app.log".into(),
                message: "ERROR <img src=x onerror=alert(1)> & co".into(),
            },
        ],
        top_patterns: vec![PatternCount {
            pattern: "18c3a2b4f5e60-2f".into(),
            template: Some("ERROR <*> in <iframe>".into()),
            count: 4812,
        }],
    }
}

fn notification(receiver: &str, state: AlertState) -> Notification {
    let alert = log_alert(state);
    Notification {
        receiver: receiver.into(),
        group_key: "{}:{alertname=\"AppErrors\"}".into(),
        status: if state == AlertState::Resolved {
            NotificationStatus::Resolved
        } else {
            NotificationStatus::Firing
        },
        group_labels: labels(&[("alertname", "AppErrors")]),
        common_labels: alert.labels.clone(),
        common_annotations: alert.annotations.clone(),
        external_url: "http://lookout.test:7070".into(),
        alerts: vec![alert],
    }
}

#[tokio::test]
async fn firing_and_resolved_emails_reach_a_real_smtp_server() {
    let sink = SmtpSink::start(&test_dir("notifiers-email"));
    let notifiers = Notifiers::from_config(&smtp_config(sink.port(), "oncall@example.com")).unwrap();

    notifiers
        .send(&notification("oncall-email", AlertState::Firing))
        .await
        .expect("the firing email is accepted");
    let mails = sink.wait_for_messages(1, WAIT);
    let mail = &mails[0];
    assert_eq!(mail.subject, "[FIRING:1] AppErrors web-1 /var/log/app.log");
    assert_eq!(mail.mail_from, "lookout@example.com");
    assert_eq!(mail.rcpt_to, ["oncall@example.com"]);
    assert_eq!(mail.to, "oncall@example.com");
    assert_eq!(mail.content_type, "multipart/alternative");
    assert_eq!(mail.header("X-Lookout-Group-Key"), Some("{}:{alertname=\"AppErrors\"}"));
    assert!(
        mail.header("Message-ID")
            .is_some_and(|id| id.ends_with("@example.com>"))
    );
    assert!(mail.header("Date").is_some());
    let text = mail.text.as_deref().expect("a text/plain part");
    let html = mail.html.as_deref().expect("a text/html part");
    assert!(text.contains("value 0.12 > threshold 0.05"), "{text}");
    assert!(text.contains("ERROR <script>alert(1)</script> in /login"), "{text}");
    assert!(text.contains("ERROR <img src=x onerror=alert(1)> & co"), "{text}");
    assert!(text.contains("4812 x ERROR <*> in <iframe>"), "{text}");
    assert!(
        html.contains("Top patterns in the window") && !html.contains("<iframe"),
        "{html}"
    );
    assert!(text.contains("http://lookout.test:7070/alerts"), "{text}");
    assert!(
        text.contains("http://lookout.test:7070/search?host=web-1&source=%2Fvar%2Flog%2Fapp.log"),
        "{text}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
    assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
    assert!(html.contains("error rate 12% on web-1"), "{html}");

    notifiers
        .send(&notification("oncall-email", AlertState::Resolved))
        .await
        .expect("the resolved email is accepted");
    let mails = sink.wait_for_messages(2, WAIT);
    assert_eq!(mails[1].subject, "[RESOLVED] AppErrors web-1 /var/log/app.log");
    let text = mails[1].text.as_deref().expect("a text/plain part");
    assert!(
        text.contains("Resolved at:") && text.contains("Lasted:      10m"),
        "{text}"
    );
}

#[tokio::test]
async fn smtp_server_down_is_a_retryable_error_and_mail_flows_once_it_is_back() {
    let mut sink = SmtpSink::start(&test_dir("notifiers-smtp-down"));
    let notifiers = Notifiers::from_config(&smtp_config(sink.port(), "oncall@example.com")).unwrap();
    sink.stop();

    let err = notifiers
        .send(&notification("oncall-email", AlertState::Firing))
        .await
        .expect_err("nothing listens");
    assert!(!err.permanent, "a server that is down may come back: {err:?}");
    let server = format!("127.0.0.1:{}", sink.port());
    assert!(err.message.contains(&server), "{}", err.message);
    assert!(err.message.to_lowercase().contains("connection"), "{}", err.message);

    sink.restart();
    notifiers
        .send(&notification("oncall-email", AlertState::Firing))
        .await
        .expect("delivered once the server is back");
    assert_eq!(sink.wait_for_messages(1, WAIT).len(), 1);
}

#[tokio::test]
async fn a_recipient_rejected_by_the_server_is_a_permanent_error() {
    let sink = SmtpSink::start(&test_dir("notifiers-smtp-reject"));
    let notifiers = Notifiers::from_config(&smtp_config(sink.port(), "reject-me@example.com")).unwrap();
    let err = notifiers
        .send(&notification("oncall-email", AlertState::Firing))
        .await
        .expect_err("the sink refuses reject* recipients");
    assert!(err.permanent, "{err:?}");
    assert!(err.message.contains("550"), "{}", err.message);
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn nothing_listening_on_the_smtp_port_is_a_clear_retryable_error() {
    let port = free_port();
    let notifiers = Notifiers::from_config(&smtp_config(port, "oncall@example.com")).unwrap();
    let err = notifiers
        .send(&notification("oncall-email", AlertState::Firing))
        .await
        .expect_err("nothing listens");
    assert!(!err.permanent);
    assert!(
        err.message
            .starts_with(&format!("cannot send email via SMTP server 127.0.0.1:{port}")),
        "{}",
        err.message
    );
}

fn webhook_config(url: &str) -> Config {
    config(&format!(
        "[[notifiers]]\nname = \"ops-webhook\"\nkind = \"webhook\"\nurl = \"{url}\"\n\
         secret = \"s3cret-key\"\ntimeout = \"5s\"\n\
         headers = {{ Authorization = \"Bearer hook-token\" }}\n"
    ))
}

#[tokio::test]
async fn webhook_gets_a_signed_alertmanager_v4_payload() {
    let receiver = WebhookReceiver::start();
    let notifiers = Notifiers::from_config(&webhook_config(&receiver.url("/hook?token=path-token"))).unwrap();

    notifiers
        .send(&notification("ops-webhook", AlertState::Firing))
        .await
        .expect("delivered");
    notifiers
        .send(&notification("ops-webhook", AlertState::Resolved))
        .await
        .expect("delivered");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for (request, status) in requests.iter().zip(["firing", "resolved"]) {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hook?token=path-token");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), Some("Bearer hook-token"));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret-key").unwrap();
        mac.update(&request.body);
        let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            request.header("x-lookout-signature"),
            Some(format!("sha256={expected}").as_str())
        );
        let payload = request.json();
        validate_alertmanager_v4(&payload).unwrap_or_else(|err| panic!("{err}: {payload:#}"));
        assert_eq!(payload["status"], status);
        assert_eq!(payload["receiver"], "ops-webhook");
        assert_eq!(payload["groupKey"], "{}:{alertname=\"AppErrors\"}");
        assert_eq!(payload["alerts"][0]["status"], status);
        assert_eq!(payload["alerts"][0]["labels"]["host"], "web-1");
        assert_eq!(
            payload["alerts"][0]["generatorURL"],
            "http://lookout.test:7070/alerts?rule=AppErrors"
        );
    }
    assert_eq!(requests[0].json()["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_ne!(requests[1].json()["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
}

#[tokio::test]
async fn webhook_failures_are_classified_for_retry() {
    let receiver = WebhookReceiver::start();
    let notifiers = Notifiers::from_config(&webhook_config(&receiver.url("/hook?token=path-token"))).unwrap();
    let firing = notification("ops-webhook", AlertState::Firing);

    for status in [503, 500, 429, 408] {
        receiver.respond_with(status, "try later");
        let err = notifiers.send(&firing).await.expect_err("not 2xx");
        assert!(!err.permanent, "{status} is worth a retry: {err:?}");
        assert!(err.message.contains(&status.to_string()), "{}", err.message);
        assert!(err.message.contains("try later"), "{}", err.message);
    }

    let long_body = format!("bad payload\n{}", "x".repeat(1000));
    for status in [400, 401, 404] {
        receiver.respond_with(status, &long_body);
        let err = notifiers.send(&firing).await.expect_err("not 2xx");
        assert!(err.permanent, "{status} will not get better: {err:?}");
        assert!(err.message.contains(&status.to_string()), "{}", err.message);
        assert!(err.message.contains("bad payload x"), "{}", err.message);
        assert!(err.message.len() < 400, "the body is cut: {}", err.message);
    }

    receiver.respond_with(204, "");
    notifiers.send(&firing).await.expect("delivered after recovering");
    assert_eq!(receiver.requests().len(), 8);
}

#[tokio::test]
async fn unreachable_webhook_is_retryable_and_the_message_holds_no_secret() {
    let url = format!("http://127.0.0.1:{}/hook?token=path-token", free_port());
    let notifiers = Notifiers::from_config(&webhook_config(&url)).unwrap();
    let err = notifiers
        .send(&notification("ops-webhook", AlertState::Firing))
        .await
        .expect_err("nothing listens");
    assert!(!err.permanent, "{err:?}");
    assert!(err.message.contains("ops-webhook"), "{}", err.message);
    assert!(err.message.to_lowercase().contains("connect"), "{}", err.message);
    for secret in ["path-token", "hook-token", "s3cret-key", "/hook"] {
        assert!(!err.message.contains(secret), "{secret} leaked: {}", err.message);
    }
}

#[tokio::test]
async fn slack_and_teams_get_a_message_read_at_a_glance() {
    let receiver = WebhookReceiver::start();
    let config = config(&format!(
        "[[notifiers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}\"\n\
         [[notifiers]]\nname = \"teams\"\nkind = \"teams\"\nurl = \"{}\"\nsend_resolved = false\n",
        receiver.url("/services/T000/B000/slack-token"),
        receiver.url("/workflows/run?sig=teams-signature"),
    ));
    let notifiers = Notifiers::from_config(&config).unwrap();
    assert!(!notifiers.sends_resolved("teams"));
    for receiver_name in ["chat", "teams"] {
        notifiers
            .send(&notification(receiver_name, AlertState::Firing))
            .await
            .expect("delivered");
    }
    notifiers
        .send(&notification("chat", AlertState::Resolved))
        .await
        .expect("delivered");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].path, "/services/T000/B000/slack-token");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));

    // Slack: the headline as the notification's text; what, where, value
    // and threshold, since, a link; the log line's `<` escaped.
    let slack = requests[0].json();
    assert_eq!(slack["text"], "[FIRING:1] AppErrors web-1 /var/log/app.log");
    let text = slack["attachments"][0]["text"].as_str().unwrap();
    for part in [
        "*error rate 12% on web-1 /var/log/app.log* — web-1 · source=/var/log/app.log",
        "0.12 &gt; 0.05 · since ",
        "|open>",
        "top pattern: `4812 × ERROR &lt;*&gt; in &lt;iframe&gt;`",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    let resolved = requests[2].json();
    assert_eq!(resolved["attachments"][0]["color"], "#2f9e44");
    assert!(
        resolved["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .contains("last 0.12 (fires at &gt; 0.05)")
    );

    // Teams: one Adaptive Card with the same facts.
    assert_eq!(requests[1].path, "/workflows/run?sig=teams-signature");
    let card = requests[1].json();
    let content = &card["attachments"][0]["content"];
    assert_eq!(content["type"], "AdaptiveCard");
    assert_eq!(
        content["body"][0]["inlines"][0]["text"],
        "[FIRING:1] AppErrors web-1 /var/log/app.log"
    );
    let lines: Vec<String> = content["body"][1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|block| {
            block["inlines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|run| run["text"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert!(lines.contains(&"Value: 0.12 > 0.05".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"Top pattern: 4812 × ERROR <*> in <iframe>".to_owned()),
        "{lines:?}"
    );

    // A chat URL's path and query are tokens: never in an error.
    receiver.respond_with(404, "no_service");
    let err = notifiers
        .send(&notification("chat", AlertState::Firing))
        .await
        .expect_err("404");
    assert!(err.permanent && err.message.starts_with("slack chat ("), "{err:?}");
    for secret in ["slack-token", "/services"] {
        assert!(!err.message.contains(secret), "{secret} leaked: {}", err.message);
    }
}
