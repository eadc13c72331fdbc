//! The on-disk spool: every sealed batch is written here before it is sent and
//! removed once the aggregator acknowledges it, so a batch outlives an
//! aggregator outage, and an agent restart, even when its log file is rotated
//! away meanwhile.
//!
//! One file per batch, `NNNNNNNNNNNNNNNNNNNN.batch` (a sequence number, so the
//! names sort in sending order): a JSON header line (the byte ranges covered,
//! the record count), then the compressed request body. The spool is bounded;
//! [`Spool::append`] blocks while it is full, which pauses reading, so the log
//! files themselves become the buffer. Batches the aggregator rejects (a 4xx
//! other than 429) are moved to `rejected/` for an operator to look at.

use crate::batch::{CoveredRange, SealedBatch};
use crate::health::ReportsHealth;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// A spooled batch.
#[derive(Debug, Clone)]
pub struct SpoolEntry {
    /// Sending order.
    pub seq: u64,
    /// The file.
    pub path: PathBuf,
    /// Its size on disk.
    pub size: u64,
    /// The byte ranges it covers.
    pub ranges: Vec<CoveredRange>,
    /// Records it holds.
    pub records: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    ranges: Vec<CoveredRange>,
    records: usize,
}

#[derive(Debug)]
struct SpoolState {
    next_seq: u64,
    bytes: u64,
    /// When each spooled batch was written, by sequence number: the first is
    /// the oldest unacknowledged batch (batches are acknowledged out of order).
    created: BTreeMap<u64, SystemTime>,
}

/// The spool folder and its accounting.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<SpoolState>,
    space_freed: Condvar,
}

