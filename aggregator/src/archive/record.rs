//! What an archive holds, apart from any I/O: one JSON object per record
//! ([`ArchivedRecord`]), the manifest that marks a day complete
//! ([`Manifest`]), the object names, and the batches a restore sends to the
//! log writer ([`RestoreBatcher`]).

use crate::store::schema::Hit;
use crate::store::writer::{PreparedBatch, PreparedChunk, PreparedRecord};
use lookout_shared::parse::Level;
use lookout_shared::parse::fields::FieldValue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The manifest format written today.
pub const MANIFEST_VERSION: u32 = 1;

/// The name of a day's manifest, beside its objects.
pub const MANIFEST_NAME: &str = "manifest.json";

/// Records a restore sends to the log writer at a time.
const RECORDS_PER_BATCH: usize = 2_000;

/// One record, a line of a host's object: what the index held of it,
/// enough to store it again exactly (same id, times, level and fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedRecord {
    /// Event time, RFC 3339 (for people reading the archive; a restore
    /// reads `timestamp_ms`).
    pub timestamp: String,
    /// Event time, Unix ms.
    pub timestamp_ms: i64,
    /// When the aggregator received it, Unix ms.
    pub ingested_ms: i64,
    /// Host.
    pub host: String,
    /// File path or receiver.
    pub source: String,
    /// Stream id; with `offset`, the record's id.
    pub stream: String,
    /// Offset in the stream.
    pub offset: u64,
    /// Level, when one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Text.
    pub message: String,
    /// Present (true) only when the sender cut the record short.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The source's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extracted fields (with the pattern id).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldValue>,
}

impl ArchivedRecord {
    /// The record a stored hit shows, with what the hit leaves out: its
    /// stream, offset and times as numbers.
    pub fn from_hit(hit: Hit, stream: String, offset: u64, timestamp_ms: i64, ingested_ms: i64) -> ArchivedRecord {
        ArchivedRecord {
            timestamp: hit.timestamp,
            timestamp_ms,
            ingested_ms,
            host: hit.host,
            source: hit.source,
            stream,
            offset,
            level: lookout_shared::parse::level_from_value(&hit.level),
            message: hit.message,
            truncated: hit.truncated,
            labels: hit.labels,
            fields: hit.fields,
        }
    }
}

/// `YYYY-MM-DD/manifest.json`: the day's objects, written after all of
/// them. A day without one is not archived (an interrupted run starts the
/// day over).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The partition's day (the UTC day the records arrived), YYYY-MM-DD.
    pub day: String,
    /// When the archive was written, RFC 3339.
    pub archived_at: String,
    /// Records in all objects.
    pub records: u64,
    /// One object per host.
    pub objects: Vec<ManifestObject>,
}

/// One host's object in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestObject {
    /// The host whose records it holds.
    pub host: String,
    /// Its name under the archive's root (`YYYY-MM-DD/<host>-<hash>.ndjson.zst`).
    pub object: String,
    /// Records (lines) in it.
    pub records: u64,
    /// Its size in bytes, compressed.
    pub bytes: u64,
    /// XXH3-64 of its bytes, hex: checked before a restore reads it.
    pub xxh3: String,
}

/// The name of `host`'s object: a readable part of the host (at most 48
/// of `a-z 0-9 . _ -`, letters lowercased) and its hash, so that any host
/// name, however long or odd, is one short file name, distinct even on a
/// case-insensitive mount.
pub fn object_name(host: &str) -> String {
    let readable: String = host
        .chars()
        .take(48)
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            '.' => '.',
            _ => '_',
        })
        .collect();
    let readable = readable.trim_start_matches('.');
    format!(
        "{readable}-{:016x}.ndjson.zst",
        xxhash_rust::xxh3::xxh3_64(host.as_bytes())
    )
}

/// Record bytes (message, fields, labels) a restore sends at a time, at
/// most: a batch's memory is bounded whatever its records' size.
const BYTES_PER_BATCH: usize = 4 << 20;

/// The byte ranges the index held before a restore began, by `host/stream`
/// key (and by stream id alone, as payloads written before ranges were
/// kept per host are): a restored record in one of them is already there.
pub type HeldBefore = crate::store::intervals::StreamIntervals;

/// Turns a restored day's records, in the order they come, into the
/// batches the log writer stores.
///
/// A record whose stream range the index held before the restore began is
/// counted and left out. The rest go in unchecked chunks: their order in
/// an archive follows the index's segments, not their offsets, so a range
/// claimed while an object is read could hold records not stored yet, and
/// a restore cut short there and run again would leave them out. Only
/// once every record of an object is stored does [`RestoreBatcher::finish`]
/// give the batch that claims, per stream, the range its records span (one
/// range per stream in the commit payload). A restore cut short within an
/// object, run again, stores that object's records stored so far twice;
/// it never leaves one out.
pub struct RestoreBatcher {
    held_before: std::sync::Arc<HeldBefore>,
    batch: PreparedBatch,
    /// Per `(host, stream)`: the range the object's records span.
    claims: HashMap<(String, String), (u64, u64)>,
    records_in_batch: usize,
    bytes_in_batch: usize,
    already_held: u64,
}

