//! The rules in force: the configured ones (the built-in defaults merged
//! with the rules file) followed by the rules made in the app (`POST
//! /api/v1/alerts/rules`, such as a saved search turned into a rule).
//!
//! A rule made in the app is kept in the alert database as the text of its
//! one `[[rules]]` entry and parsed by the same code as the rules file, so
//! it means exactly what the same entry would mean there. It is parsed again
//! on every start: an entry that no longer holds (a notifier it names was
//! removed from the config, or the rules file now has a rule of its name) is
//! left out with a warning and listed as skipped until it is deleted.
//!
//! Every change is published on a watch channel, with the notifiers the
//! rules send to; the engine follows it without a restart (see
//! [`super::engine`]). A configuration reload ([`RuleSet::reconfigure`])
//! replaces the configured rules and the notifiers, and checks the app's
//! rules again against them.

use super::notify::Notifiers;
use super::rules::{self, Rule};
use super::state::{AlertStore, StateError, StoredRule};
use lookout_shared::config::HumanDuration;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Most rules made in the app: each is evaluated on its own schedule, and a
/// list past this is a rules file's job.
pub const MAX_APP_RULES: usize = 200;

/// Longest name of a rule made in the app.
const MAX_NAME_CHARS: usize = 100;

/// What errors about an entry name as their "file".
const ORIGIN: &str = "the rule";

/// Why a rule could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    /// The entry does not parse or check, as the rules file's loader says.
    #[error("{0}")]
    Invalid(String),
    /// Another rule has the name.
    #[error("a rule named `{0}` exists; choose another name")]
    Exists(String),
    /// The rule comes from the config and can only change there.
    #[error("`{0}` comes from the configuration (the rules file or the built-in rules); change it there")]
    Configured(String),
    /// No rule made in the app has the name.
    #[error("no rule made in the app is named `{0}`")]
    NotFound(String),
    /// [`MAX_APP_RULES`] are there.
    #[error("at most {MAX_APP_RULES} rules can be made in the app; delete one or move them to the rules file")]
    Full,
    /// The alert database failed.
    #[error(transparent)]
    Store(#[from] StateError),
}

/// A rule made in the app, in force.
#[derive(Debug, Clone)]
pub struct AppRule {
    /// The checked rule.
    pub rule: Rule,
    /// Its `[[rules]]` entry as given.
    pub entry: String,
    /// Who made it.
    pub created_by: String,
    /// When, Unix ms.
    pub created_ms: i64,
}

/// A stored rule left out at start, and why.
#[derive(Debug, Clone)]
pub struct SkippedRule {
    /// Its name.
    pub name: String,
    /// Why it is not in force.
    pub reason: String,
}

/// The rules in force at one moment, as published: readers take the whole
/// of it at once, so a rule, its origin and its notifiers never disagree.
#[derive(Debug, Default)]
pub struct InForce {
    /// The configured notifiers, which every rule's `notify` names.
    pub notifiers: Notifiers,
    /// The configured rules, then the app's: what the engine evaluates.
    pub rules: Arc<Vec<Rule>>,
    /// The app's rules in force, by name.
    pub app: BTreeMap<String, AppRule>,
    /// The app's stored rules left out at start.
    pub skipped: Vec<SkippedRule>,
}

/// The rules in force and the app's changes to them.
pub struct RuleSet {
    /// The shortest `interval` an app rule may set: `[alerting] evaluation_interval`.
    min_interval: Duration,
    store: Arc<AlertStore>,
    /// The configuration's part, held by a change from its check to its
    /// publication, so that two changes do not interleave; readers never take it.
    changing: Mutex<Configured>,
    published: watch::Sender<Arc<InForce>>,
}

/// What the configuration gives: replaced as a whole on a reload.
struct Configured {
    rules: Vec<Rule>,
    notifiers: Notifiers,
}

impl RuleSet {
    /// The configured rules plus the app's stored ones that still check
    /// against `notifiers` and do not reuse a configured rule's name.
    pub fn open(
        configured: Vec<Rule>,
        notifiers: Notifiers,
        min_interval: Duration,
        store: Arc<AlertStore>,
    ) -> Result<RuleSet, StateError> {
        let configured = Configured {
            rules: configured,
            notifiers,
        };
        let (app, skipped) = check_stored(&store, &configured, min_interval)?;
        let (published, _) = watch::channel(Arc::new(in_force(&configured, app, skipped)));
        Ok(RuleSet {
            min_interval,
            store,
            changing: Mutex::new(configured),
            published,
        })
    }