impl ReportsHealth for Spool {
    fn report(&self, report: &mut dyn FnMut(&'static str, f64)) {
        report("agent.spool_bytes", self.bytes() as f64);
        let oldest = self.oldest_age().map_or(0.0, |age| age.as_secs_f64());
        report("agent.oldest_unacked_age_seconds", oldest);
    }
}

impl Spool {
    /// Opens (creating) the spool in `dir`; returns the batches left by an
    /// earlier run, oldest first. Unreadable leftovers are moved to `rejected/`.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<(Spool, Vec<SpoolEntry>)> {
        fs::create_dir_all(dir.join("rejected"))?;
        let mut leftovers = Vec::new();
        let mut created = BTreeMap::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(seq) = sequence_of(&path) else {
                continue;
            };
            match read_header(&path) {
                Ok((header, size, modified)) => {
                    created.insert(seq, modified);
                    leftovers.push(SpoolEntry {
                        seq,
                        path,
                        size,
                        ranges: header.ranges,
                        records: header.records,
                    })
                }
                Err(err) => {
                    tracing::warn!(file = %path.display(), error = %err, "damaged spool file set aside");
                    set_aside_file(dir, &path)?;
                }
            }
        }
        leftovers.sort_by_key(|entry| entry.seq);
        let state = SpoolState {
            next_seq: leftovers.last().map_or(0, |entry| entry.seq + 1),
            bytes: leftovers.iter().map(|entry| entry.size).sum(),
            created,
        };
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(state),
            space_freed: Condvar::new(),
        };
        Ok((spool, leftovers))
    }

    /// Writes a batch, waiting while the spool is full (a batch larger than the
    /// whole bound is still taken when the spool is empty). Returns `None` if
    /// `stop` was raised while waiting.
    pub fn append(&self, batch: &SealedBatch, stop: &AtomicBool) -> io::Result<Option<SpoolEntry>> {
        let header = serde_json::to_vec(&Header {
            ranges: batch.ranges.clone(),
            records: batch.records,
        })?;
        let size = (header.len() + 1 + batch.body.len()) as u64;
        let seq = {
            let mut state = self.lock();
            while !state.created.is_empty() && state.bytes + size > self.max_bytes {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                state = self
                    .space_freed
                    .wait_timeout(state, Duration::from_millis(200))
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            state.bytes += size;
            state.created.insert(seq, SystemTime::now());
            seq
        };
        let path = self.dir.join(format!("{seq:020}.batch"));
        let written = (|| {
            let mut file = File::create(&path)?;
            file.write_all(&header)?;
            file.write_all(b"\n")?;
            file.write_all(&batch.body)
        })();
        if let Err(err) = written {
            self.forget(seq, size);
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        Ok(Some(SpoolEntry {
            seq,
            path,
            size,
            ranges: batch.ranges.clone(),
            records: batch.records,
        }))
    }

    /// The request body of a spooled batch.
    pub fn body(&self, entry: &SpoolEntry) -> io::Result<Vec<u8>> {
        let mut reader = BufReader::new(File::open(&entry.path)?);
        let mut header = Vec::new();
        reader.read_until(b'\n', &mut header)?;
        let mut body = Vec::with_capacity(entry.size as usize);
        reader.read_to_end(&mut body)?;
        Ok(body)
    }

    /// Deletes an acknowledged batch.
    pub fn remove(&self, entry: &SpoolEntry) {
        if let Err(err) = fs::remove_file(&entry.path) {
            tracing::warn!(file = %entry.path.display(), error = %err, "could not delete an acknowledged spool file");
        }
        self.forget(entry.seq, entry.size);
    }

    /// Moves a batch the aggregator refused to `rejected/`.
    pub fn set_aside(&self, entry: &SpoolEntry) {
        if let Err(err) = set_aside_file(&self.dir, &entry.path) {
            tracing::warn!(file = %entry.path.display(), error = %err, "could not move a rejected batch aside");
        }
        self.forget(entry.seq, entry.size);
    }

    /// Bytes the spool holds now.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// How long ago the oldest batch still in the spool was written (for a
    /// batch left by an earlier run: its file's modification time); `None`
    /// when the spool is empty.
    pub fn oldest_age(&self) -> Option<Duration> {
        let oldest = *self.lock().created.values().next()?;
        // A clock stepped back makes the batch look new rather than failing.
        Some(SystemTime::now().duration_since(oldest).unwrap_or_default())
    }

    fn forget(&self, seq: u64, size: u64) {
        let mut state = self.lock();
        state.bytes = state.bytes.saturating_sub(size);
        state.created.remove(&seq);
        self.space_freed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpoolState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn sequence_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".batch")?.parse().ok()
}

fn read_header(path: &Path) -> io::Result<(Header, u64, SystemTime)> {
    let metadata = fs::metadata(path)?;
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let header = serde_json::from_slice(&line).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    Ok((header, metadata.len(), metadata.modified()?))
}

fn set_aside_file(dir: &Path, path: &Path) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default();
    fs::rename(path, dir.join("rejected").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lookout-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sealed(stream: &str, body: &[u8]) -> SealedBatch {
        SealedBatch {
            body: body.to_vec(),
            ranges: vec![CoveredRange {
                stream: stream.into(),
                start: 0,
                end: 10,
            }],
            records: 2,
        }
    }

    #[test]
    fn batches_survive_a_restart_in_order() {
        let dir = temp_dir("restart");
        let stop = AtomicBool::new(false);
        {
            let (spool, leftovers) = Spool::open(&dir, 1 << 20).unwrap();
            assert!(leftovers.is_empty());
            let first = spool.append(&sealed("a", b"one"), &stop).unwrap().unwrap();
            spool.append(&sealed("b", b"two\n\0"), &stop).unwrap().unwrap();
            assert_eq!(spool.body(&first).unwrap(), b"one");
        }
        fs::write(dir.join("00000000000000000099.batch"), b"not json\n").unwrap();
        let (spool, leftovers) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(leftovers.len(), 2, "the damaged file is set aside");
        assert_eq!(leftovers[0].ranges[0].stream, "a");
        assert_eq!(spool.body(&leftovers[1]).unwrap(), b"two\n\0");
        assert!(dir.join("rejected/00000000000000000099.batch").exists());
        let next = spool.append(&sealed("c", b"three"), &stop).unwrap().unwrap();
        assert_eq!(next.seq, 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_spool_blocks_until_space_is_freed() {
        let dir = temp_dir("full");
        let (spool, _) = Spool::open(&dir, 100).unwrap();
        let stop = AtomicBool::new(false);
        let first = spool.append(&sealed("a", &[7; 60]), &stop).unwrap().unwrap();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| spool.append(&sealed("b", &[8; 60]), &stop).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            assert!(!writer.is_finished(), "the second batch must wait for room");
            spool.remove(&first);
            let second = writer.join().unwrap().expect("written once room was made");
            assert_eq!(spool.bytes(), second.size);
        });
        stop.store(true, Ordering::Relaxed);
        assert!(spool.append(&sealed("c", &[9; 60]), &stop).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oldest_age_follows_the_oldest_batch_still_spooled() {
        let dir = temp_dir("age");
        let stop = AtomicBool::new(false);
        let (spool, _) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(spool.oldest_age(), None, "an empty spool has no oldest batch");
        let first = spool.append(&sealed("a", b"one"), &stop).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let second = spool.append(&sealed("b", b"two"), &stop).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let third = spool.append(&sealed("c", b"three"), &stop).unwrap().unwrap();
        assert!(spool.oldest_age().unwrap() >= Duration::from_millis(100));
        // Acknowledged out of order: the first batch is still the oldest.
        spool.remove(&second);
        assert!(spool.oldest_age().unwrap() >= Duration::from_millis(100));
        spool.remove(&first);
        assert!(spool.oldest_age().unwrap() < Duration::from_millis(50));
        drop(spool);
        let (spool, leftovers) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(leftovers.len(), 1);
        assert!(spool.oldest_age().is_some(), "a leftover counts from its file's time");
        spool.set_aside(&leftovers[0]);
        assert_eq!(spool.oldest_age(), None);
        let _ = third;
        fs::remove_dir_all(&dir).unwrap();
    }
}
