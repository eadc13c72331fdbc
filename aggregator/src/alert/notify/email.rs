//! Email notifiers: one `multipart/alternative` message (plain text and
//! HTML) per notification, sent through the `[smtp]` server with lettre.
//!
//! The subject follows Alertmanager's default (`[FIRING:2] DiskFull web-1
//! /var`, `[RESOLVED] DiskFull web-1 /var`) so that mail filters written for
//! it keep working. The bodies are rendered by minijinja from the templates
//! in `templates/`, embedded in the binary: the HTML one is auto-escaped, so
//! a log line such as `<script>…</script>` in an alert's sample lines is shown
//! as text, never interpreted; the text one shows everything verbatim. All
//! values are prepared here (formatted numbers, RFC 3339 times, URLs), so the
//! templates only lay them out.
//!
//! One connection per message, no pool: notifications are rare, and a fresh
//! connection makes "the mail server was down and is back" need no special
//! handling.

use super::text::{human_duration, number, pattern_url, search_url, truncate};
use super::{NotifierSetupError, SendError, alerts_url, clean, rule_url};
use crate::alert::model::{Alert, AlertState, Notification, NotificationStatus};
use crate::config::{SmtpConfig, SmtpTls};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use lookout_shared::time::now_ms;
use lookout_shared::time::rfc3339;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Labels that the subject leaves out: the name is already there, and the
/// severity says nothing about which instance it is.
const SUBJECT_SKIPPED: &[&str] = &["alertname", "severity"];

/// A sample line's text is cut to this many characters in a message.
const SAMPLE_MAX_CHARS: usize = 500;

/// What every email notifier shares: the SMTP transport, the sender and the templates.
pub(super) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for error messages.
    server: String,
    templates: Environment<'static>,
}

impl Mailer {
    /// Sets up the transport for `[smtp]` (nothing is contacted yet).
    pub(super) fn new(smtp: &SmtpConfig) -> Result<Mailer, NotifierSetupError> {
        let from = parse_mailbox("smtp.from", &smtp.from)?;
        let tls_parameters = || {
            TlsParameters::new(smtp.host.clone()).map_err(|err| NotifierSetupError::SmtpTls {
                host: smtp.host.clone(),
                reason: err.to_string(),
            })
        };
        let tls = match smtp.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(smtp.timeout.get()));
        if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose().to_string()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{}:{}", smtp.host, smtp.port),
            templates: templates().map_err(|err| NotifierSetupError::Template(err.to_string()))?,
        })
    }
}

/// One `kind = "email"` notifier.
pub(super) struct EmailNotifier {
    mailer: Arc<Mailer>,
    to: Vec<Mailbox>,
}

impl EmailNotifier {
    /// The notifier at `notifiers[index]`, sending to `to`.
    pub(super) fn new(index: usize, mailer: Arc<Mailer>, to: &[String]) -> Result<EmailNotifier, NotifierSetupError> {
        let to = to
            .iter()
            .enumerate()
            .map(|(j, address)| parse_mailbox(&format!("notifiers[{index}].to[{j}]"), address))
            .collect::<Result<_, _>>()?;
        Ok(EmailNotifier { mailer, to })
    }

    /// Builds the message and hands it to the SMTP server.
    pub(super) async fn send(&self, notification: &Notification) -> Result<(), SendError> {
        let message = self.message(notification, now_ms())?;
        self.mailer.transport.send(message).await.map_err(|err| {
            let message = format!("cannot send email via SMTP server {}: {err}", self.mailer.server);
            SendError {
                message,
                permanent: err.is_permanent(),
            }
        })?;
        Ok(())
    }

    fn message(&self, notification: &Notification, now_ms: i64) -> Result<Message, SendError> {
        let (text, html) = render(&self.mailer.templates, notification, now_ms)
            .map_err(|err| SendError::permanent(format!("cannot render the email: {err}")))?;
        let mut builder = Message::builder()
            .from(self.mailer.from.clone())
            .subject(subject(notification))
            .date_now()
            .message_id(Some(message_id(self.mailer.from.email.domain())))
            .header(GroupKeyHeader(clean(&notification.group_key, 500)));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|err| SendError::permanent(format!("cannot build the email: {err}")))
    }
}

fn parse_mailbox(key: &str, address: &str) -> Result<Mailbox, NotifierSetupError> {
    address
        .parse()
        .map_err(|err: lettre::address::AddressError| NotifierSetupError::Address {
            key: key.to_string(),
            address: address.to_string(),
            reason: err.to_string(),
        })
}

/// `X-Lookout-Group-Key`: which alert group a message is about, for mail
/// filters and for threading by hand.
#[derive(Clone)]
struct GroupKeyHeader(String);

