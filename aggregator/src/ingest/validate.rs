//! Checks a parsed batch against the wire contract before anything is stored;
//! each error names the offending field by its path in the JSON.

use crate::store::schema::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use lookout_shared::wire::{IngestBatch, StreamChunk};

/// Longest host name accepted (DNS names are at most 253 bytes).
const MAX_HOST_BYTES: usize = 255;
/// Longest source path accepted (Linux `PATH_MAX`).
const MAX_SOURCE_BYTES: usize = 4096;
/// Longest label key accepted.
const MAX_LABEL_KEY_BYTES: usize = 256;
/// Longest label value accepted.
const MAX_LABEL_VALUE_BYTES: usize = 1024;

/// `Ok` when `batch` may be stored, else what is wrong with it.
pub fn validate(batch: &IngestBatch) -> Result<(), String> {
    if batch.host.trim().is_empty() {
        return Err("host: must not be empty".into());
    }
    if batch.host.len() > MAX_HOST_BYTES {
        return Err(format!("host: longer than {MAX_HOST_BYTES} bytes"));
    }
    for (i, chunk) in batch.streams.iter().enumerate() {
        validate_chunk(chunk).map_err(|err| format!("streams[{i}].{err}"))?;
    }
    Ok(())
}

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
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_shared::wire::WireRecord;

    fn batch() -> IngestBatch {
        IngestBatch {
            host: "web-1".into(),
            streams: vec![StreamChunk {
                stream: "0123456789abcdef".into(),
                source: "/var/log/a.log".into(),
                start: 10,
                end: 30,
                labels: Default::default(),
                records: [10, 20]
                    .into_iter()
                    .map(|offset| WireRecord {
                        offset,
                        read_at_ms: 1_700_000_000_000,
                        message: "m".into(),
                        truncated: false,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn a_good_batch_passes() {
        validate(&batch()).unwrap();
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
        ];
        for (break_it, expected) in cases {
            let mut b = batch();
            break_it(&mut b);
            let err = validate(&b).unwrap_err();
            assert!(err.starts_with(expected), "{err:?} should start with {expected:?}");
        }
    }
}
