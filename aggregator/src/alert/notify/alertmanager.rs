//! `kind = "alertmanager"`: Lookout's alerts pushed to Alertmanager's
//! `POST /api/v2/alerts`, the way Prometheus pushes them. Every firing
//! alert is sent again each `resend_interval` with `endsAt` four intervals
//! ahead, so that Alertmanager resolves it by itself should Lookout stop;
//! a resolved one is sent with its `endsAt` for four intervals after it
//! resolved; and the set is sent within a second when it changes.
//! Alertmanager then groups, silences, inhibits and routes: Lookout's own
//! grouping, timing (`[alerting] group_wait`…) and silences do not apply
//! to it, and its outbox holds nothing for it (a push that fails is made
//! again, whole, by the engine's push task).
//!
//! The body is pure ([`body`]); the HTTP client and the handling of answers
//! are the webhook notifier's.

use super::webhook::{Format, WebhookNotifier, annotations};
use super::{NotifierSetupError, SendError, rule_url};
use crate::alert::model::{Alert, AlertState};
use crate::alert::rules::label_name;
use crate::config::Secret;
use lookout_shared::time::rfc3339;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Resolved alerts are pushed for this many resend intervals, and a firing
/// one lives this many in Alertmanager unless pushed again.
pub const INTERVALS_AHEAD: u32 = 4;

/// One `kind = "alertmanager"` notifier.
pub(super) struct AlertmanagerNotifier {
    poster: WebhookNotifier,
    /// How often the firing alerts are pushed again.
    pub(super) resend: Duration,
}

impl AlertmanagerNotifier {
    /// `url` is Alertmanager's base URL (`http://alertmanager:9093`, or one
    /// with a path prefix); the alerts go to `url/api/v2/alerts`.
    pub(super) fn new(
        name: &str,
        url: &str,
        timeout: Duration,
        headers: &BTreeMap<String, Secret>,
        resend: Duration,
    ) -> Result<AlertmanagerNotifier, NotifierSetupError> {
        let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
        Ok(AlertmanagerNotifier {
            poster: WebhookNotifier::new(name, Format::Alertmanager, &endpoint, None, timeout, headers)?,
            resend,
        })
    }

    /// Pushes `alerts` (firing and lately resolved) once.
    pub(super) async fn push(
        &self,
        name: &str,
        alerts: &[Alert],
        external_url: &str,
        now_ms: i64,
    ) -> Result<(), SendError> {
        let ahead = i64::try_from(self.resend.as_millis()).unwrap_or(i64::MAX / 8) * i64::from(INTERVALS_AHEAD);
        let body = serde_json::to_vec(&body(alerts, external_url, now_ms.saturating_add(ahead)))
            .map_err(|err| SendError::permanent(format!("cannot encode the alertmanager payload: {err}")))?;
        self.poster.post("alertmanager", name, body).await
    }
}

/// One alert as `POST /api/v2/alerts` takes it (`postableAlert`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PostableAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
}

/// `map` with every name as Alertmanager takes names
/// (`[a-zA-Z_][a-zA-Z0-9_]*`, [`label_name`]): it refuses a whole push for
/// one alert with another name (`k8s.pod`, `runbook-url`).
fn named(map: BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter()
        .map(|(name, value)| (label_name(&name), value))
        .collect()
}

/// The body for `alerts`: a firing one ends at `firing_until` unless pushed
/// again, a resolved one at the time it resolved.
pub(super) fn body(alerts: &[Alert], external_url: &str, firing_until: i64) -> Vec<PostableAlert> {
    alerts
        .iter()
        .map(|alert| PostableAlert {
            labels: named(alert.labels.clone()),
            annotations: named(annotations(&alert.annotations, &alert.top_patterns)),
            starts_at: rfc3339(alert.starts_at_ms),
            ends_at: rfc3339(match alert.state {
                AlertState::Resolved => alert.ends_at_ms.unwrap_or(firing_until),
                AlertState::Firing | AlertState::Pending => firing_until,
            }),
            generator_url: rule_url(external_url, &alert.rule),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T0, disk_alert, log_alert};
    use super::*;

    #[test]
    fn firing_alerts_end_ahead_and_resolved_ones_when_they_resolved() {
        let alerts = [
            disk_alert("web-1", AlertState::Firing),
            disk_alert("web-2", AlertState::Resolved),
            log_alert(),
        ];
        let json = serde_json::to_value(body(&alerts, "http://lookout.example:7070", T0 + 240_000)).unwrap();
        assert_eq!(json[0]["labels"]["host"], "web-1");
        assert_eq!(json[0]["startsAt"], "2024-05-01T12:00:00Z");
        assert_eq!(json[0]["endsAt"], "2024-05-01T12:04:00Z");
        assert_eq!(
            json[0]["generatorURL"],
            "http://lookout.example:7070/alerts?rule=DiskFull"
        );
        assert_eq!(json[1]["endsAt"], "2024-05-01T12:12:00Z");
        assert_eq!(
            json[2]["annotations"]["top_patterns"],
            "1234 × ERROR <*> in <b>handler</b>"
        );
        assert!(
            json[0].get("status").is_none(),
            "Alertmanager's own field, not a postable one"
        );
        let mut odd = disk_alert("web-1", AlertState::Firing);
        odd.labels.insert("k8s.pod".into(), "api-1".into());
        odd.annotations.insert("runbook-url".into(), "https://wiki/disk".into());
        let json = serde_json::to_value(body(&[odd], "http://x", T0)).unwrap();
        assert_eq!(json[0]["labels"]["k8s_pod"], "api-1");
        assert_eq!(json[0]["annotations"]["runbook_url"], "https://wiki/disk");
    }
}
