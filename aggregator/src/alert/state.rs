//! Alert state in SQLite (`data_dir/alerts.sqlite`): alert instances and
//! their transitions, the notification groups, the outbox and silences.
//!
//! ```sql
//! alerts(fingerprint PK, rule, labels, annotations, state, active_since_ms, fired_at_ms,
//!        resolved_at_ms, value, threshold, op, last_data_ms, sample_lines, top_patterns)
//! alert_history(id PK, at_ms, fingerprint, rule, labels, state, value)
//! notify_groups(rule, receiver, last_sent_ms, notified /* JSON fingerprints */, PK(rule, receiver))
//! outbox(id PK, receiver, group_key, status, payload /* Notification JSON */, created_ms,
//!        attempts, next_attempt_ms, last_error, sent_ms, failed)
//! silences(id PK, matchers /* JSON */, starts_ms, ends_ms, created_by, comment, created_ms)
//! ```
//!
//! The invariant the outbox rests on: a state change and the notification it
//! causes are written in one transaction ([`AlertStore::apply`],
//! [`AlertStore::flush_groups`]), so a crash can lose neither one without the
//! other, and a restart neither re-sends nor forgets a firing alert. Delivery
//! marks a row sent only after the receiver accepted it: a crash between the
//! two sends it again (at least once; exactly once unless the process dies
//! in that window).

use super::eval::{Evaluation, STALE_AFTER};
use super::model::{Alert, AlertState, Notification, NotificationStatus, PatternCount, SampleLine};
use super::policy::{
    ALERTNAME, ActiveSilences, Change, Group, Lifecycle, Policy, Receiver, Silence, due_at, fingerprint_merged,
    notification, observe, unobserved,
};
use super::rules::{ErrorRateRule, LogMatchRule, LogStatsRule, NewPatternRule, Rule, RuleKind};
use super::template;
use crate::sqlite::Synchronous;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// The database file under `data_dir`.
pub const FILE_NAME: &str = "alerts.sqlite";

/// Resolved alerts, history and delivered notifications are kept this long.
const KEEP_DONE_MS: i64 = 7 * 24 * 3600 * 1000;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint     TEXT PRIMARY KEY,
    rule            TEXT NOT NULL,
    labels          TEXT NOT NULL,
    annotations     TEXT NOT NULL,
    state           TEXT NOT NULL,
    active_since_ms INTEGER NOT NULL,
    fired_at_ms     INTEGER,
    resolved_at_ms  INTEGER,
    value           REAL,
    threshold       REAL,
    op              TEXT,
    last_data_ms    INTEGER NOT NULL,
    sample_lines    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_rule ON alerts (rule, state);