impl Header for GroupKeyHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Lookout-Group-Key")
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(GroupKeyHeader(text.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `<random@domain>`: unique per message, in the sender's domain.
fn message_id(domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_i64(now_ms());
    hasher.write_u32(std::process::id());
    format!("<lookout.{}.{:016x}@{domain}>", now_ms(), hasher.finish())
}

/// Alertmanager's default subject: `[FIRING:2] DiskFull web-1 /var` (status,
/// count of firing alerts, the alert name, then the values of the labels all
/// alerts share: host first, then the others by name), `[RESOLVED] ...`.
pub(super) fn subject(notification: &Notification) -> String {
    let status = match notification.status {
        NotificationStatus::Firing => format!("FIRING:{}", notification.firing_count()),
        NotificationStatus::Resolved => "RESOLVED".to_string(),
    };
    let mut words = vec![alert_name(notification)];
    let labels = &notification.common_labels;
    words.extend(labels.get("host").cloned());
    words.extend(
        labels
            .iter()
            .filter(|(name, _)| *name != "host" && !SUBJECT_SKIPPED.contains(&name.as_str()))
            .map(|(_, value)| value.clone()),
    );
    clean(&format!("[{status}] {}", words.join(" ")), 200)
}

/// The group's alert name.
fn alert_name(notification: &Notification) -> String {
    notification
        .group_labels
        .get("alertname")
        .or_else(|| notification.common_labels.get("alertname"))
        .cloned()
        .or_else(|| notification.alerts.first().map(|a| a.rule.clone()))
        .unwrap_or_else(|| "alert".to_string())
}

/// The template environment: trimmed block lines, HTML auto-escaping for
/// `*.html` templates only, and unknown variables as errors (so a typo in a
/// template fails the tests rather than printing nothing).
fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()?);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template("email.txt", include_str!("templates/email.txt"))?;
    env.add_template("email.html", include_str!("templates/email.html"))?;
    Ok(env)
}

/// The plain-text and HTML bodies of `notification`, durations counted up to `now_ms`.
pub(super) fn render(
    templates: &Environment<'static>,
    notification: &Notification,
    now_ms: i64,
) -> Result<(String, String), minijinja::Error> {
    let view = Value::from(Serde(EmailView::new(notification, now_ms)));
    let text = templates.get_template("email.txt")?.render(&view)?;
    let html = templates.get_template("email.html")?.render(&view)?;
    Ok((text, html))
}

/// What the templates show, every value ready to print.
#[derive(Serialize)]
struct EmailView {
    /// The subject line.
    heading: String,
    firing_count: usize,
    resolved_count: usize,
    alerts_url: String,
    alerts: Vec<AlertView>,
}

#[derive(Serialize)]
struct AlertView {
    name: String,
    /// `FIRING`, `RESOLVED`, `PENDING`.
    state: String,
    firing: bool,
    summary: Option<String>,
    description: Option<String>,
    /// The other annotations.
    annotations: Vec<Pair>,
    /// `value 85.2 >= threshold 80`, or for a resolved alert
    /// `last value 72 (fires when >= 80)`.
    comparison: Option<String>,
    since: String,
    /// How long it has fired (or fired, once resolved).
    duration: String,
    resolved_at: Option<String>,
    host: Option<String>,
    /// The labels other than `alertname` and `host`.
    labels: Vec<Pair>,
    rule_url: String,
    search_url: Option<String>,
    samples: Vec<SampleView>,
    /// The patterns of the most matching lines, with links to their lines.
    patterns: Vec<PatternView>,
}

#[derive(Serialize)]
struct PatternView {
    count: u64,
    template: String,
    url: String,
}

