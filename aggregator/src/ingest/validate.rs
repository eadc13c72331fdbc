//! Checks a parsed batch against the wire contract before anything is stored;
//! each error names the offending field by its path in the JSON.

use crate::store::schema::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use lookout_shared::parse::fields::{MAX_FIELDS_PER_LINE, MAX_NAME_BYTES, MAX_TEXT_BYTES};
use lookout_shared::wire::{IngestBatch, MetricSample, StreamChunk};
use std::collections::BTreeMap;

/// Longest host name accepted (DNS names are at most 253 bytes).
const MAX_HOST_BYTES: usize = 255;
/// Longest source path accepted (Linux `PATH_MAX`).
const MAX_SOURCE_BYTES: usize = 4096;
/// Longest label key accepted.
const MAX_LABEL_KEY_BYTES: usize = 256;
/// Longest label value accepted.
const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// Widest byte range one chunk may claim. An agent's chunk covers what it
/// read between two hand-overs (a few MiB at most, also inside a giant line
/// it skips); a wider claim would mark bytes held that nobody sent.
const MAX_CHUNK_SPAN: u64 = 1 << 30;
/// Longest metric name accepted.
const MAX_METRIC_NAME_CHARS: usize = 128;
/// Most labels one sample may carry: a series is identified by all of them.
const MAX_METRIC_LABELS: usize = 32;
/// Most samples in one batch, so that one batch's transaction stays short
/// (an agent sends a few dozen per interval).
const MAX_SAMPLES_PER_BATCH: usize = 100_000;
/// The earliest sample time accepted, 2000-01-01T00:00:00Z. Anything earlier
/// is a broken clock or seconds sent as milliseconds.
const MIN_SAMPLE_TIME_MS: i64 = 946_684_800_000;
/// How far ahead of the aggregator's clock a sample may be: clock skew is
/// tolerated, a sample from next week would pose as the latest value for a week.
const MAX_SAMPLE_AHEAD_MS: i64 = 24 * 3600 * 1000;

/// `Ok` when `batch` may be stored, else what is wrong with it. `now_ms` is
/// the aggregator's clock, which bounds sample times.
pub fn validate(batch: &IngestBatch, now_ms: i64) -> Result<(), String> {
    if batch.host.trim().is_empty() {
        return Err("host: must not be empty".into());
    }
    if batch.host.len() > MAX_HOST_BYTES {
        return Err(format!("host: longer than {MAX_HOST_BYTES} bytes"));
    }
    for (i, chunk) in batch.streams.iter().enumerate() {
        validate_chunk(chunk).map_err(|err| format!("streams[{i}].{err}"))?;
    }
    if batch.metrics.len() > MAX_SAMPLES_PER_BATCH {
        return Err(format!(
            "metrics: {} samples, more than {MAX_SAMPLES_PER_BATCH}; send smaller batches",
            batch.metrics.len()
        ));
    }
    for (i, sample) in batch.metrics.iter().enumerate() {
        validate_sample(sample, now_ms).map_err(|err| format!("metrics[{i}].{err}"))?;
    }
    Ok(())
}

/// `Ok` for a metric name of 1 to 128 characters from `[a-z0-9_.]`, else why not.
pub fn check_metric_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_METRIC_NAME_CHARS {
        return Err(format!("{name:?} must have 1 to {MAX_METRIC_NAME_CHARS} characters"));
    }
    if !name
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.'))
    {
        return Err(format!(
            "{name:?} may contain only lowercase letters, digits, `_` and `.` (such as `cpu.usage_percent`)"
        ));
    }
    Ok(())
}

fn validate_sample(sample: &MetricSample, now_ms: i64) -> Result<(), String> {
    check_metric_name(&sample.name).map_err(|err| format!("name: {err}"))?;
    if sample.labels.len() > MAX_METRIC_LABELS {
        return Err(format!(
            "labels: {} labels, more than {MAX_METRIC_LABELS}",
            sample.labels.len()
        ));
    }
    for (key, value) in &sample.labels {
        if key.is_empty() || key.len() > MAX_LABEL_KEY_BYTES {
            return Err(format!(
                "labels: key {key:?} must have 1 to {MAX_LABEL_KEY_BYTES} bytes"
            ));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(format!("labels.{key}: longer than {MAX_LABEL_VALUE_BYTES} bytes"));
        }
    }
    let latest = now_ms.saturating_add(MAX_SAMPLE_AHEAD_MS);
    if !(MIN_SAMPLE_TIME_MS..=latest).contains(&sample.time_ms) {
        return Err(format!(
            "time_ms: {} is not a Unix time in milliseconds between 2000-01-01 and a day from now ({latest})",
            sample.time_ms
        ));
    }
    if !sample.value.is_finite() {
        return Err(format!("value: {} is not a finite number", sample.value));
    }
    Ok(())
}

