//! Webhook notifiers: the notification POSTed as JSON in Alertmanager's
//! webhook format, version `"4"`, so that receivers written for Alertmanager
//! (chat bridges, incident tools) accept Lookout's alerts unchanged:
//!
//! ```json
//! {"version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "truncatedAlerts": 0,
//!  "status": "firing", "receiver": "ops-webhook",
//!  "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
//!  "externalURL": "http://lookout:7070",
//!  "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
//!              "startsAt": "2024-05-01T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
//!              "generatorURL": "http://lookout:7070/alerts?rule=DiskFull",
//!              "fingerprint": "..."}]}
//! ```
//!
//! A log alert's annotations also hold `top_patterns`: the patterns of the
//! most matching lines in the rule's window, `1234 × template` per line
//! (the format has no other place for them, and every receiver shows
//! annotations).
//!
//! A firing alert's `endsAt` is Go's zero time, as Alertmanager sends it.
//! With `secret` set, `X-Lookout-Signature: sha256=<hex>` carries the
//! HMAC-SHA256 of the exact body bytes under the secret; a receiver
//! recomputes it over the raw body before parsing (it covers the body only,
//! not a timestamp, so it authenticates but does not stop replays).
//!
//! Answers: 2xx is delivered; 408, 429, 5xx and network errors are worth a
//! retry; any other status (redirects are not followed) is permanent
//! ([`crate::outbound`]).

use super::{NotifierSetupError, SendError, rule_url};
use crate::alert::model::{AlertState, Notification, NotificationStatus, PatternCount};
use crate::config::Secret;
use crate::outbound::Endpoint;
use hmac::{Hmac, KeyInit, Mac};
use lookout_shared::time::rfc3339;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::Duration;

/// The header carrying the body's signature.
pub(super) const SIGNATURE_HEADER: &str = "X-Lookout-Signature";

/// What Alertmanager sends as the `endsAt` of an alert still firing.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What a notifier that POSTs JSON sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `kind = "webhook"`: Alertmanager's webhook JSON, version 4.
    Alertmanager,
    /// `kind = "slack"`: Slack's incoming-webhook JSON ([`super::chat`]).
    Slack,
    /// `kind = "teams"`: a Teams workflow webhook's Adaptive Card ([`super::chat`]).
    Teams,
}

impl Format {
    /// The notifier kind, as errors name it.
    fn kind(self) -> &'static str {
        match self {
            Format::Alertmanager => "webhook",
            Format::Slack => "slack",
            Format::Teams => "teams",
        }
    }

    /// The request body for `notification`.
    fn body(self, notification: &Notification) -> serde_json::Result<Vec<u8>> {
        let now = jiff::Timestamp::now().as_millisecond();
        match self {
            Format::Alertmanager => serde_json::to_vec(&Payload::new(notification)),
            Format::Slack => serde_json::to_vec(&super::chat::slack(notification, now)),
            Format::Teams => serde_json::to_vec(&super::chat::teams(notification, now)),
        }
    }
}

/// One notifier that POSTs JSON: `kind = "webhook"`, `"slack"` or `"teams"`.
pub(super) struct WebhookNotifier {
    format: Format,
    endpoint: Endpoint,
    secret: Option<Secret>,
}

impl WebhookNotifier {
    /// Checks the URL and headers and builds the HTTP client.
    pub(super) fn new(
        name: &str,
        format: Format,
        url: &str,
        secret: Option<Secret>,
        timeout: Duration,
        headers: &BTreeMap<String, Secret>,
    ) -> Result<WebhookNotifier, NotifierSetupError> {
        let endpoint = Endpoint::new(url, timeout, headers).map_err(|reason| NotifierSetupError::Webhook {
            notifier: name.to_string(),
            reason,
        })?;
        Ok(WebhookNotifier {
            format,
            endpoint,
            secret,
        })
    }

