//! Receivers: what other shippers and devices send, turned into records.
//!
//! Each protocol module reads its own format into [`Line`]s, pure and
//! bounded: [`syslog`] (RFC 5424 and 3164 over TCP, TLS and UDP, with its
//! listeners), [`elasticsearch`] (the bulk API), [`loki`] (push, JSON and
//! protobuf) and [`otlp`] (OTLP/HTTP logs, protobuf and JSON); the HTTP
//! ones are served by `http::receive`. Every receiver then hands its lines
//! to [`Intake::store`], the one way in for them: lines become an ingest
//! batch per host, go through the same checks and enrichment as an agent's
//! (so a syslog line's level or a JSON body's fields are read as a tailed
//! file's would be, with what the protocol states winning), and are
//! committed by the same log writer. A receiver answers, or reads on, only
//! once `store` has returned.
//!
//! Bounds, so that a small (or well compressed) request cannot expand into
//! gigabytes: a line's fields are cut where they are read ([`add_field`]:
//! ingest's bounds on names, count and values), a request's lines may hold
//! at most a [`Budget`] of memory, and a protobuf or JSON body may hold at
//! most [`MAX_ELEMENTS`] messages or values before it is decoded
//! ([`protobuf::count_messages`], [`json_values`]), since a decoded element
//! takes up to a hundred times its few encoded bytes.
//!
//! Unlike an agent's records, received ones carry no offsets a sender could
//! re-send: none of these protocols has them. Each host's lines of one
//! process run form a stream (so a line's context is its neighbours from the
//! same host and receiver), numbered by a counter of the process, and the
//! writer neither checks nor remembers their ranges. A sender that retries a
//! request it had no answer for may therefore store it twice: these
//! protocols are at-least-once, as they are against Elasticsearch or Loki.

pub mod elasticsearch;
pub mod loki;
pub mod otlp;
pub mod protobuf;
pub mod syslog;

use crate::ingest::{IngestError, field_names::FieldNames, patterns::PatternBook, prepare_received};
use crate::metrics::{Metrics, Received, Receiver};
use crate::metricstore::writer::MetricWriterHandle;
use crate::store::writer::{PreparedBatch, WriteError, WriterHandle};
use lookout_shared::parse::Level;
use lookout_shared::parse::fields::{MAX_FIELDS_PER_LINE, MAX_NAME_BYTES, MAX_TEXT_BYTES, head};
use lookout_shared::time::now_ms;
use lookout_shared::wire::{IngestBatch, StreamChunk, WireRecord, content_hash, record_id};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest message kept; the rest is cut and the record marked truncated.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Longest host name kept (DNS names are at most 253 bytes).
const MAX_HOST_BYTES: usize = 255;

/// One message a receiver read, before it becomes a record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line {
    /// The host it came from: what the message states, else the peer's address.
    pub host: String,
    /// The text.
    pub message: String,
    /// Whether the sender's message was longer than what was kept.
    pub truncated: bool,
    /// The time the message states (Unix ms), if any.
    pub time_ms: Option<i64>,
    /// The level the message states, if any.
    pub level: Option<Level>,
    /// What the protocol states beside the text (syslog's app name, OTLP's
    /// attributes, a bulk document's other keys, Loki's labels).
    pub fields: BTreeMap<String, String>,
}

/// Messages or values a protobuf or JSON request may hold at most.
pub const MAX_ELEMENTS: usize = 500_000;

/// What a line costs beyond its text and fields (the line, its wire record
/// and its index document), for the [`Budget`].
const LINE_OVERHEAD: usize = 512;

/// Why a request's body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not the protocol's format (400).
    #[error("{0}")]
    Invalid(String),
    /// Over a bound on what one request may hold (413).
    #[error("{0}")]
    TooLarge(String),
}

impl From<ReadError> for IngestError {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::Invalid(reason) => IngestError::BadBatch(reason),
            ReadError::TooLarge(reason) => IngestError::TooLarge(reason),
        }
    }
}

/// Adds a field a protocol states within ingest's bounds: names of 1 to
/// `MAX_NAME_BYTES` bytes, at most `MAX_FIELDS_PER_LINE` names (the first
/// ones added win), values cut to `MAX_TEXT_BYTES`. Only that much is copied.
pub fn add_field(fields: &mut BTreeMap<String, String>, name: &str, value: &str) {
    let fits = !name.is_empty() && name.len() <= MAX_NAME_BYTES;
    if fits && (fields.len() < MAX_FIELDS_PER_LINE || fields.contains_key(name)) {
        fields.insert(name.to_owned(), head(value, MAX_TEXT_BYTES).to_owned());
    }
}