/// Longest zone name, field name or time format a chunk may carry.
const MAX_FORMAT_SETTING_BYTES: usize = 256;

fn validate_chunk(chunk: &StreamChunk) -> Result<(), String> {
    let stream = &chunk.stream;
    let is_stream_id = stream.len() == 16 && stream.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_stream_id {
        return Err(format!(
            "stream: {stream:?} is not a stream id (16 lowercase hex digits)"
        ));
    }
    if chunk.source.is_empty() {
        return Err("source: must not be empty".into());
    }
    if chunk.source.len() > MAX_SOURCE_BYTES {
        return Err(format!("source: longer than {MAX_SOURCE_BYTES} bytes"));
    }
    if chunk.start > chunk.end {
        return Err(format!("start: {} is after end {}", chunk.start, chunk.end));
    }
    if chunk.end - chunk.start > MAX_CHUNK_SPAN {
        return Err(format!(
            "end: the chunk claims {} bytes, more than {MAX_CHUNK_SPAN}; send what was read in smaller chunks",
            chunk.end - chunk.start
        ));
    }
    for (key, value) in &chunk.labels {
        if key.is_empty() || key.len() > MAX_LABEL_KEY_BYTES {
            return Err(format!(
                "labels: key {key:?} must have 1 to {MAX_LABEL_KEY_BYTES} bytes"
            ));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(format!("labels.{key}: longer than {MAX_LABEL_VALUE_BYTES} bytes"));
        }
    }
    check_fields(&chunk.fields).map_err(|err| format!("fields{err}"))?;
    let format = &chunk.format;
    let settings = [
        ("timezone", &format.timezone),
        ("timestamp_field", &format.timestamp_field),
        ("timestamp_format", &format.timestamp_format),
        ("level_field", &format.level_field),
    ];
    for (key, value) in settings {
        if value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > MAX_FORMAT_SETTING_BYTES)
        {
            return Err(format!("format.{key}: must have 1 to {MAX_FORMAT_SETTING_BYTES} bytes"));
        }
    }
    let mut previous: Option<u64> = None;
    for (j, record) in chunk.records.iter().enumerate() {
        let offset = record.offset;
        if offset < chunk.start || offset >= chunk.end {
            return Err(format!(
                "records[{j}].offset: {offset} is outside the chunk's range [{}, {})",
                chunk.start, chunk.end
            ));
        }
        if let Some(previous) = previous.filter(|&p| p >= offset) {
            return Err(format!(
                "records[{j}].offset: {offset} does not follow the previous record's offset {previous} (records must be in file order)"
            ));
        }
        previous = Some(offset);
        if !(MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&record.read_at_ms) {
            return Err(format!(
                "records[{j}].read_at_ms: {} is not a Unix time in milliseconds between the years 1678 and 2262",
                record.read_at_ms
            ));
        }
        check_fields(&record.fields).map_err(|err| format!("records[{j}].fields{err}"))?;
    }
    Ok(())
}

