//! The alert engine: two tasks.
//!
//! **Evaluation** runs each rule at its interval, and the metric rules also
//! right after new samples are committed (at most once a second), so an alert
//! does not wait a whole interval for data that has already arrived. Each
//! evaluation's transitions are stored ([`AlertStore::apply`]); then, every
//! tick, [`AlertStore::flush_groups`] decides which notification groups (one
//! per rule × notifier) are due, Alertmanager-style:
//!
//! - a new group waits `group_wait` from its first firing alert, to gather
//!   the alerts that fire together into one message;
//! - a group whose set of firing alerts changed (new ones, resolved ones)
//!   waits `group_interval` after its previous message, which also caps a
//!   flapping alert at one message per `group_interval`;
//! - an unchanged firing group is reminded after `repeat_interval`;
//! - silenced alerts are left out.
//!
//! **Delivery** takes each notifier's oldest undelivered message from the
//! outbox and sends it, retrying with backoff (1 s doubling to 60 s) until
//! the receiver accepts it or answers with a permanent error; the outbox row
//! keeps the attempts and the last error for the API.

use super::eval::{Stores, evaluate};
use super::model::Alert;
use super::notify::{INTERVALS_AHEAD, Notifiers};
use super::policy::{Policy, Receiver};
use super::rules::{Rule, RuleKind};
use super::ruleset::InForce;
use super::state::AlertStore;
use crate::ingest::patterns::PatternBook;
use crate::metricstore::MetricStore;
use crate::metricstore::exposition::label_value;
use crate::store::LogStore;
use lookout_shared::time::now_ms;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The engine wakes at least this often to flush groups whose wait ran out.
const TICK: Duration = Duration::from_secs(1);
/// Longest wait between delivery attempts of one notification.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Old outbox rows and history are pruned this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How a rule's last evaluation went, for the rules API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStatus {
    /// When it was last evaluated, Unix ms.
    pub last_evaluated_ms: Option<i64>,
    /// How long that evaluation of this rule alone took.
    pub last_duration_ms: Option<i64>,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// Evaluations since the process started.
    pub evaluations: u64,
    /// Their time in seconds, summed.
    pub seconds_total: f64,
}

/// Every rule's [`RuleStatus`], by rule name; shared with the API.
#[derive(Debug, Clone, Default)]
pub struct RuleStatuses(Arc<std::sync::Mutex<std::collections::HashMap<String, RuleStatus>>>);

impl RuleStatuses {
    /// The status of `rule` (default: never evaluated).
    pub fn get(&self, rule: &str) -> RuleStatus {
        self.lock().get(rule).cloned().unwrap_or_default()
    }

    /// Records an evaluation of `rule` at `at` (Unix ms) that took `took`.
    fn record(&self, rule: &str, at: i64, took: Duration, last_error: Option<String>) {
        let mut statuses = self.lock();
        let status = statuses.entry(rule.to_string()).or_default();
        status.last_evaluated_ms = Some(at);
        status.last_duration_ms = Some(i64::try_from(took.as_millis()).unwrap_or(i64::MAX));
        status.last_error = last_error;
        status.evaluations += 1;
        status.seconds_total += took.as_secs_f64();
    }

    /// Evaluation time per rule in Prometheus text: a summary (sum and
    /// count) and the last evaluation's time as a gauge.
    pub fn render(&self) -> String {
        let statuses = self.lock();
        let mut rules: Vec<(&String, &RuleStatus)> = statuses.iter().collect();
        rules.sort_by_key(|(name, _)| *name);
        let mut out = String::new();
        let name = "lookout_alert_rule_evaluation_seconds";
        out.push_str(&format!(
            "# HELP {name} Time spent evaluating each alert rule.\n# TYPE {name} summary\n"
        ));
        for (rule, status) in &rules {
            let rule = label_value(rule);
            out.push_str(&format!("{name}_sum{{rule=\"{rule}\"}} {}\n", status.seconds_total));
            out.push_str(&format!("{name}_count{{rule=\"{rule}\"}} {}\n", status.evaluations));
        }
        let name = "lookout_alert_rule_last_evaluation_seconds";
        out.push_str(&format!(
            "# HELP {name} How long each alert rule's last evaluation took.\n# TYPE {name} gauge\n"
        ));
        for (rule, status) in &rules {
            let seconds = status.last_duration_ms.unwrap_or(0) as f64 / 1000.0;
            out.push_str(&format!("{name}{{rule=\"{}\"}} {seconds}\n", label_value(rule)));
        }
        out
    }