CREATE TABLE IF NOT EXISTS alert_history (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    rule        TEXT NOT NULL,
    labels      TEXT NOT NULL,
    state       TEXT NOT NULL,
    value       REAL
);
CREATE TABLE IF NOT EXISTS notify_groups (
    rule         TEXT NOT NULL,
    receiver     TEXT NOT NULL,
    last_sent_ms INTEGER,
    notified     TEXT NOT NULL,
    PRIMARY KEY (rule, receiver)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY,
    receiver        TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    status          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    sent_ms         INTEGER,
    failed          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (receiver, id) WHERE sent_ms IS NULL AND failed = 0;
CREATE TABLE IF NOT EXISTS silences (
    id         TEXT PRIMARY KEY,
    matchers   TEXT NOT NULL,
    starts_ms  INTEGER NOT NULL,
    ends_ms    INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
";

/// Version 2: rules made in the app (see [`super::ruleset`]).
const DDL_2: &str = "
CREATE TABLE IF NOT EXISTS app_rules (
    name       TEXT PRIMARY KEY,
    entry      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
";

/// Version 3: a log alert's top patterns (see [`PatternCount`]).
const DDL_3: &str = "
ALTER TABLE alerts ADD COLUMN top_patterns TEXT NOT NULL DEFAULT '[]';
";

/// A rule made in the app, as stored: its `[[rules]]` entry, parsed again
/// on every start so that it is checked against the notifiers of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// The rule's name, unique among all rules.
    pub name: String,
    /// The TOML text of its one `[[rules]]` entry.
    pub entry: String,
    /// Who made it: a user's name, or "API token".
    pub created_by: String,
    /// When, Unix ms.
    pub created_ms: i64,
}

/// Why the alert store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("alert database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column did not parse (a corrupt row).
    #[error("alert database holds invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One stored alert instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    /// Stable id.
    pub fingerprint: String,
    /// Rule name.
    pub rule: String,
    /// All labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// Rendered annotations.
    pub annotations: BTreeMap<String, String>,
    /// Current state.
    pub state: AlertState,
    /// When the condition started holding, Unix ms.
    pub active_since_ms: i64,
    /// When it started firing, Unix ms.
    pub fired_at_ms: Option<i64>,
    /// When it resolved, Unix ms.
    pub resolved_at_ms: Option<i64>,
    /// Latest value.
    pub value: Option<f64>,
    /// Threshold compared with.
    pub threshold: Option<f64>,
    /// Comparison.
    pub op: Option<String>,
    /// Last evaluation that had data for it, Unix ms.
    pub last_data_ms: i64,
    /// For log rules, the first matching lines.
    pub sample_lines: Vec<SampleLine>,
    /// For log rules, the patterns of the most matching lines.
    pub top_patterns: Vec<PatternCount>,
}

impl AlertRow {
    /// Where it stands ([`super::policy`]).
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            state: self.state,
            active_since_ms: self.active_since_ms,
            fired_at_ms: self.fired_at_ms,
            resolved_at_ms: self.resolved_at_ms,
        }
    }

    fn set_lifecycle(&mut self, lifecycle: Lifecycle) {
        self.state = lifecycle.state;
        self.active_since_ms = lifecycle.active_since_ms;
        self.fired_at_ms = lifecycle.fired_at_ms;
        self.resolved_at_ms = lifecycle.resolved_at_ms;
    }

    /// The alert as a notification carries it.
    pub fn to_alert(&self) -> Alert {
        Alert {
            rule: self.rule.clone(),
            fingerprint: self.fingerprint.clone(),
            state: self.state,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            value: self.value,
            threshold: self.threshold,
            op: self.op.clone(),
            starts_at_ms: self.fired_at_ms.unwrap_or(self.active_since_ms),
            ends_at_ms: self.resolved_at_ms,
            sample_lines: self.sample_lines.clone(),
            top_patterns: self.top_patterns.clone(),
        }
    }
}

/// One state change, for the history the UI shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Unix ms.
    pub at_ms: i64,
    /// Alert instance.
    pub fingerprint: String,
    /// Rule name.
    pub rule: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The state entered.
    pub state: AlertState,
    /// The value then.
    pub value: Option<f64>,
}

/// One outbox row, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    /// Row id.
    pub id: i64,
    /// Notifier name.
    pub receiver: String,
    /// Notification group.
    pub group_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// Unix ms.
    pub created_ms: i64,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// When the receiver accepted it, Unix ms.
    pub sent_ms: Option<i64>,
    /// Given up on (a permanent error).
    pub failed: bool,
    /// Next attempt, Unix ms (undelivered rows).
    pub next_attempt_ms: i64,
}

/// A notification waiting for delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Outbox row id.
    pub id: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// The message.
    pub notification: Notification,
}

/// The alert database (cheap to share behind an `Arc`). Its methods block:
/// call them off the async runtime.
pub struct AlertStore {
    conn: Mutex<Connection>,
}