/// Fields a source states (a chunk's or a record's) are bounded as extracted
/// ones are: at most [`MAX_FIELDS_PER_LINE`] names of 1 to [`MAX_NAME_BYTES`]
/// bytes, values of at most [`MAX_TEXT_BYTES`]. The error continues the
/// field's path (`: …` or `.<name>: …`).
fn check_fields(fields: &BTreeMap<String, String>) -> Result<(), String> {
    if fields.len() > MAX_FIELDS_PER_LINE {
        return Err(format!(": {} fields, more than {MAX_FIELDS_PER_LINE}", fields.len()));
    }
    for (name, value) in fields {
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(format!(": name {name:?} must have 1 to {MAX_NAME_BYTES} bytes"));
        }
        if value.len() > MAX_TEXT_BYTES {
            return Err(format!(".{name}: longer than {MAX_TEXT_BYTES} bytes"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_shared::wire::WireRecord;

    const NOW: i64 = 1_700_000_000_000;

    fn batch() -> IngestBatch {
        IngestBatch {
            host: "web-1".into(),
            streams: vec![StreamChunk {
                stream: "0123456789abcdef".into(),
                source: "/var/log/a.log".into(),
                start: 10,
                end: 30,
                labels: Default::default(),
                format: Default::default(),
                fields: Default::default(),
                records: [10, 20]
                    .into_iter()
                    .map(|offset| WireRecord {
                        offset,
                        read_at_ms: 1_700_000_000_000,
                        message: "m".into(),
                        ..Default::default()
                    })
                    .collect(),
            }],
            metrics: vec![MetricSample {
                name: "fs.used_percent".into(),
                labels: [("mount".to_owned(), "/".to_owned())].into(),
                time_ms: NOW,
                value: 12.5,
            }],
        }
    }

    #[test]
    fn a_good_batch_passes() {
        validate(&batch(), NOW).unwrap();
        let mut metrics_only = batch();
        metrics_only.streams.clear();
        validate(&metrics_only, NOW).unwrap();
    }

    /// Spoils one field of a good batch.
    type Breaker = fn(&mut IngestBatch);

    #[test]
    fn each_error_names_its_field() {
        let cases: Vec<(Breaker, &str)> = vec![
            (|b| b.host.clear(), "host: must not be empty"),
            (
                |b| b.streams[0].stream = "0123456789ABCDEF".into(),
                "streams[0].stream: ",
            ),
            (|b| b.streams[0].source.clear(), "streams[0].source: "),
            (
                |b| {
                    b.streams[0].records[0].fields.insert("unit".into(), "x".repeat(513));
                },
                "streams[0].records[0].fields.unit: longer than 512 bytes",
            ),
            (
                |b| {
                    b.streams[0].fields.insert(String::new(), "x".into());
                },
                "streams[0].fields: name \"\" must have 1 to 128 bytes",
            ),
            (|b| b.streams[0].start = 31, "streams[0].start: 31 is after end 30"),
            (
                |b| b.streams[0].records[1].offset = 30,
                "streams[0].records[1].offset: 30 is outside",
            ),
            (
                |b| b.streams[0].records[1].offset = 10,
                "streams[0].records[1].offset: 10 does not follow",
            ),
            (
                |b| b.streams[0].records[0].read_at_ms = i64::MAX,
                "streams[0].records[0].read_at_ms: ",
            ),
            (
                |b| {
                    b.streams[0].labels.insert(String::new(), "v".into());
                },
                "streams[0].labels: key",
            ),
            (
                |b| b.metrics[0].name = "CPU".into(),
                "metrics[0].name: \"CPU\" may contain only",
            ),
            (|b| b.metrics[0].name = "x".repeat(129), "metrics[0].name: "),
            (|b| b.metrics[0].name.clear(), "metrics[0].name: "),
            (
                |b| {
                    b.metrics[0].labels.insert(String::new(), "v".into());
                },
                "metrics[0].labels: key",
            ),
            (
                |b| {
                    b.metrics[0].labels = (0..33).map(|i| (format!("k{i}"), "v".into())).collect();
                },
                "metrics[0].labels: 33 labels",
            ),
            (
                |b| b.metrics[0].time_ms = 1_700_000_000,
                "metrics[0].time_ms: 1700000000 is not",
            ),
            (|b| b.metrics[0].time_ms = NOW + 2 * 86_400_000, "metrics[0].time_ms: "),
            (
                |b| b.metrics[0].value = f64::NAN,
                "metrics[0].value: NaN is not a finite number",
            ),
            (
                |b| b.metrics[0].value = f64::NEG_INFINITY,
                "metrics[0].value: -inf is not",
            ),
        ];
        for (break_it, expected) in cases {
            let mut b = batch();
            break_it(&mut b);
            let err = validate(&b, NOW).unwrap_err();
            assert!(err.starts_with(expected), "{err:?} should start with {expected:?}");
        }
    }
}
