//! The ingest wire format: one [`IngestBatch`] per `POST /api/v1/ingest`, JSON,
//! compressed with zstd (or gzip) and marked with `Content-Encoding`.
//!
//! A batch carries, per file the agent reads, a [`StreamChunk`]: the byte range
//! `[start, end)` of that file the chunk covers and the records read from it.
//! Chunks of one stream tile the file without gaps, so the aggregator can tell
//! exactly which bytes it already holds, and the agent's checkpoint can advance
//! to `end` once the chunk is acknowledged.

use crate::parse::Level;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Path of the ingest endpoint on the aggregator.
pub const INGEST_PATH: &str = "/api/v1/ingest";

/// One request body of `POST /api/v1/ingest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    /// The host the agent runs on (config `host`, default the hostname).
    pub host: String,
    /// Log records, grouped by the file (stream) they were read from.
    #[serde(default)]
    pub streams: Vec<StreamChunk>,
    /// Host metric samples (names as in docs/SPEC.md: `cpu.usage_percent`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSample>,
}

/// One sample of one metric series of the batch's host. A sample is
/// identified by (host, name, labels, time), so a re-sent sample is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSample {
    /// Metric name from docs/SPEC.md, e.g. `fs.used_percent`.
    pub name: String,
    /// Series labels besides the host, e.g. `{"mount": "/"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When it was measured, Unix milliseconds.
    pub time_ms: i64,
    /// The value (finite).
    pub value: f64,
}

/// A sample's value as the agent sends it: to two decimals. A hundredth of
/// a percent, of a load average or of a byte per second is below what any
/// of them measures, and a value with few decimals is what the aggregator
/// stores in a byte or two (its `metricstore::chunk` keeps decimals as
/// integers). Values too large to have decimals in an `f64` are unchanged.
pub fn round_value(value: f64) -> f64 {
    if value.abs() >= 1e13 {
        return value;
    }
    // `+ 0.0` turns a negative zero into zero, which a decimal keeps.
    (value * 100.0).round() / 100.0 + 0.0
}

/// A contiguous piece of one file: the records read from bytes `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamChunk {
    /// Stable identity of the file (see [`stream_id`]): 16 lowercase hex digits.
    pub stream: String,
    /// The file's path when it was read (it may have been rotated since).
    pub source: String,
    /// First byte of the file this chunk covers.
    pub start: u64,
    /// One past the last byte this chunk covers. Bytes in the range that carry
    /// no record (blank lines) are covered all the same.
    pub end: u64,
    /// Labels from the source's configuration, copied onto every record.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How the source's lines are read (its zone and per-source overrides);
    /// the aggregator detects each record's time and level with it.
    #[serde(default, skip_serializing_if = "LineFormat::is_default")]
    pub format: LineFormat,
    /// Fields every record of the chunk carries, known from where the
    /// source read it (a container's id, Kubernetes namespace, pod and
    /// container from the log's path); text, typed like extracted fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The records, in file order; each `offset` lies in `[start, end)`.
    pub records: Vec<WireRecord>,
}

/// How one source's lines are read: the source's settings in `agent.toml`,
/// sent with each chunk because the aggregator is where lines are parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineFormat {
    /// IANA zone (`Europe/Berlin`) for times that state none; UTC when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// How lines are laid out.
    #[serde(default, skip_serializing_if = "Layout::is_plain")]
    pub layout: Layout,
    /// The key holding the event time, for JSON or logfmt lines (dotted for
    /// nested JSON keys: `event.created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_field: Option<String>,
    /// The time's layout in `strftime` directives (`%d/%m/%Y %H:%M:%S`),
    /// for the key's value or else the start of the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_format: Option<String>,
    /// The key holding the level, for JSON or logfmt lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_field: Option<String>,
}

impl LineFormat {
    fn is_default(&self) -> bool {
        *self == LineFormat::default()
    }
}

/// How a source's lines are laid out (`format` in `agent.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Any text: time and level are found where formats put them, and a
    /// line that is a JSON object is read as one.
    #[default]
    Plain,
    /// Each line is a JSON object.
    Json,
    /// Each line is `key=value` pairs.
    Logfmt,
}

impl Layout {
    fn is_plain(&self) -> bool {
        *self == Layout::Plain
    }
}

/// One log record (a line, or several joined by multiline rules).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRecord {
    /// Byte offset of the record's first byte in its file.
    pub offset: u64,
    /// When the agent read it, Unix milliseconds: the timestamp of last resort.
    pub read_at_ms: i64,
    /// The text, invalid UTF-8 replaced by U+FFFD, without the line terminator.
    pub message: String,
    /// Set when the record was longer than the agent's maximum record size and
    /// `message` holds only its beginning.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// The event time the source states outside the text (the journal's
    /// `__REALTIME_TIMESTAMP`, a container runtime's wrapper time), Unix
    /// milliseconds; it wins over a time found in `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<i64>,
    /// The level the source states outside the text (the journal's
    /// `PRIORITY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Fields the source states outside the text (the journal's unit,
    /// identifier and PID; a container line's `log.iostream`); text, typed
    /// like extracted fields, and winning over those of the same name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// What the aggregator answers to an accepted batch, once it is durable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestResponse {
    /// Records newly stored.
    pub accepted: u64,
    /// Records dropped because the aggregator already held them (re-sent ids).
    pub duplicates: u64,
}

