//! Alert rules: the rules file (`rules_file` in aggregator.toml, TOML, see
//! docs/SPEC.md) and the built-in defaults that apply without it.
//!
//! A rule file is a list of `[[rules]]`. Each entry is read into one flat
//! [`RuleSpec`] (unknown keys are an error) and then checked against its
//! `kind`, so that a key that does not belong to the kind (`metric` on an
//! `error_rate` rule) is named in the error rather than silently ignored.
//!
//! Built-in defaults (CPU, memory, each filesystem, each interface's rx and
//! tx utilisation at 80 %, silent hosts) are on unless the file says
//! `default_rules = false`; a rule in the file with a built-in's name
//! replaces it, and `enabled = false` switches any rule off.

use lookout_shared::config::{ConfigError, HumanDuration, load_toml};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Sample lines a log rule puts into a notification unless it says otherwise.
const DEFAULT_SAMPLE_LINES: usize = 5;
/// Most sample lines a rule may ask for.
const MAX_SAMPLE_LINES: usize = 50;
/// Most samples `datapoints = "M of N"` may look back over.
const MAX_DATAPOINTS: u32 = 100;
/// A log rule's window may not exceed a day: longer windows belong in a report.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How far back a "fewer than" rule finds its groups, unless it says.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest `lookback`: the days a default retention keeps.
const MAX_LOOKBACK: Duration = Duration::from_secs(14 * 24 * 3600);

/// The rules file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// Absent means true.
    default_rules: Option<bool>,
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

/// One `[[rules]]` entry as written: every key of every kind, all optional
/// except `name` and `kind`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    name: String,
    kind: String,
    enabled: Option<bool>,
    interval: Option<HumanDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    notify: Option<Vec<String>>,
    #[serde(rename = "for")]
    for_: Option<HumanDuration>,
    // threshold
    metric: Option<String>,
    #[serde(rename = "match")]
    match_labels: Option<BTreeMap<String, String>>,
    op: Option<String>,
    threshold: Option<f64>,
    clear_threshold: Option<f64>,
    datapoints: Option<String>,
    // error_rate, log_match
    query: Option<String>,
    window: Option<HumanDuration>,
    ratio: Option<f64>,
    count: Option<u64>,
    min_lines: Option<u64>,
    group_by: Option<Vec<String>>,
    sample_lines: Option<usize>,
    lookback: Option<HumanDuration>,
    // log_stats
    column: Option<String>,
    // no_data
    intervals: Option<u32>,
    // new_pattern
    level: Option<String>,
}

/// How a value is compared with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            _ => return None,
        })
    }

    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    /// Whether a value beyond `threshold` in this direction is worse
    /// (`>`/`>=`: higher is worse).
    pub fn upward(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        })
    }
}

/// `datapoints = "M of N"`: at least M of the last N samples breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datapoints {
    /// Breaching samples needed.
    pub breaching: u32,
    /// Samples looked at.
    pub of: u32,
}

impl Datapoints {
    fn parse(text: &str) -> Result<Datapoints, String> {
        let bad = || format!("`{text}` is not of the form \"M of N\" (such as \"3 of 5\")");
        let (m, n) = text.split_once(" of ").ok_or_else(bad)?;
        let breaching: u32 = m.trim().parse().map_err(|_| bad())?;
        let of: u32 = n.trim().parse().map_err(|_| bad())?;
        if breaching == 0 || breaching > of || of > MAX_DATAPOINTS {
            return Err(format!(
                "`{text}`: M must be at least 1 and at most N, and N at most {MAX_DATAPOINTS}"
            ));
        }
        Ok(Datapoints { breaching, of })
    }
}

/// A threshold on a metric, one alert instance per series (host × labels).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    /// Metric name (docs/SPEC.md's list).
    pub metric: String,
    /// Only series whose labels have these values; an empty value means
    /// "without this label" (`cpu = ""` picks the host-wide CPU series).
    pub match_labels: BTreeMap<String, String>,
    /// Comparison.
    pub op: Op,
    /// Fires when `value op threshold`.
    pub threshold: f64,
    /// Once firing, clears only when the value is back past this one
    /// (below it for `>`/`>=`); without it, when the condition stops holding.
    pub clear_threshold: Option<f64>,
    /// M of the last N samples must breach; without it, the latest sample.
    pub datapoints: Option<Datapoints>,
}

/// Whether an error-rate rule compares a count or a ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    /// At least this many matching lines in the window.
    Count(u64),
    /// Matching lines / all lines of the group at least this (0..=1).
    Ratio(f64),
}

/// Matching log lines per group (host and/or source) over a sliding window.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRateRule {
    /// Which lines are errors (search syntax), default `level:error`.
    pub query: String,
    /// Lines that arrived in the last `window` count.
    pub window: Duration,
    /// Count or ratio threshold.
    pub limit: RateLimit,
    /// A group with fewer lines than this in the window never fires.
    pub min_lines: u64,
    /// `host` and/or `source`.
    pub group_by: Vec<GroupField>,
    /// Lines quoted in the notification.
    pub sample_lines: usize,
}