impl AlertStore {
    /// Opens (creating if needed) `data_dir/alerts.sqlite`.
    pub fn open(data_dir: &Path) -> anyhow::Result<AlertStore> {
        use anyhow::Context as _;
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        // A queued notification must survive a power cut once its state
        // change is committed. Version 1 had the alerts, 2 added the app's
        // rules, 3 the top patterns.
        let conn = crate::sqlite::open(&data_dir.join(FILE_NAME), Synchronous::Full, &[DDL, DDL_2, DDL_3])?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(AlertStore { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (an open
        // transaction is rolled back when dropped), so the poison is ignored.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one evaluation of `rule`: moves its instances between
    /// inactive, pending, firing and resolved. Notifications follow from
    /// [`AlertStore::flush_groups`].
    pub fn apply(&self, rule: &Rule, evaluation: &Evaluation, now_ms: i64) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: HashMap<String, AlertRow> = load_rule(&tx, &rule.name)?
            .into_iter()
            .map(|row| (row.fingerprint.clone(), row))
            .collect();
        let for_ms = i64::try_from(rule.for_.as_millis()).unwrap_or(i64::MAX);
        let mut rule_labels = rule.labels.clone();
        rule_labels.insert(ALERTNAME.to_string(), rule.name.clone());
        let mut observed = HashSet::new();
        for observation in &evaluation.observations {
            let fingerprint = fingerprint_merged(&observation.labels, &rule_labels);
            let previous = existing.get(&fingerprint);
            if previous.is_none() && !observation.breaching {
                // Healthy and never alerted: the common case, and nothing to do.
                continue;
            }
            observed.insert(fingerprint.clone());
            let mut labels = observation.labels.clone();
            labels.extend(rule_labels.iter().map(|(name, value)| (name.clone(), value.clone())));
            let mut row = AlertRow {
                fingerprint,
                rule: rule.name.clone(),
                labels,
                // Rendered below, only for a row that is written: most
                // observations of a pass are healthy and write nothing.
                annotations: BTreeMap::new(),
                state: AlertState::Pending,
                active_since_ms: now_ms,
                fired_at_ms: None,
                resolved_at_ms: None,
                value: Some(observation.value),
                threshold: evaluation.threshold,
                op: evaluation.op.map(|op| op.to_string()),
                last_data_ms: now_ms,
                sample_lines: observation.sample_lines.clone(),
                top_patterns: observation.top_patterns.clone(),
            };
            let change = observe(
                previous.map(AlertRow::lifecycle).as_ref(),
                observation.breaching,
                observation.unrecovered,
                for_ms,
                now_ms,
            );
            match change {
                Change::Nothing => {}
                // Keep the resolved row (history, UI) with its old times;
                // only its value follows the data.
                Change::ValueOnly => update_value(&tx, &row)?,
                Change::Forget => {
                    tx.execute("DELETE FROM alerts WHERE fingerprint = ?1", [&row.fingerprint])?;
                }
                Change::Become { lifecycle, moved } => {
                    row.set_lifecycle(lifecycle);
                    if let Some(firing) = previous.filter(|p| p.state == AlertState::Firing) {
                        // A firing alert keeps the lines it fired with until newer ones come.
                        if row.sample_lines.is_empty() {
                            row.sample_lines = firing.sample_lines.clone();
                        }
                        if row.top_patterns.is_empty() {
                            row.top_patterns = firing.top_patterns.clone();
                        }
                    }
                    row.annotations = annotations(rule, &row.labels, observation.value, evaluation.threshold);
                    write_row(&tx, &row)?;
                    if moved {
                        record(&tx, &row, now_ms)?;
                    }
                }
            }
        }
        let stale_ms = i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
        for row in existing.values().filter(|row| !observed.contains(&row.fingerprint)) {
            let change = unobserved(
                &row.lifecycle(),
                row.last_data_ms,
                evaluation.absent_means_recovered,
                stale_ms,
                now_ms,
            );
            match change {
                Change::Forget => {
                    tx.execute("DELETE FROM alerts WHERE fingerprint = ?1", [&row.fingerprint])?;
                }
                Change::Become { lifecycle, .. } => {
                    let mut resolved = row.clone();
                    resolved.set_lifecycle(lifecycle);
                    if evaluation.absent_means_recovered {
                        resolved.value = Some(0.0);
                    }
                    write_row(&tx, &resolved)?;
                    record(&tx, &resolved, now_ms)?;
                }
                Change::Nothing | Change::ValueOnly => {}
            }
        }
        let cutoff = now_ms.saturating_sub(KEEP_DONE_MS);
        tx.execute(
            "DELETE FROM alerts WHERE rule = ?1 AND state = 'resolved' AND resolved_at_ms < ?2",
            params![rule.name, cutoff],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The rules made in the app, oldest first.
    pub fn app_rules(&self) -> Result<Vec<StoredRule>, StateError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT name, entry, created_by, created_ms FROM app_rules ORDER BY created_ms, name")?;
        let rows = statement.query_map([], |row| {
            Ok(StoredRule {
                name: row.get(0)?,
                entry: row.get(1)?,
                created_by: row.get(2)?,
                created_ms: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a rule made in the app; false if one of that name is stored.
    pub fn add_app_rule(&self, rule: &StoredRule) -> Result<bool, StateError> {
        let added = self.conn().execute(
            "INSERT INTO app_rules (name, entry, created_by, created_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name) DO NOTHING",
            rusqlite::params![rule.name, rule.entry, rule.created_by, rule.created_ms],
        )?;
        Ok(added == 1)
    }

    /// Deletes a rule made in the app; false if none has that name.
    pub fn remove_app_rule(&self, name: &str) -> Result<bool, StateError> {
        Ok(self.conn().execute("DELETE FROM app_rules WHERE name = ?1", [name])? == 1)
    }

    /// Resolves, without notifying, the alerts of rules no longer configured.
    pub fn retire_rules_except(&self, rules: &[String], now_ms: i64) -> Result<usize, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let orphans: Vec<AlertRow> = load_all(&tx)?
            .into_iter()
            .filter(|row| row.state != AlertState::Resolved && !rules.contains(&row.rule))
            .collect();
        for row in &orphans {
            let mut resolved = row.clone();
            resolved.state = AlertState::Resolved;
            resolved.resolved_at_ms = Some(now_ms);
            write_row(&tx, &resolved)?;
            record(&tx, &resolved, now_ms)?;
        }
        let placeholders = vec!["?"; rules.len()].join(",");
        let sql = if rules.is_empty() {
            "DELETE FROM notify_groups".to_string()
        } else {
            format!("DELETE FROM notify_groups WHERE rule NOT IN ({placeholders})")
        };
        tx.execute(&sql, rusqlite::params_from_iter(rules))?;
        tx.commit()?;
        Ok(orphans.len())
    }

    /// Decides, for each rule × receiver, whether a notification is due now
    /// (see the module docs of [`super::engine`]) and queues it in the outbox
    /// in the same transaction that records it as sent. Answers how many
    /// notifications were queued.
    pub fn flush_groups(
        &self,
        rules: &[(Rule, Vec<Receiver>)],
        policy: &Policy,
        now_ms: i64,
    ) -> Result<usize, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let stored = load_silences(&tx)?;
        let silences = ActiveSilences::new(&stored, now_ms);
        let mut queued = 0;
        for (rule, receivers) in rules {
            let rows = load_told_rows(&tx, &rule.name)?;
            let silenced = |row: &AlertRow| silences.cover(&row.labels);
            let firing: Vec<&AlertRow> = rows
                .iter()
                .filter(|row| row.state == AlertState::Firing && !silenced(row))
                .collect();
            let firing_set: BTreeSet<&str> = firing.iter().map(|row| row.fingerprint.as_str()).collect();
            for receiver in receivers {
                let group = load_group(&tx, &rule.name, &receiver.name)?;
                let notified: BTreeSet<&str> = group.notified.iter().map(String::as_str).collect();
                // Alerts told as firing that no longer fire: resolved (a
                // silenced one is dropped without a word).
                let resolved: Vec<&AlertRow> = rows
                    .iter()
                    .filter(|row| {
                        notified.contains(row.fingerprint.as_str())
                            && row.state == AlertState::Resolved
                            && !silenced(row)
                    })
                    .collect();
                let Some(due_at) = due_at(&group, &firing, &firing_set, &notified, policy) else {
                    if firing.is_empty() && !notified.is_empty() && resolved.is_empty() {
                        // Everything it was told about was silenced or forgotten.
                        save_group(&tx, &rule.name, &receiver.name, group.last_sent_ms, &[])?;
                    }
                    continue;
                };
                if now_ms < due_at {
                    continue;
                }
                let mut alerts: Vec<Alert> = firing.iter().map(|row| row.to_alert()).collect();
                if receiver.send_resolved {
                    alerts.extend(resolved.iter().map(|row| row.to_alert()));
                }
                if !alerts.is_empty() {
                    let notification = notification(&rule.name, &receiver.name, alerts, policy);
                    queue(&tx, &notification, now_ms)?;
                    queued += 1;
                }
                let now_firing: Vec<String> = firing_set.iter().map(|s| s.to_string()).collect();
                save_group(&tx, &rule.name, &receiver.name, Some(now_ms), &now_firing)?;
            }
        }
        tx.commit()?;
        Ok(queued)
    }

    /// Per notifier, its oldest undelivered notification, when its next
    /// attempt is due by `now_ms`. Oldest first per notifier keeps a group's
    /// FIRING ahead of its RESOLVED when a notifier was down for both.
    pub fn due_deliveries(&self, now_ms: i64) -> Result<Vec<Delivery>, StateError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT id, attempts, payload, next_attempt_ms FROM outbox WHERE id IN \
             (SELECT min(id) FROM outbox WHERE sent_ms IS NULL AND failed = 0 GROUP BY receiver) ORDER BY id",
        )?;
        let rows: Vec<(i64, i64, String, i64)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut due = Vec::new();
        for (id, attempts, payload, next_attempt_ms) in rows {
            if next_attempt_ms > now_ms {
                continue;
            }
            due.push(Delivery {
                id,
                attempts,
                notification: serde_json::from_str(&payload)?,
            });
        }
        Ok(due)
    }

    /// The earliest next attempt of any undelivered notification.
    pub fn next_attempt_ms(&self) -> Result<Option<i64>, StateError> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT min(next_attempt_ms) FROM outbox WHERE sent_ms IS NULL AND failed = 0",
            [],
            |row| row.get(0),
        )?)
    }

    /// Marks a notification delivered.
    pub fn mark_sent(&self, id: i64, now_ms: i64) -> Result<(), StateError> {
        self.conn().execute(
            "UPDATE outbox SET sent_ms = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now_ms],
        )?;
        Ok(())
    }

    /// Records a failed attempt; `retry_at_ms` `None` gives up (a permanent error).
    pub fn mark_failed_attempt(&self, id: i64, error: &str, retry_at_ms: Option<i64>) -> Result<(), StateError> {
        let conn = self.conn();
        match retry_at_ms {
            Some(at) => conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_ms = ?3 WHERE id = ?1",
                params![id, error, at],
            )?,
            None => conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, failed = 1 WHERE id = ?1",
                params![id, error],
            )?,
        };
        Ok(())
    }

