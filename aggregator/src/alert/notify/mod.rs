//! Notifiers: delivery of alert notifications by email (SMTP), webhook and
//! chat, and the push of alerts to Alertmanager.
//!
//! [`Notifiers`] is built once from the `[smtp]` section and the
//! `[[notifiers]]` entries of `aggregator.toml`; the outbox hands it one
//! [`Notification`] at a time and it routes it by
//! [`Notification::receiver`] to the notifier of that name:
//!
//! - email notifiers send one `multipart/alternative` message
//!   (plain text and HTML, rendered from the templates embedded under
//!   `templates/`) through the `[smtp]` server, with an Alertmanager-like
//!   subject such as `[FIRING:2] DiskFull web-1 /var`;
//! - webhook notifiers POST Alertmanager's webhook JSON (version `"4"`), so
//!   any receiver written for Alertmanager works unchanged, optionally signed
//!   with `X-Lookout-Signature: sha256=<hex HMAC-SHA256 of the body>`;
//! - chat notifiers (`slack`, which Mattermost and Rocket.Chat accept too,
//!   and `teams`) POST one message a person reads at a glance ([`chat`]).
//!
//! An Alertmanager notifier is not sent notifications: the alert engine
//! pushes it the alerts themselves ([`alertmanager`]).
//!
//! Delivery is one attempt: retrying is the outbox's job, and a
//! [`SendError`] tells it whether a retry can help (`permanent`) and what to
//! record and show (`message`). Those messages, like everything this module
//! logs, never contain a password, a webhook secret, a header value or a
//! webhook URL's path or query (which often hold a token): only the notifier's
//! name and the server's host and port.

mod alertmanager;
mod chat;
mod email;
mod text;
mod webhook;

use crate::alert::model::{Alert, Notification};
use crate::config::{Config, NotifierConfig};
use alertmanager::AlertmanagerNotifier;
pub use alertmanager::INTERVALS_AHEAD;
use email::{EmailNotifier, Mailer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use webhook::{Format, WebhookNotifier};

/// The configured notifiers, by name. Cheap to clone (one `Arc`); clones
/// share connections and settings. The default has none.
#[derive(Clone, Default)]
pub struct Notifiers {
    inner: Arc<Vec<Notifier>>,
}

/// One configured notifier.
struct Notifier {
    name: String,
    send_resolved: bool,
    kind: Kind,
}

/// How a notifier delivers.
enum Kind {
    Email(EmailNotifier),
    Webhook(Box<WebhookNotifier>),
    /// Pushed alerts, not notifications ([`alertmanager`]).
    Alertmanager(Box<AlertmanagerNotifier>),
}

impl std::fmt::Debug for Notifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the settings hold secrets and URLs with tokens.
        f.debug_struct("Notifiers").field("names", &self.names()).finish()
    }
}

impl Notifiers {
    /// Builds every notifier of `config`: parses the addresses, sets up the
    /// SMTP transport (TLS included) and the HTTP clients, and compiles the
    /// email templates. Nothing is contacted yet.
    pub fn from_config(config: &Config) -> Result<Notifiers, NotifierSetupError> {
        lookout_shared::tls::install_crypto_provider();
        let mut mailer: Option<Arc<Mailer>> = None;
        let mut notifiers = Vec::with_capacity(config.notifiers.len());
        for (i, notifier) in config.notifiers.iter().enumerate() {
            let kind = match notifier {
                NotifierConfig::Email { name, to, .. } => {
                    let mailer = match &mailer {
                        Some(mailer) => mailer.clone(),
                        None => {
                            let smtp = config
                                .smtp
                                .as_ref()
                                .ok_or_else(|| NotifierSetupError::NoSmtp { notifier: name.clone() })?;
                            let built = Arc::new(Mailer::new(smtp)?);
                            mailer = Some(built.clone());
                            built
                        }
                    };
                    Kind::Email(EmailNotifier::new(i, mailer, to)?)
                }
                NotifierConfig::Webhook {
                    name,
                    url,
                    secret,
                    timeout,
                    headers,
                    ..
                } => Kind::Webhook(Box::new(WebhookNotifier::new(
                    name,
                    Format::Alertmanager,
                    url,
                    secret.clone(),
                    timeout.get(),
                    headers,
                )?)),
                NotifierConfig::Alertmanager {
                    name,
                    url,
                    timeout,
                    resend_interval,
                    headers,
                    ..
                } => Kind::Alertmanager(Box::new(AlertmanagerNotifier::new(
                    name,
                    url,
                    timeout.get(),
                    headers,
                    resend_interval.get(),
                )?)),
                NotifierConfig::Slack(chat) | NotifierConfig::Teams(chat) => {
                    let format = match notifier {
                        NotifierConfig::Teams(_) => Format::Teams,
                        _ => Format::Slack,
                    };
                    Kind::Webhook(Box::new(WebhookNotifier::new(
                        &chat.name,
                        format,
                        chat.url.expose(),
                        None,
                        chat.timeout.get(),
                        &BTreeMap::new(),
                    )?))
                }
            };
            notifiers.push(Notifier {
                name: notifier.name().to_string(),
                send_resolved: notifier.send_resolved(),
                kind,
            });
        }
        Ok(Notifiers {
            inner: Arc::new(notifiers),
        })
    }

