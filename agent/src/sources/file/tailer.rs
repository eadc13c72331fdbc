//! The tailer: one thread that finds, follows and reads every file of every
//! log source, through renames, truncation and deletion, and hands what it
//! reads to the batcher.
//!
//! It wakes on inotify events (via `notify`) and at least every 250 ms, and
//! rescans the globs at least every second (a poll fallback for network
//! filesystems, missed events and inotify queue overflows).
//!
//! Rotation handling, in the terms of docs/SPEC.md:
//! - rename-then-create: the open descriptor keeps reading the renamed file to
//!   its end, until it has not grown for `rotate_wait`, even when the new name
//!   is outside the globs or the file was deleted;
//! - copytruncate: a file shorter than what was read was truncated; whatever
//!   had not been read yet is taken from the copy (a file in the same folder
//!   with the same first line), then the file is read again from byte 0 under
//!   a new identity;
//! - compressed rotations (`.gz` and other compressed data) are never read.
//!
//! After a restart, a checkpointed file that was rotated away while the agent
//! was down is found again by its inode in its old folder and read to its end.

use super::container;
use super::discover::{self, Root};
use super::identity::{FileKey, Head, fingerprint_of, read_head};
use super::open::{Confinement, open_log};
use super::records::{Multiline, RecordReader};
use crate::batch::{BatchBuilder, StreamRead};
use crate::checkpoint::{AckTracker, CheckpointStore, StreamMeta};
use crate::config::{CompiledSource, StartAt};
use crate::rotate;
use crate::sources::{Record, SourceHealth};
use lookout_shared::time::now_ms;
use lookout_shared::wire::stream_id;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Longest sleep between two looks at the open files.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Longest time between two scans of the globs.
const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes read from one file per read call.
const READ_CHUNK: usize = 1024 * 1024;
/// Bytes read from one file before the others get their turn.
const READ_BUDGET: u64 = 8 * 1024 * 1024;

/// Everything the tailer needs from the rest of the agent.
pub struct TailerParts {
    /// Host name for stream ids.
    pub host: String,
    /// The sources.
    pub sources: Vec<CompiledSource>,
    /// The sources of a reloaded configuration, to follow from then on
    /// ([`Tailer::replace_sources`]).
    pub reloaded: Receiver<Vec<CompiledSource>>,
    /// Delivery progress (for resuming) and where new streams are registered.
    pub acks: Arc<Mutex<AckTracker>>,
    /// Where a new stream is saved before any of its bytes is shipped.
    pub checkpoints: Arc<CheckpointStore>,
    /// Whether this is the agent's very first start (no checkpoint file).
    pub first_start: bool,
    /// How long a rotated or deleted file is still read after it last grew.
    pub rotate_wait: Duration,
    /// The batcher.
    pub batch: BatchBuilder,
    /// Sealed batches go here.
    pub batches: SyncSender<lookout_shared::wire::IngestBatch>,
    /// Wake-ups from the file watcher (coalesced: a full channel drops them).
    pub wake: Receiver<()>,
    /// Raised by the file watcher when files were created, renamed or deleted.
    pub rescan: Arc<AtomicBool>,
    /// Adds a folder to the file watcher; returns whether it is watched.
    pub watch: Box<dyn FnMut(&Root) -> bool + Send>,
    /// When the checkpoints this run resumes from were saved (less a margin);
    /// `None` on the first start.
    pub resumed_from: Option<SystemTime>,
    /// Raised to stop.
    pub stop: Arc<AtomicBool>,
    /// Counters.
    pub health: Arc<SourceHealth>,
}

#[derive(Debug)]
struct Identity {
    stream: String,
    fingerprint: u64,
}

#[derive(Debug)]
struct TailedFile {
    file: File,
    key: FileKey,
    /// Where it was found; records keep this as their `source` after a rename.
    path: PathBuf,
    source: usize,
    identity: Option<Identity>,
    reader: RecordReader,
    /// First byte not yet handed to the batcher.
    chunk_start: u64,
    /// Set when the path no longer names this file.
    gone_since: Option<Instant>,
    last_growth: Instant,
    /// When it was created or last rotated, for `max_age`.
    born: SystemTime,
    /// Whether it was found by the first scan of its source, when `start_at`
    /// applies (the agent's first start, or a source a reload added).
    found_at_source_start: bool,
    /// Set after a truncation: the next identity is a new generation.
    truncated: bool,
    /// An identity and offset decided before the file was opened (a copy
    /// that continues a checkpointed stream).
    preset: Option<(StreamMeta, u64)>,
    /// Set when the agent renamed it away (rename rotation): where to, and when.
    renamed: Option<(PathBuf, Instant)>,
    /// Fields every record of the file carries (a container's, from the path).
    fields: BTreeMap<String, String>,
}