    /// Forgets the rules not in `rules`: their series leave `/metrics`,
    /// and a rule made again under the name starts afresh.
    fn keep_only(&self, rules: &[Rule]) {
        self.lock()
            .retain(|name, _| rules.iter().any(|rule| &rule.name == name));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, RuleStatus>> {
        // The map stays valid whatever a panicking holder was doing.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the engine needs.
pub struct EngineParts {
    /// The rules in force and their notifiers, as they change
    /// ([`super::ruleset::RuleSet::subscribe`]).
    pub rules: watch::Receiver<Arc<InForce>>,
    /// Alert state and outbox.
    pub store: Arc<AlertStore>,
    /// Log index, read side.
    pub logs: LogStore,
    /// Metric store, read side.
    pub metrics: MetricStore,
    /// The lines' patterns (`new_pattern` rules, the top patterns of log alerts).
    pub patterns: Arc<PatternBook>,
    /// Changes after every committed metric batch.
    pub metric_commits: watch::Receiver<u64>,
    /// Timing of notifications.
    pub policy: Policy,
    /// Interval of rules that set none.
    pub evaluation_interval: Duration,
    /// Where each evaluation's outcome is recorded.
    pub statuses: RuleStatuses,
}

/// Starts the evaluation and delivery tasks.
pub fn spawn(parts: EngineParts) -> Vec<JoinHandle<()>> {
    let wake_delivery = Arc::new(Notify::new());
    let delivery = tokio::spawn(deliver(parts.store.clone(), parts.rules.clone(), wake_delivery.clone()));
    let pushes = tokio::spawn(push_alerts(
        parts.store.clone(),
        parts.rules.clone(),
        parts.policy.external_url.clone(),
    ));
    vec![tokio::spawn(run_evaluations(parts, wake_delivery)), delivery, pushes]
}

/// After a push fails, how long before the first retry; each further
/// failure doubles it, up to the notifier's `resend_interval`.
const PUSH_RETRY: Duration = Duration::from_secs(5);

/// Whether the alerts of the rule named `rule` go to notifier `name`: as
/// its `notify` says; a rule no longer in force has its alerts' end pushed
/// to every Alertmanager (which notifier it named is gone with it).
fn routed_to(in_force: &InForce, rule: &str, name: &str) -> bool {
    match in_force.rules.iter().find(|candidate| candidate.name == rule) {
        Some(rule) => rule.notify.as_ref().is_none_or(|names| names.iter().any(|n| n == name)),
        None => true,
    }
}

/// Where the pushes to one Alertmanager stand.
#[derive(Default)]
struct PushState {
    /// When the set was last pushed (or last tried), Unix ms.
    at: i64,
    /// What was pushed (see [`digest`]).
    digest: u64,
    /// Failed pushes in a row.
    failures: u32,
}

impl PushState {
    /// Whether `digest` is to be pushed at `now`.
    fn due(&self, digest: u64, now: i64, resend: Duration) -> bool {
        let wait = if self.failures == 0 {
            if digest != self.digest {
                return true;
            }
            resend
        } else {
            // After a failure, retry later and later, whatever changed.
            PUSH_RETRY
                .saturating_mul(1 << self.failures.min(16).saturating_sub(1))
                .min(resend)
        };
        now.saturating_sub(self.at) >= millis(wait)
    }
}

/// What a push holds: each alert's fingerprint and state, in order.
fn digest(alerts: &[Alert]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for alert in alerts {
        (&alert.fingerprint, alert.state.as_str()).hash(&mut hasher);
    }
    hasher.finish()
}

/// Pushes each Alertmanager notifier its alerts (firing, and resolved in
/// the last [`INTERVALS_AHEAD`] resend intervals; Lookout's silences do not
/// apply, Alertmanager has its own): within a second when that set changes,
/// else every `resend_interval`, and after a failed push [`PUSH_RETRY`]
/// later, doubling. An answer that refuses the push for good (a 4xx) is
/// logged, and the push made again when the set changes or
/// `resend_interval` passes. The Alertmanagers are those in force at each
/// look: a reload may add or remove them.
async fn push_alerts(store: Arc<AlertStore>, rules: watch::Receiver<Arc<InForce>>, external_url: String) {
    let mut states: HashMap<String, PushState> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut pushed_to = Notifiers::default();
    loop {
        tick.tick().await;
        let in_force = rules.borrow().clone();
        let notifiers = &in_force.notifiers;
        if !notifiers.same_as(&pushed_to) {
            // A reload: an Alertmanager under a known name may be another
            // one now; each gets the alerts at once.
            states.clear();
            pushed_to = notifiers.clone();
        }
        let managers = notifiers.pushed();
        states.retain(|name, _| managers.iter().any(|(manager, _)| manager == name));
        if managers.is_empty() {
            continue;
        }
        let longest = managers.iter().map(|(_, resend)| *resend).max().unwrap_or_default();
        let now = now_ms();
        let since = now.saturating_sub(millis(longest).saturating_mul(i64::from(INTERVALS_AHEAD)));
        let reader = store.clone();
        let rows = match tokio::task::spawn_blocking(move || reader.firing_and_resolved_since(since)).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "cannot read the alerts to push");
                continue;
            }
            Err(err) => {
                tracing::error!(error = %err, "alert store task failed");
                continue;
            }
        };
        for (name, resend) in &managers {
            let kept_since = now.saturating_sub(millis(*resend).saturating_mul(i64::from(INTERVALS_AHEAD)));
            // Ordered by fingerprint (the query's order), so the digest
            // changes only with the set.
            let alerts: Vec<Alert> = rows
                .iter()
                .filter(|row| row.resolved_at_ms.is_none_or(|at| at >= kept_since))
                .filter(|row| routed_to(&in_force, &row.rule, name))
                .map(|row| row.to_alert())
                .collect();
            let digest = digest(&alerts);
            let state = states.entry(name.clone()).or_default();
            if !state.due(digest, now, *resend) {
                continue;
            }
            if alerts.is_empty() {
                // Nothing to tell: every alert it was pushed has ended there.
                *state = PushState {
                    at: now,
                    digest,
                    failures: 0,
                };
                continue;
            }
            match notifiers.push(name, &alerts, &external_url, now).await {
                Ok(()) => {
                    if state.failures > 0 {
                        tracing::info!(notifier = %name, "pushing the alerts to Alertmanager works again");
                    }
                    *state = PushState {
                        at: now,
                        digest,
                        failures: 0,
                    };
                }
                Err(err) if err.permanent => {
                    tracing::error!(notifier = %name, error = %err, "Alertmanager refused the alerts; trying again when they change or at the next resend");
                    *state = PushState {
                        at: now,
                        digest,
                        failures: 0,
                    };
                }
                Err(err) => {
                    if state.failures == 0 {
                        tracing::warn!(notifier = %name, error = %err, "cannot push the alerts to Alertmanager; trying again, less and less often");
                    }
                    *state = PushState {
                        at: now,
                        digest,
                        failures: state.failures.saturating_add(1),
                    };
                }
            }
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The receivers of `rule`'s notifications: its `notify` list, or every
/// notifier, but those that are pushed alerts instead ([`push_alerts`]).
fn receivers(rule: &Rule, notifiers: &Notifiers) -> Vec<Receiver> {
    let names = rule.notify.clone().unwrap_or_else(|| notifiers.names());
    names
        .into_iter()
        .filter(|name| !notifiers.is_pushed(name))
        .map(|name| Receiver {
            send_resolved: notifiers.sends_resolved(&name),
            name,
        })
        .collect()
}

/// Whether a change of the rules waits to be taken.
fn rules_changed(rules: &watch::Receiver<Arc<InForce>>) -> bool {
    rules.has_changed().unwrap_or(false)
}

fn reads_metrics(rule: &Rule) -> bool {
    matches!(rule.kind, RuleKind::Threshold(_) | RuleKind::NoData(_))
}

/// The rules being evaluated, their notification groups and when each is
/// due next.
struct Schedule {
    rules: Arc<Vec<Rule>>,
    groups: Arc<Vec<(Rule, Vec<Receiver>)>>,
    next_due: Vec<i64>,
}

impl Schedule {
    /// `rules`, each due at the time it was due in `before` (by name), or
    /// now if it is new.
    fn new(rules: Arc<Vec<Rule>>, notifiers: &Notifiers, before: Option<&Schedule>, now: i64) -> Schedule {
        let groups = Arc::new(
            rules
                .iter()
                .map(|rule| (rule.clone(), receivers(rule, notifiers)))
                .collect(),
        );
        let next_due = rules
            .iter()
            .map(|rule| {
                before
                    .and_then(|before| {
                        let index = before.rules.iter().position(|old| old == rule)?;
                        before.next_due.get(index).copied()
                    })
                    .unwrap_or(now)
            })
            .collect();
        Schedule {
            rules,
            groups,
            next_due,
        }
    }
}

/// Resolves, without notifying, the alerts of every rule but `kept`.
async fn retire_others(store: &Arc<AlertStore>, kept: Vec<String>) {
    let names = kept;
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.retire_rules_except(&names, now_ms())).await {
        Ok(Ok(0)) => {}
        Ok(Ok(retired)) => tracing::info!(retired, "resolved the alerts of rules no longer in force"),
        Ok(Err(err)) => tracing::error!(error = %err, "cannot retire the alerts of removed rules"),
        Err(err) => tracing::error!(error = %err, "alert store task failed"),
    }
}

async fn run_evaluations(mut parts: EngineParts, wake_delivery: Arc<Notify>) {
    let in_force = parts.rules.borrow_and_update().clone();
    let rules = in_force.rules.clone();
    // At a start, rules keep their alerts by name (as they were before the stop).
    retire_others(&parts.store, rules.iter().map(|r| r.name.clone()).collect()).await;
    let mut schedule = Schedule::new(rules, &in_force.notifiers, None, now_ms());
    let mut last_metric_run = i64::MIN;
    // Without a sender (the rules can no longer change) the rules stay as they are.
    let mut rules_may_change = true;
    loop {
        let now = now_ms();
        let soonest = schedule
            .next_due
            .iter()
            .copied()
            .min()
            .unwrap_or(now)
            .min(now + millis(TICK));
        let wait = Duration::from_millis(u64::try_from(soonest.saturating_sub(now)).unwrap_or(0));
        let mut metrics_arrived = false;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = parts.metric_commits.changed() => {
                if changed.is_err() {
                    // The metric writer is gone: the aggregator is stopping.
                    return;
                }
                metrics_arrived = true;
            }
            changed = parts.rules.changed(), if rules_may_change => {
                if changed.is_err() {
                    rules_may_change = false;
                } else {
                    let in_force = parts.rules.borrow_and_update().clone();
                    let rules = in_force.rules.clone();
                    // A rule removed, or changed under its name (deleted and made
                    // again between two looks), leaves its alerts resolved.
                    let unchanged = rules
                        .iter()
                        .filter(|rule| schedule.rules.contains(rule))
                        .map(|rule| rule.name.clone())
                        .collect();
                    retire_others(&parts.store, unchanged).await;
                    parts.statuses.keep_only(&rules);
                    schedule = Schedule::new(rules, &in_force.notifiers, Some(&schedule), now_ms());
                    tracing::info!(rules = schedule.rules.len(), "the rules in force changed");
                }
            }
        }
        let now = now_ms();
        if metrics_arrived && now.saturating_sub(last_metric_run) >= millis(TICK) {
            last_metric_run = now;
            for (due, rule) in schedule.next_due.iter_mut().zip(schedule.rules.iter()) {
                if reads_metrics(rule) {
                    *due = (*due).min(now);
                }
            }
        }
        for index in 0..schedule.rules.len() {
            if schedule.next_due[index] > now {
                continue;
            }
            if rules_changed(&parts.rules) {
                // A rule deleted meanwhile must not fire nor notify: take the change first.
                break;
            }
            let interval = schedule.rules[index].interval.unwrap_or(parts.evaluation_interval);
            schedule.next_due[index] = now + millis(interval);
            evaluate_rule(&parts, &schedule.rules, index, now).await;
        }
        if rules_changed(&parts.rules) {
            continue;
        }
        let store = parts.store.clone();
        let policy = parts.policy.clone();
        let groups = schedule.groups.clone();
        let flushed = tokio::task::spawn_blocking(move || store.flush_groups(&groups, &policy, now_ms())).await;
        match flushed {
            Ok(Ok(0)) => {}
            Ok(Ok(_)) => wake_delivery.notify_one(),
            Ok(Err(err)) => tracing::error!(error = %err, "cannot decide on notifications"),
            Err(err) => tracing::error!(error = %err, "alert store task failed"),
        }
    }
}

async fn evaluate_rule(parts: &EngineParts, rules: &Arc<Vec<Rule>>, index: usize, now: i64) {
    // Each rule's own time: `now` is when the whole pass began.
    let started = std::time::Instant::now();
    let Some(rule) = rules.get(index).map(|r| r.name.as_str()) else {
        return;
    };
    let task_rules = rules.clone();
    let (logs, metrics, store) = (parts.logs.clone(), parts.metrics.clone(), parts.store.clone());
    let patterns = parts.patterns.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let rule = &task_rules[index];
        let stores = Stores {
            logs: &logs,
            metrics: &metrics,
            patterns: &patterns,
        };
        let evaluation = evaluate(rule, stores, now).map_err(|err| err.to_string())?;
        store.apply(rule, &evaluation, now).map_err(|err| err.to_string())
    })
    .await;
    let took = started.elapsed();
    let last_error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(err)) => {
            tracing::warn!(rule, error = %err, "rule evaluation failed; retrying at its next interval");
            Some(err)
        }
        Err(err) => {
            tracing::error!(rule, error = %err, "rule evaluation task failed");
            Some(err.to_string())
        }
    };
    parts.statuses.record(rule, now, took, last_error);
}