/// The memory the lines of one request may take, charged as they are read.
#[derive(Debug)]
pub struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Budget {
        let limit = usize::try_from(bytes).unwrap_or(usize::MAX);
        Budget { left: limit, limit }
    }

    /// Charges `line`; an error once the request's lines take more than the budget.
    pub fn charge(&mut self, line: &Line) -> Result<(), ReadError> {
        let fields: usize = line.fields.iter().map(|(k, v)| k.len() + v.len() + 64).sum();
        let cost = LINE_OVERHEAD + line.host.len() + line.message.len() + fields;
        self.left = self.left.checked_sub(cost).ok_or_else(|| {
            ReadError::TooLarge(format!(
                "the request's records would take more than {} MiB; send smaller requests",
                self.limit >> 20
            ))
        })?;
        Ok(())
    }
}

/// Refuses a JSON text with more than [`MAX_ELEMENTS`] values, counted
/// without parsing (objects, arrays and the values commas separate).
pub fn json_values(text: &[u8]) -> Result<(), ReadError> {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' | b',' => count += 1,
            _ => {}
        }
    }
    if count > MAX_ELEMENTS {
        return Err(ReadError::TooLarge(format!(
            "the request holds more than {MAX_ELEMENTS} JSON values; send smaller requests"
        )));
    }
    Ok(())
}

/// Why lines were not stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The lines could not form a valid batch (a bug of the receiver, since
    /// it bounds what it builds; answered like a bad request).
    #[error(transparent)]
    Invalid(#[from] IngestError),
    /// The log writer could not commit them; the sender should retry.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Where every receiver stores what it read (cheap to clone).
#[derive(Clone)]
pub struct Intake {
    field_names: Arc<FieldNames>,
    patterns: Arc<PatternBook>,
    writer: WriterHandle,
    metric_writer: MetricWriterHandle,
    metrics: Arc<Metrics>,
    /// Distinguishes this process run's streams from earlier runs', whose
    /// offsets started at 0 too.
    run: u64,
    next_offset: Arc<AtomicU64>,
}

impl Intake {
    /// An intake writing through these stores' writers.
    pub fn new(
        field_names: Arc<FieldNames>,
        patterns: Arc<PatternBook>,
        writer: WriterHandle,
        metric_writer: MetricWriterHandle,
        metrics: Arc<Metrics>,
    ) -> Intake {
        let started = jiff::Timestamp::now().as_nanosecond();
        Intake {
            field_names,
            patterns,
            writer,
            metric_writer,
            metrics,
            run: content_hash(&started.to_le_bytes()),
            next_offset: Arc::default(),
        }
    }

    /// The process's counters, for receivers to count what they drop.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stores `lines` read by `receiver`, returning once they are durable
    /// (see [`crate::store::writer`]), with their record ids in the order given. Marks each
    /// host as seen.
    pub async fn store(&self, receiver: Receiver, lines: Vec<Line>) -> Result<Vec<String>, IntakeError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let (batches, ids) = self.batches(receiver, lines);
        let hosts: Vec<String> = batches.iter().map(|b| b.host.clone()).collect();
        let (field_names, patterns) = (self.field_names.clone(), self.patterns.clone());
        let (prepared, fields_dropped) = tokio::task::spawn_blocking(move || {
            let mut chunks = Vec::new();
            let mut fields_dropped = 0;
            for batch in batches {
                let (prepared, dropped) = prepare_received(batch, &field_names, &patterns)?;
                chunks.extend(prepared.chunks);
                fields_dropped += dropped;
            }
            Ok::<_, IngestError>((PreparedBatch { chunks }, fields_dropped))
        })
        .await
        .map_err(|err| WriteError::CommitFailed(format!("preparing received lines failed: {err}")))??;
        self.metrics.fields_dropped(fields_dropped);
        let response = self.writer.write(prepared).await?;
        self.metrics.received(receiver, Received::Accepted, response.accepted);
        for host in hosts {
            self.metric_writer.touch(host);
        }
        Ok(ids)
    }

    /// One ingest batch per host, its lines a chunk of the host's stream
    /// for `receiver` in this run; and each line's record id, in input order.
    fn batches(&self, receiver: Receiver, lines: Vec<Line>) -> (Vec<IngestBatch>, Vec<String>) {
        let read_at_ms = now_ms();
        // Per host: its records and their positions in `lines`.
        let mut by_host: BTreeMap<String, (Vec<WireRecord>, Vec<usize>)> = BTreeMap::new();
        let total = lines.len();
        for (position, line) in lines.into_iter().enumerate() {
            let (host, record) = record(line, read_at_ms);
            let (records, positions) = by_host.entry(host).or_default();
            records.push(record);
            positions.push(position);
        }
        let mut ids = vec![String::new(); total];
        let batches = by_host
            .into_iter()
            .map(|(host, (mut records, positions))| {
                let count = records.len() as u64;
                let start = self.next_offset.fetch_add(count, Ordering::Relaxed);
                let stream = stream_id(receiver, &host, self.run);
                for ((record, offset), position) in records.iter_mut().zip(start..).zip(positions) {
                    record.offset = offset;
                    ids[position] = record_id(&stream, offset);
                }
                IngestBatch {
                    streams: vec![StreamChunk {
                        stream,
                        source: receiver.label().to_owned(),
                        start,
                        end: start + count,
                        records,
                        ..StreamChunk::default()
                    }],
                    host,
                    metrics: Vec::new(),
                }
            })
            .collect();
        (batches, ids)
    }
}

