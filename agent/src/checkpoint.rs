//! How far each file has been delivered, and the file that remembers it.
//!
//! [`AckTracker`] holds, per stream, the offset up to which the aggregator has
//! acknowledged every byte (`acked_upto`) and the acknowledged ranges beyond it
//! that arrived out of order. [`CheckpointStore`] writes a snapshot of it
//! atomically (temp file, fsync, rename, fsync of the folder).
//!
//! Invariant: a checkpoint never moves past a byte the aggregator has not
//! acknowledged, so a restart re-reads (and re-sends, with the same record ids)
//! at most what was in flight.

use lookout_shared::time::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// What identifies a file across renames and restarts (see `lookout_shared::wire::stream_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    /// The stream id records carry.
    pub stream: String,
    /// Inode of the file.
    pub inode: u64,
    /// Hash of the file's first line (at most 256 bytes).
    pub fingerprint: u64,
    /// Truncations of the same content seen so far.
    pub generation: u32,
    /// The path the file was last seen at.
    pub path: PathBuf,
}

/// One stream's entry in the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCheckpoint {
    /// The file.
    #[serde(flatten)]
    pub meta: StreamMeta,
    /// Every byte before this one has been acknowledged.
    pub offset: u64,
    /// When this entry last changed or its file was last seen, Unix ms.
    pub updated_ms: i64,
}

/// Where the journal source resumes: the last entry of its stream that the
/// aggregator acknowledged (and every one before it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalCheckpoint {
    /// The stream id records carry (one per journal sequence).
    pub stream: String,
    /// The journal's sequence id (`s=` of its cursors).
    pub seqnum_id: String,
    /// Every entry of the sequence before this sequence number has been
    /// acknowledged.
    pub offset: u64,
    /// The cursor of entry `offset - 1`, for `journalctl --after-cursor`.
    pub cursor: String,
    /// When this entry last changed, Unix ms.
    pub updated_ms: i64,
}

/// What a checkpoint file holds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    /// One entry per file stream.
    pub streams: Vec<StreamCheckpoint>,
    /// One entry per journal sequence read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalCheckpoint>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    #[serde(flatten)]
    checkpoints: Checkpoints,
}

/// Most cursors a journal stream keeps for ranges not yet acknowledged.
const MAX_PENDING_CURSORS: usize = 4096;

/// Entries of files not seen for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Reads and writes `checkpoints.json` in the state folder.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    /// Serialises writers, so snapshots reach the disk in the order taken.
    writing: Mutex<()>,
}

impl CheckpointStore {
    /// The store in `state_dir`, and what it holds: `None` when there is no
    /// checkpoint file yet, i.e. this is the agent's very first start.
    pub fn open(state_dir: &Path) -> io::Result<(CheckpointStore, Option<Checkpoints>)> {
        let path = state_dir.join("checkpoints.json");
        let existing = match fs::read(&path) {
            Ok(bytes) => {
                let file: CheckpointFile = serde_json::from_slice(&bytes).map_err(|err| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is damaged ({err}); move it away to start over", path.display()),
                    )
                })?;
                Some(file.checkpoints)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        Ok((
            CheckpointStore {
                path,
                writing: Mutex::new(()),
            },
            existing,
        ))
    }

    /// When the checkpoint file was last written.
    pub fn saved_at(&self) -> Option<SystemTime> {
        fs::metadata(&self.path).and_then(|metadata| metadata.modified()).ok()
    }

