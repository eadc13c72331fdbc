//! Level and timestamp detection for common log formats.
//!
//! The aggregator runs both functions on every ingested line to fill the
//! `level` and `timestamp` fields that searches and alert rules filter on, so
//! they work on the line's bytes without allocating, look only at the part of
//! the line where formats put these fields, and return `None` rather than
//! guess. Neither panics on any input.
//!
//! Formats covered (see the submodules for the exact rules):
//! - syslog (RFC 3164 `Jun 14 15:16:01`, RFC 5424, `<PRI>`), Apache and nginx
//!   error and access logs, log4j / logback / Python logging, HDFS, Hadoop,
//!   Spark, Zookeeper, BGL, RFC 3339 / ISO 8601, Go glog/klog, JSON lines and
//!   logfmt (`level`, `time` keys).
//! - A time that states no zone is taken as UTC.

use std::fmt;

mod level;
mod timestamp;

/// A record's severity, normalised from whatever the format calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// error, err, fatal, crit, critical, alert, emerg, severe, failure
    Error,
    /// warn, warning
    Warn,
    /// info, notice
    Info,
    /// debug
    Debug,
    /// trace
    Trace,
}

impl Level {
    /// The name stored and searched: `error`, `warn`, `info`, `debug`, `trace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level a log line states, if it states one.
///
/// Only the start of the line is looked at (the first 160 bytes; 1 KiB for a
/// JSON object's `level` key), and a level word counts only where formats put
/// a level: uppercase (`INFO`, `WARN`), bracketed (`[error]`), as the label of
/// a message (`sshd[1]: error: ...`), right after a timestamp, or as the value
/// of a `level`/`severity`/`lvl` key; the first such word wins. So a line at
/// `INFO` whose message mentions "error" is [`Level::Info`], and a line that
/// states no level is `None` even if its message says "failure". Go's klog
/// `E0102 ...` and a syslog `<PRI>` (when no word is found) also give levels.
pub fn detect_level(line: &str) -> Option<Level> {
    level::detect(line)
}

/// The time a log line states, if it starts with (or carries) a known format.
/// `reference` (the time the line was read) supplies what the line leaves out,
/// such as the year of a syslog timestamp.
///
/// A year-less time (syslog `Jun 14 15:16:01`, klog) gets the year of
/// `reference`, or the year before if that would put it more than a day after
/// `reference` (a December line read in January). A time that states no zone
/// is taken as UTC: the line does not say which zone it means.
pub fn parse_timestamp(line: &str, reference: jiff::Timestamp) -> Option<jiff::Timestamp> {
    timestamp::parse(line, reference)
}

#[cfg(test)]
mod tests;