/// The body of every 4xx/5xx answer of the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong, for a person to read.
    pub error: String,
}

/// The stable identity of one file incarnation on one host.
///
/// Derived from the host, the inode, a fingerprint of the file's first line and
/// a generation that counts truncations of the same content: the same file gets
/// the same id after a rename or an agent restart, while a new file on a reused
/// inode, or a truncated and rewritten file, gets a new one.
pub fn stream_id(host: &str, inode: u64, fingerprint: u64, generation: u32) -> String {
    let mut key = Vec::with_capacity(host.len() + 21);
    key.extend_from_slice(host.as_bytes());
    key.push(0);
    key.extend_from_slice(&inode.to_le_bytes());
    key.extend_from_slice(&fingerprint.to_le_bytes());
    key.extend_from_slice(&generation.to_le_bytes());
    format!("{:016x}", content_hash(&key))
}

/// The stable identity of one systemd journal sequence (the `s=` of its
/// cursors) read on one host; its offsets are the entries' sequence numbers.
pub fn journal_stream_id(host: &str, seqnum_id: &str) -> String {
    let key = format!("journald\0{host}\0{seqnum_id}");
    format!("{:016x}", content_hash(key.as_bytes()))
}

/// The hash behind stream ids and file fingerprints: XXH3-64, whose value is
/// fixed by its specification, so ids stay the same across builds and Rust
/// versions (std's hasher makes no such promise).
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The record id of docs/SPEC.md: `<stream>-<offset>`, offset in decimal.
pub fn record_id(stream: &str, offset: u64) -> String {
    format!("{stream}-{offset}")
}

/// Splits a record id back into stream and offset; `None` if it is not one.
pub fn parse_record_id(id: &str) -> Option<(&str, u64)> {
    let (stream, offset) = id.split_once('-')?;
    let valid_stream = stream.len() == 16 && stream.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_stream {
        return None;
    }
    Some((stream, offset.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_out_with_two_decimals() {
        assert_eq!(round_value(100.0 * 90.0 / 140.0), 64.29);
        assert_eq!(round_value(-0.004).to_bits(), 0.0f64.to_bits());
        assert_eq!(round_value(1_250_000.123), 1_250_000.12);
        assert_eq!(round_value(3.5e15 + 1.0), 3.5e15 + 1.0);
        // What comes out is exactly a two-decimal number.
        for value in [0.1 + 0.2, 37.125, 99.999, 12_345.678] {
            let rounded = round_value(value);
            assert_eq!(((rounded * 100.0).round() / 100.0).to_bits(), rounded.to_bits());
        }
    }

    #[test]
    fn stream_id_is_stable_and_distinguishes_its_inputs() {
        let id = stream_id("web-1", 42, 7, 0);
        assert_eq!(id, stream_id("web-1", 42, 7, 0));
        assert_eq!(id.len(), 16);
        assert_ne!(id, stream_id("web-2", 42, 7, 0));
        assert_ne!(id, stream_id("web-1", 43, 7, 0));
        assert_ne!(id, stream_id("web-1", 42, 8, 0));
        assert_ne!(id, stream_id("web-1", 42, 7, 1));
    }

    #[test]
    fn record_id_round_trips_and_rejects_garbage() {
        let stream = stream_id("h", 1, 2, 0);
        let id = record_id(&stream, 12345);
        assert_eq!(parse_record_id(&id), Some((stream.as_str(), 12345)));
        assert_eq!(parse_record_id("nothex0000000000-1"), None);
        assert_eq!(parse_record_id("abc-1"), None);
        assert_eq!(parse_record_id(&format!("{stream}-x")), None);
        assert_eq!(parse_record_id(""), None);
    }

    #[test]
    fn batch_json_round_trips() {
        let batch = IngestBatch {
            host: "web-1".into(),
            streams: vec![StreamChunk {
                stream: stream_id("web-1", 1, 2, 0),
                source: "/var/log/app.log".into(),
                start: 0,
                end: 12,
                labels: BTreeMap::new(),
                format: LineFormat {
                    timezone: Some("Europe/Berlin".into()),
                    layout: Layout::Json,
                    timestamp_field: Some("ts".into()),
                    timestamp_format: None,
                    level_field: Some("sev".into()),
                },
                fields: BTreeMap::from([("container.id".into(), "abc".into())]),
                records: vec![WireRecord {
                    offset: 0,
                    read_at_ms: 1_700_000_000_000,
                    message: "hello \u{fffd}".into(),
                    truncated: false,
                    time_ms: Some(1_699_999_999_123),
                    level: Some(Level::Warn),
                    fields: BTreeMap::from([("unit".into(), "cron.service".into())]),
                }],
            }],
            metrics: vec![MetricSample {
                name: "fs.used_percent".into(),
                labels: BTreeMap::from([("mount".into(), "/".into())]),
                time_ms: 1_700_000_000_000,
                value: 42.5,
            }],
        };
        let json = serde_json::to_string(&batch).unwrap();
        assert!(!json.contains("truncated"), "false flags are left out: {json}");
        assert_eq!(serde_json::from_str::<IngestBatch>(&json).unwrap(), batch);
    }
}