    /// Puts a reloaded configuration's rules and notifiers in force: the
    /// app's stored rules are checked again against them (one naming a
    /// notifier that is gone is left out, one skipped before may be back).
    /// Blocks on the alert database.
    pub fn reconfigure(&self, rules: Vec<Rule>, notifiers: Notifiers) -> Result<(), StateError> {
        let mut changing = self.lock();
        let configured = Configured { rules, notifiers };
        let (app, skipped) = check_stored(&self.store, &configured, self.min_interval)?;
        *changing = configured;
        self.publish(&changing, app, skipped);
        Ok(())
    }

    /// The rules in force now, with the app's details.
    pub fn current(&self) -> Arc<InForce> {
        self.published.borrow().clone()
    }

    /// Follows every change of the rules in force.
    pub fn subscribe(&self) -> watch::Receiver<Arc<InForce>> {
        self.published.subscribe()
    }

    /// Checks `entry` (one `[[rules]]` entry), stores it and puts it in
    /// force. Blocks on the alert database.
    pub fn add(&self, entry: &str, created_by: &str, now_ms: i64) -> Result<Rule, RuleSetError> {
        let configured = self.lock();
        let names = configured.notifiers.names();
        let context = rules::Context {
            notifiers: &names,
            evaluation_interval: self.min_interval,
        };
        let rule =
            rules::entry(Path::new(ORIGIN), entry, context).map_err(|err| RuleSetError::Invalid(err.to_string()))?;
        check_name(&rule.name).map_err(RuleSetError::Invalid)?;
        if let Some(interval) = rule.interval
            && interval < self.min_interval
        {
            return Err(RuleSetError::Invalid(format!(
                "`interval`: a rule made in the app is evaluated at most every {} (`[alerting] evaluation_interval`)",
                HumanDuration(self.min_interval)
            )));
        }
        let now = self.current();
        if configured.rules.iter().any(|c| c.name == rule.name) || now.app.contains_key(&rule.name) {
            return Err(RuleSetError::Exists(rule.name));
        }
        if now.app.len() + now.skipped.len() >= MAX_APP_RULES {
            return Err(RuleSetError::Full);
        }
        let stored = StoredRule {
            name: rule.name.clone(),
            entry: entry.to_owned(),
            created_by: created_by.to_owned(),
            created_ms: now_ms,
        };
        if !self.store.add_app_rule(&stored)? {
            // A skipped rule of that name is still stored.
            return Err(RuleSetError::Exists(rule.name));
        }
        let mut app = now.app.clone();
        app.insert(
            rule.name.clone(),
            AppRule {
                rule: rule.clone(),
                entry: stored.entry,
                created_by: stored.created_by,
                created_ms: now_ms,
            },
        );
        self.publish(&configured, app, now.skipped.clone());
        Ok(rule)
    }

    /// Deletes a rule made in the app (in force or skipped). Its alerts are
    /// resolved by the engine, as those of a rule removed from the file.
    /// Blocks on the alert database.
    pub fn remove(&self, name: &str) -> Result<(), RuleSetError> {
        let configured = self.lock();
        // The store first: a skipped app rule may share a configured rule's name.
        if !self.store.remove_app_rule(name)? {
            return Err(if configured.rules.iter().any(|c| c.name == name) {
                RuleSetError::Configured(name.to_owned())
            } else {
                RuleSetError::NotFound(name.to_owned())
            });
        }
        let now = self.current();
        let mut app = now.app.clone();
        app.remove(name);
        let skipped = now.skipped.iter().filter(|s| s.name != name).cloned().collect();
        self.publish(&configured, app, skipped);
        Ok(())
    }

    fn publish(&self, configured: &Configured, app: BTreeMap<String, AppRule>, skipped: Vec<SkippedRule>) {
        // No receiver (no engine, as in some tests) is not an error: the
        // API reads the value itself.
        self.published
            .send_replace(Arc::new(in_force(configured, app, skipped)));
    }

