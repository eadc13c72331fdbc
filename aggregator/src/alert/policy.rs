//! Alerting policy, pure: no SQLite here ([`super::state`] stores what it
//! decides), so each rule of the lifecycle and of grouping is tested on its
//! own.
//!
//! - The lifecycle of an alert instance ([`observe`], [`unobserved`]):
//!   inactive → pending (breaching, for less than the rule's `for`) →
//!   firing → resolved (back past the clear threshold, or absent), a
//!   pending one forgotten when it stops breaching.
//! - Its identity ([`fingerprint`]): a hash of its labels, `alertname`
//!   included.
//! - Grouping, as Alertmanager does it ([`due_at`], [`notification`]): one
//!   group per rule and receiver; a new incident waits `group_wait` to
//!   gather, a changed group `group_interval` after its last message, an
//!   unchanged firing one is repeated after `repeat_interval`.
//! - Silences ([`Matcher`], [`Silence`], [`ActiveSilences`]): Alertmanager's
//!   label matchers, regular expressions compiled once per pass.

use super::model::{Alert, AlertState, Notification, NotificationStatus};
use super::state::AlertRow;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The label that carries the rule name.
pub const ALERTNAME: &str = "alertname";

/// The stable id of an alert instance: 16 hex digits of a hash of its labels
/// (which include `alertname`).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    fingerprint_merged(labels, &BTreeMap::new())
}

/// The [`fingerprint`] of `labels` with `overrides` inserted over them,
/// without building that map (one sorted vector of references, no string
/// copied): most observations of a pass only need their fingerprint, to
/// learn that they have no row and are healthy.
pub fn fingerprint_merged(labels: &BTreeMap<String, String>, overrides: &BTreeMap<String, String>) -> String {
    let mut merged: Vec<(&String, &String)> = labels
        .iter()
        .filter(|(name, _)| !overrides.contains_key(*name))
        .chain(overrides)
        .collect();
    merged.sort_unstable_by_key(|(name, _)| *name);
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (name, value) in merged {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(value.as_bytes());
        hasher.update(&[0]);
    }
    format!("{:016x}", hasher.digest())
}

/// Where an alert instance stands: its state and when it entered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// Pending, firing or resolved.
    pub state: AlertState,
    /// When it began to breach, Unix ms.
    pub active_since_ms: i64,
    /// When it fired.
    pub fired_at_ms: Option<i64>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
}

/// What an evaluation does to an alert instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write: healthy and never alerted, or unchanged.
    Nothing,
    /// A resolved instance still reporting: only its value follows the data.
    ValueOnly,
    /// A pending instance that stopped breaching: forgotten.
    Forget,
    /// The instance is (now) in this lifecycle; `moved` when its state changed.
    Become {
        /// Its new lifecycle.
        lifecycle: Lifecycle,
        /// Whether the state changed (a history entry).
        moved: bool,
    },
}

/// The next step of an instance observed now: `breaching` (past the
/// threshold), `unrecovered` (not yet back past the clear threshold: the
/// hysteresis a firing alert needs to resolve), given its `previous`
/// lifecycle and the rule's `for` (ms).
pub fn observe(previous: Option<&Lifecycle>, breaching: bool, unrecovered: bool, for_ms: i64, now_ms: i64) -> Change {
    let enter = |lifecycle: Lifecycle| Change::Become {
        moved: previous.is_none_or(|p| p.state != lifecycle.state),
        lifecycle,
    };
    let start = Lifecycle {
        state: AlertState::Pending,
        active_since_ms: now_ms,
        fired_at_ms: None,
        resolved_at_ms: None,
    };
    match previous {
        None
        | Some(Lifecycle {
            state: AlertState::Resolved,
            ..
        }) => {
            if !breaching {
                return if previous.is_some() {
                    Change::ValueOnly
                } else {
                    Change::Nothing
                };
            }
            if for_ms == 0 {
                return enter(Lifecycle {
                    state: AlertState::Firing,
                    fired_at_ms: Some(now_ms),
                    ..start
                });
            }
            enter(start)
        }
        Some(
            pending @ Lifecycle {
                state: AlertState::Pending,
                ..
            },
        ) => {
            if !breaching {
                return Change::Forget;
            }
            let held = Lifecycle {
                active_since_ms: pending.active_since_ms,
                ..start
            };
            if now_ms.saturating_sub(pending.active_since_ms) >= for_ms {
                return enter(Lifecycle {
                    state: AlertState::Firing,
                    fired_at_ms: Some(now_ms),
                    ..held
                });
            }
            enter(held)
        }
        Some(
            firing @ Lifecycle {
                state: AlertState::Firing,
                ..
            },
        ) => {
            if unrecovered {
                return enter(*firing);
            }
            enter(Lifecycle {
                state: AlertState::Resolved,
                resolved_at_ms: Some(now_ms),
                ..*firing
            })
        }
    }
}