impl RestoreBatcher {
    /// A batcher that leaves out what `held_before` covers.
    pub fn new(held_before: std::sync::Arc<HeldBefore>) -> RestoreBatcher {
        RestoreBatcher {
            held_before,
            batch: PreparedBatch::default(),
            claims: HashMap::new(),
            records_in_batch: 0,
            bytes_in_batch: 0,
            already_held: 0,
        }
    }

    /// Adds `record`; returns a batch when one is full.
    pub fn push(&mut self, record: ArchivedRecord) -> Option<PreparedBatch> {
        let key = crate::store::writer::held_key(&record.host, &record.stream);
        let held = [key.as_str(), record.stream.as_str()]
            .iter()
            .filter_map(|key| self.held_before.get(*key))
            .any(|set| set.contains(record.offset));
        if held {
            self.already_held += 1;
            return None;
        }
        self.bytes_in_batch += record_bytes(&record);
        let claim = self
            .claims
            .entry((record.host.clone(), record.stream.clone()))
            .or_insert((record.offset, record.offset));
        claim.0 = claim.0.min(record.offset);
        claim.1 = claim.1.max(record.offset.saturating_add(1));
        let continues = self.batch.chunks.last().is_some_and(|chunk| {
            chunk.host == record.host
                && chunk.stream == record.stream
                && chunk.source == record.source
                && chunk.labels == record.labels
        });
        if !continues {
            self.batch.chunks.push(PreparedChunk {
                host: record.host,
                stream: record.stream,
                source: record.source,
                labels: record.labels,
                start: record.offset,
                end: record.offset.saturating_add(1),
                dedup: false,
                time_range: None,
                records: Vec::new(),
            });
        }
        let chunk = self.batch.chunks.last_mut()?;
        chunk.time_range = Some(match chunk.time_range {
            Some((min, max)) => (min.min(record.timestamp_ms), max.max(record.timestamp_ms)),
            None => (record.timestamp_ms, record.timestamp_ms),
        });
        chunk.start = chunk.start.min(record.offset);
        chunk.end = chunk.end.max(record.offset.saturating_add(1));
        chunk.records.push(PreparedRecord {
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            ingested_ms: record.ingested_ms,
            level: record.level,
            message: record.message,
            truncated: record.truncated,
            fields: record.fields,
        });
        self.records_in_batch += 1;
        let full = self.records_in_batch >= RECORDS_PER_BATCH || self.bytes_in_batch >= BYTES_PER_BATCH;
        full.then(|| self.take())
    }

    /// Once the object's records are all read: the last batch of them, if
    /// any, then the batch that claims their ranges (to be stored after
    /// every batch before it is), and how many were left out as held.
    pub fn finish(mut self) -> Finished {
        let last = (self.records_in_batch > 0).then(|| self.take());
        let mut claims: Vec<_> = self.claims.drain().collect();
        claims.sort();
        let mut claim = PreparedBatch::default();
        for ((host, stream), (start, end)) in claims {
            claim.chunks.push(PreparedChunk {
                host,
                stream,
                source: String::new(),
                labels: BTreeMap::new(),
                start,
                end,
                dedup: true,
                time_range: None,
                records: Vec::new(),
            });
        }
        Finished {
            last,
            claim: (!claim.chunks.is_empty()).then_some(claim),
            already_held: self.already_held,
        }
    }

    fn take(&mut self) -> PreparedBatch {
        self.records_in_batch = 0;
        self.bytes_in_batch = 0;
        std::mem::take(&mut self.batch)
    }
}

/// About what `record` takes in memory beyond its fixed size.
fn record_bytes(record: &ArchivedRecord) -> usize {
    let fields: usize = record
        .fields
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    FieldValue::Text(text) => text.len(),
                    FieldValue::Number(_) => 8,
                }
        })
        .sum();
    let labels: usize = record.labels.iter().map(|(k, v)| k.len() + v.len()).sum();
    record.message.len() + fields + labels
}

