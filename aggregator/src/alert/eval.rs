//! Evaluating one rule against the stores: which instances (host × mount,
//! host × source, ...) breach, with their values. No state here: the engine
//! turns observations into pending / firing / resolved.
//!
//! Everything here blocks (SQLite reads, tantivy searches): the engine runs
//! it on the blocking pool. Log rules count with tantivy collectors over the
//! `ingested` field (records that *arrived* in the window), never by scanning
//! stored documents.

use super::model::{PatternCount, SampleLine};
use super::rules::label_name;
use super::rules::{
    ErrorRateRule, GroupField, LogMatchRule, LogStatsRule, NewPatternRule, NoDataRule, Op, RateLimit, Rule, RuleKind,
    ThresholdRule,
};
use crate::ingest::patterns::PatternBook;
use crate::metricstore::MetricStore;
use crate::query::aggregate::{Value, row_query};
use crate::query::pipe::{RowStep, Stats};
use crate::query::{Expr, Leaf, parse_query};
use crate::store::LogStore;
use crate::store::schema::PATTERN_FIELD;
use crate::store::search::{LogFilter, SearchError, SearchRequest, SortOrder};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// A series whose newest sample is older than this has no current value: a
/// host that stopped reporting is the `no_data` rule's business, and an
/// unmounted filesystem's last value must not keep an alert alive.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// Longest message kept in a sample line of a notification.
const MAX_SAMPLE_CHARS: usize = 1000;
/// Patterns a log alert lists, at most.
const TOP_PATTERNS: usize = 5;
/// Ids counted to find them (the ids of one pattern are added up after).
const TOP_IDS: usize = 200;

/// One instance's current condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The instance's own labels (`host`, `mount`, `source`, ...).
    pub labels: BTreeMap<String, String>,
    /// The value compared (percent, count, seconds).
    pub value: f64,
    /// The firing condition holds.
    pub breaching: bool,
    /// For an instance already firing: it has not yet recovered (with a
    /// `clear_threshold`, the value is not yet back past it).
    pub unrecovered: bool,
    /// For log rules, the first matching lines in the window.
    pub sample_lines: Vec<SampleLine>,
    /// For log rules, the patterns of the most matching lines in the window.
    pub top_patterns: Vec<PatternCount>,
}

/// What one evaluation of a rule found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    /// Every instance with data.
    pub observations: Vec<Observation>,
    /// The threshold the values are compared with, in their unit.
    pub threshold: Option<f64>,
    /// The comparison, for notifications.
    pub op: Option<Op>,
    /// Whether an instance with no observation has recovered (log rules: no
    /// matching line in the window), rather than merely lacking data.
    pub absent_means_recovered: bool,
}

/// Why a rule could not be evaluated this time.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The log index failed or refused the query.
    #[error("log search failed: {0}")]
    Logs(#[from] crate::store::search::SearchError),
    /// The metric store failed.
    #[error("metric store failed: {0}")]
    Metrics(#[from] rusqlite::Error),
}

/// What rules are evaluated against.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// The log index.
    pub logs: &'a LogStore,
    /// The metric store.
    pub metrics: &'a MetricStore,
    /// The lines' patterns: templates, and when each was first seen.
    pub patterns: &'a PatternBook,
}

/// Evaluates `rule` at `now_ms`.
pub fn evaluate(rule: &Rule, stores: Stores<'_>, now_ms: i64) -> Result<Evaluation, EvalError> {
    match &rule.kind {
        RuleKind::Threshold(threshold) => evaluate_threshold(threshold, stores.metrics, now_ms),
        RuleKind::ErrorRate(rate) => evaluate_error_rate(rate, stores, now_ms),
        RuleKind::LogMatch(matching) => evaluate_log_match(matching, stores, now_ms),
        RuleKind::LogStats(stats) => evaluate_log_stats(stats, stores, now_ms),
        RuleKind::NoData(no_data) => evaluate_no_data(no_data, stores.metrics, now_ms),
        RuleKind::NewPattern(new) => evaluate_new_pattern(new, stores, now_ms),
    }
}