    /// Saves what `acks` holds now, if it changed since the last save.
    pub fn save_from(&self, acks: &Mutex<AckTracker>) -> io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let snapshot = acks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take_snapshot();
        match snapshot {
            Some(checkpoints) => self.write(checkpoints),
            None => Ok(()),
        }
    }

    /// Replaces the checkpoint file with `checkpoints`, atomically and durably.
    fn write(&self, checkpoints: Checkpoints) -> io::Result<()> {
        let body = serde_json::to_vec(&CheckpointFile {
            version: 1,
            checkpoints,
        })?;
        let temp = self.path.with_extension("json.tmp");
        let mut file = File::create(&temp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct StreamProgress {
    meta: Option<StreamMeta>,
    /// Set for a journal stream.
    journal: Option<JournalProgress>,
    acked_upto: u64,
    /// Acknowledged ranges past `acked_upto`: start → end, disjoint.
    ahead: BTreeMap<u64, u64>,
    updated_ms: i64,
}

/// A journal stream's cursors: where to resume is known only as a cursor,
/// so the source leaves one for the end of each range it hands over.
#[derive(Debug, Default)]
struct JournalProgress {
    seqnum_id: String,
    /// The cursor of entry `acked_upto - 1`, once one is acknowledged.
    acked_cursor: Option<String>,
    /// Cursors of ranges not yet acknowledged: range end → cursor of the
    /// entry before it.
    pending: BTreeMap<u64, String>,
}

/// Acknowledged progress of every stream; shared by the tailer (which
/// registers streams), the shipper (which acknowledges ranges) and the
/// checkpoint task (which saves snapshots).
#[derive(Debug, Default)]
pub struct AckTracker {
    streams: HashMap<String, StreamProgress>,
    dirty: bool,
}

impl AckTracker {
    /// A tracker that resumes from a checkpoint file's entries.
    pub fn from_checkpoints(checkpoints: Checkpoints) -> AckTracker {
        let files = checkpoints.streams.into_iter().map(|entry| {
            let progress = StreamProgress {
                meta: Some(entry.meta.clone()),
                acked_upto: entry.offset,
                updated_ms: entry.updated_ms,
                ..StreamProgress::default()
            };
            (entry.meta.stream, progress)
        });
        let journal = checkpoints.journal.into_iter().map(|entry| {
            let progress = StreamProgress {
                journal: Some(JournalProgress {
                    seqnum_id: entry.seqnum_id,
                    acked_cursor: Some(entry.cursor),
                    pending: BTreeMap::new(),
                }),
                acked_upto: entry.offset,
                updated_ms: entry.updated_ms,
                ..StreamProgress::default()
            };
            (entry.stream, progress)
        });
        AckTracker {
            streams: files.chain(journal).collect(),
            dirty: false,
        }
    }

    /// Where the journal source resumes: the journal stream acknowledged
    /// most recently.
    pub fn journal_resume(&self) -> Option<JournalCheckpoint> {
        self.journal_checkpoints()
            .max_by_key(|entry| (entry.updated_ms, entry.offset))
    }

    /// Starts tracking a journal stream whose reading begins at `start`.
    pub fn register_journal(&mut self, stream: &str, seqnum_id: &str, start: u64) {
        let progress = self.streams.entry(stream.to_owned()).or_insert_with(|| StreamProgress {
            acked_upto: start,
            ..StreamProgress::default()
        });
        progress.journal.get_or_insert_with(|| JournalProgress {
            seqnum_id: seqnum_id.to_owned(),
            ..JournalProgress::default()
        });
        progress.updated_ms = now_ms();
        absorb_ahead(progress);
        self.dirty = true;
    }

    /// The journal source handed over its stream up to `end`; `cursor` is
    /// the cursor of entry `end - 1`, which becomes the resume point once
    /// everything before `end` is acknowledged.
    pub fn expect_cursor(&mut self, stream: &str, end: u64, cursor: String) {
        if let Some(progress) = self.streams.get_mut(stream) {
            if let Some(journal) = progress.journal.as_mut() {
                if journal.pending.len() >= MAX_PENDING_CURSORS {
                    // During a long outage: keep every other one. A cursor
                    // further back is still a safe resume point (what lies
                    // after it is read again and skipped as delivered).
                    let mut keep = false;
                    journal.pending.retain(|_, _| {
                        keep = !keep;
                        keep
                    });
                }
                journal.pending.insert(end, cursor);
            }
            progress.updated_ms = now_ms();
            absorb_ahead(progress);
            self.dirty = true;
        }
    }

    fn journal_checkpoints(&self) -> impl Iterator<Item = JournalCheckpoint> + '_ {
        self.streams.iter().filter_map(|(stream, progress)| {
            let journal = progress.journal.as_ref()?;
            Some(JournalCheckpoint {
                stream: stream.clone(),
                seqnum_id: journal.seqnum_id.clone(),
                offset: progress.acked_upto,
                cursor: journal.acked_cursor.clone()?,
                updated_ms: progress.updated_ms,
            })
        })
    }

    /// The newest generation known for a file and the offset to resume it at.
    pub fn lookup(&self, inode: u64, fingerprint: u64) -> Option<(u32, u64)> {
        self.streams
            .values()
            .filter_map(|progress| progress.meta.as_ref().map(|meta| (meta, progress.acked_upto)))
            .filter(|(meta, _)| meta.inode == inode && meta.fingerprint == fingerprint)
            .map(|(meta, offset)| (meta.generation, offset))
            .max_by_key(|(generation, _)| *generation)
    }

    /// The last known entries whose file is not open, to look for after a restart.
    pub fn entries(&self) -> Vec<(StreamMeta, u64)> {
        self.streams
            .values()
            .filter_map(|progress| progress.meta.clone().map(|meta| (meta, progress.acked_upto)))
            .collect()
    }

    /// Starts tracking a stream whose reading begins at `start` (all before it
    /// counts as delivered); a stream already tracked keeps its progress.
    pub fn register(&mut self, meta: StreamMeta, start: u64) {
        let now = now_ms();
        let progress = self
            .streams
            .entry(meta.stream.clone())
            .or_insert_with(|| StreamProgress {
                acked_upto: start,
                updated_ms: now,
                ..StreamProgress::default()
            });
        progress.meta = Some(meta);
        progress.updated_ms = now;
        progress.acked_upto = progress.acked_upto.max(start);
        absorb_ahead(progress);
        self.dirty = true;
    }

    /// Records that the file of `stream` was seen at `path` now.
    pub fn touch(&mut self, stream: &str, path: &Path) {
        if let Some(progress) = self.streams.get_mut(stream) {
            progress.updated_ms = now_ms();
            if let Some(meta) = progress.meta.as_mut().filter(|meta| meta.path != path) {
                meta.path = path.to_path_buf();
                self.dirty = true;
            }
        }
    }

    /// The aggregator holds bytes `[start, end)` of `stream`.
    pub fn ack(&mut self, stream: &str, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let progress = self
            .streams
            .entry(stream.to_string())
            .or_insert_with(|| StreamProgress {
                updated_ms: now_ms(),
                ..StreamProgress::default()
            });
        if start <= progress.acked_upto {
            progress.acked_upto = progress.acked_upto.max(end);
        } else {
            let merged_end = progress.ahead.get(&start).map_or(end, |&old| old.max(end));
            progress.ahead.insert(start, merged_end);
        }
        absorb_ahead(progress);
        progress.updated_ms = now_ms();
        self.dirty = true;
    }

    /// The offset up to which `stream` is acknowledged.
    pub fn acked_upto(&self, stream: &str) -> Option<u64> {
        self.streams.get(stream).map(|progress| progress.acked_upto)
    }

    /// The entries to save, if anything changed since the last call; drops
    /// entries whose file has not been seen for a week.
    pub fn take_snapshot(&mut self) -> Option<Checkpoints> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let horizon = now_ms() - FORGET_AFTER.as_millis() as i64;
        self.streams.retain(|_, progress| progress.updated_ms >= horizon);
        let streams = self
            .streams
            .values()
            .filter_map(|progress| {
                progress.meta.clone().map(|meta| StreamCheckpoint {
                    meta,
                    offset: progress.acked_upto,
                    updated_ms: progress.updated_ms,
                })
            })
            .collect();
        Some(Checkpoints {
            streams,
            journal: self.journal_checkpoints().collect(),
        })
    }
}

