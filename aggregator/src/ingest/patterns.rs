//! Each record's pattern ([`lookout_patterns`]): mined at ingest from the
//! message after its time, kept as the extracted field `pattern`, so that
//! `pattern:<id>` works wherever a field does (search, stats, rules, tail).
//!
//! An id is `<generation>-<number>` in hex: the number is the miner's, and
//! the generation is the time (Unix microseconds) the miner's state began. The
//! state is kept in `data_dir/patterns.json.zst` (written every
//! [`SAVE_EVERY`] when it changed, at a stop, and before any id past the
//! last reservation is given), so ids mean the same across restarts:
//! - numbers are reserved [`RESERVE`] at a time and the reservation written
//!   (and its folder synced) before they are given, so a restart after a
//!   crash never gives again a number given before it; a clean stop keeps
//!   no reservation, so a start skips none;
//! - a state file that is missing or refused starts a new generation, so
//!   its ids never meet those of records already stored.
//!
//! Each id also keeps when it was first given: the time of its first line
//! and the time that line arrived ([`FirstSeen`]), which tell what is new
//! in a range (the patterns API) and since when (the `new_pattern` rule).
//!
//! The state is copied under the miner's lock and written outside it.
//! What it does not do yet: patterns mined after the last write before a
//! crash are mined again under new numbers (lines before and after carry
//! different ids); a live tail follows the ids a pattern had when it
//! connected.

use anyhow::Context as _;
use lookout_patterns::shape::Shape;
use lookout_patterns::{Miner, PatternId, Settings, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The state file under `data_dir`.
pub const FILE_NAME: &str = "patterns.json.zst";
/// How often a changed state is written.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);
/// Numbers reserved by one write of the state.
const RESERVE: u32 = 4096;
/// Lines shaped together and then mined under one lock: a line's shape
/// takes a few times its message's bytes, so a large chunk goes in slices.
const MINED_AT_ONCE: usize = 1024;
/// After a failed write of the state, how long before another is tried.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// The field a record's pattern id is kept in; a line's own field of this
/// name is kept as [`OWN_FIELD`].
pub const FIELD: &str = crate::store::schema::PATTERN_FIELD;
/// Where a line's own `pattern` field goes.
pub const OWN_FIELD: &str = "line.pattern";

/// What the state file holds.
#[derive(Serialize, Deserialize)]
struct Saved {
    generation: u64,
    /// Numbers below this may have been given.
    reserved: u32,
    miner: Snapshot,
    /// Per id: the first line's time and arrival, Unix ms ([`UNSEEN`] for
    /// none). Absent in a state written before they were kept.
    #[serde(default)]
    first_time: Vec<i64>,
    #[serde(default)]
    first_ingested: Vec<i64>,
}

/// An id without a line (skipped, or given after the last write before a crash).
const UNSEEN: i64 = i64::MAX;
/// An id given before first times were kept (a state of an earlier
/// build): when is not known, but it was long ago, so never new.
const KNOWN_BEFORE: i64 = i64::MIN;

/// When a pattern (all its ids) was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstSeen {
    /// The earliest time of its lines, Unix ms.
    pub time_ms: i64,
    /// When its first line arrived, Unix ms.
    pub ingested_ms: i64,
    /// When the first line of its source arrived (of any pattern), Unix ms.
    pub source_ingested_ms: i64,
}

struct State {
    miner: Miner,
    generation: u64,
    /// As [`Saved::first_time`] and [`Saved::first_ingested`], one per id.
    first_time: Vec<i64>,
    first_ingested: Vec<i64>,
    /// The first arrival of any line of each of the miner's sources.
    source_first: HashMap<u32, i64>,
    /// Numbers below this may be given: the file says so.
    reserved: u32,
    /// Ids were given or patterns changed since the last write.
    changed: bool,
    /// After a failed write, none is tried again before this.
    retry_at: Option<Instant>,
}

/// The aggregator's pattern miner and its kept state.
pub struct PatternBook {
    path: PathBuf,
    /// `[ingest] patterns`: off, no line is mined.
    enabled: bool,
    state: Mutex<State>,
    /// Held while the state file is written, taken before `state`: writes
    /// follow one another in the order their snapshots were taken, so a
    /// reservation on disk never goes back.
    writing: Mutex<()>,
}

