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

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::wire::{Layout, LineFormat};
use fields::FieldValue;

pub mod fields;
mod level;
mod timestamp;

#[cfg(test)]
mod tests;

/// A record's severity, normalised from whatever the format calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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

impl Level {
    /// The level of a syslog severity (the journal's `PRIORITY`, a `<PRI>`'s
    /// low three bits): 0–3 error, 4 warn, 5–6 info, 7 debug.
    pub fn from_syslog_severity(severity: u8) -> Option<Level> {
        match severity {
            0..=3 => Some(Level::Error),
            4 => Some(Level::Warn),
            5 | 6 => Some(Level::Info),
            7 => Some(Level::Debug),
            _ => None,
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

/// The level a field's value names: a level word (`warning`, `ERR`), a
/// letter (`E`) or the number of a numeric scale (syslog's 0–7, pino's 10–60).
/// For protocols that state a level as text (a bulk document's `log.level`,
/// a Loki label).
pub fn level_from_value(value: &str) -> Option<Level> {
    level::from_value(value)
}

/// The time a log line states, if it carries one in a known layout.
/// `reference` (the time the line was read) supplies what the line leaves
/// out, such as the year of a syslog timestamp; `zone` is the source's zone,
/// for a time that states none.
///
/// A year-less time (syslog `Jun 14 15:16:01`, klog, logcat) gets the year
/// of `reference`, or the year before if that would put it more than a day
/// after `reference` (a December line read in January). Never a time before
/// 1990: such a value is a misread number.
pub fn parse_timestamp(line: &str, reference: jiff::Timestamp, zone: &TimeZone) -> Option<jiff::Timestamp> {
    timestamp::parse(line, &timestamp::Context::new(reference, zone))
}

/// What detection found in one line.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    /// The time the line states, if any.
    pub timestamp: Option<Timestamp>,
    /// The level the line states, if any.
    pub level: Option<Level>,
    /// Where the line's time is written (bytes), when it starts within the
    /// first 64 bytes (after a syslog priority or a `[`): the rest of the
    /// line, before and after, is the message proper. `None` for a time
    /// under a key, or none.
    pub time_span: Option<std::ops::Range<usize>>,
    /// The fields extracted from the line: a JSON line's scalars (nested
    /// keys dotted), or a text line's `key=value` pairs and access-log parts;
    /// at most [`fields::MAX_FIELDS_PER_LINE`].
    pub fields: BTreeMap<String, FieldValue>,
}

/// How one source's lines are read, compiled from its [`LineFormat`]: the
/// zone for times without one, and the per-source overrides. Built once per
/// chunk; [`LineRules::detect`] runs on every line.
#[derive(Debug, Clone)]
pub struct LineRules {
    zone: TimeZone,
    /// `zone`'s offset when it has no transitions, computed once.
    fixed: Option<i32>,
    layout: Layout,
    timestamp_field: Option<String>,
    timestamp_format: Option<String>,
    level_field: Option<String>,
}

impl Default for LineRules {
    fn default() -> Self {
        LineRules {
            zone: TimeZone::UTC,
            fixed: Some(0),
            layout: Layout::Plain,
            timestamp_field: None,
            timestamp_format: None,
            level_field: None,
        }
    }
}

impl LineRules {
    /// Compiles `format`; an unknown zone name is an error naming it.
    pub fn new(format: &LineFormat) -> Result<LineRules, String> {
        let zone = match &format.timezone {
            Some(name) => zone(name)?,
            None => TimeZone::UTC,
        };
        Ok(LineRules {
            fixed: timestamp::fixed_offset(&zone),
            zone,
            layout: format.layout,
            timestamp_field: format.timestamp_field.clone(),
            timestamp_format: format.timestamp_format.clone(),
            level_field: format.level_field.clone(),
        })
    }

    /// The time, level and fields of `line`, read at `read_at`.
    ///
    /// A line that is a JSON object is parsed once: its fields are its
    /// scalars, its time and level come from the keys that carry them
    /// (`@timestamp`, `time`, `level`, `severity`, ...). Other lines give
    /// their `key=value` pairs and access-log parts, and time and level as
    /// [`parse_timestamp`] and [`detect_level`] find them. The per-source
    /// overrides come first; where they find nothing, detection takes over.
    pub fn detect(&self, line: &str, read_at: Timestamp) -> Detected {
        let ctx = timestamp::Context::with_fixed(read_at, &self.zone, self.fixed);
        let object = fields::json_object(line, self.layout);
        let field = |key: &str| match &object {
            Some(object) => fields::lookup(object, key).and_then(fields::scalar),
            None => fields::logfmt_value(line, key),
        };
        let stated = match (&self.timestamp_field, &self.timestamp_format) {
            (Some(key), format) => field(key)
                .and_then(|value| match format {
                    Some(format) => timestamp::with_format(&value, format, &ctx),
                    None => timestamp::value(&value, &ctx),
                })
                .map(|t| (t, None)),
            (None, Some(format)) => {
                timestamp::with_format(line, format, &ctx).map(|t| (t, ctx.end_in(line).map(|end| 0..end)))
            }
            (None, None) => None,
        };
        let (timestamp, time_span) = stated
            .or_else(|| {
                object
                    .as_ref()
                    .and_then(|o| timestamp::from_json(o, &ctx))
                    .map(|t| (t, None))
            })
            .or_else(|| timestamp::parse_head(line, &ctx))
            .map_or((None, None), |(t, end)| (Some(t), end));
        let level = self
            .level_field
            .as_deref()
            .and_then(field)
            .and_then(|value| level::from_value(&value))
            .or_else(|| object.as_ref().and_then(level::from_json))
            .or_else(|| level::detect(line));
        let fields = match &object {
            Some(object) => fields::from_json(object),
            None => fields::from_text(line, self.layout),
        };
        Detected {
            timestamp,
            level,
            time_span,
            fields,
        }
    }
}

/// The zone of an IANA name (`Europe/Berlin`, `UTC`) from the system's zone
/// database; the error names it.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|err| format!("`{name}` is not a time zone this machine knows: {err}"))
}

/// The IANA name of this machine's zone (`/etc/localtime`, `TZ`), or `UTC`
/// when it has none: what a source without `timezone` is read in.
pub fn local_zone_name() -> String {
    TimeZone::try_system()
        .ok()
        .and_then(|tz| tz.iana_name().map(str::to_owned))
        .unwrap_or_else(|| "UTC".to_owned())
}
