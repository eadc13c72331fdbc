//! The log store's write-ahead log: batches the writer has acknowledged but
//! not yet committed to the index.
//!
//! A tantivy commit writes the buffered documents as a new segment, and a
//! segment per ingest request costs its own serialisation and, later, merges
//! that rewrite it again (at 7,000 lines per commit the index took two
//! thirds more CPU per line than at 50,000). So the writer commits at most
//! every `[ingest] commit_interval`, and makes each group of batches durable
//! here first, with one append and one `fdatasync`, before answering. Once a
//! commit covers everything written here, the log is emptied.
//!
//! Each entry has a sequence number; a partition's commit payload records the
//! last one it covers (`Payload::wal_seq`). At start, entries no commit
//! covers are added again, in order, through the same dedup as when they
//! arrived, so the outcome is the one acknowledged. An entry whose frame is
//! cut short or fails its checksum (XXH3) (the process died while appending, before
//! answering) ends the log there.
//!
//! The encoding is this module's own, length-prefixed and little-endian:
//! it is read back only by this build's code, keeps every value exactly (a
//! field's number may be any `f64`), and costs no parsing beyond bounds
//! checks.

use super::writer::{PreparedBatch, PreparedChunk, PreparedRecord};
use anyhow::Context as _;
use jiff::civil::Date;
use lookout_shared::parse::Level;
use lookout_shared::parse::fields::FieldValue;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// Bytes of an entry's header: payload length (u32) and XXH3-64 of the payload.
const HEADER_BYTES: usize = 12;

/// One group of batches as it was acknowledged.
#[derive(Debug)]
pub struct WalEntry {
    /// Its sequence number (increasing, never reused).
    pub seq: u64,
    /// The partition (ingest day) it was written to.
    pub day: Date,
    /// The batches, in the order they were answered.
    pub batches: Vec<PreparedBatch>,
}

/// The open log file.
pub struct Wal {
    file: File,
    path: PathBuf,
    len: u64,
    next_seq: u64,
    /// The last entry appended by this process and where it starts.
    last: Option<(u64, u64)>,
}

impl Wal {
    /// Opens (or creates, mode 0600) the log at `path` and reads its
    /// entries. A torn or corrupt tail is cut off. New entries are numbered
    /// after both the log's last entry and `committed_seq`, the highest
    /// number a partition's commit names.
    pub fn open(path: &Path, committed_seq: u64) -> anyhow::Result<(Wal, Vec<WalEntry>)> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open the write-ahead log {}", path.display()))?;
        // One process per log: another one truncating a tail it takes for
        // torn, or removing the file, would lose what this one answered.
        file.try_lock().map_err(|err| {
            anyhow::anyhow!(
                "the write-ahead log {} is in use by another lookout-aggregator on the same data_dir ({err})",
                path.display()
            )
        })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the write-ahead log {}", path.display()))?;
        let (entries, valid) = read_entries(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = entries.len(),
                dropped_bytes = bytes.len() - valid,
                "the write-ahead log ends in an entry cut short (the process stopped while writing it, \
                 before answering); cutting it off"
            );
            file.set_len(valid as u64)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("cannot cut the write-ahead log {}", path.display()))?;
        }
        file.seek(SeekFrom::Start(valid as u64))?;
        let last = entries.last().map_or(0, |e| e.seq);
        let wal = Wal {
            file,
            path: path.to_owned(),
            len: valid as u64,
            next_seq: last.max(committed_seq) + 1,
            last: None,
        };
        Ok((wal, entries))
    }

    /// Appends `batches` as one entry and waits until it is on disk; returns
    /// its sequence number. On error nothing of it stays in the log.
    pub fn append(&mut self, day: Date, batches: &[PreparedBatch]) -> std::io::Result<u64> {
        let seq = self.next_seq;
        let mut frame = vec![0u8; HEADER_BYTES];
        encode_entry(&mut frame, seq, day, batches);
        let payload_len = u32::try_from(frame.len() - HEADER_BYTES)
            .map_err(|_| std::io::Error::other("a write-ahead log entry over 4 GiB"))?;
        let hash = xxh3_64(&frame[HEADER_BYTES..]);
        frame[..4].copy_from_slice(&payload_len.to_le_bytes());
        frame[4..HEADER_BYTES].copy_from_slice(&hash.to_le_bytes());
        let written = self.file.write_all(&frame).and_then(|()| self.file.sync_data());
        if let Err(err) = written {
            // Leave no partial entry behind; if even that fails, the next
            // start cuts it off by its checksum.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(err);
        }
        self.last = Some((seq, self.len));
        self.len += frame.len() as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Takes back the last entry appended, numbered `seq` (its batches were
    /// refused after all).
    pub fn remove_last(&mut self, seq: u64) -> std::io::Result<()> {
        let Some((last, start)) = self.last.take_if(|(last, _)| *last == seq) else {
            return Err(std::io::Error::other(format!(
                "entry {seq} is not the last one appended"
            )));
        };
        debug_assert_eq!(last, seq);
        self.file.set_len(start)?;
        self.file.seek(SeekFrom::Start(start))?;
        self.file.sync_data()?;
        self.len = start;
        Ok(())
    }

    /// Whether the log holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of entries in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The entries now in the log (to add again after a failed commit).
    pub fn entries(&mut self) -> anyhow::Result<Vec<WalEntry>> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        self.file.seek(SeekFrom::Start(0))?;
        (&mut self.file)
            .take(self.len)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the write-ahead log {}", self.path.display()))?;
        self.file.seek(SeekFrom::Start(self.len))?;
        Ok(read_entries(&bytes).0)
    }

    /// Empties the log: a commit now covers all of it.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.sync_data()?;
        self.len = 0;
        self.last = None;
        Ok(())
    }
}

