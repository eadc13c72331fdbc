//! Each record's pattern ([`lookout_patterns`]): mined at ingest from the
//! message after its time, kept as the extracted field `pattern`, so that
//! `pattern:<id>` works wherever a field does (search, stats, rules, tail).
//!
//! An id is `<generation>-<number>` in hex: the number is the miner's, and
//! the generation is the time (Unix microseconds) the miner's state began. The
//! state is kept in `data_dir/patterns.json.zst` (written every
//! [`SAVE_EVERY`] when it changed, at a stop, and before any id past the
//! last reservation is given), so ids mean the same across restarts:
//! - numbers are reserved [`RESERVE`] at a time and the reservation saved
//!   before they are given, so a restart after a crash never gives again a
//!   number given before it;
//! - a state file that is missing or refused starts a new generation, so
//!   its ids never meet those of records already stored.

use anyhow::Context as _;
use lookout_patterns::{Miner, PatternId, Settings, Snapshot};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The state file under `data_dir`.
pub const FILE_NAME: &str = "patterns.json.zst";
/// How often a changed state is written.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);
/// Numbers reserved by one write of the state.
const RESERVE: u32 = 4096;
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
}

struct State {
    miner: Miner,
    generation: u64,
    reserved: u32,
    /// Ids were given or patterns changed since the last write.
    changed: bool,
}

/// The aggregator's pattern miner and its kept state.
pub struct PatternBook {
    path: PathBuf,
    state: Mutex<State>,
}

impl PatternBook {
    /// Opens the state in `data_dir`, or starts one. A state file that
    /// does not read is moved aside (`.refused`) with a warning: the
    /// patterns start over in a new generation, losing nothing stored.
    pub fn open(data_dir: &Path) -> anyhow::Result<PatternBook> {
        let path = data_dir.join(FILE_NAME);
        let state = match std::fs::read(&path) {
            Ok(bytes) => match read_state(&bytes) {
                Ok(state) => state,
                Err(err) => {
                    let aside = path.with_extension("zst.refused");
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
            state: Mutex::new(state),
        };
        book.save().context("cannot write the pattern state")?;
        Ok(book)
    }

    /// The pattern ids of `messages` (lines of `source`), in order. Writes
    /// the state first when the ids would pass the reservation.
    pub fn assign<'m>(&self, source: &str, messages: impl Iterator<Item = &'m str>) -> anyhow::Result<Vec<String>> {
        let mut state = self.lock();
        let mut ids = Vec::new();
        for message in messages {
            if state.miner.len() + 1 >= state.reserved as usize {
                state.reserved = u32::try_from(state.miner.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(RESERVE);
                self.write(&state)?;
            }
            let id = state.miner.assign(source, message);
            ids.push(id_text(state.generation, id));
        }
        state.changed |= !ids.is_empty();
        Ok(ids)
    }

    /// Every id that stands for the pattern `id` stands for now (`id`
    /// among them); an id of another generation, or not an id, is itself.
    pub fn aliases(&self, id: &str) -> Vec<String> {
        let state = self.lock();
        match parse_id(id) {
            Some((generation, number)) if generation == state.generation => state
                .miner
                .aliases(number)
                .into_iter()
                .map(|alias| id_text(generation, alias))
                .collect(),
            _ => vec![id.to_owned()],
        }
    }

    /// The template of `id` as of now.
    pub fn template(&self, id: &str) -> Option<String> {
        let state = self.lock();
        let (generation, number) = parse_id(id)?;
        (generation == state.generation)
            .then(|| state.miner.template(number))
            .flatten()
    }

    /// Writes the state if it changed since the last write.
    pub fn save(&self) -> anyhow::Result<()> {
        let mut state = self.lock();
        self.write(&state)?;
        state.changed = false;
        Ok(())
    }

    /// Writes the state if it changed.
    pub fn save_if_changed(&self) -> anyhow::Result<()> {
        if self.lock().changed { self.save() } else { Ok(()) }
    }

    /// Writes `state` (0600, whole or not at all: a new file renamed over
    /// the old one).
    fn write(&self, state: &State) -> anyhow::Result<()> {
        let saved = Saved {
            generation: state.generation,
            reserved: state.reserved,
            miner: state.miner.snapshot(),
        };
        let json = serde_json::to_vec(&saved)?;
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
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The miner is left whole by every step; a panic elsewhere does not spoil it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A state that has seen nothing, in a generation of its own.
fn fresh() -> State {
    // Microseconds: two starts never share one.
    let generation = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(0);
    State {
        miner: Miner::new(Settings::default()),
        generation,
        reserved: RESERVE,
        changed: true,
    }
}

fn read_state(bytes: &[u8]) -> anyhow::Result<State> {
    // The state is a few MB at most; the bound keeps a damaged frame from asking for more.
    let json = zstd::bulk::decompress(bytes, 512 << 20).context("not zstd")?;
    let saved: Saved = serde_json::from_slice(&json).context("not a pattern state")?;
    let mut miner = Miner::restore(Settings::default(), saved.miner)?;
    // Numbers up to the reservation may have been given before a crash.
    miner.skip_to(saved.reserved);
    Ok(State {
        miner,
        generation: saved.generation,
        reserved: saved.reserved,
        changed: false,
    })
}

fn id_text(generation: u64, id: PatternId) -> String {
    format!("{generation:x}-{:x}", id.0)
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

    #[test]
    fn ids_mean_the_same_after_a_restart_and_a_refused_state_starts_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path()).unwrap();
        let lines = ["disk sda1 is full", "user root logged in", "disk sdb2 is full"];
        let first = book.assign("syslog", lines.iter().copied()).unwrap();
        assert_eq!(first[0], first[2], "one template");
        assert_ne!(first[0], first[1]);
        assert_eq!(book.template(&first[0]).as_deref(), Some("disk <*> is full"));
        book.save().unwrap();
        drop(book);

        let book = PatternBook::open(dir.path()).unwrap();
        assert_eq!(book.assign("syslog", lines.iter().copied()).unwrap(), first);
        let new = book.assign("syslog", ["a line never seen before"].into_iter()).unwrap();
        let (_, number) = parse_id(&new[0]).unwrap();
        assert!(
            number.0 >= RESERVE,
            "past the numbers reserved before the restart: {}",
            new[0]
        );
        drop(book);

        std::fs::write(dir.path().join(FILE_NAME), b"not zstd").unwrap();
        let book = PatternBook::open(dir.path()).unwrap();
        assert!(dir.path().join("patterns.json.zst.refused").exists());
        let again = book.assign("syslog", lines.iter().copied()).unwrap();
        assert_ne!(again[0], first[0], "a new generation");
        assert_eq!(
            book.aliases(&first[0]),
            [first[0].clone()],
            "another generation's id is itself"
        );
        assert_eq!(book.aliases("not an id"), ["not an id"]);
        assert_eq!(book.template("not an id"), None);
    }

    #[test]
    fn aliases_follow_a_place_that_turned_variable() {
        let dir = tempfile::tempdir().unwrap();
        let book = PatternBook::open(dir.path()).unwrap();
        let users = ["root", "guest", "test", "admin"].map(|u| format!("session opened for user {u}"));
        let ids = book.assign("auth", users.iter().map(String::as_str)).unwrap();
        assert_eq!(ids[3], ids[0], "the fourth user made the place a variable");
        let mut aliases = book.aliases(&ids[1]);
        aliases.sort();
        let mut first_three = ids[..3].to_vec();
        first_three.sort();
        assert_eq!(aliases, first_three);
    }
}