    /// Whether `other` is this very set (one configuration's, not rebuilt).
    pub fn same_as(&self, other: &Notifiers) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The configured notifier names, in config order.
    pub fn names(&self) -> Vec<String> {
        self.inner.iter().map(|n| n.name.clone()).collect()
    }

    /// Whether notifier `name` wants a message when a group resolves
    /// (`send_resolved`, default true); false for an unknown name.
    pub fn sends_resolved(&self, name: &str) -> bool {
        self.find(name).is_some_and(|n| n.send_resolved)
    }

    /// Delivers `notification` once to the notifier named by its `receiver`.
    /// It does not check `send_resolved`: the caller decides what to send.
    pub async fn send(&self, notification: &Notification) -> Result<(), SendError> {
        let Some(notifier) = self.find(&notification.receiver) else {
            return Err(SendError::permanent(format!(
                "no notifier named `{}` is configured",
                clean(&notification.receiver, 100)
            )));
        };
        let sent = match &notifier.kind {
            Kind::Email(email) => email.send(notification).await,
            Kind::Webhook(webhook) => webhook.send(&notifier.name, notification).await,
            Kind::Alertmanager(_) => Err(SendError::permanent(format!(
                "notifier `{}` is an Alertmanager: alerts are pushed to it, not notifications",
                notifier.name
            ))),
        };
        match &sent {
            Ok(()) => tracing::debug!(
                receiver = %notifier.name,
                group = %notification.group_key,
                alerts = notification.alerts.len(),
                "notification delivered"
            ),
            Err(err) => tracing::debug!(
                receiver = %notifier.name,
                group = %notification.group_key,
                permanent = err.permanent,
                "notification not delivered: {}",
                err.message
            ),
        }
        sent
    }

    /// The notifiers that alerts are pushed to ([`alertmanager`]), with
    /// how often each is pushed the firing alerts again.
    pub fn pushed(&self) -> Vec<(String, Duration)> {
        self.inner
            .iter()
            .filter_map(|notifier| match &notifier.kind {
                Kind::Alertmanager(manager) => Some((notifier.name.clone(), manager.resend)),
                _ => None,
            })
            .collect()
    }

    /// Whether `name` is pushed alerts rather than sent notifications.
    pub fn is_pushed(&self, name: &str) -> bool {
        self.find(name)
            .is_some_and(|notifier| matches!(notifier.kind, Kind::Alertmanager(_)))
    }

    /// Pushes `alerts` (firing, and resolved of late) to the Alertmanager
    /// named `name`, once.
    pub async fn push(&self, name: &str, alerts: &[Alert], external_url: &str, now_ms: i64) -> Result<(), SendError> {
        match self.find(name).map(|notifier| &notifier.kind) {
            Some(Kind::Alertmanager(manager)) => manager.push(name, alerts, external_url, now_ms).await,
            _ => Err(SendError::permanent(format!(
                "no Alertmanager notifier named `{}` is configured",
                clean(name, 100)
            ))),
        }
    }

    fn find(&self, name: &str) -> Option<&Notifier> {
        self.inner.iter().find(|n| n.name == name)
    }
}