/// A saved query that fires when it matches more than `count` times in a
/// window (or, with `op = "<"`, fewer: a heartbeat that stopped).
#[derive(Debug, Clone, PartialEq)]
pub struct LogMatchRule {
    /// The search.
    pub query: String,
    /// Lines that arrived in the last `window` count.
    pub window: Duration,
    /// Fires when `matches op count` (default `>` 0: any match).
    pub count: u64,
    /// The comparison.
    pub op: Op,
    /// For `<` and `<=`: the groups watched are those the query matched in
    /// this long (a group with no line in the window counts 0).
    pub lookback: Duration,
    /// `host` and/or `source` (default: one alert per host).
    pub group_by: Vec<GroupField>,
    /// Lines quoted in the notification.
    pub sample_lines: usize,
}

/// A table of the lines that arrived in a window (`query` ends in
/// `| stats …`): one alert per row whose `column` crosses the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStatsRule {
    /// The query as written.
    pub query: String,
    /// It parsed: the records and the table.
    pub parsed: crate::query::Query,
    /// Lines that arrived in the last `window` count.
    pub window: Duration,
    /// Which column (a computed one) is compared.
    pub column: usize,
    /// Comparison.
    pub op: Op,
    /// Fires when `value op threshold`.
    pub threshold: f64,
    /// Lines of a firing row quoted in the notification.
    pub sample_lines: usize,
}

/// A log pattern never seen before on a source that was already known:
/// its first line arrived in the window, at or above a level, and it has
/// at least `count` lines there. An alert per source and pattern, resolved
/// once the pattern's first line is older than the window.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPatternRule {
    /// Which lines: those at or above a level, narrowed by the rule's
    /// `query` if it has one (search syntax).
    pub query: String,
    /// Lines that arrived in the last `window` count.
    pub window: Duration,
    /// Fires at this many lines of the new pattern in the window (default 1).
    pub count: u64,
    /// Lines quoted in the notification.
    pub sample_lines: usize,
}

/// Levels from the most severe, as stored; `level = "…"` of a
/// `new_pattern` rule takes this one and those before it.
const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// A host that sent nothing for `intervals` of its metric intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct NoDataRule {
    /// Missed intervals before the host counts as silent (default 3).
    pub intervals: u32,
}

/// What a log rule groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupField {
    /// The record's host.
    Host,
    /// The record's file path.
    Source,
}

impl GroupField {
    /// The label name: `host` or `source`.
    pub fn label(self) -> &'static str {
        match self {
            GroupField::Host => "host",
            GroupField::Source => "source",
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// `kind = "threshold"`.
    Threshold(ThresholdRule),
    /// `kind = "error_rate"`.
    ErrorRate(ErrorRateRule),
    /// `kind = "log_match"`.
    LogMatch(LogMatchRule),
    /// `kind = "log_stats"`.
    LogStats(LogStatsRule),
    /// `kind = "no_data"`.
    NoData(NoDataRule),
    /// `kind = "new_pattern"`.
    NewPattern(NewPatternRule),
}

/// One checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name, the alert's `alertname`.
    pub name: String,
    /// What it watches.
    pub kind: RuleKind,
    /// How often it is evaluated; `None`: `[alerting] evaluation_interval`.
    pub interval: Option<Duration>,
    /// How long the condition must hold at every evaluation before it fires.
    pub for_: Duration,
    /// Labels added to every alert of the rule (`severity`, ...).
    pub labels: BTreeMap<String, String>,
    /// Templates (`summary`, `description`, ...), rendered per alert.
    pub annotations: BTreeMap<String, String>,
    /// Notifier names; `None`: every notifier.
    pub notify: Option<Vec<String>>,
}

impl Rule {
    /// `threshold`, `error_rate`, `log_match` or `no_data`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RuleKind::Threshold(_) => "threshold",
            RuleKind::ErrorRate(_) => "error_rate",
            RuleKind::LogMatch(_) => "log_match",
            RuleKind::LogStats(_) => "log_stats",
            RuleKind::NoData(_) => "no_data",
            RuleKind::NewPattern(_) => "new_pattern",
        }
    }
}

/// What a rule is checked against besides itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The configured notifier names, which `notify` must use.
    pub notifiers: &'a [String],
    /// `[alerting] evaluation_interval`: how often a rule without an
    /// `interval` is evaluated.
    pub evaluation_interval: Duration,
}

/// Reads the rules: the built-in defaults merged with `file` if given.
pub fn load(file: Option<&Path>, context: Context<'_>) -> Result<Vec<Rule>, ConfigError> {
    let Some(file) = file else {
        return Ok(defaults());
    };
    let parsed: RuleFile = load_toml(file)?;
    build(file, parsed, context)
}