fn evaluate_threshold(rule: &ThresholdRule, metrics: &MetricStore, now_ms: i64) -> Result<Evaluation, EvalError> {
    let since = now_ms.saturating_sub(STALE_AFTER.as_millis() as i64);
    let per_series = rule.datapoints.map_or(1, |d| d.of as usize);
    let mut observations = Vec::new();
    let wanted = |labels: &BTreeMap<String, String>| labels_match(&rule.match_labels, labels);
    for series in metrics.recent_samples(&rule.metric, since, per_series, &wanted)? {
        let Some(&(_, latest)) = series.points.first() else {
            continue;
        };
        let breaching = match rule.datapoints {
            Some(datapoints) => {
                let breaches = series
                    .points
                    .iter()
                    .filter(|(_, v)| rule.op.holds(*v, rule.threshold))
                    .count();
                breaches >= datapoints.breaching as usize
            }
            None => rule.op.holds(latest, rule.threshold),
        };
        let unrecovered = match rule.clear_threshold {
            // Recovered once the value is strictly past the clear threshold
            // on the healthy side ("fire at 80, clear below 75").
            Some(clear) if rule.op.upward() => latest >= clear,
            Some(clear) => latest <= clear,
            None => breaching,
        };
        let mut labels = series.labels;
        labels.insert("host".into(), series.host);
        observations.push(Observation {
            labels,
            value: latest,
            breaching,
            unrecovered,
            sample_lines: Vec::new(),
            top_patterns: Vec::new(),
        });
    }
    Ok(Evaluation {
        observations,
        threshold: Some(rule.threshold),
        op: Some(rule.op),
        absent_means_recovered: false,
    })
}

/// Whether `labels` satisfy every matcher; an empty matcher value means the
/// label must be absent (as in Prometheus selectors).
fn labels_match(matchers: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|(name, wanted)| match labels.get(name) {
        Some(value) => value == wanted,
        None => wanted.is_empty(),
    })
}

fn group_fields(group_by: &[GroupField]) -> Vec<&'static str> {
    group_by.iter().map(|g| g.label()).collect()
}

fn group_labels(group_by: &[GroupField], key: &[String]) -> BTreeMap<String, String> {
    group_by
        .iter()
        .zip(key)
        .map(|(field, value)| (field.label().to_string(), value.clone()))
        .collect()
}

/// One group (host and/or source) of a log rule in its window.
struct LogGroup<'a> {
    query: &'a str,
    since: i64,
    labels: BTreeMap<String, String>,
    sample_lines: usize,
}

impl LogGroup<'_> {
    /// The group's observation; a breaching one quotes its first matching
    /// lines and lists their top patterns.
    fn observe(self, stores: Stores<'_>, value: f64, breaching: bool) -> Result<Observation, EvalError> {
        let (sample_lines, top_patterns) = if breaching {
            (
                sample_lines(stores.logs, self.query, self.since, &self.labels, self.sample_lines)?,
                best_effort(top_patterns(stores, self.query, self.since, &self.labels)),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Observation {
            labels: self.labels,
            value,
            breaching,
            unrecovered: breaching,
            sample_lines,
            top_patterns,
        })
    }
}

/// A query's records, for a stats plan: `query` parsed.
fn parsed(query: &str) -> Result<Expr, EvalError> {
    Ok(parse_query(query)
        .map_err(|err| SearchError::BadRequest(err.to_string()))?
        .filter)
}

/// A stats plan this module writes (so it parses).
fn plan(text: &str) -> Result<Stats, EvalError> {
    parse_query(text)
        .ok()
        .and_then(|parsed| parsed.stats)
        .ok_or_else(|| SearchError::BadRequest(format!("internal plan `{text}` does not parse")).into())
}

/// Lines per pattern (ids of one pattern added up under the oldest) of
/// `filter`'s and `expr`'s records, keyed also by the plan's other keys
/// (`by` holds them before `pattern`), most lines first.
fn pattern_counts(
    stores: Stores<'_>,
    filter: &LogFilter,
    expr: &Expr,
    by: &str,
    ids: usize,
) -> Result<Vec<(Vec<String>, String, u64)>, EvalError> {
    let table = stores.logs.stats(
        filter,
        expr,
        &plan(&format!(
            "* | stats count() by {by}pattern | sort by count() desc | limit {ids}"
        ))?,
    )?;
    let ids: Vec<String> = table
        .rows
        .iter()
        .filter_map(|row| match row.get(row.len().saturating_sub(2)) {
            Some(Value::Text(id)) => Some(id.clone()),
            _ => None,
        })
        .collect();
    let canonicals = stores.patterns.canonicals(&ids);
    let mut merged: HashMap<(Vec<String>, String), u64> = HashMap::new();
    for row in &table.rows {
        let [keys @ .., Value::Text(id), Value::Count(count)] = row.as_slice() else {
            continue;
        };
        let canonical = canonicals.get(id).cloned().unwrap_or_else(|| id.clone());
        *merged
            .entry((keys.iter().map(label_value).collect(), canonical))
            .or_default() += count;
    }
    let mut counts: Vec<(Vec<String>, String, u64)> = merged
        .into_iter()
        .map(|((keys, id), count)| (keys, id, count))
        .collect();
    counts.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    Ok(counts)
}