impl PatternBook {
    /// Opens the state in `data_dir`, or starts one. A state file that
    /// does not read is moved aside (`.refused-<time>`) with a warning: the
    /// patterns start over in a new generation, losing nothing stored.
    pub fn open(data_dir: &Path, enabled: bool) -> anyhow::Result<PatternBook> {
        let path = data_dir.join(FILE_NAME);
        let state = match std::fs::read(&path) {
            Ok(bytes) => match read_state(&bytes) {
                Ok(state) => state,
                Err(err) => {
                    let aside = path.with_extension(format!("zst.refused-{}", jiff::Timestamp::now().as_second()));
                    tracing::warn!(file = %path.display(), error = %err, moved_to = %aside.display(),
                        "the pattern state does not read; patterns start over");
                    std::fs::rename(&path, &aside).with_context(|| format!("cannot move {} aside", path.display()))?;
                    fresh()
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => fresh(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let book = PatternBook {
            path,
            enabled,
            state: Mutex::new(state),
            writing: Mutex::new(()),
        };
        book.save(false).context("cannot write the pattern state")?;
        Ok(book)
    }

    /// The pattern ids of `messages` (lines of `source` at `times`,
    /// arrived at `ingested_ms`), in order; none when patterns are off.
    /// Writes a new reservation first when the ids could pass the one on
    /// disk; if that fails, the error is answered and no id is given (a
    /// reservation is then tried again after [`RETRY_AFTER`]; meanwhile
    /// chunks that fit in the old one get ids). Mines [`MINED_AT_ONCE`]
    /// lines at a time: if a reservation fails part-way, the ids of the
    /// lines before are answered and the rest have none.
    pub fn assign(
        &self,
        source: &str,
        messages: &[&str],
        times: &[i64],
        ingested_ms: i64,
    ) -> anyhow::Result<Vec<String>> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(messages.len());
        for (slice, at) in messages.chunks(MINED_AT_ONCE).zip((0..).step_by(MINED_AT_ONCE)) {
            let slice_times = times.get(at..).unwrap_or_default();
            match self.assign_slice(source, slice, slice_times, ingested_ms) {
                Ok(slice_ids) => ids.extend(slice_ids),
                Err(err) if ids.is_empty() => return Err(err),
                Err(err) => {
                    tracing::error!(error = %err, "cannot keep the pattern state; the chunk's later lines are stored without patterns");
                    break;
                }
            }
        }
        Ok(ids)
    }

    /// [`PatternBook::assign`] for at most [`MINED_AT_ONCE`] lines: shaped
    /// together, then mined under one lock.
    fn assign_slice(
        &self,
        source: &str,
        messages: &[&str],
        times: &[i64],
        ingested_ms: i64,
    ) -> anyhow::Result<Vec<String>> {
        // Each line makes at most one new id (its pattern, or the catch-all).
        let needed = u32::try_from(messages.len()).unwrap_or(u32::MAX).saturating_add(1);
        // Shaping needs no state: done before the lock, it is most of
        // mining once repeated shapes are remembered, and other requests'
        // lines are mined meanwhile.
        let shapes: Vec<Shape<'_>> = messages.iter().map(|message| Shape::of(message)).collect();
        loop {
            let mut state = self.lock();
            let next = u32::try_from(state.miner.len()).unwrap_or(u32::MAX);
            if next.saturating_add(needed) <= state.reserved {
                let generation = state.generation;
                let mut numbers = Vec::with_capacity(messages.len());
                for (at, shape) in shapes.iter().enumerate() {
                    let id = state.miner.assign_shape(source, shape);
                    let time = times.get(at).copied().unwrap_or(ingested_ms);
                    state.seen(id, time, ingested_ms);
                    numbers.push(id);
                }
                state.changed = true;
                drop(state);
                return Ok(id_texts(generation, &numbers));
            }
            if state.retry_at.is_some_and(|at| Instant::now() < at) {
                anyhow::bail!("the pattern state could not be written a moment ago");
            }
            drop(state);
            self.reserve(next.saturating_add(needed).saturating_add(RESERVE))?;
        }
    }

    /// Writes the state with numbers reserved up to `reserved`, then lets
    /// them be given.
    fn reserve(&self, reserved: u32) -> anyhow::Result<()> {
        let _writing = self.lock_writing();
        let saved = {
            let state = self.lock();
            if state.reserved >= reserved {
                return Ok(());
            }
            saved(&state, reserved)
        };
        match self.write(&saved) {
            Ok(()) => {
                let mut state = self.lock();
                state.reserved = state.reserved.max(reserved);
                state.retry_at = None;
                Ok(())
            }
            Err(err) => {
                self.lock().retry_at = Some(Instant::now() + RETRY_AFTER);
                Err(err)
            }
        }
    }

    /// Every id that stands for the pattern `id` stands for now (`id`
    /// among them); an id of another generation, or not an id, is itself.
    pub fn aliases(&self, id: &str) -> Vec<String> {
        let Some((generation, number)) = parse_id(id) else {
            return vec![id.to_owned()];
        };
        let state = self.lock();
        if generation != state.generation {
            return vec![id.to_owned()];
        }
        state
            .miner
            .aliases(number)
            .into_iter()
            .map(|alias| id_text(generation, alias))
            .collect()
    }

    /// The canonical id of each of `ids`, under one lock.
    pub fn canonicals(&self, ids: &[String]) -> HashMap<String, String> {
        let state = self.lock();
        ids.iter()
            .map(|id| {
                let canonical = match parse_id(id) {
                    Some((generation, number)) if generation == state.generation => {
                        id_text(generation, state.miner.canonical(number))
                    }
                    _ => id.clone(),
                };
                (id.clone(), canonical)
            })
            .collect()
    }

    /// When each of `ids` was first seen, over every id that stands for
    /// the same pattern, under one lock; `None` for an id this state does
    /// not know, or one given before first times were kept.
    pub fn first_seen(&self, ids: &[String]) -> Vec<Option<FirstSeen>> {
        self.each_known(ids, State::first_seen)
    }

    /// The patterns (their oldest ids) whose first line arrived at or
    /// after `since`, on a source whose first line arrived at least
    /// `known_for` before theirs: what a `new_pattern` rule looks for,
    /// found without reading a record.
    pub fn arrived_since(&self, since: i64, known_for: i64) -> Vec<String> {
        let state = self.lock();
        let mut canonicals: Vec<PatternId> = (0u32..)
            .zip(&state.first_ingested)
            .filter(|&(_, &ingested)| ingested >= since && ingested != UNSEEN)
            .map(|(number, _)| state.miner.canonical(PatternId(number)))
            .collect();
        canonicals.sort_unstable();
        canonicals.dedup();
        canonicals
            .into_iter()
            .filter(|&id| {
                state.first_seen(id).is_some_and(|first| {
                    first.ingested_ms >= since
                        && first.source_ingested_ms.saturating_add(known_for) <= first.ingested_ms
                })
            })
            .map(|id| id_text(state.generation, id))
            .collect()
    }

    /// The template of each of `ids` as of now, under one lock; `None`
    /// for an id this state does not know (another generation's).
    pub fn templates(&self, ids: &[String]) -> Vec<Option<String>> {
        self.each_known(ids, |state, number| state.miner.template(number))
    }

    /// `answer` for each of `ids` of this state's generation, under one
    /// lock; `None` for another generation's id, or not an id.
    fn each_known<T>(&self, ids: &[String], answer: impl Fn(&State, PatternId) -> Option<T>) -> Vec<Option<T>> {
        let state = self.lock();
        ids.iter()
            .map(|id| {
                let (generation, number) = parse_id(id)?;
                (generation == state.generation)
                    .then(|| answer(&state, number))
                    .flatten()
            })
            .collect()
    }

    /// Writes the state. `last`: no id will be given before the process
    /// ends, so the reservation shrinks to the ids given and a start
    /// skips none.
    pub fn save(&self, last: bool) -> anyhow::Result<()> {
        let _writing = self.lock_writing();
        let saved = {
            let mut state = self.lock();
            let reserved = if last {
                u32::try_from(state.miner.len()).unwrap_or(u32::MAX)
            } else {
                state.reserved
            };
            state.reserved = reserved;
            state.changed = false;
            saved(&state, reserved)
        };
        self.write(&saved)
    }

    /// Writes the state if it changed.
    pub fn save_if_changed(&self) -> anyhow::Result<()> {
        if self.lock().changed { self.save(false) } else { Ok(()) }
    }

    /// Writes `saved` (0600, whole or not at all: a new file renamed over
    /// the old one, the folder synced so that the rename survives a power
    /// cut).
    fn write(&self, saved: &Saved) -> anyhow::Result<()> {
        let json = serde_json::to_vec(saved)?;
        let bytes = zstd::encode_all(json.as_slice(), 3)?;
        let temporary = self.path.with_extension("zst.new");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path).with_context(|| format!("cannot replace {}", self.path.display()))?;
        if let Some(folder) = self.path.parent() {
            std::fs::File::open(folder)
                .and_then(|folder| folder.sync_all())
                .with_context(|| format!("cannot sync {}", folder.display()))?;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The miner is left whole by every step; a panic elsewhere does not spoil it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// A line of `id` at `time` arrived at `ingested`.
    fn seen(&mut self, id: PatternId, time: i64, ingested: i64) {
        let at = id.0 as usize;
        if self.first_time.len() <= at {
            self.first_time.resize(at + 1, UNSEEN);
            self.first_ingested.resize(at + 1, UNSEEN);
        }
        self.first_time[at] = self.first_time[at].min(time);
        if ingested < self.first_ingested[at] {
            self.first_ingested[at] = ingested;
            if let Some(source) = self.miner.source_of(id) {
                let first = self.source_first.entry(source).or_insert(ingested);
                *first = (*first).min(ingested);
            }
        }
    }

    /// When the pattern `number` stands for was first seen, over its ids.
    fn first_seen(&self, number: PatternId) -> Option<FirstSeen> {
        let source = self.miner.source_of(number)?;
        let (mut time_ms, mut ingested_ms) = (UNSEEN, UNSEEN);
        for alias in self.miner.aliases(number) {
            let at = alias.0 as usize;
            time_ms = time_ms.min(self.first_time.get(at).copied().unwrap_or(UNSEEN));
            ingested_ms = ingested_ms.min(self.first_ingested.get(at).copied().unwrap_or(UNSEEN));
        }
        if ingested_ms == UNSEEN || ingested_ms == KNOWN_BEFORE || time_ms == KNOWN_BEFORE {
            return None;
        }
        Some(FirstSeen {
            time_ms,
            ingested_ms,
            source_ingested_ms: self.source_first.get(&source).copied().unwrap_or(ingested_ms),
        })
    }
}

/// What to write of `state`, with `reserved` as the reservation.
fn saved(state: &State, reserved: u32) -> Saved {
    Saved {
        generation: state.generation,
        reserved,
        miner: state.miner.snapshot(),
        first_time: state.first_time.clone(),
        first_ingested: state.first_ingested.clone(),
    }
}

/// A state that has seen nothing, in a generation of its own.
fn fresh() -> State {
    // Microseconds: two starts never share one.
    let generation = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(0);
    State {
        miner: Miner::new(Settings::default()),
        generation,
        first_time: Vec::new(),
        first_ingested: Vec::new(),
        source_first: HashMap::new(),
        reserved: 0,
        changed: true,
        retry_at: None,
    }
}

fn read_state(bytes: &[u8]) -> anyhow::Result<State> {
    // The bound keeps a damaged frame from asking for more than any state holds.
    let json = zstd::bulk::decompress(bytes, 1 << 30).context("not zstd")?;
    let saved: Saved = serde_json::from_slice(&json).context("not a pattern state")?;
    let mut miner = Miner::restore(Settings::default(), saved.miner)?;
    // Numbers up to the reservation may have been given before a crash.
    miner.skip_to(saved.reserved);
    // One entry per id at most: a longer list is not this state's.
    let (mut first_time, mut first_ingested) = (saved.first_time, saved.first_ingested);
    first_time.truncate(miner.len());
    first_ingested.truncate(miner.len());
    first_ingested.resize(miner.len(), UNSEEN);
    first_time.resize(miner.len(), UNSEEN);
    let mut source_first: HashMap<u32, i64> = HashMap::new();
    for (number, (time, ingested)) in (0u32..).zip(first_time.iter_mut().zip(first_ingested.iter_mut())) {
        let Some(source) = miner.source_of(PatternId(number)) else {
            continue;
        };
        // Given, but by a build that kept no first times.
        if *ingested == UNSEEN {
            (*time, *ingested) = (KNOWN_BEFORE, KNOWN_BEFORE);
        }
        let first = source_first.entry(source).or_insert(*ingested);
        *first = (*first).min(*ingested);
    }
    Ok(State {
        reserved: u32::try_from(miner.len()).unwrap_or(u32::MAX),
        miner,
        generation: saved.generation,
        first_time,
        first_ingested,
        source_first,
        changed: false,
        retry_at: None,
    })
}

fn id_text(generation: u64, id: PatternId) -> String {
    format!("{generation:x}-{:x}", id.0)
}

/// [`id_text`] of each of `ids`, formatting each id once: a slice's lines
/// are mostly of a few patterns.
fn id_texts(generation: u64, ids: &[PatternId]) -> Vec<String> {
    let mut formatted: HashMap<PatternId, String> = HashMap::new();
    ids.iter()
        .map(|&id| formatted.entry(id).or_insert_with(|| id_text(generation, id)).clone())
        .collect()
}

fn parse_id(text: &str) -> Option<(u64, PatternId)> {
    let (generation, number) = text.split_once('-')?;
    Some((
        u64::from_str_radix(generation, 16).ok()?,
        PatternId(u32::from_str_radix(number, 16).ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids of `lines`, each at time 0, arrived at 0.
    fn assign(book: &PatternBook, source: &str, lines: &[&str]) -> anyhow::Result<Vec<String>> {
        book.assign(source, lines, &vec![0; lines.len()], 0)
    }

    #[test]
    fn ids_mean_the_same_after_a_restart_and_a_refused_state_starts_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path(), true).unwrap();
        let lines = ["disk sda1 is full", "user root logged in", "disk sdb2 is full"];
        let first = assign(&book, "syslog", &lines).unwrap();
        assert_eq!(first[0], first[2], "one template");
        assert_ne!(first[0], first[1]);
        book.save(true).unwrap();
        drop(book);

        // A clean stop keeps no reservation: the next new id follows on.
        let book = PatternBook::open(dir.path(), true).unwrap();
        assert_eq!(assign(&book, "syslog", &lines).unwrap(), first);
        let new = assign(&book, "syslog", &["a line never seen before"]).unwrap();
        assert_eq!(parse_id(&new[0]).unwrap().1, PatternId(2), "{}", new[0]);
        // A crash after ids were given: none of the reserved numbers is given again.
        book.save_if_changed().unwrap();
        drop(book);
        let book = PatternBook::open(dir.path(), true).unwrap();
        let after_crash = assign(&book, "syslog", &["yet another line"]).unwrap();
        assert!(parse_id(&after_crash[0]).unwrap().1.0 >= RESERVE, "{}", after_crash[0]);
        let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077, 0);
        drop(book);

        std::fs::write(dir.path().join(FILE_NAME), b"not zstd").unwrap();
        let book = PatternBook::open(dir.path(), true).unwrap();
        let refused = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".refused-")
            })
            .count();
        assert_eq!(refused, 1, "moved aside");
        let again = assign(&book, "syslog", &lines).unwrap();
        assert_ne!(again[0], first[0], "a new generation");
        assert_eq!(
            book.aliases(&first[0]),
            [first[0].clone()],
            "another generation's id is itself"
        );
        assert_eq!(book.aliases("not an id"), ["not an id"]);
    }

    #[test]
    fn aliases_follow_a_place_that_turned_variable() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path(), true).unwrap();
        let users = ["root", "guest", "test", "admin"].map(|u| format!("session opened for user {u}"));
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let ids = assign(&book, "auth", &users).unwrap();
        assert_eq!(ids[3], ids[0], "the fourth user made the place a variable");
        let mut aliases = book.aliases(&ids[1]);
        aliases.sort();
        let mut first_three = ids[..3].to_vec();
        first_three.sort();
        assert_eq!(aliases, first_three);
    }

    #[test]
    fn first_seen_is_the_earliest_of_every_alias_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path(), true).unwrap();
        let lines = [
            "session opened for user root",
            "session opened for user guest",
            "session opened for user test",
            "session opened for user admin",
        ];
        // Times out of order; arrivals at 100 and 200.
        let ids = book.assign("auth", &lines[..2], &[5_000, 3_000], 100).unwrap();
        let later = book.assign("auth", &lines[2..], &[9_000, 8_000], 200).unwrap();
        let disk = book.assign("disk", &["disk sda is full"], &[7_000], 300).unwrap();
        assert_eq!(later[1], ids[0], "the fourth user made the place a variable");
        let seen = |book: &PatternBook| book.first_seen(&[ids[1].clone(), later[1].clone(), disk[0].clone()]);
        let expected = vec![
            Some(FirstSeen {
                time_ms: 3_000,
                ingested_ms: 100,
                source_ingested_ms: 100,
            }),
            Some(FirstSeen {
                time_ms: 3_000,
                ingested_ms: 100,
                source_ingested_ms: 100,
            }),
            Some(FirstSeen {
                time_ms: 7_000,
                ingested_ms: 300,
                source_ingested_ms: 300,
            }),
        ];
        assert_eq!(seen(&book), expected);
        assert_eq!(book.first_seen(&["1-0".into(), "no id".into()]), [None, None]);
        book.save(true).unwrap();
        drop(book);
        let book = PatternBook::open(dir.path(), true).unwrap();
        assert_eq!(seen(&book), expected, "kept across a restart");
    }

    #[test]
    fn a_state_without_first_times_marks_its_patterns_old() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path(), true).unwrap();
        let old = book.assign("app", &["disk sda1 is full"], &[1_000], 1_000).unwrap();
        book.save(true).unwrap();
        drop(book);
        // As an earlier build wrote it: no first times.
        let path = dir.path().join(FILE_NAME);
        let json = zstd::decode_all(std::fs::read(&path).unwrap().as_slice()).unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let object = value.as_object_mut().unwrap();
        assert!(object.remove("first_time").is_some() && object.remove("first_ingested").is_some());
        std::fs::write(
            &path,
            zstd::encode_all(serde_json::to_vec(&value).unwrap().as_slice(), 3).unwrap(),
        )
        .unwrap();

        let book = PatternBook::open(dir.path(), true).unwrap();
        let again = book.assign("app", &["disk sdb2 is full"], &[90_000], 90_000).unwrap();
        assert_eq!(again, old);
        assert_eq!(book.first_seen(&old), [None], "known, but not since when");
        let new = book.assign("app", &["kernel panic"], &[95_000], 95_000).unwrap();
        assert_eq!(
            book.arrived_since(50_000, 10_000),
            new,
            "the source is old: the new one is news"
        );
        assert!(book.arrived_since(96_000, 10_000).is_empty());
    }

    #[test]
    fn patterns_of_a_source_in_its_first_window_are_not_news() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path(), true).unwrap();
        book.assign("app", &["service started"], &[0], 100).unwrap();
        let early = book.assign("app", &["config file missing"], &[0], 150).unwrap();
        let late = book.assign("app", &["disk sda is full"], &[0], 300).unwrap();
        assert_eq!(
            book.arrived_since(120, 100),
            late,
            "{early:?} came within the source's first 100 ms"
        );
        assert_eq!(
            book.first_seen(&early)[0].map(|first| first.source_ingested_ms),
            Some(100)
        );
    }

    #[test]
    fn a_chunk_of_several_slices_gets_each_line_its_id_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path(), true).unwrap();
        let lines: Vec<String> = (0..2 * MINED_AT_ONCE + 500)
            .map(|n| match n {
                n if n < 2 * MINED_AT_ONCE => format!("request {n} served"),
                n => format!("cache flushed after {n} writes"),
            })
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let times: Vec<i64> = (0..).take(lines.len()).collect();
        let ids = book.assign("s", &lines, &times, 7).unwrap();
        assert_eq!(ids.len(), lines.len());
        let mut miner = Miner::default();
        for (id, line) in ids.iter().zip(&lines) {
            assert_eq!(parse_id(id).map(|(_, number)| number), Some(miner.assign("s", line)));
        }
        let flushed = book.first_seen(&[ids[2 * MINED_AT_ONCE].clone()]);
        assert_eq!(flushed[0].map(|first| first.time_ms), Some(2 * MINED_AT_ONCE as i64));
    }

    #[test]
    fn off_mines_nothing_and_a_failed_write_gives_no_id() {
        let dir = tempfile::tempdir().unwrap();
        let off = PatternBook::open(dir.path(), false).unwrap();
        assert!(assign(&off, "s", &["a line"]).unwrap().is_empty());
        drop(off);
        let book = PatternBook::open(dir.path(), true).unwrap();
        // The state cannot be written: its folder is gone.
        let moved = dir.path().join("elsewhere");
        std::fs::create_dir(&moved).unwrap();
        let book = PatternBook {
            path: moved.join("missing").join(FILE_NAME),
            ..book
        };
        assert!(assign(&book, "s", &["a line"]).is_err(), "no reservation, no id");
        assert!(
            assign(&book, "s", &["a line"])
                .unwrap_err()
                .to_string()
                .contains("a moment ago"),
            "not retried at once"
        );
    }
}