/// Parses rules from `text`; `file` is only named in errors.
pub fn from_toml(file: &Path, text: &str, context: Context<'_>) -> Result<Vec<Rule>, ConfigError> {
    let parsed: RuleFile = lookout_shared::config::parse_toml(file, text)?;
    build(file, parsed, context)
}

/// Parses one `[[rules]]` entry made in the app (see [`super::ruleset`]):
/// exactly one rule, checked as the rules file's are, and neither
/// `default_rules` nor `enabled = false`, which mean nothing for one rule.
/// `origin` is named in errors.
pub fn entry(origin: &Path, text: &str, context: Context<'_>) -> Result<Rule, ConfigError> {
    let parsed: RuleFile = lookout_shared::config::parse_toml(origin, text)?;
    let whole = |reason: &str| ConfigError {
        file: origin.to_path_buf(),
        key: None,
        reason: reason.to_owned(),
    };
    if parsed.default_rules.is_some() {
        return Err(whole("`default_rules` belongs in the rules file, not in one rule"));
    }
    let [spec] = parsed.rules.as_slice() else {
        return Err(whole(&format!(
            "give exactly one `[[rules]]` entry (this text has {})",
            parsed.rules.len()
        )));
    };
    if spec.enabled == Some(false) {
        return Err(ConfigError::at_key(
            origin,
            "rules[0].enabled",
            "a rule made in the app is on; delete it to switch it off",
        ));
    }
    let single = RuleFile {
        default_rules: Some(false),
        rules: vec![spec.clone()],
    };
    let mut rules = build(origin, single, context)?;
    rules.pop().ok_or_else(|| whole("the entry made no rule"))
}

fn build(file: &Path, parsed: RuleFile, context: Context<'_>) -> Result<Vec<Rule>, ConfigError> {
    let mut names = HashSet::new();
    let mut rules = Vec::new();
    let mut disabled = HashSet::new();
    for (i, spec) in parsed.rules.iter().enumerate() {
        let at = |key: &str, reason: String| {
            let rule = if spec.name.is_empty() {
                format!("rules[{i}]")
            } else {
                format!("rules[{i}] ({})", spec.name)
            };
            let key = if key.is_empty() { rule } else { format!("{rule}.{key}") };
            ConfigError::at_key(file, key, reason)
        };
        if spec.name.trim().is_empty() {
            return Err(at("name", "must not be empty".into()));
        }
        if !names.insert(spec.name.clone()) {
            return Err(at(
                "name",
                format!("`{}` is used by another rule; names must be unique", spec.name),
            ));
        }
        let rule = check(spec, context).map_err(|(key, reason)| at(key, reason))?;
        if spec.enabled == Some(false) {
            disabled.insert(spec.name.clone());
        } else {
            rules.push(rule);
        }
    }
    if parsed.default_rules != Some(false) {
        let defaults = defaults()
            .into_iter()
            .filter(|rule| !names.contains(&rule.name) && !disabled.contains(&rule.name));
        let mut all: Vec<Rule> = defaults.collect();
        all.extend(rules);
        rules = all;
    }
    Ok(rules)
}