/// What [`RestoreBatcher::finish`] gives.
pub struct Finished {
    /// The object's last records.
    pub last: Option<PreparedBatch>,
    /// Record-less chunks claiming each stream's range.
    pub claim: Option<PreparedBatch>,
    /// Records left out because the index held them before.
    pub already_held: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(host: &str, stream: &str, offset: u64, ts: i64) -> ArchivedRecord {
        ArchivedRecord {
            timestamp: lookout_shared::time::rfc3339(ts),
            timestamp_ms: ts,
            ingested_ms: ts + 5,
            host: host.into(),
            source: "/var/log/app.log".into(),
            stream: stream.into(),
            offset,
            level: Some(Level::Error),
            message: format!("line at {offset}"),
            truncated: false,
            labels: BTreeMap::new(),
            fields: BTreeMap::from([
                ("status".to_owned(), FieldValue::Number(503.0)),
                ("code".to_owned(), FieldValue::Text("42".into())),
            ]),
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let original = record("web-1", "s1", 120, 1_700_000_000_123);
        let line = serde_json::to_string(&original).unwrap();
        assert!(line.contains(r#""timestamp":"2023-11-14T22:13:20.123Z""#), "{line}");
        assert!(
            line.contains(r#""code":"42""#) && line.contains(r#""status":503.0"#),
            "{line}"
        );
        assert!(!line.contains("truncated") && !line.contains("labels"), "{line}");
        let read: ArchivedRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(read, original, "a text field that looks like a number stays text");
        assert!(serde_json::from_str::<ArchivedRecord>(r#"{"timestamp":"x"}"#).is_err());
    }

    #[test]
    fn records_out_of_offset_order_are_all_stored_and_claimed_once_all_are() {
        // Two streams interleaved, and (as an index's segments give them)
        // the later offsets of stream a before its earlier ones.
        let mut order: Vec<u64> = (1500..3000).chain(0..1500).collect();
        order.rotate_left(7);
        let held_before = HeldBefore::from([("web-1/a".to_owned(), {
            let mut set = crate::store::intervals::IntervalSet::default();
            set.insert(0, 100); // stream a's offsets below 100
            set
        })]);
        let mut batcher = RestoreBatcher::new(held_before.into());
        let mut batches = Vec::new();
        for i in order {
            let stream = if i % 3 == 0 { "b" } else { "a" };
            batches.extend(batcher.push(record("web-1", stream, i * 10, 1_000 + i as i64)));
        }
        assert!(
            batches.iter().flat_map(|b| &b.chunks).all(|c| !c.dedup),
            "nothing is claimed before every record is stored"
        );
        let finished = batcher.finish();
        batches.extend(finished.last);
        let held_a = (0..3000u64).filter(|i| i % 3 != 0 && i * 10 < 100).count() as u64;
        assert_eq!(finished.already_held, held_a, "what the index held is left out");
        let stored: Vec<&PreparedRecord> = batches
            .iter()
            .flat_map(|b| &b.chunks)
            .flat_map(|c| &c.records)
            .collect();
        assert_eq!(stored.len() as u64, 3000 - held_a, "every other record, once");
        assert!(batches.iter().flat_map(|b| &b.chunks).all(|c| c.time_range.is_some()));
        let claim = finished.claim.expect("the object's ranges are claimed");
        let ranges: Vec<(&str, u64, u64, bool)> = claim
            .chunks
            .iter()
            .map(|c| (c.stream.as_str(), c.start, c.end, c.dedup && c.records.is_empty()))
            .collect();
        assert_eq!(
            ranges,
            vec![("a", 100, 29_991, true), ("b", 0, 29_971, true)],
            "one range per stream"
        );
        assert_eq!(stored[0].ingested_ms, stored[0].timestamp_ms + 5, "arrival time kept");
    }

    #[test]
    fn a_batch_closes_at_its_byte_budget() {
        let mut batcher = RestoreBatcher::new(Default::default());
        let mut big = record("web-1", "a", 0, 1);
        big.message = "x".repeat(BYTES_PER_BATCH / 2);
        assert!(batcher.push(big.clone()).is_none());
        big.offset = 10;
        let batch = batcher.push(big).expect("the second half-budget record fills it");
        assert_eq!(batch.chunks.iter().map(|c| c.records.len()).sum::<usize>(), 2);
    }

    #[test]
    fn object_names_are_short_distinct_and_one_name() {
        use object_store::path::{Path, PathPart};
        let long = "h".repeat(300);
        for host in [
            "web-1",
            "../etc",
            "a/b",
            "..",
            "%2F",
            "host with space",
            long.as_str(),
            ".hidden",
        ] {
            let name = object_name(host);
            assert!(name.len() <= 48 + 1 + 16 + 11, "{name}");
            assert!(!name.starts_with('.'), "{name}");
            let path = Path::from("2026-01-02").join(PathPart::from(name.as_str()));
            assert_eq!(path.parts().count(), 2, "{host}: {path}");
        }
        assert!(object_name("web-1").starts_with("web-1-"));
        assert_ne!(
            object_name("Web-1"),
            object_name("web-1"),
            "distinct on a case-insensitive mount too"
        );
        assert_ne!(object_name("a/b"), object_name("a_b"));
    }
}