/// The stream of `host`'s lines read by `receiver` in process run `run`.
fn stream_id(receiver: Receiver, host: &str, run: u64) -> String {
    let key = format!("{}\0{host}\0{run}", receiver.label());
    format!("{:016x}", content_hash(key.as_bytes()))
}

/// `line` as a wire record within ingest's bounds, and its host.
fn record(line: Line, read_at_ms: i64) -> (String, WireRecord) {
    let host = head(line.host.trim(), MAX_HOST_BYTES);
    let host = if host.is_empty() { "unknown" } else { host }.to_owned();
    let mut message = line.message;
    let mut truncated = line.truncated;
    if message.len() > MAX_MESSAGE_BYTES {
        let kept = head(&message, MAX_MESSAGE_BYTES).len();
        message.truncate(kept);
        truncated = true;
    }
    let fields = line
        .fields
        .into_iter()
        .filter(|(name, _)| !name.is_empty() && name.len() <= MAX_NAME_BYTES)
        .take(MAX_FIELDS_PER_LINE)
        .map(|(name, mut value)| {
            let kept = head(&value, MAX_TEXT_BYTES).len();
            value.truncate(kept);
            (name, value)
        })
        .collect();
    let record = WireRecord {
        offset: 0,
        read_at_ms,
        message,
        truncated,
        time_ms: line.time_ms,
        level: line.level,
        fields,
    };
    (host, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_bounded_as_ingest_requires() {
        let line = Line {
            host: "  ".into(),
            message: "é".repeat(MAX_MESSAGE_BYTES),
            fields: (0..100)
                .map(|i| (format!("k{i:03}"), "v".repeat(1000)))
                .chain([(String::new(), "x".into()), ("n".repeat(200), "x".into())])
                .collect(),
            ..Line::default()
        };
        let (host, record) = record(line, 1);
        assert_eq!(host, "unknown");
        assert!(record.truncated && record.message.len() <= MAX_MESSAGE_BYTES);
        assert!(record.message.chars().all(|c| c == 'é'), "cut on a character boundary");
        assert_eq!(record.fields.len(), MAX_FIELDS_PER_LINE);
        assert!(
            record
                .fields
                .iter()
                .all(|(k, v)| !k.is_empty() && k.len() <= MAX_NAME_BYTES && v.len() == MAX_TEXT_BYTES)
        );
    }

    #[test]
    fn fields_are_bounded_where_they_are_added() {
        let mut fields = BTreeMap::new();
        for i in 0..100 {
            add_field(&mut fields, &format!("k{i:03}"), &"v".repeat(1000));
        }
        add_field(&mut fields, "", "x");
        add_field(&mut fields, &"n".repeat(200), "x");
        add_field(&mut fields, "k000", "again");
        assert_eq!(fields.len(), MAX_FIELDS_PER_LINE);
        assert_eq!(fields["k000"], "again", "a name already there may change");
        assert!(!fields.contains_key("k099"), "the first names win");
        assert!(fields.values().skip(1).all(|v| v.len() == MAX_TEXT_BYTES));
    }

    #[test]
    fn budgets_and_element_counts_refuse_what_would_expand() {
        let mut budget = Budget::new(10_000);
        let line = Line {
            message: "x".repeat(1000),
            ..Line::default()
        };
        for _ in 0..6 {
            budget.charge(&line).unwrap();
        }
        assert!(matches!(budget.charge(&line), Err(ReadError::TooLarge(_))));
        assert!(json_values(br#"{"a":[1,2,"x,[{"]}"#).is_ok());
        let many = format!("[{}]", "{},".repeat(MAX_ELEMENTS));
        assert!(matches!(json_values(many.as_bytes()), Err(ReadError::TooLarge(_))));
        let quoted = format!("[\"{}\"]", "{,".repeat(MAX_ELEMENTS));
        assert!(json_values(quoted.as_bytes()).is_ok(), "inside strings nothing counts");
    }

    #[test]
    fn streams_are_per_receiver_host_and_run() {
        let id = stream_id(Receiver::Syslog, "r1", 7);
        assert_eq!(id.len(), 16);
        assert_ne!(id, stream_id(Receiver::Loki, "r1", 7));
        assert_ne!(id, stream_id(Receiver::Syslog, "r2", 7));
        assert_ne!(id, stream_id(Receiver::Syslog, "r1", 8));
    }
}
