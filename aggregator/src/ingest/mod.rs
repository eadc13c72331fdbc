//! Turns an ingest request body into documents for the log store and rows for
//! the metric store: decode ([`decode`]), check ([`validate`]), then enrich
//! each record with its level, event time and id, and give each sample its
//! canonical label text.
//!
//! Everything here is CPU work on one request and touches no shared state, so
//! handlers run it in parallel off the async runtime; only the dedup decision
//! and the commit are left to the single writer.

pub mod decode;
pub mod field_names;
pub mod patterns;
pub mod validate;

use crate::metricstore::schema::canonical_labels;
use crate::metricstore::writer::{MetricBatch, PreparedSample};
use crate::store::schema::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use crate::store::writer::{PreparedBatch, PreparedChunk, PreparedRecord};
use decode::ContentEncoding;
use field_names::FieldNames;
use lookout_shared::parse::fields::{FieldValue, typed};
use lookout_shared::parse::{Level, LineRules};
use lookout_shared::time::now_ms;
use lookout_shared::wire::{IngestBatch, LineFormat, WireRecord};
use patterns::PatternBook;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

/// Why a body was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// `Content-Encoding` other than zstd, gzip or none (415).
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// Over a size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The body does not decompress (400).
    #[error("{0}")]
    BadEncoding(String),
    /// Not JSON, or not an ingest batch (400).
    #[error("{0}")]
    BadBatch(String),
    /// The token may not send as the batch's host (403).
    #[error("{0}")]
    Forbidden(String),
}

/// A body turned into documents and samples, and its decompressed size.
pub struct Prepared {
    /// Ready for the log writer.
    pub batch: PreparedBatch,
    /// Ready for the metric writer (the host, and no samples for a logs-only batch).
    pub metrics: MetricBatch,
    /// Bytes after decompression.
    pub decompressed_bytes: u64,
    /// Extracted fields dropped by the bound on names per source.
    pub fields_dropped: u64,
}

/// Decodes, validates and enriches one request body.
pub fn prepare(
    body: &[u8],
    encoding: ContentEncoding,
    max_decompressed: u64,
    field_names: &FieldNames,
    patterns: &PatternBook,
    hosts: Option<&[String]>,
) -> Result<Prepared, IngestError> {
    let json = decode::decompress(body, encoding, max_decompressed)?;
    let batch = decode::parse(&json)?;
    validate::validate(&batch, now_ms()).map_err(|err| IngestError::BadBatch(format!("invalid batch: {err}")))?;
    // Before enrichment: a refused batch leaves no trace in the patterns.
    if let Some(hosts) = hosts
        && !crate::config::host_allowed(hosts, &batch.host)
    {
        return Err(IngestError::Forbidden(format!(
            "this ingest token may send only as {}, not as `{}`",
            hosts.join(", "),
            batch.host
        )));
    }
    let metrics = samples(&batch)?;
    let (enriched, fields_dropped) = enrich(batch, field_names, patterns, true);
    Ok(Prepared {
        metrics,
        batch: enriched,
        decompressed_bytes: json.len() as u64,
        fields_dropped,
    })
}

/// Checks and enriches a batch a receiver built from what it read (syslog,
/// OTLP, bulk, Loki push) as [`prepare`] does an agent's, but without
/// exactly-once ranges (see [`PreparedChunk::dedup`]). Also returns how many
/// fields the bound on names dropped.
pub fn prepare_received(
    batch: IngestBatch,
    field_names: &FieldNames,
    patterns: &PatternBook,
) -> Result<(PreparedBatch, u64), IngestError> {
    validate::validate(&batch, now_ms()).map_err(|err| IngestError::BadBatch(format!("invalid batch: {err}")))?;
    Ok(enrich(batch, field_names, patterns, false))
}

