//! Accuracy of `detect_level` and `parse_timestamp` on the Loghub 2k samples.
//!
//! Each `<System>_2k.log` comes with a `<System>_2k.log_structured.csv` in
//! which Loghub's authors split every line into fields by hand-checked
//! templates. For each line, the level and time the parsers find must match
//! the CSV's on at least 99 % of the lines of every file. The expected values
//! are built from the CSV columns with jiff's `strptime`, independently of the
//! byte-level matchers under test.
//!
//! The data is the repository's copy (`testdata/loghub`, with Loghub's
//! licence); the test fails, rather than skips, when it is missing.
//! Run with `--nocapture` to see the per-file table.

use std::path::{Path, PathBuf};

use csv::StringRecord;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use lookout_shared::parse::{Level, detect_level, parse_timestamp};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/loghub");

/// Minimum share of lines that must agree with the CSV, per file and field.
const REQUIRED: f64 = 0.99;

/// The year-less formats (Linux, OpenSSH and Mac syslog, Android logcat,
/// Proxifier) are read with a reference at the end of 2005, so every line
/// gets 2005, as the expected times do.
const SYSLOG_YEAR: i16 = 2005;

/// How one system's CSV gives the expected values.
struct System {
    name: &'static str,
    /// Whether the CSV's `Level` column holds real level words (Linux's holds
    /// the host name, OpenSSH has none).
    has_level: bool,
    /// Whether its times leave out the year (they are read with a reference
    /// at the end of [`SYSLOG_YEAR`]).
    yearless: bool,
    /// The expected time of a row, from its columns.
    time: fn(&Row) -> Timestamp,
}

/// A CSV row with access to its columns by header name.
struct Row<'a> {
    headers: &'a StringRecord,
    record: &'a StringRecord,
}

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        let index = self
            .headers
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column:?} in {:?}", self.headers));
        &self.record[index]
    }
}

/// Parses a civil time in the given `strptime` format as UTC.
fn utc(format: &str, text: &str) -> Timestamp {
    DateTime::strptime(format, text)
        .and_then(|dt| dt.to_zoned(TimeZone::UTC))
        .unwrap_or_else(|e| panic!("expected time {text:?} ({format}): {e}"))
        .timestamp()
}

fn syslog_time(month: &str, day: &str, time: &str) -> Timestamp {
    utc("%Y %b %d %H:%M:%S", &format!("{SYSLOG_YEAR} {month} {day} {time}"))
}

