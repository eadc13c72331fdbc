//! Accuracy of line detection on real lines from other projects.
//!
//! `testdata/formats/lines.jsonl` holds lines copied verbatim from public
//! projects' test fixtures and sample logs (sources and licences in its
//! README), each labelled by hand with the time and level it states. Every
//! line is read with [`LineRules`] in the zone its label names, at its
//! `read_at` (for year-less formats), and must agree with the label: the
//! time to the millisecond on at least 99 % of the lines, the level on at
//! least 97 %. `holdout.jsonl`, gathered from other projects after the
//! tuning, keeps what it measured (96 % and 95 %). Run with `--nocapture` to
//! see every miss.

use jiff::Timestamp;
use lookout_shared::parse::{Level, LineRules};
use lookout_shared::wire::LineFormat;
use serde::Deserialize;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/formats/lines.jsonl");
const HOLDOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/formats/holdout.jsonl");

/// When a line without a `read_at` is read: after every dated line of the
/// corpus.
const DEFAULT_READ_AT: &str = "2026-06-01T00:00:00Z";

#[derive(Deserialize)]
struct Labelled {
    format: String,
    line: String,
    time: Option<String>,
    level: Option<String>,
    zone: Option<String>,
    read_at: Option<String>,
}

fn level(name: &str) -> Level {
    match name {
        "error" => Level::Error,
        "warn" => Level::Warn,
        "info" => Level::Info,
        "debug" => Level::Debug,
        "trace" => Level::Trace,
        other => panic!("label {other:?} is not a level"),
    }
}

#[test]
fn real_lines_from_other_projects_are_read_as_labelled() {
    check(CORPUS, 300, 0.99, 0.97);
}

#[test]
fn lines_gathered_after_the_tuning_are_read_as_labelled() {
    check(HOLDOUT, 200, 0.96, 0.95);
}

/// Reads every labelled line of `path` and requires the shares of times and
/// levels that agree with the labels.
fn check(path: &str, min_lines: usize, time_required: f64, level_required: f64) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let (mut lines, mut time_ok, mut level_ok) = (0usize, 0usize, 0usize);
    let mut formats = std::collections::BTreeSet::new();
    for (n, row) in text.lines().enumerate().filter(|(_, row)| !row.trim().is_empty()) {
        let labelled: Labelled =
            serde_json::from_str(row).unwrap_or_else(|e| panic!("{path}:{}: not a labelled line: {e}", n + 1));
        formats.insert(labelled.format.clone());
        let rules = LineRules::new(&LineFormat {
            timezone: labelled.zone.clone(),
            ..LineFormat::default()
        })
        .unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1));
        let read_at: Timestamp = labelled
            .read_at
            .as_deref()
            .unwrap_or(DEFAULT_READ_AT)
            .parse()
            .unwrap_or_else(|e| panic!("{path}:{}: read_at: {e}", n + 1));
        let expected_time: Option<Timestamp> = labelled.time.as_deref().map(|t| {
            t.parse()
                .unwrap_or_else(|e| panic!("{path}:{}: time {t:?}: {e}", n + 1))
        });
        let expected_level = labelled.level.as_deref().map(level);
        let found = rules.detect(&labelled.line, read_at);
        let time_good = found.timestamp.map(|t| t.as_millisecond()) == expected_time.map(|t| t.as_millisecond());
        let level_good = found.level == expected_level;
        lines += 1;
        time_ok += usize::from(time_good);
        level_ok += usize::from(level_good);
        if !(time_good && level_good) {
            println!(
                "miss [{}] {:?}\n  time  {:?} expected {:?}\n  level {:?} expected {:?}",
                labelled.format, labelled.line, found.timestamp, expected_time, found.level, expected_level
            );
        }
    }
    let share = |ok: usize| ok as f64 / lines as f64;
    println!(
        "{path}: {lines} lines of {} formats: time {:.2} %, level {:.2} %",
        formats.len(),
        100.0 * share(time_ok),
        100.0 * share(level_ok)
    );
    assert!(lines >= min_lines, "{path} has only {lines} lines");
    assert!(
        share(time_ok) >= time_required,
        "{path}: time agrees on {time_ok}/{lines} lines, below {} %",
        time_required * 100.0
    );
    assert!(
        share(level_ok) >= level_required,
        "{path}: level agrees on {level_ok}/{lines} lines, below {} %",
        level_required * 100.0
    );
}
