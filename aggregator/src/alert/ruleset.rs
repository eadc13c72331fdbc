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
//! Every change is published on a watch channel; the engine follows it
//! without a restart (see [`super::engine`]).

use super::rules::{self, Rule};
use super::state::{AlertStore, StateError, StoredRule};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// Most rules made in the app: each is evaluated on its own schedule, and a
/// list past this is a rules file's job.
pub const MAX_APP_RULES: usize = 200;

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

#[derive(Debug, Default)]
struct AppRules {
    in_force: Vec<AppRule>,
    skipped: Vec<SkippedRule>,
}

/// The rules in force and the app's changes to them.
pub struct RuleSet {
    configured: Arc<Vec<Rule>>,
    notifiers: Vec<String>,
    store: Arc<AlertStore>,
    app: Mutex<AppRules>,
    published: watch::Sender<Arc<Vec<Rule>>>,
}

impl RuleSet {
    /// The configured rules plus the app's stored ones that still check
    /// against `notifiers` and do not reuse a configured rule's name.
    pub fn open(configured: Vec<Rule>, notifiers: Vec<String>, store: Arc<AlertStore>) -> Result<RuleSet, StateError> {
        let mut app = AppRules::default();
        for stored in store.app_rules()? {
            let checked = rules::entry(Path::new(ORIGIN), &stored.entry, &notifiers)
                .map_err(|err| err.to_string())
                .and_then(|rule| {
                    if configured.iter().any(|c| c.name == rule.name) {
                        Err(RuleSetError::Configured(rule.name).to_string())
                    } else {
                        Ok(rule)
                    }
                });
            match checked {
                Ok(rule) => app.in_force.push(AppRule {
                    rule,
                    entry: stored.entry,
                    created_by: stored.created_by,
                    created_ms: stored.created_ms,
                }),
                Err(reason) => {
                    tracing::warn!(rule = stored.name, %reason, "a rule made in the app is left out until it is deleted");
                    app.skipped.push(SkippedRule {
                        name: stored.name,
                        reason,
                    });
                }
            }
        }
        let configured = Arc::new(configured);
        let (published, _) = watch::channel(Arc::new(all(&configured, &app)));
        Ok(RuleSet {
            configured,
            notifiers,
            store,
            app: Mutex::new(app),
            published,
        })
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<Vec<Rule>> {
        self.published.borrow().clone()
    }

    /// Follows every change of the rules in force.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<Rule>>> {
        self.published.subscribe()
    }

    /// The app's rule of this name, if the rule was made in the app.
    pub fn app_rule(&self, name: &str) -> Option<AppRule> {
        self.lock().in_force.iter().find(|r| r.rule.name == name).cloned()
    }

    /// Stored rules left out at start.
    pub fn skipped(&self) -> Vec<SkippedRule> {
        self.lock().skipped.clone()
    }

    /// Checks `entry` (one `[[rules]]` entry), stores it and puts it in
    /// force. Blocks on the alert database.
    pub fn add(&self, entry: &str, created_by: &str, now_ms: i64) -> Result<Rule, RuleSetError> {
        let rule = rules::entry(Path::new(ORIGIN), entry, &self.notifiers)
            .map_err(|err| RuleSetError::Invalid(err.to_string()))?;
        let mut app = self.lock();
        if self.configured.iter().any(|c| c.name == rule.name) || app.in_force.iter().any(|a| a.rule.name == rule.name)
        {
            return Err(RuleSetError::Exists(rule.name));
        }
        if app.in_force.len() + app.skipped.len() >= MAX_APP_RULES {
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
        app.in_force.push(AppRule {
            rule: rule.clone(),
            entry: stored.entry,
            created_by: stored.created_by,
            created_ms: now_ms,
        });
        self.publish(&app);
        Ok(rule)
    }

    /// Deletes a rule made in the app (in force or skipped). Its alerts are
    /// resolved by the engine, as those of a rule removed from the file.
    /// Blocks on the alert database.
    pub fn remove(&self, name: &str) -> Result<(), RuleSetError> {
        if self.configured.iter().any(|c| c.name == name) {
            return Err(RuleSetError::Configured(name.to_owned()));
        }
        let mut app = self.lock();
        if !self.store.remove_app_rule(name)? {
            return Err(RuleSetError::NotFound(name.to_owned()));
        }
        app.in_force.retain(|r| r.rule.name != name);
        app.skipped.retain(|r| r.name != name);
        self.publish(&app);
        Ok(())
    }

    fn publish(&self, app: &AppRules) {
        // No receiver (no engine, as in some tests) is not an error: the
        // API reads the value itself.
        self.published.send_replace(Arc::new(all(&self.configured, app)));
    }

    fn lock(&self) -> MutexGuard<'_, AppRules> {
        // Every change leaves the list whole before it can panic.
        self.app.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The configured rules, then the app's.
fn all(configured: &[Rule], app: &AppRules) -> Vec<Rule> {
    configured
        .iter()
        .cloned()
        .chain(app.in_force.iter().map(|a| a.rule.clone()))
        .collect()
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

    fn open(dir: &Path, notifiers: &[&str]) -> RuleSet {
        let store = Arc::new(AlertStore::open(dir).unwrap());
        let notifiers = notifiers.iter().map(|n| n.to_string()).collect();
        RuleSet::open(rules::defaults(), notifiers, store).unwrap()
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
        assert_eq!(now.len(), defaults + 1);
        assert_eq!(now.last().map(|r| r.name.as_str()), Some("Payments"));
        assert_eq!(set.app_rule("Payments").map(|r| r.created_by), Some("ann".to_owned()));
        assert!(set.app_rule("DiskFull").is_none(), "a built-in is not the app's");
        drop(set);

        let set = open(dir.path(), &["ops"]);
        assert_eq!(set.current().len(), defaults + 1, "stored");
        set.remove("Payments").unwrap();
        assert_eq!(set.current().len(), defaults);
        drop(set);
        assert_eq!(open(dir.path(), &["ops"]).current().len(), defaults, "deleted for good");
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
        assert_eq!(set.current().len(), rules::defaults().len() + 1);
    }

    #[test]
    fn a_stored_rule_that_no_longer_checks_is_skipped_until_deleted() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), &["ops"]).add(&entry("Payments"), "ann", 1).unwrap();
        // The notifier it names is gone from the config.
        let set = open(dir.path(), &[]);
        assert_eq!(set.current().len(), rules::defaults().len());
        let skipped = set.skipped();
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains("ops"), "{}", skipped[0].reason);
        assert!(matches!(
            set.add(&entry("Payments").replace("notify = [\"ops\"]\n", ""), "bob", 2),
            Err(RuleSetError::Exists(_))
        ));
        set.remove("Payments").unwrap();
        assert!(set.skipped().is_empty());
    }
}