    /// Deletes delivered or abandoned notifications and history older than a week.
    pub fn prune(&self, now_ms: i64) -> Result<(), StateError> {
        let cutoff = now_ms.saturating_sub(KEEP_DONE_MS);
        let conn = self.conn();
        conn.execute(
            "DELETE FROM outbox WHERE (sent_ms IS NOT NULL OR failed = 1) AND created_ms < ?1",
            [cutoff],
        )?;
        conn.execute("DELETE FROM alert_history WHERE at_ms < ?1", [cutoff])?;
        conn.execute("DELETE FROM silences WHERE ends_ms < ?1", [cutoff])?;
        Ok(())
    }

    /// Every stored alert instance (resolved ones for a week), newest first.
    pub fn alerts(&self) -> Result<Vec<AlertRow>, StateError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        let mut rows = load_all(&tx)?;
        rows.sort_by_key(|row| std::cmp::Reverse(row.fired_at_ms.unwrap_or(row.active_since_ms)));
        Ok(rows)
    }

    /// The latest state changes, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StateError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT at_ms, fingerprint, rule, labels, state, value FROM alert_history ORDER BY id DESC LIMIT ?1",
        )?;
        let entries = statement
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok(HistoryEntry {
                    at_ms: row.get(0)?,
                    fingerprint: row.get(1)?,
                    rule: row.get(2)?,
                    labels: json_column(row, 3)?,
                    state: parse_state(&row.get::<_, String>(4)?),
                    value: row.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(entries)
    }

    /// The latest outbox rows (undelivered ones first).
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StateError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT id, receiver, group_key, status, created_ms, attempts, last_error, sent_ms, failed, \
             next_attempt_ms FROM outbox ORDER BY (sent_ms IS NULL AND failed = 0) DESC, id DESC LIMIT ?1",
        )?;
        let rows = statement
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok(OutboxEntry {
                    id: row.get(0)?,
                    receiver: row.get(1)?,
                    group_key: row.get(2)?,
                    status: row.get(3)?,
                    created_ms: row.get(4)?,
                    attempts: row.get(5)?,
                    last_error: row.get(6)?,
                    sent_ms: row.get(7)?,
                    failed: row.get::<_, i64>(8)? != 0,
                    next_attempt_ms: row.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Stores a new silence.
    pub fn add_silence(&self, silence: &Silence) -> Result<(), StateError> {
        self.conn().execute(
            "INSERT INTO silences (id, matchers, starts_ms, ends_ms, created_by, comment, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                silence.id,
                serde_json::to_string(&silence.matchers)?,
                silence.starts_ms,
                silence.ends_ms,
                silence.created_by,
                silence.comment,
                silence.created_ms
            ],
        )?;
        Ok(())
    }

    /// Ends silence `id` now; `false` if there is no such silence.
    pub fn expire_silence(&self, id: &str, now_ms: i64) -> Result<bool, StateError> {
        let changed = self.conn().execute(
            "UPDATE silences SET ends_ms = min(ends_ms, ?2) WHERE id = ?1",
            params![id, now_ms],
        )?;
        Ok(changed > 0)
    }

    /// The firing alerts, and those resolved at or after `resolved_since`
    /// (Unix ms): what an Alertmanager is pushed.
    pub fn firing_and_resolved_since(&self, resolved_since: i64) -> Result<Vec<AlertRow>, StateError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        let mut statement = tx.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE state = 'firing' OR (state = 'resolved' AND resolved_at_ms >= ?1) \
             ORDER BY fingerprint"
        ))?;
        read_rows(&mut statement, [resolved_since])
    }

    /// Every stored silence (expired ones for a week), newest first.
    pub fn silences(&self) -> Result<Vec<Silence>, StateError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        load_silences(&tx)
    }
}