    /// POSTs the notification once.
    pub(super) async fn send(&self, name: &str, notification: &Notification) -> Result<(), SendError> {
        let kind = self.format.kind();
        let body = self
            .format
            .body(notification)
            .map_err(|err| SendError::permanent(format!("cannot encode the {kind} payload: {err}")))?;
        self.post(kind, name, body).await
    }

    /// POSTs `body` (JSON) once; `kind` and `name` name the notifier in errors.
    pub(super) async fn post(&self, kind: &str, name: &str, body: Vec<u8>) -> Result<(), SendError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secret) = &self.secret
            && let Ok(value) = HeaderValue::from_str(&signature(secret.expose().as_bytes(), &body))
        {
            headers.insert(SIGNATURE_HEADER, value);
        }
        self.endpoint
            .post(&format!("{kind} {name}"), headers, body)
            .await
            .map_err(|err| SendError {
                message: err.message,
                permanent: err.permanent,
            })
    }
}

/// `sha256=<hex HMAC-SHA256 of body under key>`.
pub(super) fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 2 * digest.len());
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Alertmanager's webhook body, version 4.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Payload<'a> {
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: u64,
    status: &'static str,
    receiver: &'a str,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: Vec<PayloadAlert<'a>>,
}

/// One alert of [`Payload`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PayloadAlert<'a> {
    status: &'static str,
    labels: &'a BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: &'a str,
}

/// The annotation that lists a log alert's top patterns, one per line.
const TOP_PATTERNS_ANNOTATION: &str = "top_patterns";
/// A template in it is cut to this many characters.
const TEMPLATE_MAX_CHARS: usize = 500;

/// `alert`'s annotations, with its top patterns as one more
/// ([`TOP_PATTERNS_ANNOTATION`], `1234 × template` per line) unless the
/// rule has an annotation of that name: the format has no other place
/// for them.
pub(super) fn annotations(annotations: &BTreeMap<String, String>, top: &[PatternCount]) -> BTreeMap<String, String> {
    let mut annotations = annotations.clone();
    if !top.is_empty() {
        let listed: Vec<String> = top
            .iter()
            .map(|pattern| {
                let template = pattern.template.as_deref().unwrap_or(&pattern.pattern);
                match template.char_indices().nth(TEMPLATE_MAX_CHARS) {
                    Some((cut, _)) => format!("{} × {}…", pattern.count, &template[..cut]),
                    None => format!("{} × {template}", pattern.count),
                }
            })
            .collect();
        annotations
            .entry(TOP_PATTERNS_ANNOTATION.to_owned())
            .or_insert_with(|| listed.join("\n"));
    }
    annotations
}