/// Decides each record: level and event time detected from the line (the
/// time it was read when the line states none), fields extracted (within
/// the bound on names per source), its pattern (mined from the message
/// after its time, kept as the field `pattern`); the chunk's labels and
/// source go with it. Also returns how many fields the bound dropped. The
/// batch is taken whole so that each message moves into its record rather
/// than being copied.
fn enrich(batch: IngestBatch, field_names: &FieldNames, patterns: &PatternBook, dedup: bool) -> (PreparedBatch, u64) {
    let mut fields_dropped = 0;
    let mut chunks = Vec::with_capacity(batch.streams.len());
    let ingested_ms = jiff::Timestamp::now().as_millisecond();
    for chunk in batch.streams {
        let rules = line_rules(&chunk.format);
        let mut found: Vec<Found> = chunk
            .records
            .iter()
            .map(|record| {
                let mut found = detect(&rules, &record.message, record.read_at_ms);
                found.apply_stated(record, &chunk.fields);
                found
            })
            .collect();
        fields_dropped += field_names.admit(&batch.host, &chunk.source, found.iter_mut().map(|f| &mut f.fields));
        let mined: Vec<std::borrow::Cow<'_, str>> = chunk
            .records
            .iter()
            .zip(&found)
            .map(|(record, found)| without_time(&record.message, found.time_span.clone()))
            .collect();
        let mined: Vec<&str> = mined.iter().map(|text| text.as_ref()).collect();
        let times: Vec<i64> = found.iter().map(|found| found.timestamp_ms).collect();
        match patterns.assign(&chunk.source, &mined, &times, ingested_ms) {
            Ok(ids) => {
                for (found, id) in found.iter_mut().zip(ids) {
                    found.fields.insert(patterns::FIELD.to_owned(), FieldValue::Text(id));
                }
            }
            // The lines are stored all the same, without a pattern.
            Err(err) => tracing::error!(error = %err, "cannot keep the pattern state; lines stored without patterns"),
        }
        let mut time_range: Option<(i64, i64)> = None;
        let mut records = Vec::with_capacity(chunk.records.len());
        for (record, found) in chunk.records.into_iter().zip(found) {
            let timestamp_ms = found.timestamp_ms;
            time_range = Some(time_range.map_or((timestamp_ms, timestamp_ms), |(min, max)| {
                (min.min(timestamp_ms), max.max(timestamp_ms))
            }));
            records.push(PreparedRecord {
                offset: record.offset,
                timestamp_ms,
                ingested_ms,
                level: found.level,
                message: record.message,
                truncated: record.truncated,
                fields: found.fields,
            });
        }
        chunks.push(PreparedChunk {
            host: batch.host.clone(),
            stream: chunk.stream,
            source: chunk.source,
            labels: chunk.labels,
            start: chunk.start,
            end: chunk.end,
            time_range,
            records,
            dedup,
        });
    }
    (PreparedBatch { chunks }, fields_dropped)
}

/// The batch's samples with their label sets in canonical form.
fn samples(batch: &IngestBatch) -> Result<MetricBatch, IngestError> {
    let mut samples = Vec::with_capacity(batch.metrics.len());
    for (i, sample) in batch.metrics.iter().enumerate() {
        let labels = canonical_labels(&sample.labels)
            .map_err(|err| IngestError::BadBatch(format!("invalid batch: metrics[{i}].labels: {err}")))?;
        samples.push(PreparedSample {
            name: sample.name.clone(),
            labels,
            time_ms: sample.time_ms,
            value: sample.value,
        });
    }
    Ok(MetricBatch {
        host: batch.host.clone(),
        samples,
    })
}

/// The chunk's rules for reading its lines. A zone this machine's database
/// does not know (the agent checked it against its own) is read as UTC, with
/// a warning once per name, rather than refusing lines the agent would then
/// hold back forever.
fn line_rules(format: &LineFormat) -> LineRules {
    LineRules::new(format).unwrap_or_else(|err| {
        static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let name = format.timezone.clone().unwrap_or_default();
        let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.len() < 64 && warned.insert(name) {
            tracing::warn!("{err}; such lines are read as UTC");
        }
        LineRules::new(&LineFormat {
            timezone: None,
            ..format.clone()
        })
        .unwrap_or_default()
    })
}

/// What ingest keeps of a line's detection.
struct Found {
    /// The event time: the time the line states, else when it was read.
    timestamp_ms: i64,
    level: Option<Level>,
    /// Where the line's own time is written.
    time_span: Option<std::ops::Range<usize>>,
    fields: BTreeMap<String, FieldValue>,
}