fn queue(tx: &Transaction<'_>, notification: &Notification, now_ms: i64) -> Result<(), StateError> {
    let status = match notification.status {
        NotificationStatus::Firing => "firing",
        NotificationStatus::Resolved => "resolved",
    };
    tx.execute(
        "INSERT INTO outbox (receiver, group_key, status, payload, created_ms, next_attempt_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            notification.receiver,
            notification.group_key,
            status,
            serde_json::to_string(notification)?,
            now_ms
        ],
    )?;
    Ok(())
}

fn load_group(tx: &Transaction<'_>, rule: &str, receiver: &str) -> Result<Group, StateError> {
    let row: Option<(Option<i64>, String)> = tx
        .prepare_cached("SELECT last_sent_ms, notified FROM notify_groups WHERE rule = ?1 AND receiver = ?2")?
        .query_row([rule, receiver], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((last_sent_ms, notified)) => Group {
            last_sent_ms,
            notified: serde_json::from_str(&notified)?,
        },
        None => Group {
            last_sent_ms: None,
            notified: Vec::new(),
        },
    })
}

fn save_group(
    tx: &Transaction<'_>,
    rule: &str,
    receiver: &str,
    last_sent_ms: Option<i64>,
    notified: &[String],
) -> Result<(), StateError> {
    tx.prepare_cached(
        "INSERT INTO notify_groups (rule, receiver, last_sent_ms, notified) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (rule, receiver) DO UPDATE SET last_sent_ms = ?3, notified = ?4",
    )?
    .execute(params![rule, receiver, last_sent_ms, serde_json::to_string(notified)?])?;
    Ok(())
}