/// The entries of a log's bytes, and how many bytes they fill (where a cut
/// or corrupt entry begins).
fn read_entries(bytes: &[u8]) -> (Vec<WalEntry>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER_BYTES {
        let mut header = Reader(&bytes[at..at + HEADER_BYTES]);
        let (Some(len), Some(hash)) = (header.len(), header.u64()) else {
            break;
        };
        let Some(payload) = bytes.get(at + HEADER_BYTES..at + HEADER_BYTES + len) else {
            break;
        };
        if xxh3_64(payload) != hash {
            break;
        }
        let Some(entry) = decode_entry(payload) else {
            break;
        };
        entries.push(entry);
        at += HEADER_BYTES + len;
    }
    (entries, at)
}

fn encode_entry(out: &mut Vec<u8>, seq: u64, day: Date, batches: &[PreparedBatch]) {
    put_u64(out, seq);
    out.extend_from_slice(&day.year().to_le_bytes());
    out.push(day.month() as u8);
    out.push(day.day() as u8);
    put_len(out, batches.len());
    for batch in batches {
        put_len(out, batch.chunks.len());
        for chunk in &batch.chunks {
            put_str(out, &chunk.host);
            put_str(out, &chunk.stream);
            put_str(out, &chunk.source);
            put_len(out, chunk.labels.len());
            for (key, value) in &chunk.labels {
                put_str(out, key);
                put_str(out, value);
            }
            put_u64(out, chunk.start);
            put_u64(out, chunk.end);
            out.push(u8::from(chunk.dedup));
            match chunk.time_range {
                Some((min, max)) => {
                    out.push(1);
                    put_u64(out, min as u64);
                    put_u64(out, max as u64);
                }
                None => out.push(0),
            }
            put_len(out, chunk.records.len());
            for record in &chunk.records {
                put_u64(out, record.offset);
                put_u64(out, record.timestamp_ms as u64);
                put_u64(out, record.ingested_ms as u64);
                out.push(match record.level {
                    None => 0,
                    Some(Level::Error) => 1,
                    Some(Level::Warn) => 2,
                    Some(Level::Info) => 3,
                    Some(Level::Debug) => 4,
                    Some(Level::Trace) => 5,
                });
                put_str(out, &record.message);
                out.push(u8::from(record.truncated));
                put_len(out, record.fields.len());
                for (key, value) in &record.fields {
                    put_str(out, key);
                    match value {
                        FieldValue::Number(n) => {
                            out.push(0);
                            put_u64(out, n.to_bits());
                        }
                        FieldValue::Text(text) => {
                            out.push(1);
                            put_str(out, text);
                        }
                    }
                }
            }
        }
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Every count here is far below 2^32: bodies are bounded in bytes.
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Reads what [`encode_entry`] wrote; `None` for anything else.
fn decode_entry(payload: &[u8]) -> Option<WalEntry> {
    let mut r = Reader(payload);
    let seq = r.u64()?;
    let year = i16::from_le_bytes(r.take(2)?.try_into().ok()?);
    let (month, day) = (r.u8()? as i8, r.u8()? as i8);
    let day = Date::new(year, month, day).ok()?;
    let mut batches = Vec::new();
    for _ in 0..r.len()? {
        let mut chunks = Vec::new();
        for _ in 0..r.len()? {
            let host = r.string()?;
            let stream = r.string()?;
            let source = r.string()?;
            let mut labels = BTreeMap::new();
            for _ in 0..r.len()? {
                labels.insert(r.string()?, r.string()?);
            }
            let (start, end) = (r.u64()?, r.u64()?);
            let dedup = r.u8()? == 1;
            let time_range = match r.u8()? {
                0 => None,
                _ => Some((r.u64()? as i64, r.u64()? as i64)),
            };
            let count = r.len()?;
            let mut records = Vec::with_capacity(count.min(r.0.len() / 30));
            for _ in 0..count {
                let offset = r.u64()?;
                let timestamp_ms = r.u64()? as i64;
                let ingested_ms = r.u64()? as i64;
                let level = match r.u8()? {
                    0 => None,
                    1 => Some(Level::Error),
                    2 => Some(Level::Warn),
                    3 => Some(Level::Info),
                    4 => Some(Level::Debug),
                    5 => Some(Level::Trace),
                    _ => return None,
                };
                let message = r.string()?;
                let truncated = r.u8()? == 1;
                let mut fields = BTreeMap::new();
                for _ in 0..r.len()? {
                    let key = r.string()?;
                    let value = match r.u8()? {
                        0 => FieldValue::Number(f64::from_bits(r.u64()?)),
                        1 => FieldValue::Text(r.string()?),
                        _ => return None,
                    };
                    fields.insert(key, value);
                }
                records.push(PreparedRecord {
                    offset,
                    timestamp_ms,
                    ingested_ms,
                    level,
                    message,
                    truncated,
                    fields,
                });
            }
            chunks.push(PreparedChunk {
                host,
                stream,
                source,
                labels,
                start,
                end,
                dedup,
                time_range,
                records,
            });
        }
        batches.push(PreparedBatch { chunks });
    }
    r.0.is_empty().then_some(WalEntry { seq, day, batches })
}

/// A cursor over an entry's bytes; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    fn string(&mut self) -> Option<String> {
        let len = self.len()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(message: &str) -> PreparedBatch {
        PreparedBatch {
            chunks: vec![PreparedChunk {
                host: "h".into(),
                stream: "00000000000000aa".into(),
                source: "/var/log/a.log".into(),
                labels: BTreeMap::from([("env".into(), "prod".into())]),
                start: 0,
                end: 40,
                dedup: true,
                time_range: Some((-5, 1_700_000_000_000)),
                records: vec![PreparedRecord {
                    offset: 0,
                    timestamp_ms: -5,
                    ingested_ms: 1_700_000_000_000,
                    level: Some(Level::Warn),
                    message: message.into(),
                    truncated: true,
                    fields: BTreeMap::from([
                        ("n".into(), FieldValue::Number(f64::NAN)),
                        ("inf".into(), FieldValue::Number(f64::NEG_INFINITY)),
                        ("user".into(), FieldValue::Text("ann".into())),
                    ]),
                }],
            }],
        }
    }

    #[test]
    fn entries_come_back_exactly_and_a_torn_tail_is_cut_off() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("logs.wal");
        let day = Date::new(2024, 2, 29).unwrap();
        let (mut wal, entries) = Wal::open(&path, 7).unwrap();
        assert!(entries.is_empty());
        assert_eq!(
            wal.append(day, &[batch("first ✓")]).unwrap(),
            8,
            "numbered after the committed 7"
        );
        assert_eq!(wal.append(day, &[batch("second"), batch("third")]).unwrap(), 9);
        drop(wal);
        // The process died while appending a third entry.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
        drop(file);

        let (mut wal, entries) = Wal::open(&path, 0).unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [8, 9]);
        assert_eq!(entries[1].day, day);
        assert_eq!(entries[1].batches.len(), 2);
        let chunk = &entries[0].batches[0].chunks[0];
        let record = &chunk.records[0];
        assert_eq!(
            (chunk.labels["env"].as_str(), chunk.time_range),
            ("prod", Some((-5, 1_700_000_000_000)))
        );
        assert_eq!(
            (record.message.as_str(), record.level, record.truncated),
            ("first ✓", Some(Level::Warn), true)
        );
        assert!(matches!(record.fields["n"], FieldValue::Number(n) if n.is_nan()));
        assert_eq!(record.fields["inf"], FieldValue::Number(f64::NEG_INFINITY));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            wal.len,
            "the torn entry is cut off"
        );
        assert_eq!(wal.append(day, &[batch("fourth")]).unwrap(), 10);
        assert_eq!(wal.entries().unwrap().len(), 3);
        wal.clear().unwrap();
        assert!(wal.entries().unwrap().is_empty());
        assert_eq!(
            wal.append(day, &[batch("fifth")]).unwrap(),
            11,
            "numbers are never reused"
        );
    }

    #[test]
    fn a_corrupt_entry_ends_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("logs.wal");
        let day = Date::new(2024, 1, 1).unwrap();
        let (mut wal, _) = Wal::open(&path, 0).unwrap();
        wal.append(day, &[batch("one")]).unwrap();
        let first = wal.len;
        wal.append(day, &[batch("two")]).unwrap();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        let flip = first as usize + HEADER_BYTES + 20;
        bytes[flip] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, entries) = Wal::open(&path, 0).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), first);
    }

    #[test]
    fn a_second_process_cannot_open_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("logs.wal");
        let (_held, _) = Wal::open(&path, 0).unwrap();
        let err = Wal::open(&path, 0).err().expect("the log is locked");
        assert!(
            err.to_string().contains("in use by another lookout-aggregator"),
            "{err}"
        );
    }
}
