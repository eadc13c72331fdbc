//! Turns an ingest request body into documents for the log store and rows for
//! the metric store: decode ([`decode`]), check ([`validate`]), then enrich
//! each record with its level, event time and id, and give each sample its
//! canonical label text.
//!
//! Everything here is CPU work on one request and touches no shared state, so
//! handlers run it in parallel off the async runtime; only the dedup decision
//! and the commit are left to the single writer.

pub mod decode;
pub mod validate;

use crate::metricstore::schema::canonical_labels;
use crate::metricstore::writer::{MetricBatch, PreparedSample};
use crate::store::schema::{LogSchema, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, RecordFields, labels_value};
use crate::store::writer::{PreparedBatch, PreparedChunk, PreparedRecord};
use decode::ContentEncoding;
use lookout_shared::parse::{Level, detect_level, parse_timestamp};
use lookout_shared::time::now_ms;
use lookout_shared::wire::{IngestBatch, record_id};

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
}

/// A body turned into documents and samples, and its decompressed size.
pub struct Prepared {
    /// Ready for the log writer.
    pub batch: PreparedBatch,
    /// Ready for the metric writer (the host, and no samples for a logs-only batch).
    pub metrics: MetricBatch,
    /// Bytes after decompression.
    pub decompressed_bytes: u64,
}

/// Decodes, validates and enriches one request body.
pub fn prepare(
    body: &[u8],
    encoding: ContentEncoding,
    max_decompressed: u64,
    schema: &LogSchema,
) -> Result<Prepared, IngestError> {
    let json = decode::decompress(body, encoding, max_decompressed)?;
    let batch = decode::parse(&json)?;
    validate::validate(&batch, now_ms()).map_err(|err| IngestError::BadBatch(format!("invalid batch: {err}")))?;
    Ok(Prepared {
        metrics: samples(&batch)?,
        batch: enrich(&batch, schema),
        decompressed_bytes: json.len() as u64,
    })
}

/// Builds each record's document: level and event time detected from the
/// line (the time it was read when the line states none), id from stream and
/// offset, labels copied from the chunk.
fn enrich(batch: &IngestBatch, schema: &LogSchema) -> PreparedBatch {
    let mut chunks = Vec::with_capacity(batch.streams.len());
    let ingested_ms = jiff::Timestamp::now().as_millisecond();
    for chunk in &batch.streams {
        // Built once per chunk and added by reference to each record.
        let labels = labels_value(&chunk.labels);
        let mut time_range: Option<(i64, i64)> = None;
        let mut records = Vec::with_capacity(chunk.records.len());
        for record in &chunk.records {
            let timestamp_ms = event_time(&record.message, record.read_at_ms);
            time_range = Some(time_range.map_or((timestamp_ms, timestamp_ms), |(min, max)| {
                (min.min(timestamp_ms), max.max(timestamp_ms))
            }));
            let id = record_id(&chunk.stream, record.offset);
            let doc = schema.document(&RecordFields {
                id: &id,
                stream: &chunk.stream,
                offset: record.offset,
                timestamp_ms,
                ingested_ms,
                host: &batch.host,
                source: &chunk.source,
                level: detect_level(&record.message).map_or("", Level::as_str),
                message: &record.message,
                labels: labels.as_ref(),
                truncated: record.truncated,
            });
            records.push(PreparedRecord {
                offset: record.offset,
                doc,
            });
        }
        chunks.push(PreparedChunk {
            host: batch.host.clone(),
            stream: chunk.stream.clone(),
            start: chunk.start,
            end: chunk.end,
            time_range,
            records,
        });
    }
    PreparedBatch { chunks }
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

/// The time the line states, else when it was read (`read_at_ms`, validated
/// to be in range). A stated time outside what the index holds counts as none.
fn event_time(message: &str, read_at_ms: i64) -> i64 {
    let Ok(read_at) = jiff::Timestamp::from_millisecond(read_at_ms) else {
        return read_at_ms;
    };
    parse_timestamp(message, read_at)
        .map(|t| t.as_millisecond())
        .filter(|ms| (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(ms))
        .unwrap_or(read_at_ms)
}