/// The top patterns, or none when they cannot be counted: they explain
/// an alert, which fires all the same.
fn best_effort(top: Result<Vec<PatternCount>, EvalError>) -> Vec<PatternCount> {
    top.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "cannot count an alert's top patterns");
        Vec::new()
    })
}

/// The patterns of the most lines of one group that match `query` in the
/// window, with their templates.
fn top_patterns(
    stores: Stores<'_>,
    query: &str,
    since: i64,
    group: &BTreeMap<String, String>,
) -> Result<Vec<PatternCount>, EvalError> {
    let filter = LogFilter {
        q: query.to_string(),
        host: group.get("host").cloned(),
        source: group.get("source").cloned(),
        ingested_since: Some(since),
        ..LogFilter::default()
    };
    let mut counts = pattern_counts(stores, &filter, &parsed(query)?, "", TOP_IDS)?;
    counts.truncate(TOP_PATTERNS);
    let ids: Vec<String> = counts.iter().map(|(_, id, _)| id.clone()).collect();
    let templates = stores.patterns.templates(&ids);
    Ok(counts
        .into_iter()
        .zip(templates)
        .map(|((_, pattern, count), template)| PatternCount {
            pattern,
            template,
            count,
        })
        .collect())
}

/// The first `limit` lines of one group that match `query` in the window.
fn sample_lines(
    logs: &LogStore,
    query: &str,
    since: i64,
    group: &BTreeMap<String, String>,
    limit: usize,
) -> Result<Vec<SampleLine>, EvalError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let request = SearchRequest {
        filter: LogFilter {
            q: query.to_string(),
            host: group.get("host").cloned(),
            source: group.get("source").cloned(),
            ingested_since: Some(since),
            ..LogFilter::default()
        },
        limit,
        offset: 0,
        order: SortOrder::Asc,
    };
    Ok(logs
        .search(&request)?
        .hits
        .into_iter()
        .map(|hit| SampleLine {
            timestamp: hit.timestamp,
            host: hit.host,
            source: hit.source,
            message: truncate(hit.message),
        })
        .collect())
}

fn truncate(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_SAMPLE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

fn evaluate_error_rate(rule: &ErrorRateRule, stores: Stores<'_>, now_ms: i64) -> Result<Evaluation, EvalError> {
    let logs = stores.logs;
    let since = now_ms.saturating_sub(rule.window.as_millis() as i64);
    let fields = group_fields(&rule.group_by);
    let window = LogFilter {
        ingested_since: Some(since),
        ..LogFilter::default()
    };
    let errors = logs.count_by_group(
        &LogFilter {
            q: rule.query.clone(),
            ..window.clone()
        },
        &fields,
    )?;
    let totals = logs.count_by_group(&window, &fields)?;
    let mut observations = Vec::new();
    for (key, matched) in errors {
        // Every matching line is also a line of its group.
        let total = totals.get(&key).copied().unwrap_or(matched).max(matched);
        let (value, breaching) = match rule.limit {
            RateLimit::Count(count) => (matched as f64, matched >= count),
            RateLimit::Ratio(ratio) => {
                let share = matched as f64 / total as f64;
                (share * 100.0, share >= ratio)
            }
        };
        let breaching = breaching && total >= rule.min_lines;
        let group = LogGroup {
            query: &rule.query,
            since,
            labels: group_labels(&rule.group_by, &key),
            sample_lines: rule.sample_lines,
        };
        observations.push(group.observe(stores, value, breaching)?);
    }
    observations.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Evaluation {
        observations,
        threshold: Some(match rule.limit {
            RateLimit::Count(count) => count as f64,
            RateLimit::Ratio(ratio) => ratio * 100.0,
        }),
        op: Some(Op::Ge),
        absent_means_recovered: true,
    })
}

