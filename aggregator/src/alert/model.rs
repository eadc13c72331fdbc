//! The values the alert engine produces and the notifiers consume: one
//! alert instance ([`Alert`]) and one message to one receiver
//! ([`Notification`]), which is what the outbox stores (as JSON).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an alert instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, but not yet for the rule's `for`.
    Pending,
    /// The condition has held for `for`: notifications go out.
    Firing,
    /// It fired and has cleared.
    Resolved,
}

impl AlertState {
    /// `pending`, `firing` or `resolved`, as in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One line of a log rule's evidence, shown in notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleLine {
    /// Event time, RFC 3339.
    pub timestamp: String,
    /// Host.
    pub host: String,
    /// File path.
    pub source: String,
    /// The record's text, as logged (escape it when rendering HTML).
    pub message: String,
}

/// One pattern of a log alert's matching lines ([`crate::ingest::patterns`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternCount {
    /// The pattern's id (the oldest of its ids): `pattern:<id>` finds its lines.
    pub pattern: String,
    /// Its template, `<*>` at variable places (`None`: an id of an earlier
    /// generation of the patterns, whose template is not kept).
    pub template: Option<String>,
    /// Its lines among the alert's matching lines in the window.
    pub count: u64,
}

/// One alert instance: a rule applied to one label set (one host × mount,
/// one host × source, ...), as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Rule name (also `labels["alertname"]`).
    pub rule: String,
    /// Stable id of the instance: hex of a hash of the rule name and labels.
    pub fingerprint: String,
    /// Its state when the notification was made.
    pub state: AlertState,
    /// `alertname`, the instance's labels (`host`, `mount`, `interface`,
    /// `source`, ...) and the rule's own labels (`severity`, ...).
    pub labels: BTreeMap<String, String>,
    /// Rendered `summary`, `description`, ... templates.
    pub annotations: BTreeMap<String, String>,
    /// The value last evaluated (a percentage, a count, a ratio), if any.
    pub value: Option<f64>,
    /// The threshold it is compared with, if the rule has one.
    pub threshold: Option<f64>,
    /// How `value` is compared with `threshold`: `>`, `>=`, `<` or `<=`.
    pub op: Option<String>,
    /// When it started firing (pending: when the condition started), Unix ms.
    pub starts_at_ms: i64,
    /// When it resolved, Unix ms.
    pub ends_at_ms: Option<i64>,
    /// For log rules, the first matching lines (at most a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_lines: Vec<SampleLine>,
    /// For log rules, the patterns of the most matching lines in the
    /// window, most lines first (at most a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_patterns: Vec<PatternCount>,
}

/// Whether a notification announces trouble or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// At least one alert of the group is firing.
    Firing,
    /// Every alert of the group has resolved.
    Resolved,
}

/// One message to one notifier about one group of alerts (the alerts of one
/// rule), as queued in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The notifier's name (Alertmanager's `receiver`).
    pub receiver: String,
    /// Identifies the group across messages: `{}:{alertname="DiskFull"}`.
    pub group_key: String,
    /// `firing` if any alert in it fires.
    pub status: NotificationStatus,
    /// Labels the group is formed by (`alertname`).
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert of the group has with the same value.
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert of the group has with the same value.
    pub common_annotations: BTreeMap<String, String>,
    /// Base URL of the aggregator's web UI, without a trailing `/`.
    pub external_url: String,
    /// The alerts, firing ones first.
    pub alerts: Vec<Alert>,
}

impl Notification {
    /// How many of its alerts fire.
    pub fn firing_count(&self) -> usize {
        self.alerts.iter().filter(|a| a.state == AlertState::Firing).count()
    }
}