/// The next step of an instance the evaluation did not mention: a pending
/// one is forgotten; a firing one resolves when the rule says absence is
/// recovery (a log rule's group with no lines) or its data is older than
/// `stale_ms` (a host gone quiet), else it waits.
pub fn unobserved(
    previous: &Lifecycle,
    last_data_ms: i64,
    absent_means_recovered: bool,
    stale_ms: i64,
    now_ms: i64,
) -> Change {
    match previous.state {
        AlertState::Pending => Change::Forget,
        AlertState::Firing if absent_means_recovered || now_ms.saturating_sub(last_data_ms) > stale_ms => {
            Change::Become {
                lifecycle: Lifecycle {
                    state: AlertState::Resolved,
                    resolved_at_ms: Some(now_ms),
                    ..*previous
                },
                moved: true,
            }
        }
        _ => Change::Nothing,
    }
}

/// When notifications go out (aggregator.toml `[alerting]`).
#[derive(Debug, Clone)]
pub struct Policy {
    /// A new group waits this long (from its first firing alert) to collect more alerts.
    pub group_wait: Duration,
    /// A group that changed waits this long after its last notification.
    pub group_interval: Duration,
    /// An unchanged firing group is notified again after this long.
    pub repeat_interval: Duration,
    /// The web UI's base URL, for links.
    pub external_url: String,
}

/// One notifier as a notification group sees it.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Notifier name.
    pub name: String,
    /// Whether it is told when a group resolves.
    pub send_resolved: bool,
}

/// A label matcher of a silence, in Alertmanager's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Value, or a regular expression matching the whole value.
    pub value: String,
    /// `value` is a regular expression.
    #[serde(default)]
    pub is_regex: bool,
    /// `true` (default): the label must match; `false`: must not.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// Checks the matcher; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a matcher needs a label `name`".into());
        }
        if self.is_regex {
            regex::Regex::new(&format!("^(?:{})$", self.value))
                .map_err(|err| format!("matcher `{}`: invalid regular expression: {err}", self.name))?;
        }
        Ok(())
    }

    /// Whether `labels` satisfy it (a missing label has the value "").
    /// Compiles a regular expression each time: for one look (the API);
    /// [`ActiveSilences`] compiles once for many.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        CompiledMatcher::new(self).matches(labels)
    }
}

/// A matcher with its regular expression compiled (an invalid one matches
/// nothing, as it cannot be stored through the API).
struct CompiledMatcher<'a> {
    matcher: &'a Matcher,
    regex: Option<Option<regex::Regex>>,
}

impl<'a> CompiledMatcher<'a> {
    fn new(matcher: &'a Matcher) -> Self {
        let regex = matcher
            .is_regex
            .then(|| regex::Regex::new(&format!("^(?:{})$", matcher.value)).ok());
        CompiledMatcher { matcher, regex }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.matcher.name).map_or("", String::as_str);
        let equal = match &self.regex {
            Some(regex) => regex.as_ref().is_some_and(|re| re.is_match(value)),
            None => value == self.matcher.value,
        };
        equal == self.matcher.is_equal
    }
}