fn evaluate_log_match(rule: &LogMatchRule, stores: Stores<'_>, now_ms: i64) -> Result<Evaluation, EvalError> {
    let logs = stores.logs;
    let since = now_ms.saturating_sub(rule.window.as_millis() as i64);
    let fields = group_fields(&rule.group_by);
    let filter = LogFilter {
        q: rule.query.clone(),
        ingested_since: Some(since),
        ..LogFilter::default()
    };
    let counts = logs.count_by_group(&filter, &fields)?;
    let mut groups: BTreeSet<Vec<String>> = counts.keys().cloned().collect();
    if !rule.op.upward() {
        // "Fewer than": a group silent in the window has no count there;
        // the groups watched are those the query matched in the lookback
        // (or the one group of everything).
        let lookback = LogFilter {
            ingested_since: Some(now_ms.saturating_sub(rule.lookback.as_millis() as i64)),
            ..filter.clone()
        };
        groups.extend(logs.count_by_group(&lookback, &fields)?.into_keys());
        if fields.is_empty() {
            groups.insert(Vec::new());
        }
    }
    let mut observations = Vec::new();
    for key in groups {
        let matched = counts.get(&key).copied().unwrap_or(0);
        let group = LogGroup {
            query: &rule.query,
            since,
            labels: group_labels(&rule.group_by, &key),
            sample_lines: rule.sample_lines,
        };
        let breaching = rule.op.holds(matched as f64, rule.count as f64);
        observations.push(group.observe(stores, matched as f64, breaching)?);
    }
    Ok(Evaluation {
        observations,
        threshold: Some(rule.count as f64),
        op: Some(rule.op),
        absent_means_recovered: true,
    })
}

/// One alert instance per row of the window's table: its keys are the
/// labels, the rule's column its value.
fn evaluate_log_stats(rule: &LogStatsRule, stores: Stores<'_>, now_ms: i64) -> Result<Evaluation, EvalError> {
    let logs = stores.logs;
    let since = now_ms.saturating_sub(rule.window.as_millis() as i64);
    let Some(stats) = &rule.parsed.stats else {
        return Ok(Evaluation::default());
    };
    let filter = LogFilter {
        q: rule.query.clone(),
        ingested_since: Some(since),
        ..LogFilter::default()
    };
    // The rows kept (at most `MAX_ROWS`) are the worst first.
    let mut worst_first = stats.clone();
    worst_first
        .rows
        .push(RowStep::Sort(vec![(rule.column, rule.op.upward())]));
    let table = logs.stats(&filter, &rule.parsed.filter, &worst_first)?;
    // Rows whose keys read alike as labels (a number and its text, no
    // value and "") are one alert: the worst of them.
    let mut by_labels: BTreeMap<BTreeMap<String, String>, Observation> = BTreeMap::new();
    for row in &table.rows {
        let value = match row.get(rule.column) {
            Some(Value::Count(n)) => *n as f64,
            Some(Value::Number(n)) if n.is_finite() => *n,
            Some(Value::Time(ms)) => *ms as f64,
            // An average of no numbers: nothing to compare.
            _ => continue,
        };
        let labels: BTreeMap<String, String> = table
            .columns
            .iter()
            .zip(row)
            .take(table.keys)
            .map(|(column, key)| (label_name(column), label_value(key)))
            .collect();
        if by_labels.contains_key(&labels) {
            continue;
        }
        let breaching = rule.op.holds(value, rule.threshold);
        let (sample_lines, top_patterns) = if breaching {
            let lines = row_query(stats, &rule.parsed.filter_text, row);
            // A row whose lines cannot be quoted (its keys make the query
            // too long) still alerts.
            let quoted = sample_lines(logs, &lines, since, &BTreeMap::new(), rule.sample_lines).unwrap_or_else(|err| {
                tracing::warn!(rule = %rule.query, error = %err, "cannot quote a stats row's lines");
                Vec::new()
            });
            (
                quoted,
                best_effort(top_patterns(stores, &lines, since, &BTreeMap::new())),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        by_labels.insert(
            labels.clone(),
            Observation {
                labels,
                value,
                breaching,
                unrecovered: breaching,
                sample_lines,
                top_patterns,
            },
        );
    }
    Ok(Evaluation {
        observations: by_labels.into_values().collect(),
        threshold: Some(rule.threshold),
        op: Some(rule.op),
        absent_means_recovered: true,
    })
}

/// A key's value as a label's text; a missing one is empty.
fn label_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Text(text) => text.clone(),
        other => serde_json::to_value(other).map_or_else(|_| String::new(), |v| v.to_string()),
    }
}