impl<'a> Payload<'a> {
    /// The body for `notification`. An alert still pending (notifications
    /// should hold none) is sent as firing: the format knows only firing and
    /// resolved.
    pub(super) fn new(notification: &'a Notification) -> Payload<'a> {
        let now = jiff::Timestamp::now().as_millisecond();
        Payload {
            version: "4",
            group_key: &notification.group_key,
            truncated_alerts: 0,
            status: match notification.status {
                NotificationStatus::Firing => "firing",
                NotificationStatus::Resolved => "resolved",
            },
            receiver: &notification.receiver,
            group_labels: &notification.group_labels,
            common_labels: &notification.common_labels,
            common_annotations: &notification.common_annotations,
            external_url: &notification.external_url,
            alerts: notification
                .alerts
                .iter()
                .map(|alert| {
                    let resolved = alert.state == AlertState::Resolved;
                    PayloadAlert {
                        status: if resolved { "resolved" } else { "firing" },
                        labels: &alert.labels,
                        annotations: annotations(&alert.annotations, &alert.top_patterns),
                        starts_at: rfc3339(alert.starts_at_ms),
                        ends_at: if resolved {
                            rfc3339(alert.ends_at_ms.unwrap_or(now))
                        } else {
                            ZERO_TIME.to_string()
                        },
                        generator_url: rule_url(&notification.external_url, &alert.rule),
                        fingerprint: &alert.fingerprint,
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{disk_alert, log_alert, notification};
    use super::*;
    use lookout_tests::webhook::validate_alertmanager_v4;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn firing_payload_is_alertmanager_v4() {
        let n = notification(vec![
            disk_alert("web-1", AlertState::Firing),
            disk_alert("db-22", AlertState::Resolved),
        ]);
        let json = serde_json::to_value(Payload::new(&n)).unwrap();
        validate_alertmanager_v4(&json).unwrap();
        assert_eq!(json["version"], "4");
        assert_eq!(json["status"], "firing");
        assert_eq!(json["receiver"], "oncall");
        assert_eq!(json["groupKey"], "{}:{alertname=\"DiskFull\"}");
        assert_eq!(json["externalURL"], "http://lookout.example:7070");
        assert_eq!(json["groupLabels"]["alertname"], "DiskFull");
        assert_eq!(json["commonLabels"]["mount"], "/var");
        let alerts = json["alerts"].as_array().unwrap();
        assert_eq!(alerts[0]["status"], "firing");
        assert_eq!(alerts[0]["startsAt"], "2024-05-01T12:00:00Z");
        assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(alerts[0]["labels"]["host"], "web-1");
        assert_eq!(
            alerts[0]["generatorURL"],
            "http://lookout.example:7070/alerts?rule=DiskFull"
        );
        assert_eq!(alerts[1]["status"], "resolved");
        assert_eq!(alerts[1]["endsAt"], "2024-05-01T12:12:00Z");
    }

    #[test]
    fn resolved_and_log_payloads_are_alertmanager_v4() {
        let resolved = notification(vec![disk_alert("web-1", AlertState::Resolved)]);
        let json = serde_json::to_value(Payload::new(&resolved)).unwrap();
        validate_alertmanager_v4(&json).unwrap();
        assert_eq!(json["status"], "resolved");
        let log = notification(vec![log_alert()]);
        let json = serde_json::to_value(Payload::new(&log)).unwrap();
        validate_alertmanager_v4(&json).unwrap();
        assert_eq!(json["alerts"][0]["annotations"]["summary"], "errors on web-1");
        assert_eq!(
            json["alerts"][0]["annotations"]["top_patterns"],
            "1234 × ERROR <*> in <b>handler</b>"
        );
        let disk = serde_json::to_value(Payload::new(&resolved)).unwrap();
        assert!(
            disk["alerts"][0]["annotations"].get("top_patterns").is_none(),
            "none on a metric alert"
        );
    }

    #[test]
    fn the_validator_rejects_what_alertmanager_would_not_send() {
        let n = notification(vec![disk_alert("web-1", AlertState::Firing)]);
        let good = serde_json::to_value(Payload::new(&n)).unwrap();
        let mut cases = Vec::new();
        for (pointer, value) in [
            ("/version", serde_json::json!(4)),
            ("/status", serde_json::json!("pending")),
            ("/alerts/0/startsAt", serde_json::json!("2024-05-01 12:00")),
            ("/alerts/0/fingerprint", serde_json::json!("xyz")),
            ("/commonLabels/host", serde_json::json!(1)),
        ] {
            let mut bad = good.clone();
            *bad.pointer_mut(pointer).unwrap() = value;
            cases.push((pointer, bad));
        }
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("truncatedAlerts");
        cases.push(("truncatedAlerts", missing));
        for (what, bad) in cases {
            assert!(validate_alertmanager_v4(&bad).is_err(), "accepted a bad {what}");
        }
    }

    #[test]
    fn invalid_headers_are_setup_errors_without_the_value() {
        let headers = [("X-Token".to_string(), Secret::new("bad\u{7f}value"))].into();
        let err = WebhookNotifier::new(
            "hook",
            Format::Alertmanager,
            "http://127.0.0.1:9/x",
            None,
            Duration::from_secs(1),
            &headers,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("X-Token"), "{err}");
        assert!(!err.to_string().contains("bad"), "{err}");
    }
}