const ALERT_COLUMNS: &str = "fingerprint, rule, labels, annotations, state, active_since_ms, fired_at_ms, \
     resolved_at_ms, value, threshold, op, last_data_ms, sample_lines, top_patterns";

fn read_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<AlertRow>, StateError> {
    let rows = statement
        .query_map(params, |row| {
            Ok(AlertRow {
                fingerprint: row.get(0)?,
                rule: row.get(1)?,
                labels: json_column(row, 2)?,
                annotations: json_column(row, 3)?,
                state: parse_state(&row.get::<_, String>(4)?),
                active_since_ms: row.get(5)?,
                fired_at_ms: row.get(6)?,
                resolved_at_ms: row.get(7)?,
                value: row.get(8)?,
                threshold: row.get(9)?,
                op: row.get(10)?,
                last_data_ms: row.get(11)?,
                sample_lines: json_column(row, 12)?,
                top_patterns: json_column(row, 13)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A JSON column parsed; a corrupt one is a conversion error naming the column.
fn json_column<T: serde::de::DeserializeOwned>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(err)))
}

fn load_rule(tx: &Transaction<'_>, rule: &str) -> Result<Vec<AlertRow>, StateError> {
    let mut statement = tx.prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE rule = ?1"))?;
    read_rows(&mut statement, [rule])
}

/// The rows of `rule` a notification can tell of: firing and resolved
/// ones. Pending rows (most rows while a fleet's alerts wait out their
/// `for`) never are, and this runs every second.
fn load_told_rows(tx: &Transaction<'_>, rule: &str) -> Result<Vec<AlertRow>, StateError> {
    let mut statement = tx.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE rule = ?1 AND state != 'pending'"
    ))?;
    read_rows(&mut statement, [rule])
}

fn load_all(tx: &Transaction<'_>) -> Result<Vec<AlertRow>, StateError> {
    let mut statement = tx.prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts"))?;
    read_rows(&mut statement, [])
}

fn parse_state(text: &str) -> AlertState {
    match text {
        "pending" => AlertState::Pending,
        "firing" => AlertState::Firing,
        _ => AlertState::Resolved,
    }
}