    fn lock(&self) -> MutexGuard<'_, Configured> {
        // Replaced only whole: a panic elsewhere leaves nothing half-done.
        self.changing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The app's stored rules that check against `configured` (its notifiers,
/// its rules' names), and those left out with the reason.
fn check_stored(
    store: &AlertStore,
    configured: &Configured,
    min_interval: Duration,
) -> Result<(BTreeMap<String, AppRule>, Vec<SkippedRule>), StateError> {
    let names = configured.notifiers.names();
    let mut app = BTreeMap::new();
    let mut skipped = Vec::new();
    for stored in store.app_rules()? {
        let context = rules::Context {
            notifiers: &names,
            evaluation_interval: min_interval,
        };
        let checked = rules::entry(Path::new(ORIGIN), &stored.entry, context)
            .map_err(|err| err.to_string())
            .and_then(|rule| {
                if configured.rules.iter().any(|c| c.name == rule.name) {
                    Err(format!(
                        "the configuration now has a rule named `{}`; delete this one or rename it",
                        rule.name
                    ))
                } else {
                    Ok(rule)
                }
            });
        match checked {
            Ok(rule) => {
                app.insert(
                    rule.name.clone(),
                    AppRule {
                        rule,
                        entry: stored.entry,
                        created_by: stored.created_by,
                        created_ms: stored.created_ms,
                    },
                );
            }
            Err(reason) => {
                tracing::warn!(rule = stored.name, %reason, "a rule made in the app is left out until it is deleted");
                skipped.push(SkippedRule {
                    name: stored.name,
                    reason,
                });
            }
        }
    }
    Ok((app, skipped))
}

/// The configured rules, then the app's (oldest first).
fn in_force(configured: &Configured, app: BTreeMap<String, AppRule>, skipped: Vec<SkippedRule>) -> InForce {
    let mut made: Vec<&AppRule> = app.values().collect();
    made.sort_by_key(|a| a.created_ms);
    let rules = configured
        .rules
        .iter()
        .cloned()
        .chain(made.into_iter().map(|a| a.rule.clone()))
        .collect();
    InForce {
        notifiers: configured.notifiers.clone(),
        rules: Arc::new(rules),
        app,
        skipped,
    }
}

/// An app rule's name also ends up in a URL path, labels, subjects and
/// metrics: 1 to [`MAX_NAME_CHARS`] characters, no control characters, not
/// a path's `.` or `..`.
fn check_name(name: &str) -> Result<(), String> {
    let fine = name.chars().count() <= MAX_NAME_CHARS
        && name == name.trim()
        && !name.chars().any(char::is_control)
        && name != "."
        && name != "..";
    if fine {
        Ok(())
    } else {
        Err(format!(
            "`name`: 1 to {MAX_NAME_CHARS} characters without control characters or spaces at the ends, \
             and not `.` or `..`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> String {
        format!(
            "[[rules]]\nname = \"{name}\"\nkind = \"log_match\"\nquery = \"payment failed\"\n\
             window = \"5m\"\ncount = 0\nnotify = [\"ops\"]\n"
        )
    }

    /// Webhook notifiers of these names.
    fn notifiers(names: &[&str]) -> Notifiers {
        let mut text = String::from(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[auth]\ningest_tokens = [\"ingest-token-a\"]\n\
             api_tokens = [\"reader-token-b\"]\n",
        );
        for name in names {
            text.push_str(&format!(
                "[[notifiers]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n"
            ));
        }
        let config = crate::config::Config::from_toml(Path::new("aggregator.toml"), &text).unwrap();
        Notifiers::from_config(&config).unwrap()
    }

    fn open(dir: &Path, names: &[&str]) -> RuleSet {
        let store = Arc::new(AlertStore::open(dir).unwrap());
        RuleSet::open(rules::defaults(), notifiers(names), Duration::from_secs(10), store).unwrap()
    }

    #[test]
    fn an_app_rule_is_in_force_at_once_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let set = open(dir.path(), &["ops"]);
        let defaults = rules::defaults().len();
        let mut follower = set.subscribe();
        let rule = set.add(&entry("Payments"), "ann", 1_000).unwrap();
        assert_eq!(rule.kind_name(), "log_match");
        assert!(follower.has_changed().unwrap(), "the engine hears of it");
        let now = follower.borrow_and_update().clone();
        assert_eq!(now.rules.len(), defaults + 1);
        assert_eq!(now.rules.last().map(|r| r.name.as_str()), Some("Payments"));
        assert_eq!(now.app.get("Payments").map(|r| r.created_by.as_str()), Some("ann"));
        assert!(!now.app.contains_key("DiskFull"), "a built-in is not the app's");
        drop(set);

        let set = open(dir.path(), &["ops"]);
        assert_eq!(set.current().rules.len(), defaults + 1, "stored");
        set.remove("Payments").unwrap();
        assert_eq!(set.current().rules.len(), defaults);
        drop(set);
        assert_eq!(
            open(dir.path(), &["ops"]).current().rules.len(),
            defaults,
            "deleted for good"
        );
    }

    #[test]
    fn names_are_unique_and_configured_rules_stay_configured() {
        let dir = tempfile::tempdir().unwrap();
        let set = open(dir.path(), &["ops"]);
        set.add(&entry("Payments"), "ann", 1).unwrap();
        assert!(matches!(
            set.add(&entry("Payments"), "bob", 2),
            Err(RuleSetError::Exists(_))
        ));
        assert!(matches!(
            set.add(&entry("DiskFull"), "bob", 2),
            Err(RuleSetError::Exists(_))
        ));
        assert!(matches!(set.remove("DiskFull"), Err(RuleSetError::Configured(_))));
        assert!(matches!(set.remove("Nope"), Err(RuleSetError::NotFound(_))));
        let invalid = set.add(&entry("Bad").replace("count = 0", "count = -1"), "bob", 2);
        assert!(
            matches!(&invalid, Err(RuleSetError::Invalid(reason)) if reason.contains("count")),
            "{invalid:?}"
        );
        let two = format!("{}{}", entry("A"), entry("B"));
        assert!(matches!(set.add(&two, "bob", 2), Err(RuleSetError::Invalid(_))));
        let off = entry("Off") + "enabled = false\n";
        assert!(matches!(set.add(&off, "bob", 2), Err(RuleSetError::Invalid(_))));
        let defaults = format!("default_rules = false\n{}", entry("Quiet"));
        assert!(matches!(set.add(&defaults, "bob", 2), Err(RuleSetError::Invalid(_))));
        let long = "x".repeat(101);
        for name in ["", " padded", ".", "..", "a\u{7}b", long.as_str()] {
            let named = entry("N").replace("name = \"N\"", &format!("name = {name:?}"));
            assert!(
                matches!(set.add(&named, "bob", 2), Err(RuleSetError::Invalid(_))),
                "{name:?}"
            );
        }
        let eager = entry("Eager") + "interval = \"1s\"\n";
        let refused = set.add(&eager, "bob", 2);
        assert!(
            matches!(&refused, Err(RuleSetError::Invalid(reason)) if reason.contains("evaluation_interval")),
            "{refused:?}"
        );
        assert!(set.add(&(entry("Patient") + "interval = \"10s\"\n"), "bob", 2).is_ok());
        assert_eq!(set.current().rules.len(), rules::defaults().len() + 2);
    }

    #[test]
    fn a_reload_replaces_the_configured_rules_and_notifiers_and_checks_the_app_rules_again() {
        let dir = tempfile::tempdir().unwrap();
        let set = open(dir.path(), &["ops"]);
        set.add(&entry("Payments"), "ann", 1).unwrap();
        let mut follower = set.subscribe();
        follower.borrow_and_update();

        // The notifier the app's rule names is gone, and the file has one rule.
        let file_rule = rules::defaults().into_iter().next().unwrap();
        set.reconfigure(vec![file_rule.clone()], notifiers(&["pager"])).unwrap();
        assert!(follower.has_changed().unwrap(), "the engine hears of it");
        let now = set.current();
        assert_eq!(now.notifiers.names(), ["pager"]);
        assert_eq!(
            now.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            [file_rule.name.as_str()]
        );
        assert_eq!(now.skipped.len(), 1, "the app's rule waits for its notifier");
        assert!(set.add(&entry("Other"), "bob", 2).is_err(), "`ops` is unknown now");

        // It comes back with its notifier.
        set.reconfigure(rules::defaults(), notifiers(&["ops", "pager"]))
            .unwrap();
        let now = set.current();
        assert!(now.skipped.is_empty());
        assert_eq!(now.rules.len(), rules::defaults().len() + 1);
        assert_eq!(now.rules.last().map(|r| r.name.as_str()), Some("Payments"));
    }

    #[test]
    fn a_stored_rule_that_no_longer_checks_is_skipped_until_deleted() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), &["ops"]).add(&entry("Payments"), "ann", 1).unwrap();
        // The notifier it names is gone from the config.
        let set = open(dir.path(), &[]);
        assert_eq!(set.current().rules.len(), rules::defaults().len());
        let skipped = set.current().skipped.clone();
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains("ops"), "{}", skipped[0].reason);
        assert!(matches!(
            set.add(&entry("Payments").replace("notify = [\"ops\"]\n", ""), "bob", 2),
            Err(RuleSetError::Exists(_))
        ));
        set.remove("Payments").unwrap();
        assert!(set.current().skipped.is_empty());

        // A stored rule whose name a built-in (or the rules file) took is skipped and can be deleted.
        let store = Arc::new(AlertStore::open(dir.path()).unwrap());
        let taken = StoredRule {
            name: "DiskFull".into(),
            entry: entry("DiskFull"),
            created_by: "ann".into(),
            created_ms: 3,
        };
        assert!(store.add_app_rule(&taken).unwrap());
        let set = open(dir.path(), &["ops"]);
        let skipped = set.current().skipped.clone();
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].reason.contains("configuration now has"),
            "{}",
            skipped[0].reason
        );
        assert_eq!(set.current().rules.iter().filter(|r| r.name == "DiskFull").count(), 1);
        set.remove("DiskFull").unwrap();
        assert!(set.current().skipped.is_empty());
        assert!(matches!(set.remove("DiskFull"), Err(RuleSetError::Configured(_))));
    }
}