/// Delay before the next attempt after `attempts` failed ones.
fn backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 6)).unwrap_or(6);
    Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF)
}

/// Sends what the outbox holds due, through the notifiers in force at
/// each look.
async fn deliver(store: Arc<AlertStore>, rules: watch::Receiver<Arc<InForce>>, wake: Arc<Notify>) {
    let mut last_prune = i64::MIN;
    loop {
        let now = now_ms();
        if now.saturating_sub(last_prune) >= millis(PRUNE_EVERY) {
            last_prune = now;
            let store = store.clone();
            if let Ok(Err(err)) = tokio::task::spawn_blocking(move || store.prune(now)).await {
                tracing::warn!(error = %err, "cannot prune old alert records");
            }
        }
        let due = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.due_deliveries(now)).await
        };
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "cannot read the outbox");
                Vec::new()
            }
            Err(_) => return,
        };
        // Those in force now, after the outbox was read: a notification
        // queued for a notifier a reload just added finds it.
        let notifiers = rules.borrow().notifiers.clone();
        // One notification per notifier at a time, notifiers in parallel:
        // a mail server that hangs does not hold up the webhook.
        let mut sends = tokio::task::JoinSet::new();
        for delivery in due {
            let (store, notifiers) = (store.clone(), notifiers.clone());
            sends.spawn(async move {
                let result = notifiers.send(&delivery.notification).await;
                let receiver = delivery.notification.receiver.clone();
                let done = tokio::task::spawn_blocking(move || match result {
                    Ok(()) => {
                        tracing::info!(
                            receiver,
                            group = delivery.notification.group_key,
                            "notification delivered"
                        );
                        store.mark_sent(delivery.id, now_ms())
                    }
                    Err(err) if err.permanent => {
                        tracing::error!(receiver, error = %err, "notification refused; giving up on it");
                        store.mark_failed_attempt(delivery.id, &err.message, None)
                    }
                    Err(err) => {
                        let retry = backoff(delivery.attempts);
                        tracing::warn!(receiver, error = %err, retry_in = ?retry, "notification not delivered");
                        store.mark_failed_attempt(delivery.id, &err.message, Some(now_ms() + millis(retry)))
                    }
                })
                .await;
                if let Ok(Err(err)) = done {
                    tracing::error!(error = %err, "cannot record a delivery in the outbox");
                }
            });
        }
        while sends.join_next().await.is_some() {}
        let next = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.next_attempt_ms()).await
        };
        let wait = match next {
            Ok(Ok(Some(at))) => Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0)),
            _ => PRUNE_EVERY,
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait.min(PRUNE_EVERY)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_push_is_due_on_a_change_every_resend_and_later_and_later_after_failures() {
        let resend = Duration::from_secs(60);
        let pushed = PushState {
            at: 0,
            digest: 7,
            failures: 0,
        };
        assert!(!pushed.due(7, 59_999, resend));
        assert!(pushed.due(7, 60_000, resend), "again every resend_interval");
        assert!(pushed.due(8, 1, resend), "at once on a change");
        let failing = |failures| PushState {
            at: 0,
            digest: 7,
            failures,
        };
        assert!(!failing(1).due(8, 4_999, resend), "a change waits for the retry");
        assert!(failing(1).due(7, 5_000, resend));
        assert!(!failing(3).due(7, 19_999, resend));
        assert!(failing(3).due(7, 20_000, resend));
        assert!(failing(30).due(7, 60_000, resend), "never longer than resend_interval");
    }

    use super::*;

    #[test]
    fn a_changed_rule_set_keeps_the_schedule_of_unchanged_rules() {
        let text = "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[auth]\ningest_tokens = [\"ingest-token-a\"]\n\
                    api_tokens = [\"reader-token-b\"]\n";
        let config = crate::config::Config::from_toml(std::path::Path::new("t.toml"), text).unwrap();
        let notifiers = Notifiers::from_config(&config).unwrap();
        let rules = super::super::rules::defaults();
        let (kept, changed) = (rules[0].clone(), rules[1].clone());
        let before = Schedule {
            rules: Arc::new(vec![kept.clone(), changed.clone()]),
            groups: Arc::new(Vec::new()),
            next_due: vec![5_000, 6_000],
        };
        let mut edited = changed.clone();
        edited.for_ = Duration::from_secs(600);
        let added = rules[2].clone();
        let after = Schedule::new(
            Arc::new(vec![added.clone(), edited, kept.clone()]),
            &notifiers,
            Some(&before),
            1_000,
        );
        assert_eq!(
            after.next_due,
            [1_000, 1_000, 5_000],
            "new and changed now, the unchanged one as it was"
        );
        assert_eq!(after.groups.len(), 3);
        let first = Schedule::new(Arc::new(vec![kept]), &notifiers, None, 2_000);
        assert_eq!(first.next_due, [2_000]);
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn each_rule_keeps_its_own_time_and_metrics_show_it() {
        let statuses = RuleStatuses::default();
        statuses.record("disk \"full\"", 1_000, Duration::from_millis(250), None);
        statuses.record("disk \"full\"", 2_000, Duration::from_millis(50), None);
        statuses.record("errors", 2_000, Duration::from_millis(7), Some("boom".into()));
        let disk = statuses.get("disk \"full\"");
        assert_eq!((disk.last_evaluated_ms, disk.last_duration_ms), (Some(2_000), Some(50)));
        assert_eq!(disk.evaluations, 2);
        assert_eq!(
            statuses.get("errors").last_duration_ms,
            Some(7),
            "not the pass's time so far"
        );
        let text = statuses.render();
        assert!(
            text.contains("lookout_alert_rule_evaluation_seconds_sum{rule=\"disk \\\"full\\\"\"} 0.3\n"),
            "{text}"
        );
        assert!(
            text.contains("lookout_alert_rule_evaluation_seconds_count{rule=\"errors\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lookout_alert_rule_last_evaluation_seconds{rule=\"errors\"} 0.007\n"),
            "{text}"
        );
    }
}