/// A silence: alerts whose labels satisfy every matcher are not notified
/// between `starts_ms` and `ends_ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silence {
    /// Random id.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Unix ms.
    pub starts_ms: i64,
    /// Unix ms; expiring a silence sets it to now.
    pub ends_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Unix ms.
    pub created_ms: i64,
}

impl Silence {
    /// Whether it is in force at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }

    /// Whether it silences `labels`.
    pub fn covers(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// The silences in force at one moment, their regular expressions compiled
/// once: what a notification pass asks of every alert.
pub struct ActiveSilences<'a> {
    silences: Vec<Vec<CompiledMatcher<'a>>>,
}

impl<'a> ActiveSilences<'a> {
    /// Those of `silences` in force at `now_ms`.
    pub fn new(silences: &'a [Silence], now_ms: i64) -> Self {
        ActiveSilences {
            silences: silences
                .iter()
                .filter(|silence| silence.active(now_ms))
                .map(|silence| silence.matchers.iter().map(CompiledMatcher::new).collect())
                .collect(),
        }
    }

    /// Whether one of them silences `labels`.
    pub fn cover(&self, labels: &BTreeMap<String, String>) -> bool {
        self.silences
            .iter()
            .any(|matchers| matchers.iter().all(|matcher| matcher.matches(labels)))
    }
}

/// What a notification group (a rule × a receiver) was last told.
pub struct Group {
    /// When its last notification was queued, Unix ms.
    pub last_sent_ms: Option<i64>,
    /// The fingerprints it was told are firing.
    pub notified: Vec<String>,
}

/// When the group's next notification is due, if one is.
pub fn due_at(
    group: &Group,
    firing: &[&AlertRow],
    firing_set: &BTreeSet<&str>,
    notified: &BTreeSet<&str>,
    policy: &Policy,
) -> Option<i64> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if firing_set == notified {
        // Unchanged: only a still-firing group is reminded.
        return match group.last_sent_ms {
            Some(last) if !firing.is_empty() => Some(last.saturating_add(ms(policy.repeat_interval))),
            _ => None,
        };
    }
    let after_last = group
        .last_sent_ms
        .map(|last| last.saturating_add(ms(policy.group_interval)));
    if notified.is_empty() {
        // A new incident: wait group_wait from its first alert to gather the
        // others, but never sooner than group_interval after the last message
        // (a flapping alert re-fires; it does not re-page at once).
        let first = firing.iter().filter_map(|row| row.fired_at_ms).min()?;
        let gathered = first.saturating_add(ms(policy.group_wait));
        return Some(after_last.map_or(gathered, |after| after.max(gathered)));
    }
    Some(after_last.unwrap_or(0))
}