/// The tailer; [`Tailer::run`] is its thread.
pub struct Tailer {
    parts: TailerParts,
    files: HashMap<FileKey, TailedFile>,
    /// Files read to their end and closed, with their size then.
    finished: HashMap<FileKey, u64>,
    watched: HashSet<PathBuf>,
    records: Vec<Record>,
    /// Per source, whether it is still to be scanned for the first time
    /// with `start_at` in effect.
    unscanned: Vec<bool>,
    /// The sources before the last reload, until the next scan: a file one
    /// of them named is no new source's to skip with `start_at = "end"`.
    sources_before_reload: Vec<CompiledSource>,
    /// Managed files whose writer ignored a rename rotation: rotated by
    /// copytruncate from then on.
    copytruncate_instead: HashSet<PathBuf>,
}

impl Tailer {
    /// A tailer that has not looked at anything yet.
    pub fn new(parts: TailerParts) -> Tailer {
        Tailer {
            unscanned: vec![parts.first_start; parts.sources.len()],
            sources_before_reload: Vec::new(),
            parts,
            files: HashMap::new(),
            finished: HashMap::new(),
            watched: HashSet::new(),
            records: Vec::new(),
            copytruncate_instead: HashSet::new(),
        }
    }

    /// Runs until `stop` is raised; then seals the last batch and returns.
    /// Fails only if the batch channel is gone (the agent is going down).
    pub fn run(mut self) -> Result<(), SendError> {
        self.scan(Instant::now());
        self.recover_rotated_away();
        let mut last_scan = Instant::now();
        loop {
            if self.parts.stop.load(Ordering::Relaxed) {
                self.seal()?;
                return Ok(());
            }
            if let Ok(sources) = self.parts.reloaded.try_recv() {
                self.replace_sources(sources)?;
                self.parts.rescan.store(true, Ordering::Relaxed);
            }
            let now = Instant::now();
            if self.parts.rescan.swap(false, Ordering::Relaxed) || now.duration_since(last_scan) >= SCAN_INTERVAL {
                self.scan(now);
                last_scan = now;
            }
            let (more, rotated) = self.poll_files(now)?;
            if rotated {
                self.parts.rescan.store(true, Ordering::Relaxed);
            }
            self.close_finished(now)?;
            if self.parts.batch.is_due(now) {
                self.seal()?;
            }
            if more || rotated {
                continue;
            }
            match self.parts.wake.recv_timeout(POLL_INTERVAL) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                // The watcher is gone: polling alone still finds everything.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL_INTERVAL),
            }
        }
    }

    /// Follows `sources` from now on (a reloaded configuration). A file
    /// keeps its stream and offset when a source with the same settings, or
    /// else any source, still names it; that source's labels, line format
    /// and rotation apply to what is handed over from then on, while how
    /// the file is cut into records (`multiline`, `max_record_bytes`, a
    /// container format) changes at its next generation (rotation,
    /// truncation). A file no source names is no longer read: what was read
    /// of it is handed over, and its checkpoint stays, so a source that
    /// names it again resumes there. A source the reload added applies its
    /// `start_at` to the files it finds at once that no source named before.
    fn replace_sources(&mut self, sources: Vec<CompiledSource>) -> Result<(), SendError> {
        let kept: Vec<Option<usize>> = self
            .parts
            .sources
            .iter()
            .map(|old| sources.iter().position(|new| new.config == old.config))
            .collect();
        let mut unnamed = Vec::new();
        for tailed in self.files.values_mut() {
            let now_under = kept
                .get(tailed.source)
                .copied()
                .flatten()
                .or_else(|| sources.iter().position(|source| source.matches(&tailed.path)));
            match now_under {
                Some(index) => tailed.source = index,
                None => unnamed.push(tailed.key),
            }
        }
        for key in unnamed {
            if let Some(mut tailed) = self.files.remove(&key) {
                self.hand_over(&mut tailed)?;
                tracing::info!(file = %tailed.path.display(), "no source names this file any more; no longer read");
            }
        }
        self.unscanned = sources
            .iter()
            .map(|new| !self.parts.sources.iter().any(|old| old.config == new.config))
            .collect();
        tracing::info!(
            sources = sources.len(),
            added = self.unscanned.iter().filter(|added| **added).count(),
            "file sources reloaded"
        );
        self.sources_before_reload = std::mem::replace(&mut self.parts.sources, sources);
        Ok(())
    }

    fn acks(&self) -> MutexGuard<'_, AckTracker> {
        self.parts.acks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Finds new files, and files whose path now names something else.
    fn scan(&mut self, now: Instant) {
        for root in discover::roots(&self.parts.sources) {
            if !self.watched.contains(&root.dir) && root.dir.is_dir() && (self.parts.watch)(&root) {
                self.watched.insert(root.dir.clone());
            }
        }
        let mut discovered = HashSet::new();
        for (path, source) in discover::discover(&self.parts.sources) {
            if self.is_managed_rotation(&path) {
                continue;
            }
            let Ok(metadata) = fs::metadata(&path) else {
                continue;
            };
            let key = FileKey::of(&metadata);
            discovered.insert(key);
            if self.files.contains_key(&key) || self.finished.get(&key) == Some(&metadata.len()) {
                continue;
            }
            match open_log(&path, &self.parts.sources[source].confinement(&path)) {
                Ok(file) => self.open(file, key, path, source, None, None),
                Err(err) => tracing::warn!(file = %path.display(), error = %err, "cannot open a log file"),
            }
        }
        self.unscanned.iter_mut().for_each(|unscanned| *unscanned = false);
        self.sources_before_reload.clear();
        // Only files the globs still name can be found again.
        self.finished.retain(|key, _| discovered.contains(key));
        let mut seen = Vec::new();
        for tailed in self.files.values_mut() {
            let still_named = fs::metadata(&tailed.path).is_ok_and(|metadata| FileKey::of(&metadata) == tailed.key);
            if still_named {
                tailed.gone_since = None;
                if let Some(identity) = &tailed.identity {
                    seen.push((identity.stream.clone(), tailed.path.clone()));
                }
            } else if tailed.gone_since.is_none() {
                tracing::debug!(file = %tailed.path.display(), "file was renamed away or deleted; reading it to its end");
                tailed.gone_since = Some(now);
            }
        }
        let mut acks = self.acks();
        for (stream, path) in seen {
            acks.touch(&stream, &path);
        }
    }

    /// Rotated names of files the agent rotates itself are its own copies.
    fn is_managed_rotation(&self, path: &Path) -> bool {
        rotate::original_of(path).is_some_and(|original| {
            self.parts
                .sources
                .iter()
                .any(|source| source.config.rotate.is_some() && source.matches(&original))
        })
    }

    /// Starts following a file, and works out its identity at once: a
    /// generation left unidentified until the next poll could be truncated
    /// away (copytruncate) in between without anyone noticing.
    fn open(
        &mut self,
        file: File,
        key: FileKey,
        path: PathBuf,
        source: usize,
        gone_since: Option<Instant>,
        preset: Option<(StreamMeta, u64)>,
    ) {
        let born = file
            .metadata()
            .and_then(|metadata| metadata.created())
            .unwrap_or_else(|_| SystemTime::now());
        tracing::debug!(file = %path.display(), "following");
        let found_at_source_start = self.unscanned.get(source).copied().unwrap_or(false)
            && !self.sources_before_reload.iter().any(|old| old.matches(&path));
        let fields = match self.parts.sources[source].config.format.container() {
            Some(_) => container::path_fields(&path),
            None => BTreeMap::new(),
        };
        let mut tailed = TailedFile {
            file,
            key,
            path,
            source,
            identity: None,
            reader: RecordReader::new(0, 0, None),
            chunk_start: 0,
            gone_since,
            last_growth: Instant::now(),
            born,
            found_at_source_start,
            truncated: false,
            preset,
            renamed: None,
            fields,
        };
        if let Err(Skip) = self.resolve(&mut tailed) {
            let size = tailed.file.metadata().map_or(0, |metadata| metadata.len());
            self.finished.insert(key, size);
            return;
        }
        self.files.insert(key, tailed);
    }

    /// After a restart: files rotated out of the globs while the agent was
    /// down, in the folders of checkpointed files. Each is read to its end:
    /// - a checkpointed file under another name (same inode and fingerprint);
    /// - a copytruncate copy of a checkpointed file (same fingerprint, another
    ///   inode), from the checkpointed offset on, as the same stream;
    /// - a rotated sibling (`X.N` of a followed `X`) nobody has read, written
    ///   after the last checkpoint: created and rotated away in the downtime.
    fn recover_rotated_away(&mut self) {
        let Some(since) = self.parts.resumed_from else {
            return;
        };
        let entries = self.acks().entries();
        let dirs: BTreeSet<PathBuf> = entries
            .iter()
            .filter_map(|(meta, _)| meta.path.parent().map(Path::to_path_buf))
            .collect();
        for dir in dirs {
            let Ok(listing) = fs::read_dir(&dir) else {
                continue;
            };
            // Rotated files lie beside the ones they were: nothing here may lead elsewhere.
            let confinement = Confinement::Beneath(dir.clone());
            for path in listing.flatten().map(|entry| entry.path()) {
                let Some((key, fingerprint, size)) = fingerprint_of(&path, &confinement) else {
                    continue;
                };
                if self.files.contains_key(&key) {
                    continue;
                }
                let same_file = entries
                    .iter()
                    .find(|(meta, _)| meta.inode == key.ino && meta.fingerprint == fingerprint);
                let copy_of = entries
                    .iter()
                    .find(|(meta, _)| meta.inode != key.ino && meta.fingerprint == fingerprint);
                let (original, preset) = match (same_file, copy_of) {
                    (Some((meta, offset)), _) if size > *offset => (meta.path.clone(), None),
                    (Some(_), _) => continue,
                    (None, Some((meta, offset))) if size > *offset => {
                        (meta.path.clone(), Some((meta.clone(), *offset)))
                    }
                    (None, Some(_)) => continue,
                    (None, None) => {
                        let written_since = fs::metadata(&path)
                            .and_then(|metadata| metadata.modified())
                            .is_ok_and(|modified| modified >= since);
                        match rotate::original_of(&path) {
                            Some(original) if written_since => (original, None),
                            _ => continue,
                        }
                    }
                };
                let Some(source) = self.parts.sources.iter().position(|source| source.matches(&original)) else {
                    continue;
                };
                if let Ok(file) = open_log(&path, &confinement) {
                    tracing::info!(file = %path.display(), was = %original.display(), "reading the rest of a file rotated while the agent was down");
                    self.open(file, key, original, source, Some(Instant::now()), preset);
                }
            }
        }
    }

    /// Reads what every open file has new. Returns whether some file has more
    /// to read than its budget allowed, and whether the agent rotated a file.
    fn poll_files(&mut self, now: Instant) -> Result<(bool, bool), SendError> {
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        let mut more = false;
        let mut rotated = false;
        for key in keys {
            let Some(mut tailed) = self.files.remove(&key) else {
                continue;
            };
            let keep = self.poll_file(&mut tailed, now, &mut more, &mut rotated);
            let keep = match keep {
                Ok(keep) => keep,
                Err(err) => {
                    self.files.insert(key, tailed);
                    return Err(err);
                }
            };
            if keep {
                self.files.insert(key, tailed);
            } else {
                let size = tailed.file.metadata().map_or(0, |metadata| metadata.len());
                self.finished.insert(key, size);
            }
        }
        Ok((more, rotated))
    }

    /// Returns whether to keep the file open (not: it is compressed data).
    fn poll_file(
        &mut self,
        tailed: &mut TailedFile,
        now: Instant,
        more: &mut bool,
        rotated: &mut bool,
    ) -> Result<bool, SendError> {
        if tailed.identity.is_none() {
            match self.resolve(tailed) {
                Ok(true) => {}
                Ok(false) => return Ok(true),
                Err(Skip) => return Ok(false),
            }
        }
        // A new first line means new content, however long the file is now:
        // truncated and rewritten past the old length between two polls.
        let rewritten = tailed.identity.as_ref().is_some_and(|identity| {
            matches!(read_head(&tailed.file), Ok(Head::Fingerprint(fingerprint)) if fingerprint != identity.fingerprint)
        });
        if rewritten {
            self.handle_truncation(tailed)?;
            return Ok(true);
        }
        let size = match tailed.file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(err) => {
                tracing::warn!(file = %tailed.path.display(), error = %err, "cannot stat an open log file");
                return Ok(true);
            }
        };
        if size < tailed.reader.read_offset() {
            self.handle_truncation(tailed)?;
            return Ok(true);
        }
        if size > tailed.reader.read_offset() {
            let exhausted = self.read_available(tailed, READ_BUDGET)?;
            *more |= !exhausted;
            tailed.last_growth = now;
        }
        tailed.reader.flush_stale(now, &mut self.records);
        // A last line without its newline that has waited `rotate_wait`: the
        // writer is done with it (a file that ends without a newline).
        let idle = now.duration_since(tailed.last_growth) >= self.parts.rotate_wait;
        if idle && tailed.reader.holds_partial_line() {
            tailed.reader.finish(&mut self.records);
        }
        self.hand_over(tailed)?;
        self.check_rename_took(tailed);
        if tailed.gone_since.is_none() && self.rotation_due(tailed, size) {
            *rotated |= self.rotate(tailed, now)?;
        }
        Ok(true)
    }

    /// A file the agent renamed that still grows `rotate_wait` after the
    /// rename has a writer that never reopened its log: left alone, the
    /// renamed file would grow without bound. Its name is given back (in
    /// place of the empty file the rotation created) and the file is rotated
    /// by copytruncate from now on, with a warning that says how to fix it.
    fn check_rename_took(&mut self, tailed: &mut TailedFile) {
        let Some((renamed_to, at)) = tailed.renamed.clone() else {
            return;
        };
        if tailed.last_growth < at + self.parts.rotate_wait {
            return;
        }
        tailed.renamed = None;
        // Only an empty regular file (the one the rotation made) gives way.
        let fresh_is_empty = match fs::symlink_metadata(&tailed.path) {
            Ok(metadata) => metadata.is_file() && metadata.len() == 0,
            Err(err) => err.kind() == io::ErrorKind::NotFound,
        };
        let moved_back = fresh_is_empty
            && rotate::remove_if_present(&tailed.path).is_ok()
            && fs::rename(&renamed_to, &tailed.path).is_ok();
        tracing::warn!(
            file = %tailed.path.display(),
            renamed_to = %renamed_to.display(),
            moved_back,
            "the writer kept writing to the renamed file after a rotation (it does not reopen its log): \
             rotating this file by copytruncate from now on; set the source's rotate.post_command to make \
             the writer reopen, or rotate.mode = \"copytruncate\""
        );
        if moved_back {
            tailed.gone_since = None;
        }
        self.copytruncate_instead.insert(tailed.path.clone());
    }

    /// Works out the file's identity and where to start reading it. `Ok(false)`
    /// while its first line is incomplete.
    fn resolve(&mut self, tailed: &mut TailedFile) -> Result<bool, Skip> {
        let fingerprint = match read_head(&tailed.file) {
            Ok(Head::Fingerprint(fingerprint)) => fingerprint,
            Ok(Head::Incomplete) => return Ok(false),
            Ok(Head::Compressed) => {
                tracing::debug!(file = %tailed.path.display(), "compressed file: not read");
                return Err(Skip);
            }
            Err(err) => {
                tracing::warn!(file = %tailed.path.display(), error = %err, "cannot read a log file");
                return Ok(false);
            }
        };
        let size = tailed.file.metadata().map_or(0, |metadata| metadata.len());
        let source = &self.parts.sources[tailed.source];
        if let Some((meta, offset)) = tailed.preset.take() {
            return Ok(self.start_reading(tailed, meta, offset));
        }
        let known = self.acks().lookup(tailed.key.ino, fingerprint);
        let (generation, start) = match known {
            Some((generation, _)) if tailed.truncated => (generation + 1, 0),
            Some((generation, offset)) if size < offset => (generation + 1, 0),
            Some((generation, offset)) => (generation, offset),
            None if tailed.found_at_source_start && source.config.start_at == StartAt::End => {
                (0, end_of_last_line(&tailed.file, size))
            }
            None => (0, 0),
        };
        let meta = StreamMeta {
            stream: stream_id(&self.parts.host, tailed.key.ino, fingerprint, generation),
            inode: tailed.key.ino,
            fingerprint,
            generation,
            path: tailed.path.clone(),
        };
        let is_new = known.is_none_or(|(known_generation, _)| known_generation != generation);
        let started = self.start_reading(tailed, meta, start);
        // A new stream's identity is on disk before any of its bytes leave the
        // agent: after a crash, a copy of this file (copytruncate) is then
        // recognised as this stream and not sent again under another id.
        if started
            && is_new
            && let Err(err) = self.parts.checkpoints.save_from(&self.parts.acks)
        {
            tracing::error!(error = %err, "cannot save the checkpoints");
        }
        Ok(started)
    }

    /// Positions the file at `start` and registers its stream.
    fn start_reading(&mut self, tailed: &mut TailedFile, meta: StreamMeta, start: u64) -> bool {
        let source = &self.parts.sources[tailed.source];
        if let Err(err) = tailed.file.seek(SeekFrom::Start(start)) {
            tracing::warn!(file = %tailed.path.display(), error = %err, "cannot seek in a log file");
            return false;
        }
        let multiline = match (&source.multiline_start, &source.config.multiline) {
            (Some(start), Some(config)) => Some(Multiline {
                start: start.clone(),
                timeout: config.timeout.get(),
            }),
            _ => None,
        };
        tailed.reader = RecordReader::new(start, source.config.max_record_bytes.bytes() as usize, multiline)
            .with_container(source.config.format.container());
        tailed.chunk_start = start;
        tailed.truncated = false;
        tracing::info!(file = %tailed.path.display(), stream = %meta.stream, offset = start, "reading");
        tailed.identity = Some(Identity {
            stream: meta.stream.clone(),
            fingerprint: meta.fingerprint,
        });
        self.acks().register(meta, start);
        true
    }

    /// Reads up to `budget` bytes; returns whether the file's end was reached.
    fn read_available(&mut self, tailed: &mut TailedFile, budget: u64) -> Result<bool, SendError> {
        let mut taken = 0u64;
        while taken < budget {
            let read = tailed
                .reader
                .fill_from(&mut tailed.file, READ_CHUNK, Instant::now(), &mut self.records);
            match read {
                Ok(0) => return Ok(true),
                Ok(read) => {
                    taken += read as u64;
                    self.parts.health.count_read(0, read);
                    self.hand_over(tailed)?;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    tracing::warn!(file = %tailed.path.display(), error = %err, "reading a log file failed");
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Gives the batcher the records read and the bytes they settle.
    fn hand_over(&mut self, tailed: &mut TailedFile) -> Result<(), SendError> {
        let Some(identity) = &tailed.identity else {
            return Ok(());
        };
        let end = tailed.reader.settled_offset();
        if end == tailed.chunk_start && self.records.is_empty() {
            return Ok(());
        }
        self.parts.health.count_read(self.records.len(), 0);
        let source = &self.parts.sources[tailed.source];
        let read = StreamRead {
            stream: &identity.stream,
            source: &tailed.path.to_string_lossy(),
            labels: &source.config.labels,
            format: &source.line_format,
            fields: &tailed.fields,
            start: tailed.chunk_start,
            end,
            read_at_ms: now_ms(),
        };
        self.parts.batch.add(read, &mut self.records);
        tailed.chunk_start = end;
        if self.parts.batch.is_full() {
            self.seal()?;
        }
        Ok(())
    }

    /// The file is shorter than what was read: it was truncated (copytruncate).
    fn handle_truncation(&mut self, tailed: &mut TailedFile) -> Result<(), SendError> {
        if let Some(identity) = &tailed.identity {
            let read_offset = tailed.reader.read_offset();
            let dir = tailed.path.parent().unwrap_or(Path::new("/"));
            if let Some(copy) = find_copy(dir, identity.fingerprint, tailed.key.ino, read_offset) {
                let confinement = Confinement::Beneath(dir.to_path_buf());
                match open_log(&copy, &confinement)
                    .and_then(|mut file| file.seek(SeekFrom::Start(read_offset)).map(|_| file))
                {
                    Ok(mut file) => {
                        let before = tailed.reader.read_offset();
                        while let Ok(read) =
                            tailed
                                .reader
                                .fill_from(&mut file, READ_CHUNK, Instant::now(), &mut self.records)
                        {
                            if read == 0 {
                                break;
                            }
                            self.hand_over(tailed)?;
                        }
                        tracing::info!(file = %tailed.path.display(), copy = %copy.display(), bytes = tailed.reader.read_offset() - before, "file was truncated; read its unread tail from the copy");
                    }
                    Err(err) => {
                        tracing::warn!(copy = %copy.display(), error = %err, "cannot read the copy of a truncated file")
                    }
                }
            } else {
                tracing::info!(file = %tailed.path.display(), "file was truncated; reading it again from the start");
            }
            tailed.reader.finish(&mut self.records);
            self.hand_over(tailed)?;
        }
        tailed.identity = None;
        tailed.truncated = true;
        tailed.reader = RecordReader::new(0, 0, None);
        tailed.chunk_start = 0;
        tailed.born = SystemTime::now();
        Ok(())
    }

    fn rotation_due(&self, tailed: &TailedFile, size: u64) -> bool {
        let Some(policy) = &self.parts.sources[tailed.source].config.rotate else {
            return false;
        };
        let too_big = policy.max_size.is_some_and(|max| size >= max.bytes());
        let too_old = policy.max_age.is_some_and(|max_age| {
            size > 0
                && SystemTime::now()
                    .duration_since(tailed.born)
                    .is_ok_and(|age| age >= max_age.get())
        });
        too_big || too_old
    }

    /// Reads the file to its end, then rotates it. Returns whether it rotated.
    fn rotate(&mut self, tailed: &mut TailedFile, now: Instant) -> Result<bool, SendError> {
        while !self.read_available(tailed, u64::MAX)? {}
        self.hand_over(tailed)?;
        let Some(mut policy) = self.parts.sources[tailed.source].config.rotate.clone() else {
            return Ok(false);
        };
        if self.copytruncate_instead.contains(&tailed.path) {
            policy.mode = crate::config::RotateMode::Copytruncate;
        }
        match rotate::rotate(&tailed.path, &policy) {
            Ok(rotation) => {
                tracing::info!(file = %tailed.path.display(), to = %rotation.rotated_to.display(), bytes = rotation.bytes, "rotated");
                if policy.mode == crate::config::RotateMode::Rename {
                    tailed.gone_since = Some(now);
                    tailed.renamed = Some((rotation.rotated_to, now));
                }
                Ok(true)
            }
            Err(err) => {
                tracing::error!(file = %tailed.path.display(), error = %err, "rotation failed");
                Ok(false)
            }
        }
    }

    /// Closes rotated-away or deleted files that are read to their end and
    /// have not grown for `rotate_wait`.
    fn close_finished(&mut self, now: Instant) -> Result<(), SendError> {
        let done: Vec<FileKey> = self
            .files
            .values()
            .filter(|tailed| {
                tailed.gone_since.is_some()
                    && now.duration_since(tailed.last_growth) >= self.parts.rotate_wait
                    && tailed
                        .file
                        .metadata()
                        .is_ok_and(|metadata| metadata.len() <= tailed.reader.read_offset())
            })
            .map(|tailed| tailed.key)
            .collect();
        for key in done {
            let Some(mut tailed) = self.files.remove(&key) else {
                continue;
            };
            tailed.reader.finish(&mut self.records);
            self.hand_over(&mut tailed)?;
            tracing::debug!(file = %tailed.path.display(), "rotated file read to its end; closed");
            self.finished.insert(key, tailed.reader.read_offset());
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<(), SendError> {
        if let Some(batch) = self.parts.batch.take() {
            self.parts.batches.send(batch).map_err(|_| SendError)?;
        }
        Ok(())
    }
}

/// The batch channel is closed: the agent is going down.
#[derive(Debug, thiserror::Error)]
#[error("the batch channel is closed")]
pub struct SendError;

/// A file that is not to be read (compressed data).
struct Skip;

/// Where a file found at the first start with `start_at = "end"` begins: after
/// its last complete line, so a line being written is not read from its middle.
fn end_of_last_line(file: &File, size: u64) -> u64 {
    let window = size.min(64 * 1024);
    let mut tail = vec![0u8; window as usize];
    match file.read_exact_at(&mut tail, size - window) {
        Ok(()) => memchr::memrchr(b'\n', &tail).map_or(size - window, |at| size - window + at as u64 + 1),
        Err(_) => size,
    }
}

/// The copy copytruncate made of a file: same first line, another inode, at
/// least as long as what was read of the original.
fn find_copy(dir: &Path, fingerprint: u64, ino: u64, min_size: u64) -> Option<PathBuf> {
    let confinement = Confinement::Beneath(dir.to_path_buf());
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            fingerprint_of(path, &confinement)
                .is_some_and(|(key, found, size)| key.ino != ino && found == fingerprint && size >= min_size)
        })
}
