//! The batcher: gathers what the sources read into [`IngestBatch`]es, sealed by
//! size or by age, and turns a sealed batch into the compressed request body.

use crate::sources::Record;
use lookout_shared::wire::{IngestBatch, LineFormat, StreamChunk, WireRecord};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::time::{Duration, Instant};

/// zstd level of request bodies: level 1 compresses log text about 5× at a
/// small fraction of the agent's CPU budget.
const ZSTD_LEVEL: i32 = 1;

/// Where a batch's records came from: the byte ranges it covers per stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoveredRange {
    /// Stream id.
    pub stream: String,
    /// First byte covered.
    pub start: u64,
    /// One past the last byte covered.
    pub end: u64,
}

/// Builds one batch at a time.
#[derive(Debug)]
pub struct BatchBuilder {
    host: String,
    streams: Vec<StreamChunk>,
    /// Stream id → index in `streams` of its last chunk.
    last_chunk: HashMap<String, usize>,
    message_bytes: usize,
    opened_at: Option<Instant>,
    max_bytes: usize,
    max_wait: Duration,
}

/// Bytes `[start, end)` of one stream and the records read from them.
#[derive(Debug)]
pub struct StreamRead<'a> {
    /// Stream id.
    pub stream: &'a str,
    /// The file's path.
    pub source: &'a str,
    /// Labels of the file's source.
    pub labels: &'a BTreeMap<String, String>,
    /// How the source's lines are read.
    pub format: &'a LineFormat,
    /// Fields every record of the stream carries.
    pub fields: &'a BTreeMap<String, String>,
    /// First byte covered.
    pub start: u64,
    /// One past the last byte covered.
    pub end: u64,
    /// When the bytes were read, Unix ms.
    pub read_at_ms: i64,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new(host: String, max_bytes: usize, max_wait: Duration) -> BatchBuilder {
        BatchBuilder {
            host,
            streams: Vec::new(),
            last_chunk: HashMap::new(),
            message_bytes: 0,
            opened_at: None,
            max_bytes,
            max_wait,
        }
    }

    /// Adds what was read from one stream. Consecutive ranges of a stream are
    /// merged into one chunk.
    pub fn add(&mut self, read: StreamRead<'_>, records: &mut Vec<Record>) {
        if read.start == read.end && records.is_empty() {
            return;
        }
        self.opened_at.get_or_insert_with(Instant::now);
        let chunk = match self.last_chunk.get(read.stream) {
            Some(&index) if self.streams[index].end == read.start && self.streams[index].source == read.source => {
                &mut self.streams[index]
            }
            _ => {
                self.last_chunk.insert(read.stream.to_string(), self.streams.len());
                self.streams.push(StreamChunk {
                    stream: read.stream.to_string(),
                    source: read.source.to_string(),
                    start: read.start,
                    end: read.start,
                    labels: read.labels.clone(),
                    format: read.format.clone(),
                    fields: read.fields.clone(),
                    records: Vec::new(),
                });
                self.streams.last_mut().expect("just pushed")
            }
        };
        chunk.end = read.end;
        for record in records.drain(..) {
            self.message_bytes += record.message.len()
                + 64
                + record
                    .fields
                    .iter()
                    .map(|(name, value)| name.len() + value.len() + 6)
                    .sum::<usize>();
            chunk.records.push(WireRecord {
                offset: record.offset,
                read_at_ms: read.read_at_ms,
                message: record.message,
                truncated: record.truncated,
                time_ms: record.time_ms,
                level: record.level,
                fields: record.fields,
            });
        }
    }

    /// Whether the batch has reached its size.
    pub fn is_full(&self) -> bool {
        self.message_bytes >= self.max_bytes
    }

    /// Whether the batch holds something that has waited long enough.
    pub fn is_due(&self, now: Instant) -> bool {
        self.opened_at
            .is_some_and(|opened| now.duration_since(opened) >= self.max_wait)
    }

    /// The batch built so far, if it holds anything; the builder starts anew.
    pub fn take(&mut self) -> Option<IngestBatch> {
        self.opened_at.take()?;
        self.last_chunk.clear();
        self.message_bytes = 0;
        Some(IngestBatch {
            host: self.host.clone(),
            streams: std::mem::take(&mut self.streams),
            metrics: Vec::new(),
        })
    }
}

/// A batch ready to be spooled: its body and what it covers.
#[derive(Debug)]
pub struct SealedBatch {
    /// JSON, zstd-compressed: the request body.
    pub body: Vec<u8>,
    /// The byte ranges the batch covers.
    pub ranges: Vec<CoveredRange>,
    /// How many records it holds.
    pub records: usize,
}

/// Serialises and compresses a batch.
pub fn seal(batch: &IngestBatch) -> io::Result<SealedBatch> {
    let json = serde_json::to_vec(batch)?;
    let body = zstd::bulk::compress(&json, ZSTD_LEVEL)?;
    let ranges = batch
        .streams
        .iter()
        .map(|chunk| CoveredRange {
            stream: chunk.stream.clone(),
            start: chunk.start,
            end: chunk.end,
        })
        .collect();
    let records = batch.streams.iter().map(|chunk| chunk.records.len()).sum();
    Ok(SealedBatch { body, ranges, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: u64, message: &str) -> Record {
        Record {
            offset,
            message: message.into(),
            ..Record::default()
        }
    }

    #[test]
    fn consecutive_reads_of_a_stream_share_a_chunk() {
        let labels = BTreeMap::new();
        let format = LineFormat::default();
        let mut builder = BatchBuilder::new("h".into(), 1 << 20, Duration::from_secs(1));
        let read = |start, end| StreamRead {
            stream: "s",
            source: "/a.log",
            labels: &labels,
            format: &format,
            fields: &labels,
            start,
            end,
            read_at_ms: 1,
        };
        builder.add(read(0, 4), &mut vec![record(0, "abc")]);
        builder.add(read(4, 9), &mut vec![record(4, "defg")]);
        builder.add(read(20, 25), &mut vec![record(20, "gap!")]);
        let batch = builder.take().unwrap();
        assert_eq!(batch.streams.len(), 2);
        assert_eq!((batch.streams[0].start, batch.streams[0].end), (0, 9));
        assert_eq!(batch.streams[0].records.len(), 2);
        assert_eq!((batch.streams[1].start, batch.streams[1].end), (20, 25));
        assert!(builder.take().is_none());

        let sealed = seal(&batch).unwrap();
        assert_eq!(sealed.records, 3);
        let json = zstd::bulk::decompress(&sealed.body, 1 << 20).unwrap();
        assert_eq!(serde_json::from_slice::<IngestBatch>(&json).unwrap(), batch);
    }

    #[test]
    fn a_range_without_records_still_counts() {
        let labels = BTreeMap::new();
        let format = LineFormat::default();
        let mut builder = BatchBuilder::new("h".into(), 1 << 20, Duration::from_secs(1));
        let read = StreamRead {
            stream: "s",
            source: "/a.log",
            labels: &labels,
            format: &format,
            fields: &labels,
            start: 0,
            end: 3,
            read_at_ms: 1,
        };
        builder.add(read, &mut Vec::new());
        let batch = builder.take().expect("blank lines still move the checkpoint");
        assert_eq!(batch.streams[0].end, 3);
    }
}