type CheckError = (&'static str, String);

/// Turns one entry into a rule, or names the key that is wrong.
fn check(spec: &RuleSpec, context: Context<'_>) -> Result<Rule, CheckError> {
    let notifiers = context.notifiers;
    let kind = match spec.kind.as_str() {
        "threshold" => RuleKind::Threshold(threshold(spec)?),
        "error_rate" => RuleKind::ErrorRate(error_rate(spec)?),
        "log_match" => RuleKind::LogMatch(log_match(spec)?),
        "log_stats" => RuleKind::LogStats(log_stats(spec)?),
        "no_data" => RuleKind::NoData(no_data(spec)?),
        "new_pattern" => RuleKind::NewPattern(new_pattern(spec)?),
        other => {
            return Err((
                "kind",
                format!(
                    "`{other}` is not a rule kind: use \"threshold\", \"error_rate\", \"log_match\", \"log_stats\", \
                     \"no_data\" or \"new_pattern\""
                ),
            ));
        }
    };
    let interval = spec.interval.map(HumanDuration::get);
    if interval.is_some_and(|interval| interval < Duration::from_secs(1)) {
        return Err(("interval", "must be at least 1s".into()));
    }
    // A pattern is new for one window: a rule must look within it, and
    // cannot wait longer than it.
    if let RuleKind::NewPattern(new) = &kind {
        let every = interval.unwrap_or(context.evaluation_interval);
        if every > new.window {
            return Err((
                "window",
                format!(
                    "must be at least the rule's interval ({}, its `interval` or [alerting] \
                     evaluation_interval): a pattern is new for one window",
                    HumanDuration(every)
                ),
            ));
        }
        if spec.for_.is_some_and(|for_| for_.get() >= new.window) {
            return Err((
                "for",
                "must be shorter than the window: a pattern is new for one window".into(),
            ));
        }
    }
    if let Some(notify) = &spec.notify
        && let Some(unknown) = notify.iter().find(|n| !notifiers.contains(n))
    {
        return Err((
            "notify",
            format!(
                "`{unknown}` is not a configured notifier (configured: {})",
                if notifiers.is_empty() {
                    "none".to_string()
                } else {
                    notifiers.join(", ")
                }
            ),
        ));
    }
    for (key, value) in &spec.labels {
        if !is_label_name(key) {
            return Err(("labels", format!("`{key}` is not a label name (letters, digits, `_`)")));
        }
        if key == "alertname" {
            return Err(("labels", "`alertname` is set from the rule's name".into()));
        }
        if value.is_empty() {
            return Err(("labels", format!("label `{key}` has an empty value")));
        }
    }
    for (key, template) in &spec.annotations {
        if let Err(err) = super::template::check(template) {
            return Err(("annotations", format!("`{key}`: {err}")));
        }
    }
    Ok(Rule {
        name: spec.name.clone(),
        kind,
        interval,
        for_: spec.for_.map_or(Duration::ZERO, HumanDuration::get),
        labels: spec.labels.clone(),
        annotations: spec.annotations.clone(),
        notify: spec.notify.clone(),
    })
}

/// A table column's name as a label name (Prometheus's
/// `[a-zA-Z_][a-zA-Z0-9_]*`): `user.id` becomes `user_id`.
pub use crate::metricstore::exposition::label_name;

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses keys set on a rule whose kind has no use for them.
fn only(spec: &RuleSpec, kind: &str, allowed: &[&str]) -> Result<(), CheckError> {
    let present: [(&'static str, bool); 16] = [
        ("metric", spec.metric.is_some()),
        ("match", spec.match_labels.is_some()),
        ("op", spec.op.is_some()),
        ("threshold", spec.threshold.is_some()),
        ("clear_threshold", spec.clear_threshold.is_some()),
        ("datapoints", spec.datapoints.is_some()),
        ("query", spec.query.is_some()),
        ("window", spec.window.is_some()),
        ("ratio", spec.ratio.is_some()),
        ("count", spec.count.is_some()),
        ("min_lines", spec.min_lines.is_some()),
        ("group_by", spec.group_by.is_some()),
        ("intervals", spec.intervals.is_some()),
        ("lookback", spec.lookback.is_some()),
        ("column", spec.column.is_some()),
        ("level", spec.level.is_some()),
    ];
    let sample_lines = ("sample_lines", spec.sample_lines.is_some());
    for (key, set) in present.into_iter().chain([sample_lines]) {
        if set && !allowed.contains(&key) {
            return Err((key, format!("is not a key of a {kind} rule")));
        }
    }
    Ok(())
}

fn threshold(spec: &RuleSpec) -> Result<ThresholdRule, CheckError> {
    only(
        spec,
        "threshold",
        &["metric", "match", "op", "threshold", "clear_threshold", "datapoints"],
    )?;
    let metric = spec.metric.clone().ok_or(("metric", "is required".to_string()))?;
    if metric.trim().is_empty() {
        return Err(("metric", "must not be empty".into()));
    }
    let op = op(spec, ">=")?;
    let threshold = threshold_value(spec)?;
    if let Some(clear) = spec.clear_threshold {
        let on_the_safe_side = if op.upward() {
            clear <= threshold
        } else {
            clear >= threshold
        };
        if !clear.is_finite() || !on_the_safe_side {
            return Err((
                "clear_threshold",
                format!(
                    "must be on the healthy side of the threshold ({} {threshold} for op \"{op}\")",
                    if op.upward() { "at most" } else { "at least" }
                ),
            ));
        }
    }
    let datapoints = match &spec.datapoints {
        Some(text) => Some(Datapoints::parse(text).map_err(|reason| ("datapoints", reason))?),
        None => None,
    };
    Ok(ThresholdRule {
        metric,
        match_labels: spec.match_labels.clone().unwrap_or_default(),
        op,
        threshold,
        clear_threshold: spec.clear_threshold,
        datapoints,
    })
}

/// `op`, or `default` without it.
fn op(spec: &RuleSpec, default: &str) -> Result<Op, CheckError> {
    let text = spec.op.as_deref().unwrap_or(default);
    Op::parse(text).ok_or(("op", format!("`{text}` is not one of \">\", \">=\", \"<\", \"<=\"")))
}

/// `threshold`, required and finite.
fn threshold_value(spec: &RuleSpec) -> Result<f64, CheckError> {
    let threshold = spec.threshold.ok_or(("threshold", "is required".to_string()))?;
    if !threshold.is_finite() {
        return Err(("threshold", "must be a finite number".into()));
    }
    Ok(threshold)
}

fn window(spec: &RuleSpec) -> Result<Duration, CheckError> {
    let window = spec.window.map_or(Duration::from_secs(300), HumanDuration::get);
    if window < Duration::from_secs(1) || window > MAX_WINDOW {
        return Err(("window", "must be between 1s and 24h".into()));
    }
    Ok(window)
}

fn group_by(spec: &RuleSpec, default: &[GroupField]) -> Result<Vec<GroupField>, CheckError> {
    let Some(names) = &spec.group_by else {
        return Ok(default.to_vec());
    };
    let mut fields = Vec::new();
    for name in names {
        let field = match name.as_str() {
            "host" => GroupField::Host,
            "source" => GroupField::Source,
            other => {
                return Err((
                    "group_by",
                    format!("`{other}` cannot be grouped by: use \"host\" and/or \"source\""),
                ));
            }
        };
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    fields.sort();
    Ok(fields)
}

fn sample_lines(spec: &RuleSpec) -> Result<usize, CheckError> {
    let lines = spec.sample_lines.unwrap_or(DEFAULT_SAMPLE_LINES);
    if lines > MAX_SAMPLE_LINES {
        return Err(("sample_lines", format!("must be at most {MAX_SAMPLE_LINES}")));
    }
    Ok(lines)
}

fn query(spec: &RuleSpec, default: Option<&str>) -> Result<String, CheckError> {
    let query = match (&spec.query, default) {
        (Some(query), _) => query.clone(),
        (None, Some(default)) => default.to_string(),
        (None, None) => return Err(("query", "is required".into())),
    };
    if query.trim().is_empty() {
        return Err(("query", "must not be empty".into()));
    }
    crate::store::search::check_query_syntax(&query).map_err(|reason| ("query", reason))?;
    Ok(query)
}

fn error_rate(spec: &RuleSpec) -> Result<ErrorRateRule, CheckError> {
    only(
        spec,
        "error_rate",
        &[
            "query",
            "window",
            "ratio",
            "count",
            "min_lines",
            "group_by",
            "sample_lines",
        ],
    )?;
    let limit = match (spec.ratio, spec.count) {
        (Some(_), Some(_)) => return Err(("count", "give either `ratio` or `count`, not both".into())),
        (None, None) => return Err(("ratio", "one of `ratio` (0..1) or `count` is required".into())),
        (Some(ratio), None) => {
            if !(ratio > 0.0 && ratio <= 1.0) {
                return Err(("ratio", "must be above 0 and at most 1 (0.05 is 5 %)".into()));
            }
            RateLimit::Ratio(ratio)
        }
        (None, Some(count)) => {
            if count == 0 {
                return Err(("count", "must be at least 1".into()));
            }
            RateLimit::Count(count)
        }
    };
    Ok(ErrorRateRule {
        query: query(spec, Some("level:error"))?,
        window: window(spec)?,
        limit,
        // A ratio over a handful of lines is noise: 1 error in 2 lines is 50 %.
        min_lines: spec.min_lines.unwrap_or(match limit {
            RateLimit::Ratio(_) => 100,
            RateLimit::Count(_) => 0,
        }),
        group_by: group_by(spec, &[GroupField::Host, GroupField::Source])?,
        sample_lines: sample_lines(spec)?,
    })
}

fn new_pattern(spec: &RuleSpec) -> Result<NewPatternRule, CheckError> {
    only(
        spec,
        "new_pattern",
        &["level", "query", "window", "count", "sample_lines"],
    )?;
    let level = spec.level.as_deref().unwrap_or("error");
    let levels = if level == "any" {
        None
    } else {
        let at = LEVELS.iter().position(|known| *known == level).ok_or((
            "level",
            format!("`{level}` is not a level: use error, warn, info, debug, trace or any"),
        ))?;
        Some(
            LEVELS[..=at]
                .iter()
                .map(|level| format!("level:{level}"))
                .collect::<Vec<_>>()
                .join(" OR "),
        )
    };
    let query = match (levels, &spec.query) {
        (Some(levels), Some(_)) => format!("({levels}) AND ({})", query(spec, None)?),
        (Some(levels), None) => levels,
        (None, Some(_)) => query(spec, None)?,
        (None, None) => "*".to_owned(),
    };
    crate::store::search::check_query_syntax(&query).map_err(|reason| ("query", reason))?;
    let count = spec.count.unwrap_or(1);
    if count == 0 {
        return Err(("count", "must be at least 1".into()));
    }
    Ok(NewPatternRule {
        query,
        window: window(spec)?,
        count,
        sample_lines: sample_lines(spec)?,
    })
}

fn log_match(spec: &RuleSpec) -> Result<LogMatchRule, CheckError> {
    only(
        spec,
        "log_match",
        &["query", "window", "count", "op", "lookback", "group_by", "sample_lines"],
    )?;
    let op = op(spec, ">")?;
    let window = window(spec)?;
    let lookback = spec.lookback.map_or(DEFAULT_LOOKBACK, HumanDuration::get);
    if op.upward() && spec.lookback.is_some() {
        return Err((
            "lookback",
            "finds the groups of a rule that fires on fewer lines (op \"<\" or \"<=\")".into(),
        ));
    }
    if lookback < window || lookback > MAX_LOOKBACK {
        return Err(("lookback", "must be at least the window and at most 14d".into()));
    }
    let count = spec.count.unwrap_or(0);
    if op == Op::Lt && count == 0 {
        return Err((
            "count",
            "with op \"<\", fewer than 0 lines never happens: give count = 1 or more".into(),
        ));
    }
    Ok(LogMatchRule {
        query: query(spec, None)?,
        window,
        count,
        op,
        lookback,
        group_by: group_by(spec, &[GroupField::Host])?,
        sample_lines: sample_lines(spec)?,
    })
}

fn log_stats(spec: &RuleSpec) -> Result<LogStatsRule, CheckError> {
    only(
        spec,
        "log_stats",
        &["query", "window", "op", "threshold", "column", "sample_lines"],
    )?;
    let text = spec.query.clone().ok_or(("query", "is required".to_string()))?;
    let parsed = crate::query::parse_query(&text).map_err(|err| ("query", err.to_string()))?;
    let Some(stats) = &parsed.stats else {
        return Err((
            "query",
            "a log_stats rule's query ends in a table: `… | stats p95(duration_ms) by path`".into(),
        ));
    };
    if stats
        .by
        .iter()
        .any(|key| matches!(key, crate::query::pipe::GroupKey::TimeBucket(_)))
    {
        return Err((
            "query",
            "a rule compares the window as a whole: group by fields, not by `_time(…)`".into(),
        ));
    }
    let keys = stats.by.len();
    // Each key is a label: they must not read alike, or as the rule's own.
    let mut names: Vec<String> = Vec::new();
    for column in &stats.columns[..keys] {
        let name = label_name(column);
        if name == "alertname" || spec.labels.contains_key(&name) || names.contains(&name) {
            return Err((
                "query",
                format!(
                    "the key `{column}` is the label `{name}`, which another key or the rule's labels (or \
                     alertname) already name: rename one"
                ),
            ));
        }
        names.push(name);
    }
    let column = match &spec.column {
        None => stats.columns.len() - 1,
        Some(name) => match stats.columns.iter().position(|c| c == name) {
            Some(at) if at >= keys => at,
            Some(_) => return Err(("column", format!("`{name}` is a group key; name a computed column"))),
            None => {
                return Err((
                    "column",
                    format!("`{name}` is not a column of the query: {}", stats.columns.join(", ")),
                ));
            }
        },
    };
    Ok(LogStatsRule {
        query: text,
        window: window(spec)?,
        column,
        op: op(spec, ">")?,
        threshold: threshold_value(spec)?,
        sample_lines: sample_lines(spec)?,
        parsed,
    })
}

fn no_data(spec: &RuleSpec) -> Result<NoDataRule, CheckError> {
    only(spec, "no_data", &["intervals"])?;
    let intervals = spec.intervals.unwrap_or(3);
    if intervals == 0 {
        return Err(("intervals", "must be at least 1".into()));
    }
    Ok(NoDataRule { intervals })
}

/// The built-in rules: what an operator sets first on every server.
pub fn defaults() -> Vec<Rule> {
    let threshold = |name: &str, metric: &str, for_secs: u64, severity: &str, summary: &str, cpu_total: bool| {
        let mut match_labels = BTreeMap::new();
        if cpu_total {
            match_labels.insert("cpu".to_string(), String::new());
        }
        Rule {
            name: name.into(),
            kind: RuleKind::Threshold(ThresholdRule {
                metric: metric.into(),
                match_labels,
                op: Op::Ge,
                threshold: 80.0,
                clear_threshold: Some(75.0),
                datapoints: None,
            }),
            interval: None,
            for_: Duration::from_secs(for_secs),
            labels: BTreeMap::from([("severity".to_string(), severity.to_string())]),
            annotations: BTreeMap::from([("summary".to_string(), summary.to_string())]),
            notify: None,
        }
    };
    vec![
        threshold(
            "HighCpu",
            "cpu.usage_percent",
            300,
            "warning",
            "{{ host }}: CPU at {{ value }}% (threshold {{ threshold }}%)",
            true,
        ),
        threshold(
            "HighMemory",
            "memory.used_percent",
            300,
            "warning",
            "{{ host }}: memory {{ value }}% used (threshold {{ threshold }}%)",
            false,
        ),
        threshold(
            "DiskFull",
            "fs.used_percent",
            60,
            "critical",
            "{{ host }} {{ mount }} is {{ value }}% full (threshold {{ threshold }}%)",
            false,
        ),
        threshold(
            "NetworkReceiveSaturated",
            "net.rx_utilization_percent",
            300,
            "warning",
            "{{ host }} {{ interface }}: receiving at {{ value }}% of link speed",
            false,
        ),
        threshold(
            "NetworkTransmitSaturated",
            "net.tx_utilization_percent",
            300,
            "warning",
            "{{ host }} {{ interface }}: sending at {{ value }}% of link speed",
            false,
        ),
        Rule {
            name: "HostSilent".into(),
            kind: RuleKind::NoData(NoDataRule { intervals: 3 }),
            interval: None,
            for_: Duration::ZERO,
            labels: BTreeMap::from([("severity".to_string(), "critical".to_string())]),
            annotations: BTreeMap::from([(
                "summary".to_string(),
                "{{ host }} has sent nothing for {{ value }}s".to_string(),
            )]),
            notify: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Rule>, ConfigError> {
        from_toml(
            Path::new("rules.toml"),
            text,
            Context {
                notifiers: &["oncall-email".to_string()],
                evaluation_interval: Duration::from_secs(15),
            },
        )
    }

    #[test]
    fn spec_example_parses() {
        let rules = parse(
            r#"
[[rules]]
name = "DiskFull"
kind = "threshold"
metric = "fs.used_percent"
op = ">="
threshold = 80.0
clear_threshold = 75.0
for = "1m"
datapoints = "3 of 5"
labels = { severity = "critical" }
annotations = { summary = "{{ host }} {{ mount }} is {{ value }}% full" }
notify = ["oncall-email"]

[[rules]]
name = "ApacheErrors"
kind = "error_rate"
query = "level:error"
window = "5m"
ratio = 0.05
min_lines = 100
group_by = ["host", "source"]
"#,
        )
        .unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        // The file's DiskFull replaces the built-in one.
        assert_eq!(names.iter().filter(|n| **n == "DiskFull").count(), 1);
        assert!(names.contains(&"HighCpu") && names.contains(&"ApacheErrors"));
        let disk = rules.iter().find(|r| r.name == "DiskFull").unwrap();
        let RuleKind::Threshold(t) = &disk.kind else { panic!() };
        assert_eq!(t.datapoints, Some(Datapoints { breaching: 3, of: 5 }));
        assert_eq!(disk.for_, Duration::from_secs(60));
        assert_eq!(disk.notify.as_deref(), Some(&["oncall-email".to_string()][..]));
    }

    #[test]
    fn a_new_pattern_rule_takes_its_level_and_those_above() {
        let rules = parse(
            "default_rules = false
[[rules]]
name = \"N\"\nkind = \"new_pattern\"\nlevel = \"warn\"\nquery = \"nginx\"\n             [[rules]]\nname = \"M\"\nkind = \"new_pattern\"\n[[rules]]\nname = \"A\"\nkind = \"new_pattern\"\nlevel = \"any\"\n",
        )
        .unwrap();
        let queries: Vec<(&str, u64, Duration)> = rules
            .iter()
            .map(|rule| {
                let RuleKind::NewPattern(new) = &rule.kind else {
                    panic!()
                };
                (new.query.as_str(), new.count, new.window)
            })
            .collect();
        assert_eq!(
            queries,
            [
                ("(level:error OR level:warn) AND (nginx)", 1, Duration::from_secs(300)),
                ("level:error", 1, Duration::from_secs(300)),
                ("*", 1, Duration::from_secs(300)),
            ]
        );
    }

    #[test]
    fn defaults_can_be_disabled_one_by_one_or_all() {
        let rules = parse(
            "[[rules]]\nname = \"HighCpu\"\nkind = \"threshold\"\nmetric = \"x\"\nthreshold = 1.0\nenabled = false\n",
        )
        .unwrap();
        assert!(!rules.iter().any(|r| r.name == "HighCpu"));
        assert_eq!(rules.len(), defaults().len() - 1);
        assert!(parse("default_rules = false\n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_rule_and_key() {
        let cases = [
            ("[[rules]]\nname = \"A\"\nkind = \"treshold\"\n", "rules[0] (A).kind"),
            (
                "[[rules]]\nname = \"A\"\nkind = \"threshold\"\nthreshold = 1.0\n",
                "rules[0] (A).metric",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"threshold\"\nmetric = \"m\"\nthreshold = 80.0\nclear_threshold = 85.0\n",
                "rules[0] (A).clear_threshold",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"threshold\"\nmetric = \"m\"\nthreshold = 1.0\ndatapoints = \"5 of 3\"\n",
                "rules[0] (A).datapoints",
            ),
            (
                "[[rules]]\nname = \"B\"\nkind = \"error_rate\"\nmetric = \"m\"\ncount = 5\n",
                "rules[0] (B).metric",
            ),
            ("[[rules]]\nname = \"B\"\nkind = \"error_rate\"\n", "rules[0] (B).ratio"),
            (
                "[[rules]]\nname = \"B\"\nkind = \"error_rate\"\nratio = 5.0\n",
                "rules[0] (B).ratio",
            ),
            (
                "[[rules]]\nname = \"B\"\nkind = \"log_match\"\nquery = \"\\\"unbalanced\"\n",
                "rules[0] (B).query",
            ),
            (
                "[[rules]]\nname = \"C\"\nkind = \"no_data\"\nnotify = [\"pager\"]\n",
                "rules[0] (C).notify",
            ),
            (
                "[[rules]]\nname = \"C\"\nkind = \"no_data\"\nannotations = { summary = \"{{ host \" }\n",
                "rules[0] (C).annotations",
            ),
            (
                "[[rules]]\nname = \"C\"\nkind = \"no_data\"\n[[rules]]\nname = \"C\"\nkind = \"no_data\"\n",
                "rules[1] (C).name",
            ),
            // A stats rule needs a table, of fields, and a computed column.
            (
                "[[rules]]\nname = \"D\"\nkind = \"log_stats\"\nquery = \"error\"\nthreshold = 1.0\n",
                "rules[0] (D).query",
            ),
            (
                "[[rules]]\nname = \"D\"\nkind = \"log_stats\"\nquery = \"| stats count() by _time(1m)\"\nthreshold = 1.0\n",
                "rules[0] (D).query",
            ),
            (
                "[[rules]]\nname = \"D\"\nkind = \"log_stats\"\nquery = \"| stats count() by path\"\ncolumn = \"path\"\nthreshold = 1.0\n",
                "rules[0] (D).column",
            ),
            (
                "[[rules]]\nname = \"D\"\nkind = \"log_stats\"\nquery = \"| stats count() by path\"\n",
                "rules[0] (D).threshold",
            ),
            (
                "[[rules]]\nname = \"D\"\nkind = \"log_stats\"\nquery = \"| top path\"\nthreshold = 1.0\ncount = 3\n",
                "rules[0] (D).count",
            ),
            // Keys that would be one label.
            (
                "[[rules]]\nname = \"D\"\nkind = \"log_stats\"\nquery = \"| stats count() by user.id, user_id\"\nthreshold = 1.0\n",
                "rules[0] (D).query",
            ),
            (
                "[[rules]]\nname = \"D\"\nkind = \"log_stats\"\nquery = \"| stats count() by severity\"\nthreshold = 1.0\nlabels = { severity = \"page\" }\n",
                "rules[0] (D).query",
            ),
            // "Fewer than": a count above 0, a lookback only there.
            (
                "[[rules]]\nname = \"N\"\nkind = \"new_pattern\"\nlevel = \"loud\"\n",
                "rules[0] (N).level",
            ),
            (
                "[[rules]]\nname = \"N\"\nkind = \"new_pattern\"\ncount = 0\n",
                "rules[0] (N).count",
            ),
            (
                "[[rules]]\nname = \"N\"\nkind = \"new_pattern\"\nwindow = \"1m\"\ninterval = \"2m\"\n",
                "rules[0] (N).window",
            ),
            (
                "[[rules]]\nname = \"N\"\nkind = \"new_pattern\"\nwindow = \"10s\"\n",
                "rules[0] (N).window",
            ),
            (
                "[[rules]]\nname = \"N\"\nkind = \"new_pattern\"\nwindow = \"1m\"\nfor = \"1m\"\n",
                "rules[0] (N).for",
            ),
            (
                "[[rules]]\nname = \"N\"\nkind = \"new_pattern\"\ngroup_by = [\"host\"]\n",
                "rules[0] (N).group_by",
            ),
            (
                "[[rules]]\nname = \"N\"\nkind = \"new_pattern\"\nquery = \"\\\"open\"\n",
                "rules[0] (N).query",
            ),
            (
                "[[rules]]\nname = \"E\"\nkind = \"log_match\"\nquery = \"beat\"\nop = \"<\"\n",
                "rules[0] (E).count",
            ),
            (
                "[[rules]]\nname = \"E\"\nkind = \"log_match\"\nquery = \"beat\"\nlookback = \"1d\"\n",
                "rules[0] (E).lookback",
            ),
            (
                "[[rules]]\nname = \"E\"\nkind = \"log_match\"\nquery = \"beat\"\nop = \"<=\"\nwindow = \"1h\"\nlookback = \"30m\"\n",
                "rules[0] (E).lookback",
            ),
            // A pipe is a table's: a line rule refuses it.
            (
                "[[rules]]\nname = \"F\"\nkind = \"log_match\"\nquery = \"foo|bar\"\n",
                "rules[0] (F).query",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
            assert!(err.to_string().starts_with("rules.toml: "), "{err}");
        }
        let unknown = parse("[[rules]]\nname = \"A\"\nkind = \"no_data\"\nthreshhold = 1\n").unwrap_err();
        assert!(unknown.to_string().contains("threshhold"), "{unknown}");
    }
}