fn evaluate_no_data(rule: &NoDataRule, metrics: &MetricStore, now_ms: i64) -> Result<Evaluation, EvalError> {
    let mut observations = Vec::new();
    for host in metrics.activity() {
        let silent_ms = now_ms.saturating_sub(host.last_seen_ms).max(0);
        let limit_ms = host.interval_ms.saturating_mul(i64::from(rule.intervals));
        let breaching = silent_ms > limit_ms;
        observations.push(Observation {
            labels: BTreeMap::from([("host".to_string(), host.host)]),
            value: (silent_ms / 1000) as f64,
            breaching,
            unrecovered: breaching,
            sample_lines: Vec::new(),
            top_patterns: Vec::new(),
        });
    }
    Ok(Evaluation {
        observations,
        threshold: None,
        op: None,
        absent_means_recovered: false,
    })
}

/// Most candidates of a `new_pattern` rule counted by their ids; more (a
/// burst of new patterns) are found in one table of the window's lines.
const CANDIDATES_PER_TABLE: usize = 128;

/// One alert per source and pattern whose first line arrived in the
/// window, on a source whose first line arrived a whole window before it,
/// among the rule's lines; firing at `count` lines. The candidates come
/// from the [`PatternBook`] (no record is read when there are none, the
/// common case), and only their lines are counted. A pattern no longer
/// new has no observation: it resolves.
fn evaluate_new_pattern(rule: &NewPatternRule, stores: Stores<'_>, now_ms: i64) -> Result<Evaluation, EvalError> {
    let window_ms = i64::try_from(rule.window.as_millis()).unwrap_or(i64::MAX);
    let since = now_ms.saturating_sub(window_ms);
    let candidates = stores.patterns.arrived_since(since, window_ms);
    let lines = parsed(&rule.query)?;
    let filter = LogFilter {
        q: rule.query.clone(),
        ingested_since: Some(since),
        ..LogFilter::default()
    };
    let by_source = |expr: &Expr| pattern_counts(stores, &filter, expr, "source, ", crate::query::pipe::MAX_ROWS);
    let counts = match candidates.len() {
        0 => Vec::new(),
        // A few: only their lines are counted.
        1..=CANDIDATES_PER_TABLE => {
            let of_these = Expr::Or(
                candidates
                    .iter()
                    .map(|id| Expr::Leaf(Leaf::Field(PATTERN_FIELD.to_owned(), id.clone())))
                    .collect(),
            );
            by_source(&Expr::And(vec![lines, of_these]))?
        }
        // A burst: one table of the window's lines, kept to the candidates.
        _ => {
            let wanted: std::collections::HashSet<&String> = candidates.iter().collect();
            let mut counts = by_source(&lines)?;
            counts.retain(|(_, id, _)| wanted.contains(id));
            counts
        }
    };
    let ids: Vec<String> = counts.iter().map(|(_, id, _)| id.clone()).collect();
    let templates = stores.patterns.templates(&ids);
    let mut observations = Vec::new();
    for ((keys, pattern, count), template) in counts.into_iter().zip(templates) {
        let source = keys.into_iter().next().unwrap_or_default();
        let labels = BTreeMap::from([("source".to_owned(), source), ("pattern".to_owned(), pattern.clone())]);
        let breaching = count >= rule.count;
        let sample_lines = if breaching {
            let of_pattern = format!("({}) AND pattern:{pattern}", rule.query);
            sample_lines(stores.logs, &of_pattern, since, &labels, rule.sample_lines).unwrap_or_else(|err| {
                tracing::warn!(pattern, error = %err, "cannot quote a new pattern's lines");
                Vec::new()
            })
        } else {
            Vec::new()
        };
        observations.push(Observation {
            labels,
            value: count as f64,
            breaching,
            unrecovered: breaching,
            sample_lines,
            top_patterns: vec![PatternCount {
                pattern,
                template,
                count,
            }],
        });
    }
    observations.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Evaluation {
        observations,
        threshold: Some(rule.count as f64),
        op: Some(Op::Ge),
        absent_means_recovered: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_matcher_means_label_absent() {
        let total = BTreeMap::new();
        let core = BTreeMap::from([("cpu".to_string(), "0".to_string())]);
        let matcher = BTreeMap::from([("cpu".to_string(), String::new())]);
        assert!(labels_match(&matcher, &total));
        assert!(!labels_match(&matcher, &core));
        let exact = BTreeMap::from([("cpu".to_string(), "0".to_string())]);
        assert!(labels_match(&exact, &core) && !labels_match(&exact, &total));
    }

    #[test]
    fn long_sample_lines_are_cut() {
        let cut = truncate("é".repeat(5000));
        assert_eq!(cut.chars().count(), MAX_SAMPLE_CHARS + 1);
        assert_eq!(truncate("short".into()), "short");
    }
}