impl Found {
    /// What the source stated outside the text wins over what the text
    /// says: its time (one the index can hold; a container line stamped in
    /// year 1 or 9999 is a broken clock, not a reason to refuse the batch),
    /// its fields (the chunk's, then the record's), and its level, except
    /// that a stated `info` gives way to a level the line states, because
    /// `info` is what journald gives every line a service writes to stdout.
    fn apply_stated(&mut self, record: &WireRecord, chunk_fields: &BTreeMap<String, String>) {
        if let Some(time_ms) = record
            .time_ms
            .filter(|ms| (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(ms))
        {
            self.timestamp_ms = time_ms;
        }
        self.level = match (record.level, self.level) {
            (Some(Level::Info), Some(line)) => Some(line),
            (Some(stated), _) => Some(stated),
            (None, line) => line,
        };
        for (name, value) in chunk_fields.iter().chain(&record.fields) {
            self.fields.insert(name.clone(), typed(value));
        }
        // `pattern` is the record's pattern id; a field the line names so is kept apart.
        if let Some(own) = self.fields.remove(patterns::FIELD) {
            self.fields.insert(patterns::OWN_FIELD.to_owned(), own);
        }
        self.clean_names();
    }

    /// Control characters in a name become `_`: the index joins a name's
    /// parts with `\x01` (and ends paths with `\0`), so `a\x01b` would be
    /// shown back as `a.b`. Names from text lines never hold one; a JSON
    /// key or a stated field may.
    fn clean_names(&mut self) {
        let control = |c: char| c.is_ascii_control();
        if self.fields.keys().any(|name| name.contains(control)) {
            self.fields = std::mem::take(&mut self.fields)
                .into_iter()
                .map(|(name, value)| (name.replace(control, "_"), value))
                .collect();
        }
    }
}

/// What the pattern is mined from: the message without its own time.
fn without_time(message: &str, span: Option<std::ops::Range<usize>>) -> std::borrow::Cow<'_, str> {
    let Some(span) = span else {
        return message.into();
    };
    match (message.get(..span.start), message.get(span.end..)) {
        (Some(""), Some(after)) => after.into(),
        (Some(before), Some(after)) => format!("{before}{after}").into(),
        _ => message.into(),
    }
}

/// The record's event time (the time the line states, else when it was
/// read: `read_at_ms`, validated to be in range), level and fields. A stated
/// time outside what the index holds counts as none.
fn detect(rules: &LineRules, message: &str, read_at_ms: i64) -> Found {
    let Ok(read_at) = jiff::Timestamp::from_millisecond(read_at_ms) else {
        return Found {
            timestamp_ms: read_at_ms,
            level: None,
            time_span: None,
            fields: BTreeMap::new(),
        };
    };
    let detected = rules.detect(message, read_at);
    let timestamp_ms = detected
        .timestamp
        .map(|t| t.as_millisecond())
        .filter(|ms| (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(ms))
        .unwrap_or(read_at_ms);
    Found {
        timestamp_ms,
        level: detected.level,
        time_span: detected.time_span,
        fields: detected.fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(message: &str, record: WireRecord, chunk_fields: &[(&str, &str)]) -> Found {
        let rules = LineRules::default();
        let mut found = detect(&rules, message, record.read_at_ms);
        let chunk_fields = chunk_fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        found.apply_stated(&record, &chunk_fields);
        found
    }

    #[test]
    fn what_a_source_states_wins_over_the_text() {
        let record = WireRecord {
            read_at_ms: 1_800_000_000_000,
            time_ms: Some(1_700_000_000_123),
            level: Some(Level::Warn),
            fields: BTreeMap::from([
                ("pid".to_owned(), "42".to_owned()),
                ("status".to_owned(), "x".to_owned()),
            ]),
            ..WireRecord::default()
        };
        let message = "2024-01-02T03:04:05Z ERROR status=500 user=ann";
        let found = found(message, record, &[("container.id", "abc")]);
        assert_eq!(found.timestamp_ms, 1_700_000_000_123);
        assert_eq!(found.level, Some(Level::Warn));
        assert_eq!(found.fields["pid"], FieldValue::Number(42.0));
        assert_eq!(
            found.fields["status"],
            FieldValue::Text("x".into()),
            "the source's field wins"
        );
        assert_eq!(
            found.fields["user"],
            FieldValue::Text("ann".into()),
            "extracted ones stay"
        );
        assert_eq!(found.fields["container.id"], FieldValue::Text("abc".into()));
    }

    #[test]
    fn control_characters_in_field_names_become_underscores() {
        let record = WireRecord {
            read_at_ms: 1_800_000_000_000,
            fields: BTreeMap::from([("pod\u{1}name".to_owned(), "web".to_owned())]),
            ..WireRecord::default()
        };
        let found = found("{\"a\\u0000b\": 1, \"ok\": 2}", record, &[("tab\tkey", "x")]);
        let names: Vec<&str> = found.fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["a_b", "ok", "pod_name", "tab_key"]);
    }

    #[test]
    fn a_stated_info_gives_way_to_the_level_in_the_line() {
        let info = || WireRecord {
            read_at_ms: 1_800_000_000_000,
            level: Some(Level::Info),
            ..WireRecord::default()
        };
        assert_eq!(found("ERROR disk failed", info(), &[]).level, Some(Level::Error));
        assert_eq!(found("disk is fine", info(), &[]).level, Some(Level::Info));
    }

    #[test]
    fn a_stated_time_the_index_cannot_hold_counts_as_none() {
        let record = WireRecord {
            read_at_ms: 1_800_000_000_000,
            time_ms: Some(i64::MAX),
            ..WireRecord::default()
        };
        assert_eq!(found("no time here", record, &[]).timestamp_ms, 1_800_000_000_000);
    }
}