const SYSTEMS: &[System] = &[
    System {
        name: "Apache",
        has_level: true,
        yearless: false,
        time: |r| utc("%a %b %d %H:%M:%S %Y", r.get("Time")),
    },
    System {
        name: "BGL",
        has_level: true,
        yearless: false,
        // The `Time` column is Pacific local time without a zone; the
        // `Timestamp` column (Unix seconds) is the instant. The parser uses
        // the latter plus the microseconds of the former.
        time: |r| {
            let second: i64 = r.get("Timestamp").parse().expect("BGL epoch");
            let local = utc("%Y-%m-%d-%H.%M.%S.%f", r.get("Time"));
            Timestamp::new(second, local.subsec_nanosecond()).expect("BGL time")
        },
    },
    System {
        name: "HDFS",
        has_level: true,
        yearless: false,
        time: |r| utc("%y%m%d %H%M%S", &format!("{} {}", r.get("Date"), r.get("Time"))),
    },
    System {
        name: "Hadoop",
        has_level: true,
        yearless: false,
        time: |r| log4j_time(r),
    },
    System {
        name: "Linux",
        has_level: false,
        yearless: true,
        time: |r| syslog_time(r.get("Month"), r.get("Date"), r.get("Time")),
    },
    System {
        name: "OpenSSH",
        has_level: false,
        yearless: true,
        time: |r| syslog_time(r.get("Date"), r.get("Day"), r.get("Time")),
    },
    System {
        name: "Spark",
        has_level: true,
        yearless: false,
        time: |r| utc("%y/%m/%d %H:%M:%S", &format!("{} {}", r.get("Date"), r.get("Time"))),
    },
    System {
        name: "Zookeeper",
        has_level: true,
        yearless: false,
        time: |r| log4j_time(r),
    },
    System {
        name: "Android",
        has_level: true,
        yearless: true,
        time: |r| {
            utc(
                "%Y-%m-%d %H:%M:%S%.f",
                &format!("{SYSLOG_YEAR}-{} {}", r.get("Date"), r.get("Time")),
            )
        },
    },
    System {
        name: "HealthApp",
        has_level: false,
        yearless: false,
        // `20171223-22:15:29:606`: milliseconds after a colon, not padded
        // (`22:15:35:11` is 11 ms past the second, as Java's `S` prints it).
        time: |r| {
            let (civil, millis) = r.get("Time").rsplit_once(':').expect("HealthApp time");
            let millis: i64 = millis.parse().expect("HealthApp milliseconds");
            utc("%Y%m%d-%H:%M:%S", civil) + jiff::SignedDuration::from_millis(millis)
        },
    },
    System {
        name: "HPC",
        has_level: false,
        yearless: false,
        time: |r| Timestamp::from_second(r.get("Time").parse().expect("HPC epoch")).expect("HPC time"),
    },
    System {
        name: "Mac",
        has_level: false,
        yearless: true,
        time: |r| syslog_time(r.get("Month"), r.get("Date"), r.get("Time")),
    },
    System {
        name: "OpenStack",
        has_level: true,
        yearless: false,
        time: |r| utc("%Y-%m-%d %H:%M:%S%.f", &format!("{} {}", r.get("Date"), r.get("Time"))),
    },
    System {
        name: "Proxifier",
        has_level: false,
        yearless: true,
        // `10.30 16:49:06`: month, day, no year.
        time: |r| utc("%Y %m.%d %H:%M:%S", &format!("{SYSLOG_YEAR} {}", r.get("Time"))),
    },
    System {
        name: "Thunderbird",
        has_level: false,
        yearless: false,
        time: |r| Timestamp::from_second(r.get("Timestamp").parse().expect("Thunderbird epoch")).expect("time"),
    },
    System {
        name: "Windows",
        has_level: true,
        yearless: false,
        time: |r| utc("%Y-%m-%d %H:%M:%S", &format!("{} {}", r.get("Date"), r.get("Time"))),
    },
];

/// Hadoop and Zookeeper: `Date` = `2015-10-18`, `Time` = `18:01:47,978`.
fn log4j_time(r: &Row) -> Timestamp {
    let time = r.get("Time").replace(',', ".");
    utc("%Y-%m-%d %H:%M:%S%.f", &format!("{} {time}", r.get("Date")))
}

/// The level a CSV `Level` value names, with the mapping the parser documents.
fn csv_level(value: &str) -> Option<Level> {
    Some(match value.to_ascii_lowercase().as_str() {
        "error" | "e" | "err" | "fatal" | "crit" | "critical" | "alert" | "emerg" | "emergency" | "severe"
        | "failure" | "panic" => Level::Error,
        "warn" | "warning" | "w" => Level::Warn,
        "info" | "notice" | "informational" | "i" => Level::Info,
        "debug" | "d" => Level::Debug,
        "trace" | "v" => Level::Trace,
        _ => return None,
    })
}

struct Score {
    lines: usize,
    level_ok: Option<usize>,
    /// Lines given any level, to show what files without a level column get.
    with_level: usize,
    time_ok: usize,
    /// Lines whose time detection says where the time is written, with the
    /// `Content` all after it.
    head_ok: usize,
}

fn percent(ok: usize, all: usize) -> f64 {
    100.0 * ok as f64 / all as f64
}