/// The notification of group `rule` × `receiver` carrying `alerts`: its
/// group key, status and the labels and annotations they share.
pub fn notification(rule: &str, receiver: &str, alerts: Vec<Alert>, policy: &Policy) -> Notification {
    let common = |pick: fn(&Alert) -> &BTreeMap<String, String>| -> BTreeMap<String, String> {
        let mut iter = alerts.iter();
        let Some(first) = iter.next() else {
            return BTreeMap::new();
        };
        let mut shared = pick(first).clone();
        for alert in iter {
            shared.retain(|k, v| pick(alert).get(k) == Some(v));
        }
        shared
    };
    let common_labels = common(|a| &a.labels);
    let common_annotations = common(|a| &a.annotations);
    let status = if alerts.iter().any(|a| a.state == AlertState::Firing) {
        NotificationStatus::Firing
    } else {
        NotificationStatus::Resolved
    };
    let group_labels = BTreeMap::from([(ALERTNAME.to_string(), rule.to_string())]);
    Notification {
        receiver: receiver.to_string(),
        group_key: format!("{{}}:{{alertname={rule:?}}}"),
        status,
        group_labels,
        common_labels,
        common_annotations,
        external_url: policy.external_url.trim_end_matches('/').to_string(),
        alerts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOR: i64 = 60_000;

    fn at(state: AlertState, active_since_ms: i64, fired_at_ms: Option<i64>) -> Lifecycle {
        Lifecycle {
            state,
            active_since_ms,
            fired_at_ms,
            resolved_at_ms: None,
        }
    }

    fn now_in(change: Change) -> Option<Lifecycle> {
        match change {
            Change::Become { lifecycle, .. } => Some(lifecycle),
            _ => None,
        }
    }

    #[test]
    fn an_instance_is_pending_for_the_rules_for_then_fires_then_resolves_past_the_clear_threshold() {
        assert_eq!(
            observe(None, false, false, FOR, 0),
            Change::Nothing,
            "healthy, never alerted"
        );
        let pending = now_in(observe(None, true, true, FOR, 1_000)).unwrap();
        assert_eq!(pending, at(AlertState::Pending, 1_000, None));
        let still = observe(Some(&pending), true, true, FOR, 60_999);
        assert_eq!(
            still,
            Change::Become {
                lifecycle: pending,
                moved: false
            },
            "not yet `for` long"
        );
        let firing = now_in(observe(Some(&pending), true, true, FOR, 61_000)).unwrap();
        assert_eq!(firing, at(AlertState::Firing, 1_000, Some(61_000)));
        // Below the threshold but not past the clear threshold: still firing.
        assert_eq!(now_in(observe(Some(&firing), false, true, FOR, 70_000)), Some(firing));
        let resolved = now_in(observe(Some(&firing), false, false, FOR, 80_000)).unwrap();
        assert_eq!(
            (resolved.state, resolved.fired_at_ms, resolved.resolved_at_ms),
            (AlertState::Resolved, Some(61_000), Some(80_000))
        );
        assert_eq!(observe(Some(&resolved), false, false, FOR, 90_000), Change::ValueOnly);
        assert_eq!(
            now_in(observe(Some(&resolved), true, true, 0, 95_000)),
            Some(at(AlertState::Firing, 95_000, Some(95_000))),
            "with no `for`, a breach fires at once"
        );
        assert_eq!(observe(Some(&pending), false, false, FOR, 2_000), Change::Forget);
    }

    #[test]
    fn an_unmentioned_instance_is_forgotten_pending_and_resolves_firing_when_absent_or_stale() {
        let pending = at(AlertState::Pending, 0, None);
        assert_eq!(unobserved(&pending, 0, false, 1_000, 5), Change::Forget);
        let firing = at(AlertState::Firing, 0, Some(10));
        assert_eq!(
            unobserved(&firing, 100, false, 1_000, 1_100),
            Change::Nothing,
            "data still fresh"
        );
        assert!(matches!(
            unobserved(&firing, 100, false, 1_000, 1_101),
            Change::Become { moved: true, .. }
        ));
        assert!(matches!(
            unobserved(&firing, 100, true, 1_000, 200),
            Change::Become { moved: true, .. }
        ));
    }

    fn policy() -> Policy {
        Policy {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
            external_url: "http://lookout:7070/".into(),
        }
    }

    fn row(fingerprint: &str, fired_at_ms: i64) -> AlertRow {
        AlertRow {
            fingerprint: fingerprint.into(),
            rule: "R".into(),
            labels: BTreeMap::from([("alertname".into(), "R".into())]),
            annotations: BTreeMap::new(),
            state: AlertState::Firing,
            active_since_ms: fired_at_ms,
            fired_at_ms: Some(fired_at_ms),
            resolved_at_ms: None,
            value: Some(1.0),
            threshold: None,
            op: None,
            last_data_ms: fired_at_ms,
            sample_lines: Vec::new(),
            top_patterns: Vec::new(),
        }
    }

    #[test]
    fn a_group_waits_group_wait_then_group_interval_and_is_reminded_after_repeat_interval() {
        let (a, b) = (row("a", 1_000), row("b", 5_000));
        let firing = [&a, &b];
        let firing_set: BTreeSet<&str> = ["a", "b"].into();
        let fresh = Group {
            last_sent_ms: None,
            notified: Vec::new(),
        };
        let none = BTreeSet::new();
        assert_eq!(due_at(&fresh, &firing, &firing_set, &none, &policy()), Some(31_000));
        let told = Group {
            last_sent_ms: Some(31_000),
            notified: vec!["a".into(), "b".into()],
        };
        let notified: BTreeSet<&str> = ["a", "b"].into();
        assert_eq!(
            due_at(&told, &firing, &firing_set, &notified, &policy()),
            Some(3_631_000),
            "unchanged: reminded after repeat_interval"
        );
        let only_a: BTreeSet<&str> = ["a"].into();
        assert_eq!(
            due_at(&told, &[&a], &only_a, &notified, &policy()),
            Some(331_000),
            "changed: group_interval after the last"
        );
        let message = notification("R", "ops", vec![a.to_alert(), b.to_alert()], &policy());
        assert_eq!(message.group_key, "{}:{alertname=\"R\"}");
        assert_eq!(message.status, NotificationStatus::Firing);
        assert_eq!(message.external_url, "http://lookout:7070");
        assert_eq!(message.common_labels.get("alertname").map(String::as_str), Some("R"));
    }

    #[test]
    fn silences_match_as_alertmanagers_do_with_each_regex_compiled_once() {
        let labels = BTreeMap::from([("host".to_string(), "web-12".to_string())]);
        let matcher = |value: &str, is_regex: bool, is_equal: bool| Matcher {
            name: "host".into(),
            value: value.into(),
            is_regex,
            is_equal,
        };
        let silence = |matchers: Vec<Matcher>, ends_ms: i64| Silence {
            id: "s".into(),
            matchers,
            starts_ms: 0,
            ends_ms,
            created_by: "ann".into(),
            comment: String::new(),
            created_ms: 0,
        };
        let stored = [
            silence(vec![matcher("web-[0-9]+", true, true)], 100),
            silence(vec![matcher("db-1", false, false), matcher("web-1", false, true)], 100),
        ];
        assert!(
            ActiveSilences::new(&stored, 50).cover(&labels),
            "the regex matches the whole value"
        );
        assert!(!ActiveSilences::new(&stored, 100).cover(&labels), "ended");
        assert!(
            !ActiveSilences::new(&stored[1..], 50).cover(&labels),
            "every matcher must hold"
        );
        assert!(!matcher("web", true, true).matches(&labels), "anchored");
        assert!(matcher("db-.*", true, false).matches(&labels));
    }

    #[test]
    fn fingerprints_are_those_of_the_merged_labels() {
        let labels = BTreeMap::from([
            ("host".to_string(), "web-1".to_string()),
            ("mount".to_string(), "/".to_string()),
            ("severity".to_string(), "info".to_string()),
        ]);
        let overrides = BTreeMap::from([
            ("alertname".to_string(), "DiskFull".to_string()),
            ("severity".to_string(), "critical".to_string()),
            ("zone".to_string(), "b".to_string()),
        ]);
        let mut merged = labels.clone();
        merged.extend(overrides.clone());
        assert_eq!(fingerprint_merged(&labels, &overrides), fingerprint(&merged));
        assert_ne!(fingerprint(&labels), fingerprint(&merged));
        // The hash of `name NUL value NUL` pairs in name order, as stored
        // fingerprints were made: ids stay stable across versions.
        let mut bytes = Vec::new();
        for (name, value) in &merged {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(value.as_bytes());
            bytes.push(0);
        }
        assert_eq!(
            fingerprint(&merged),
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
        );
    }
}