fn write_row(tx: &Transaction<'_>, row: &AlertRow) -> Result<(), StateError> {
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO alerts ({ALERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?
    .execute(params![
        row.fingerprint,
        row.rule,
        serde_json::to_string(&row.labels)?,
        serde_json::to_string(&row.annotations)?,
        row.state.as_str(),
        row.active_since_ms,
        row.fired_at_ms,
        row.resolved_at_ms,
        row.value,
        row.threshold,
        row.op,
        row.last_data_ms,
        serde_json::to_string(&row.sample_lines)?,
        serde_json::to_string(&row.top_patterns)?,
    ])?;
    Ok(())
}

/// A rule's annotations rendered for one instance; a log rule's query goes
/// along, so a notification can link to its search.
fn annotations(
    rule: &Rule,
    labels: &BTreeMap<String, String>,
    value: f64,
    threshold: Option<f64>,
) -> BTreeMap<String, String> {
    let mut annotations: BTreeMap<String, String> = rule
        .annotations
        .iter()
        .map(|(name, text)| (name.clone(), template::render(text, labels, Some(value), threshold)))
        .collect();
    if let RuleKind::ErrorRate(ErrorRateRule { query, .. })
    | RuleKind::LogMatch(LogMatchRule { query, .. })
    | RuleKind::LogStats(LogStatsRule { query, .. })
    | RuleKind::NewPattern(NewPatternRule { query, .. }) = &rule.kind
    {
        annotations.entry("query".to_string()).or_insert_with(|| query.clone());
    }
    annotations
}

fn update_value(tx: &Transaction<'_>, row: &AlertRow) -> Result<(), StateError> {
    tx.execute(
        "UPDATE alerts SET value = ?2, last_data_ms = ?3 WHERE fingerprint = ?1",
        params![row.fingerprint, row.value, row.last_data_ms],
    )?;
    Ok(())
}

fn record(tx: &Transaction<'_>, row: &AlertRow, now_ms: i64) -> Result<(), StateError> {
    tx.prepare_cached(
        "INSERT INTO alert_history (at_ms, fingerprint, rule, labels, state, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now_ms,
        row.fingerprint,
        row.rule,
        serde_json::to_string(&row.labels)?,
        row.state.as_str(),
        row.value
    ])?;
    Ok(())
}

fn load_silences(tx: &Transaction<'_>) -> Result<Vec<Silence>, StateError> {
    let mut statement = tx.prepare_cached(
        "SELECT id, matchers, starts_ms, ends_ms, created_by, comment, created_ms FROM silences ORDER BY created_ms DESC",
    )?;
    let silences = statement
        .query_map([], |row| {
            Ok(Silence {
                id: row.get(0)?,
                matchers: json_column(row, 1)?,
                starts_ms: row.get(2)?,
                ends_ms: row.get(3)?,
                created_by: row.get(4)?,
                comment: row.get(5)?,
                created_ms: row.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(silences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::eval::Observation;
    use crate::alert::rules::{Op, ThresholdRule};
    use std::time::Duration;

    #[test]
    fn a_version_1_database_gains_the_app_rules_and_keeps_its_alerts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            conn.execute_batch(&format!("{DDL} PRAGMA user_version = 1;")).unwrap();
            conn.execute("INSERT INTO silences VALUES ('s1', '[]', 0, 1, 'ann', 'kept', 0)", [])
                .unwrap();
        }
        let store = AlertStore::open(dir.path()).unwrap();
        assert_eq!(store.silences().unwrap().len(), 1, "earlier rows kept");
        let rule = StoredRule {
            name: "R".into(),
            entry: "[[rules]]".into(),
            created_by: "ann".into(),
            created_ms: 1,
        };
        assert!(store.add_app_rule(&rule).unwrap());
        assert!(!store.add_app_rule(&rule).unwrap(), "one per name");
        drop(store);
        let store = AlertStore::open(dir.path()).unwrap();
        assert_eq!(store.app_rules().unwrap(), [rule]);
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 3);
    }

    #[test]
    fn a_version_2_database_keeps_its_alerts_with_no_top_patterns() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            conn.execute_batch(&format!("{DDL} {DDL_2} PRAGMA user_version = 2;"))
                .unwrap();
            conn.execute(
                "INSERT INTO alerts VALUES ('f1', 'AppErrors', '{\"host\":\"web-1\"}', '{}', 'firing', 5, 6, NULL, \
                 3.0, 1.0, '>', 7, '[]')",
                [],
            )
            .unwrap();
        }
        let store = AlertStore::open(dir.path()).unwrap();
        let rows = store.alerts().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].rule.as_str(), rows[0].state),
            ("AppErrors", AlertState::Firing)
        );
        assert!(rows[0].top_patterns.is_empty());
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 3);
    }

    fn rule(clear_threshold: Option<f64>) -> Rule {
        Rule {
            name: "DiskFull".into(),
            kind: RuleKind::Threshold(ThresholdRule {
                metric: "fs.used_percent".into(),
                match_labels: BTreeMap::new(),
                op: Op::Ge,
                threshold: 80.0,
                clear_threshold,
                datapoints: None,
            }),
            interval: None,
            for_: Duration::ZERO,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            notify: None,
        }
    }

    fn evaluation(value: f64, clear_threshold: Option<f64>) -> Evaluation {
        let breaching = value >= 80.0;
        Evaluation {
            observations: vec![Observation {
                labels: BTreeMap::from([("host".into(), "web-1".into()), ("mount".into(), "/".into())]),
                value,
                breaching,
                unrecovered: clear_threshold.map_or(breaching, |clear| value >= clear),
                sample_lines: Vec::new(),
                top_patterns: Vec::new(),
            }],
            threshold: Some(80.0),
            op: Some(Op::Ge),
            absent_means_recovered: false,
        }
    }

    fn policy() -> Policy {
        Policy {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            external_url: "http://lookout".into(),
        }
    }

    /// Feeds `values`, one evaluation and one flush every 15 s; answers the
    /// times (s) and statuses of the notifications queued.
    fn run(clear_threshold: Option<f64>, values: &[f64]) -> Vec<(i64, NotificationStatus)> {
        let dir = tempfile::tempdir().unwrap();
        let store = AlertStore::open(dir.path()).unwrap();
        let rule = rule(clear_threshold);
        let receivers = vec![Receiver {
            name: "mail".into(),
            send_resolved: true,
        }];
        let mut sent = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let now = i as i64 * 15_000;
            store.apply(&rule, &evaluation(*value, clear_threshold), now).unwrap();
            store
                .flush_groups(&[(rule.clone(), receivers.clone())], &policy(), now)
                .unwrap();
            for delivery in store.due_deliveries(i64::MAX).unwrap() {
                sent.push((now / 1000, delivery.notification.status));
                store.mark_sent(delivery.id, now).unwrap();
            }
        }
        sent
    }

    #[test]
    fn a_new_alert_waits_group_wait_then_resolves_once() {
        let sent = run(Some(75.0), &[85.0, 85.0, 85.0, 85.0, 70.0, 70.0, 70.0]);
        // Fired at 0 s, told at 30 s (group_wait). It resolves at 60 s, but a
        // changed group waits group_interval (300 s) after its last message,
        // so by 90 s only the firing message has gone out...
        assert_eq!(sent, [(30, NotificationStatus::Firing)]);
        // ...and the resolved one follows at 30 + 300 s.
        let longer: Vec<f64> = [85.0; 4].into_iter().chain([70.0; 30]).collect();
        let sent = run(Some(75.0), &longer);
        assert_eq!(
            sent,
            [(30, NotificationStatus::Firing), (330, NotificationStatus::Resolved)]
        );
    }

    #[test]
    fn flapping_is_held_by_hysteresis_and_capped_by_group_interval_without_it() {
        // One hour of values alternating around 80 every 15 s.
        let flapping: Vec<f64> = (0..240).map(|i| if i % 2 == 0 { 81.0 } else { 79.0 }).collect();
        // With clear_threshold 75 the alert never clears: one message.
        assert_eq!(run(Some(75.0), &flapping), [(30, NotificationStatus::Firing)]);
        // Without it every other evaluation resolves, but messages are at
        // least group_interval (300 s) apart: at most 12 in the hour.
        let sent = run(None, &flapping);
        assert!(sent.len() <= 12, "{sent:?}");
        for pair in sent.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= 300, "{sent:?}");
        }
    }

    #[test]
    fn an_unchanged_firing_group_is_reminded_after_repeat_interval() {
        let values = vec![90.0; 4 * 240 + 10];
        let sent = run(None, &values);
        let times: Vec<i64> = sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [30, 30 + 4 * 3600]);
    }
}