/// A notification that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// What went wrong, for the outbox to store and the UI to show: names the
    /// notifier's server (host and port) but holds no secret, header value or
    /// URL path.
    pub message: String,
    /// True when retrying cannot help: an unknown receiver, a webhook's 4xx
    /// answer other than 408 and 429, a mail server's permanent (5xx)
    /// rejection, a message that cannot be built.
    pub permanent: bool,
}

impl SendError {
    /// An error that a retry would only repeat.
    fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Why the notifiers could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum NotifierSetupError {
    /// An email notifier without an `[smtp]` section.
    #[error("notifier `{notifier}` sends email, but there is no [smtp] section")]
    NoSmtp {
        /// The notifier's name.
        notifier: String,
    },
    /// An address that cannot be used in a message.
    #[error("{key}: `{address}` is not a usable email address: {reason}")]
    Address {
        /// The config key, such as `notifiers[0].to[1]` or `smtp.from`.
        key: String,
        /// The address as written.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// TLS for the SMTP server could not be set up.
    #[error("smtp: cannot set up TLS for `{host}`: {reason}")]
    SmtpTls {
        /// `[smtp].host`.
        host: String,
        /// Why.
        reason: String,
    },
    /// A webhook notifier whose URL, headers or HTTP client are unusable.
    #[error("notifier `{notifier}`: {reason}")]
    Webhook {
        /// The notifier's name.
        notifier: String,
        /// Why (never the URL or a header value).
        reason: String,
    },
    /// The embedded email templates do not compile (a bug, caught by the tests).
    #[error("the email templates do not compile: {0}")]
    Template(String),
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for
/// one query-string value.
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The UI's page of current alerts.
fn alerts_url(external_url: &str) -> String {
    format!("{}/alerts", external_url.trim_end_matches('/'))
}

/// The UI's page for one rule's alerts (Alertmanager's `generatorURL`).
fn rule_url(external_url: &str, rule: &str) -> String {
    format!("{}?rule={}", alerts_url(external_url), url_encode(rule))
}

/// `text` made safe for one line of a message: control characters (line
/// breaks included) become spaces, and it is cut to `max` characters.
fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::model::{Alert, AlertState, NotificationStatus, PatternCount, SampleLine};
    use std::collections::BTreeMap;
    use std::path::Path;

    pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// 2024-05-01T12:00:00Z.
    pub(super) const T0: i64 = 1_714_564_800_000;

    pub(super) fn disk_alert(host: &str, state: AlertState) -> Alert {
        Alert {
            rule: "DiskFull".into(),
            fingerprint: format!("{:016x}", host.len() as u64 * 0x9e37_79b9),
            state,
            labels: labels(&[
                ("alertname", "DiskFull"),
                ("host", host),
                ("mount", "/var"),
                ("severity", "critical"),
            ]),
            annotations: labels(&[("summary", &format!("{host} /var is 85.2% full"))]),
            value: Some(85.2),
            threshold: Some(80.0),
            op: Some(">=".into()),
            starts_at_ms: T0,
            ends_at_ms: (state == AlertState::Resolved).then_some(T0 + 12 * 60_000),
            sample_lines: Vec::new(),
            top_patterns: Vec::new(),
        }
    }

    pub(super) fn notification(alerts: Vec<Alert>) -> Notification {
        let firing = alerts.iter().any(|a| a.state == AlertState::Firing);
        let common_labels = alerts
            .first()
            .map(|first| {
                first
                    .labels
                    .iter()
                    .filter(|(k, v)| alerts.iter().all(|a| a.labels.get(*k) == Some(v)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Notification {
            receiver: "oncall".into(),
            group_key: "{}:{alertname=\"DiskFull\"}".into(),
            status: if firing {
                NotificationStatus::Firing
            } else {
                NotificationStatus::Resolved
            },
            group_labels: labels(&[("alertname", "DiskFull")]),
            common_labels,
            common_annotations: BTreeMap::new(),
            external_url: "http://lookout.example:7070".into(),
            alerts,
        }
    }

    pub(super) fn log_alert() -> Alert {
        Alert {
            rule: "AppErrors".into(),
            fingerprint: "00ff12ab34cd56ef".into(),
            state: AlertState::Firing,
            labels: labels(&[
                ("alertname", "AppErrors"),
                ("host", "web-1"),
                ("source", "/var/log/app.log"),
            ]),
            annotations: labels(&[
                ("summary", "errors on web-1"),
                ("query", "level:error AND \"disk full\""),
            ]),
            value: Some(0.12),
            threshold: Some(0.05),
            op: Some(">".into()),
            starts_at_ms: T0,
            ends_at_ms: None,
            sample_lines: vec![
                SampleLine {
                    timestamp: "2024-05-01T11:59:58Z".into(),
                    host: "web-1".into(),
                    source: "/var/log/app.log".into(),
                    message: "ERROR <script>alert(1)</script> in handler".into(),
                },
                SampleLine {
                    timestamp: "2024-05-01T11:59:59Z".into(),
                    host: "web-1".into(),
                    source: "/var/log/app.log".into(),
                    message: "ERROR <img src=x onerror=alert(1)> & more".into(),
                },
            ],
            top_patterns: vec![PatternCount {
                pattern: "18c3a2b4f5e60-1a".into(),
                template: Some("ERROR <*> in <b>handler</b>".into()),
                count: 1234,
            }],
        }
    }

    fn config(text: &str) -> Config {
        let base = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[auth]\ningest_tokens = [\"ingest-token-a\"]\napi_tokens = [\"reader-token-b\"]\n";
        Config::from_toml(Path::new("aggregator.toml"), &format!("{base}{text}")).unwrap()
    }

    #[test]
    fn names_and_send_resolved_follow_the_config() {
        let notifiers = Notifiers::from_config(&config(
            "[smtp]\nhost = \"127.0.0.1\"\nport = 25\nfrom = \"lookout@example.com\"\n\
             [[notifiers]]\nname = \"mail\"\nkind = \"email\"\nto = [\"a@example.com\"]\nsend_resolved = false\n\
             [[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://hooks.example/x?token=t0p\"\n",
        ))
        .unwrap();
        assert_eq!(notifiers.names(), ["mail", "hook"]);
        assert!(!notifiers.sends_resolved("mail"));
        assert!(notifiers.sends_resolved("hook"));
        assert!(!notifiers.sends_resolved("nobody"));
        assert!(!format!("{notifiers:?}").contains("t0p"));
    }

    #[test]
    fn every_smtp_security_mode_sets_up() {
        for tls in ["none", "starttls", "tls"] {
            let notifiers = Notifiers::from_config(&config(&format!(
                "[smtp]\nhost = \"mail.example.com\"\nport = 465\ntls = \"{tls}\"\nfrom = \"l@example.com\"\n\
                 username = \"l\"\npassword = \"pw\"\n\
                 [[notifiers]]\nname = \"mail\"\nkind = \"email\"\nto = [\"a@example.com\"]\n"
            )));
            assert!(notifiers.is_ok(), "{tls}: {:?}", notifiers.err());
        }
    }

    #[test]
    fn notifiers_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
        fn sendable<F: std::future::Future + Send>(_: &F) {}
        let notifiers = Notifiers::from_config(&config("")).unwrap();
        shareable(&notifiers);
        let n = notification(vec![disk_alert("web-1", AlertState::Firing)]);
        sendable(&notifiers.send(&n));
    }

    #[test]
    fn a_bad_address_is_a_setup_error_naming_the_key() {
        let err = Notifiers::from_config(&config(
            "[smtp]\nhost = \"127.0.0.1\"\nport = 25\nfrom = \"lookout@example.com\"\n\
             [[notifiers]]\nname = \"mail\"\nkind = \"email\"\nto = [\"a@example.com\", \"b@@x\"]\n",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("notifiers[0].to[1]"), "{err}");
    }

    #[tokio::test]
    async fn an_unknown_receiver_is_a_permanent_error() {
        let notifiers = Notifiers::from_config(&config("")).unwrap();
        let mut n = notification(vec![disk_alert("web-1", AlertState::Firing)]);
        n.receiver = "nobody".into();
        let err = notifiers.send(&n).await.unwrap_err();
        assert!(err.permanent);
        assert!(err.message.contains("nobody"), "{err}");
    }

    #[test]
    fn urls_are_encoded() {
        assert_eq!(
            rule_url("http://x:7070/", "Disk Full&x"),
            "http://x:7070/alerts?rule=Disk%20Full%26x"
        );
        assert_eq!(url_encode("level:error \"é\""), "level%3Aerror%20%22%C3%A9%22");
    }
}