#[derive(Serialize)]
struct Pair {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct SampleView {
    timestamp: String,
    host: String,
    source: String,
    message: String,
}

impl EmailView {
    fn new(notification: &Notification, now_ms: i64) -> EmailView {
        let external_url = &notification.external_url;
        let firing_count = notification.firing_count();
        EmailView {
            heading: subject(notification),
            firing_count,
            resolved_count: notification
                .alerts
                .iter()
                .filter(|a| a.state == AlertState::Resolved)
                .count(),
            alerts_url: alerts_url(external_url),
            alerts: notification
                .alerts
                .iter()
                .map(|alert| AlertView::new(alert, external_url, now_ms))
                .collect(),
        }
    }
}

impl AlertView {
    fn new(alert: &Alert, external_url: &str, now_ms: i64) -> AlertView {
        let resolved = alert.state == AlertState::Resolved;
        let ended = if resolved { alert.ends_at_ms } else { None };
        let comparison = match (alert.value, alert.threshold, alert.op.as_deref()) {
            (Some(value), Some(threshold), Some(op)) if resolved => Some(format!(
                "last value {} (fires when {op} {})",
                number(value),
                number(threshold)
            )),
            (Some(value), Some(threshold), Some(op)) => {
                Some(format!("value {} {op} threshold {}", number(value), number(threshold)))
            }
            (Some(value), _, _) => Some(format!("value {}", number(value))),
            _ => None,
        };
        let annotation = |name: &str| alert.annotations.get(name).cloned();
        AlertView {
            name: alert.rule.clone(),
            state: alert.state.as_str().to_uppercase(),
            firing: alert.state == AlertState::Firing,
            summary: annotation("summary"),
            description: annotation("description"),
            annotations: alert
                .annotations
                .iter()
                .filter(|(name, _)| *name != "summary" && *name != "description")
                .map(Pair::from)
                .collect(),
            comparison,
            since: rfc3339(alert.starts_at_ms),
            duration: human_duration(ended.unwrap_or(now_ms) - alert.starts_at_ms),
            resolved_at: ended.map(rfc3339),
            host: alert.labels.get("host").cloned(),
            labels: alert
                .labels
                .iter()
                .filter(|(name, _)| *name != "alertname" && *name != "host")
                .map(Pair::from)
                .collect(),
            rule_url: rule_url(external_url, &alert.rule),
            search_url: search_url(external_url, alert),
            patterns: alert
                .top_patterns
                .iter()
                .map(|pattern| PatternView {
                    count: pattern.count,
                    template: truncate(
                        pattern.template.as_deref().unwrap_or("(an earlier pattern)"),
                        SAMPLE_MAX_CHARS,
                    ),
                    url: pattern_url(external_url, alert, &pattern.pattern),
                })
                .collect(),
            samples: alert
                .sample_lines
                .iter()
                .map(|line| SampleView {
                    timestamp: line.timestamp.clone(),
                    host: line.host.clone(),
                    source: line.source.clone(),
                    message: truncate(&line.message, SAMPLE_MAX_CHARS),
                })
                .collect(),
        }
    }
}

impl From<(&String, &String)> for Pair {
    fn from((name, value): (&String, &String)) -> Pair {
        Pair {
            name: name.clone(),
            value: value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T0, disk_alert, log_alert, notification};
    use super::*;
    use crate::alert::model::AlertState;

    fn render_now(n: &Notification) -> (String, String) {
        render(&templates().unwrap(), n, T0 + 5 * 60_000 + 3_000).unwrap()
    }

    #[test]
    fn subject_counts_firing_alerts_and_names_the_common_labels() {
        let two = notification(vec![
            disk_alert("web-1", AlertState::Firing),
            disk_alert("web-1", AlertState::Firing),
        ]);
        assert_eq!(subject(&two), "[FIRING:2] DiskFull web-1 /var");
        let mixed = notification(vec![
            disk_alert("web-1", AlertState::Firing),
            disk_alert("db-2", AlertState::Resolved),
        ]);
        assert_eq!(subject(&mixed), "[FIRING:1] DiskFull /var");
        let resolved = notification(vec![disk_alert("web-1", AlertState::Resolved)]);
        assert_eq!(subject(&resolved), "[RESOLVED] DiskFull web-1 /var");
        let mut log = notification(vec![log_alert()]);
        log.group_labels = [("alertname".to_string(), "AppErrors".to_string())].into();
        assert_eq!(subject(&log), "[FIRING:1] AppErrors web-1 /var/log/app.log");
    }

    #[test]
    fn subject_has_no_line_breaks() {
        let mut n = notification(vec![disk_alert("web-1", AlertState::Firing)]);
        n.common_labels.insert("mount".into(), "/v\r\nBcc: x@y".into());
        let subject = subject(&n);
        assert!(!subject.contains(['\r', '\n']), "{subject}");
    }

    /// What a reader of the HTML part sees: the text with entities decoded
    /// (minijinja also escapes `/` and `'`).
    fn as_seen(html: &str) -> String {
        html.replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&middot;", "·")
            .replace("&amp;", "&")
    }

    #[test]
    fn firing_body_shows_value_threshold_times_labels_and_links() {
        let (text, html) = render_now(&notification(vec![disk_alert("web-1", AlertState::Firing)]));
        for body in [text.clone(), as_seen(&html)] {
            assert!(body.contains("value 85.2 >= threshold 80"), "{body}");
            assert!(body.contains("web-1 /var is 85.2% full"), "{body}");
            assert!(body.contains("2024-05-01T12:00:00Z"), "{body}");
            assert!(body.contains("5m 3s"), "{body}");
            assert!(body.contains("critical") && body.contains("/var"), "{body}");
            assert!(
                body.contains("http://lookout.example:7070/alerts?rule=DiskFull"),
                "{body}"
            );
            assert!(!body.contains("Resolved at"), "{body}");
        }
        assert!(text.contains("Host:        web-1"), "{text}");
        assert!(
            text.contains("All alerts: http://lookout.example:7070/alerts\n"),
            "{text}"
        );
        assert!(
            as_seen(&html).contains("href=\"http://lookout.example:7070/alerts\""),
            "{html}"
        );
    }

    #[test]
    fn resolved_body_shows_when_it_resolved() {
        let (text, html) = render_now(&notification(vec![disk_alert("web-1", AlertState::Resolved)]));
        for body in [text.clone(), as_seen(&html)] {
            assert!(body.contains("RESOLVED"), "{body}");
            assert!(body.contains("Resolved at"), "{body}");
            assert!(body.contains("2024-05-01T12:12:00Z"), "{body}");
            assert!(body.contains("12m"), "{body}");
            assert!(body.contains("last value 85.2 (fires when >= 80)"), "{body}");
        }
    }

    #[test]
    fn sample_lines_are_escaped_in_html_and_verbatim_in_text() {
        let (text, html) = render_now(&notification(vec![log_alert()]));
        assert!(text.contains("ERROR <script>alert(1)</script> in handler"), "{text}");
        assert!(text.contains("ERROR <img src=x onerror=alert(1)> & more"), "{text}");
        assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; more"), "{html}");
        let seen = as_seen(&html);
        assert!(seen.contains("ERROR <script>alert(1)</script> in handler"), "{seen}");
        // The search link for a log rule, with each value encoded.
        let search = "http://lookout.example:7070/search?q=level%3Aerror%20AND%20%22disk%20full%22\
                      &host=web-1&source=%2Fvar%2Flog%2Fapp.log";
        assert!(text.contains(search), "{text}");
        assert!(seen.contains(&format!("href=\"{search}\"")), "{seen}");
        for body in [&text, &seen] {
            assert!(
                body.contains("2024-05-01T11:59:58Z") && body.contains("/var/log/app.log"),
                "{body}"
            );
        }
        // The top patterns: count, template as text, a link to its lines.
        assert!(text.contains("1234 x ERROR <*> in <b>handler</b>"), "{text}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(seen.contains("ERROR <*> in <b>handler</b>"), "{seen}");
        let lines = "http://lookout.example:7070/search?q=pattern%3A18c3a2b4f5e60-1a\
                     &host=web-1&source=%2Fvar%2Flog%2Fapp.log";
        assert!(text.contains(lines), "{text}");
        assert!(seen.contains(&format!("href=\"{lines}\"")), "{seen}");
    }

    #[test]
    fn long_sample_lines_are_cut() {
        let mut alert = log_alert();
        alert.sample_lines[0].message = "x".repeat(2000);
        let (text, _) = render_now(&notification(vec![alert]));
        assert!(text.contains(&format!("{}…", "x".repeat(500))), "{text}");
        assert!(!text.contains(&"x".repeat(501)));
    }

    #[test]
    fn message_has_both_parts_and_the_headers() {
        let mailer = Arc::new(
            Mailer::new(&SmtpConfig {
                host: "127.0.0.1".into(),
                port: 25,
                tls: SmtpTls::None,
                from: "Lookout <lookout@example.com>".into(),
                username: None,
                password: None,
                timeout: lookout_shared::config::HumanDuration(std::time::Duration::from_secs(1)),
            })
            .unwrap(),
        );
        let notifier = EmailNotifier::new(0, mailer, &["oncall@example.com".into()]).unwrap();
        let n = notification(vec![disk_alert("web-1", AlertState::Firing)]);
        let raw = String::from_utf8(notifier.message(&n, T0).unwrap().formatted()).unwrap();
        assert!(raw.contains("Subject: [FIRING:1] DiskFull web-1 /var"), "{raw}");
        assert!(raw.contains("To: oncall@example.com"), "{raw}");
        assert!(
            raw.contains("Message-ID: <lookout.") && raw.contains("@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("Date: "), "{raw}");
        assert!(
            raw.contains("X-Lookout-Group-Key: {}:{alertname=\"DiskFull\"}"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative") && raw.contains("text/plain") && raw.contains("text/html"));
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(number(85.2), "85.2");
        assert_eq!(number(80.0), "80");
        assert_eq!(number(0.0123), "0.0123");
        assert_eq!(number(-0.00001), "0");
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(303_000), "5m 3s");
        assert_eq!(human_duration(3_600_000), "1h");
        assert_eq!(human_duration(90_061_000), "1d 1h");
    }
}