fn absorb_ahead(progress: &mut StreamProgress) {
    while let Some((&start, &end)) = progress.ahead.first_key_value() {
        if start > progress.acked_upto {
            break;
        }
        progress.acked_upto = progress.acked_upto.max(end);
        progress.ahead.remove(&start);
    }
    if let Some(journal) = progress.journal.as_mut() {
        // The newest cursor at or before the acknowledged end; older ones are done.
        while let Some(entry) = journal.pending.first_entry() {
            if *entry.key() > progress.acked_upto {
                break;
            }
            journal.acked_cursor = Some(entry.remove());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(stream: &str) -> StreamMeta {
        StreamMeta {
            stream: stream.into(),
            inode: 7,
            fingerprint: 9,
            generation: 0,
            path: "/var/log/a.log".into(),
        }
    }

    #[test]
    fn out_of_order_acks_advance_only_when_contiguous() {
        let mut acks = AckTracker::default();
        acks.register(meta("s"), 100);
        acks.ack("s", 200, 300);
        assert_eq!(
            acks.acked_upto("s"),
            Some(100),
            "a gap at 100..200 holds the checkpoint back"
        );
        acks.ack("s", 300, 350);
        acks.ack("s", 100, 200);
        assert_eq!(acks.acked_upto("s"), Some(350));
        acks.ack("s", 0, 50);
        assert_eq!(acks.acked_upto("s"), Some(350), "an old range never moves it back");
    }

    #[test]
    fn acks_before_registration_are_kept() {
        let mut acks = AckTracker::default();
        acks.ack("s", 500, 600);
        acks.register(meta("s"), 500);
        assert_eq!(acks.acked_upto("s"), Some(600));
    }

    #[test]
    fn lookup_finds_the_newest_generation() {
        let mut acks = AckTracker::default();
        acks.register(meta("a"), 10);
        acks.register(
            StreamMeta {
                generation: 1,
                stream: "b".into(),
                ..meta("a")
            },
            0,
        );
        acks.ack("b", 0, 5);
        assert_eq!(acks.lookup(7, 9), Some((1, 5)));
        assert_eq!(acks.lookup(7, 10), None);
    }

    #[test]
    fn store_round_trips_and_reports_first_start() {
        let dir = std::env::temp_dir().join(format!("lookout-ckpt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (store, existing) = CheckpointStore::open(&dir).unwrap();
        assert!(existing.is_none());
        let acks = Mutex::new(AckTracker::default());
        acks.lock().unwrap().register(meta("s"), 42);
        store.save_from(&acks).unwrap();
        assert!(acks.lock().unwrap().take_snapshot().is_none(), "nothing changed since");
        let (_, existing) = CheckpointStore::open(&dir).unwrap();
        let restored = AckTracker::from_checkpoints(existing.unwrap());
        assert_eq!(restored.lookup(7, 9), Some((0, 42)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_journal_cursor_is_saved_only_once_acknowledged() {
        let mut acks = AckTracker::default();
        acks.register_journal("j", "seq", 10);
        acks.expect_cursor("j", 20, "cursor-19".into());
        acks.expect_cursor("j", 30, "cursor-29".into());
        assert_eq!(acks.journal_resume(), None, "nothing acknowledged yet");
        acks.ack("j", 20, 30);
        assert_eq!(acks.journal_resume(), None, "10..20 is still in flight");
        acks.ack("j", 10, 20);
        let resume = acks.journal_resume().unwrap();
        assert_eq!((resume.offset, resume.cursor.as_str()), (30, "cursor-29"));
        let saved = acks.take_snapshot().unwrap();
        assert_eq!(saved.journal, vec![resume.clone()]);
        let restored = AckTracker::from_checkpoints(saved);
        assert_eq!(restored.journal_resume(), Some(resume));
    }

    #[test]
    fn pending_cursors_are_bounded_and_the_resume_point_never_passes_the_acks() {
        let mut acks = AckTracker::default();
        acks.register_journal("j", "seq", 0);
        for end in 1..=10_000u64 {
            acks.expect_cursor("j", end, format!("cursor-{}", end - 1));
        }
        let pending = acks.streams["j"].journal.as_ref().unwrap().pending.len();
        assert!(pending <= MAX_PENDING_CURSORS, "{pending} cursors kept");
        acks.ack("j", 0, 5_000);
        let resume = acks.journal_resume().unwrap();
        let (_, entry) = resume.cursor.split_once('-').unwrap();
        assert!(entry.parse::<u64>().unwrap() < 5_000, "{resume:?}");
        assert_eq!(resume.offset, 5_000);
    }

    #[test]
    fn checkpoint_files_without_a_journal_section_still_load() {
        let file: CheckpointFile = serde_json::from_str(
            r#"{"version":1,"streams":[{"stream":"s","inode":7,"fingerprint":9,"generation":0,"path":"/a","offset":5,"updated_ms":1}]}"#,
        )
        .unwrap();
        assert_eq!(file.checkpoints.streams.len(), 1);
        assert!(file.checkpoints.journal.is_empty());
    }
}