fn score(dir: &Path, system: &System) -> Score {
    let log_path = dir.join(format!("{}_2k.log", system.name));
    let csv_path = dir.join(format!("{}_2k.log_structured.csv", system.name));
    let log = std::fs::read_to_string(&log_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", log_path.display()));
    let mut reader =
        csv::Reader::from_path(&csv_path).unwrap_or_else(|e| panic!("cannot open {}: {e}", csv_path.display()));
    let headers = reader.headers().expect("CSV header").clone();
    let records: Vec<StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("bad CSV {}: {e}", csv_path.display()));
    // `lines()` also drops the `\r` of the files' CRLF line ends.
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        records.len(),
        "{}: log lines and CSV rows differ in number",
        system.name
    );

    // Only the year-less formats need a reference in their year; the others
    // are read as shipped now, years after they were written.
    let reference_year = if system.yearless { SYSLOG_YEAR } else { 2026 };
    let reference = jiff::civil::date(reference_year, 12, 31)
        .at(12, 0, 0, 0)
        .to_zoned(TimeZone::UTC)
        .expect("reference")
        .timestamp();
    let mut level_ok = 0;
    let mut with_level = 0;
    let mut time_ok = 0;
    let mut head_ok = 0;
    let mut shown = 0;
    let rules = lookout_shared::parse::LineRules::default();
    for (line, record) in lines.iter().zip(&records) {
        let row = Row {
            headers: &headers,
            record,
        };
        let expected_time = (system.time)(&row);
        let got_time = parse_timestamp(line, reference, &TimeZone::UTC);
        let time_good = got_time == Some(expected_time);
        time_ok += usize::from(time_good);
        let got_level = detect_level(line);
        with_level += usize::from(got_level.is_some());
        let content = row.get("Content");
        let span = rules.detect(line, reference).time_span;
        let head_good = span
            .clone()
            .is_some_and(|span| line.get(span.end..).is_some_and(|rest| rest.contains(content.trim())));
        head_ok += usize::from(head_good);
        if !head_good && shown < 3 {
            shown += 1;
            eprintln!("{} head: {line:?} time at {span:?}", system.name);
        }
        let mut level_good = true;
        if system.has_level {
            let expected = csv_level(row.get("Level"));
            assert!(
                expected.is_some(),
                "{}: CSV level {:?} is not a level word",
                system.name,
                row.get("Level")
            );
            level_good = got_level == expected;
            level_ok += usize::from(level_good);
        }
        if !(time_good && level_good) && shown < 3 {
            shown += 1;
            eprintln!(
                "{} mismatch: {line:?}\n  time {got_time:?} expected {expected_time}\n  level {got_level:?}",
                system.name,
            );
        }
    }
    Score {
        lines: lines.len(),
        level_ok: system.has_level.then_some(level_ok),
        with_level,
        time_ok,
        head_ok,
    }
}

#[test]
fn loghub_samples_are_parsed_as_the_structured_csv_says() {
    let dir = PathBuf::from(DATA);
    assert!(
        dir.is_dir(),
        "Loghub data folder {} is missing from the checkout (testdata/loghub)",
        dir.display()
    );

    let mut failures = Vec::new();
    println!(
        "{:<10} {:>6} {:>8} {:>8} {:>10} {:>8}",
        "file", "lines", "level %", "time %", "has level", "head %"
    );
    for system in SYSTEMS {
        let s = score(&dir, system);
        let level = s
            .level_ok
            .map_or("n/a".to_owned(), |ok| format!("{:.2}", percent(ok, s.lines)));
        println!(
            "{:<10} {:>6} {:>8} {:>8.2} {:>10} {:>8.2}",
            system.name,
            s.lines,
            level,
            percent(s.time_ok, s.lines),
            s.with_level,
            percent(s.head_ok, s.lines)
        );
        if (s.head_ok as f64) < REQUIRED * s.lines as f64 {
            failures.push(format!(
                "{}: the message begins after the time on {}/{} lines",
                system.name, s.head_ok, s.lines
            ));
        }
        if let Some(ok) = s.level_ok
            && (ok as f64) < REQUIRED * s.lines as f64
        {
            failures.push(format!("{}: level agrees on {ok}/{} lines", system.name, s.lines));
        }
        if (s.time_ok as f64) < REQUIRED * s.lines as f64 {
            failures.push(format!(
                "{}: time agrees on {}/{} lines",
                system.name, s.time_ok, s.lines
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "below {}% agreement:\n{}",
        REQUIRED * 100.0,
        failures.join("\n")
    );
}
