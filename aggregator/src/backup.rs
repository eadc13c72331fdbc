//! `lookout-aggregator backup --to DIR` and `restore --from DIR`: a copy of
//! a data folder taken while the aggregator runs, and a data folder rebuilt
//! from one.
//!
//! A backup is made from outside the running process, with no pause of
//! ingest, store by store, each consistent in itself:
//!
//! 1. the write-ahead log first: it holds every batch that was answered but
//!    not yet committed to the index. Whatever a commit takes out of it from
//!    then on is in the index copied next. (A copy cut short while the log
//!    is appended or emptied ends at a torn entry, which the log's checksums
//!    find and drop at start, as after a crash.)
//! 2. each log partition as of its current commit: its `meta.json` is read,
//!    the files that commit names are opened, and `meta.json` is read again;
//!    if it changed (a commit or merge in between), that is done again. An
//!    open file stays readable after a merge deletes it, so what is copied
//!    is exactly the commit's. Segments are immutable.
//! 3. the SQLite stores (metrics, alerts, users) with `VACUUM INTO`: one read
//!    transaction each, so a consistent copy while writers go on.
//! 4. the pattern state, which is replaced whole (write and rename).
//!
//! `backup.json`, written last, lists every file with its size and XXH3
//! hash: a folder without it is an unfinished backup. A restore copies the
//! files (regular files only) into a new folder beside the data folder,
//! checking each against the manifest as it goes, and renames that folder
//! into place only when all match, so a failed restore leaves no
//! half-built data folder. Starting on the restored folder replays
//! the copied write-ahead log through the usual dedup: every line answered
//! before the backup began is there once.

use crate::alert;
use crate::ingest::patterns;
use crate::metricstore;
use crate::store::partition::Partition;
use crate::store::writer::WAL_FILE;
use crate::users;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// The manifest's name in a backup folder.
pub const MANIFEST: &str = "backup.json";
/// The manifest's format.
const FORMAT: u32 = 1;
/// Tries at a consistent copy of one partition under constant commits.
const PARTITION_TRIES: usize = 20;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or folder could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The destination holds something already.
    #[error("{} is not empty; give a new or empty folder, nothing is overwritten", .0.display())]
    NotEmpty(PathBuf),
    /// A SQLite store could not be copied.
    #[error("cannot copy {}: {source}", path.display())]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// A log partition could not be read as a tantivy index.
    #[error("cannot read the log partition {}: {reason}", path.display())]
    Partition {
        /// The partition folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The backup folder is not a complete, intact backup.
    #[error("{} is not a usable backup: {reason}", path.display())]
    Invalid {
        /// The backup folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// `backup.json`: what a backup holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The version of the aggregator that wrote it.
    pub version: String,
    /// When the backup began, RFC 3339.
    pub started: String,
    /// Every file, by path relative to the backup folder.
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path below the backup folder (`/`-separated).
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// XXH3-64 of its content, 16 hex digits.
    pub xxh3: String,
}

impl Manifest {
    /// Bytes in all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|file| file.bytes).sum()
    }
}

/// Copies the data folder `data_dir` into `to` (a new or empty folder),
/// while an aggregator may be running on it.
pub fn backup(data_dir: &Path, to: &Path) -> Result<Manifest, BackupError> {
    let started = jiff::Timestamp::now().to_string();
    if !data_dir.is_dir() {
        return Err(BackupError::Io {
            what: "cannot read the data folder",
            path: data_dir.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        });
    }
    new_folder(to)?;
    let mut files = Vec::new();
    let wal = data_dir.join(WAL_FILE);
    if let Some(mut file) = open_if_present(&wal)? {
        files.push(copy_open(&mut file, &wal, to, Path::new(WAL_FILE))?);
    }
    let logs = data_dir.join("logs");
    for day in partition_names(&logs)? {
        files.extend(copy_partition(&logs.join(&day), to, &Path::new("logs").join(&day))?);
    }
    for name in [
        metricstore::schema::FILE_NAME,
        alert::state::FILE_NAME,
        users::USERS_FILE,
    ] {
        let source = data_dir.join(name);
        if source.exists() {
            files.push(copy_sqlite(&source, to, name)?);
        }
    }
    let state = data_dir.join(patterns::FILE_NAME);
    if let Some(mut file) = open_if_present(&state)? {
        files.push(copy_open(&mut file, &state, to, Path::new(patterns::FILE_NAME))?);
    }
    let manifest = Manifest {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|err| BackupError::Invalid {
        path: to.to_path_buf(),
        reason: err.to_string(),
    })?;
    write_new(&to.join(MANIFEST), &text)?;
    Ok(manifest)
}

/// Rebuilds the data folder `data_dir` (which must not exist, or be empty)
/// from the backup in `from`, checking every file of it.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Manifest, BackupError> {
    let manifest = read_manifest(from)?;
    for entry in &manifest.files {
        let path = from.join(&entry.path);
        let regular = std::fs::symlink_metadata(&path).map_err(io_error("cannot read", &path))?;
        if !regular.file_type().is_file() {
            return Err(invalid(from, format!("{} is not a regular file", entry.path)));
        }
    }
    if data_dir.exists() && !is_empty_dir(data_dir)? {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    let Some(name) = data_dir.file_name() else {
        return Err(BackupError::Io {
            what: "cannot restore into",
            path: data_dir.to_path_buf(),
            source: io::Error::from(io::ErrorKind::InvalidInput),
        });
    };
    let parent = data_dir
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let building = parent.join(format!(".{}.restoring-{}", name.to_string_lossy(), std::process::id()));
    let built = (|| {
        new_folder(&building)?;
        for entry in &manifest.files {
            let target = building.join(&entry.path);
            if let Some(folder) = target.parent() {
                lookout_shared::process::private_dir(folder).map_err(io_error("cannot create", folder))?;
            }
            let source = from.join(&entry.path);
            let mut file = File::open(&source).map_err(io_error("cannot read", &source))?;
            // Checked as it is copied: what is checked is what is restored.
            let copied = copy_open(&mut file, &source, &building, Path::new(&entry.path))?;
            if copied.bytes != entry.bytes || copied.xxh3 != entry.xxh3 {
                return Err(invalid(
                    from,
                    format!(
                        "{} is damaged: {} bytes with hash {}, the manifest says {} bytes with hash {}",
                        entry.path, copied.bytes, copied.xxh3, entry.bytes, entry.xxh3
                    ),
                ));
            }
        }
        if data_dir.exists() {
            std::fs::remove_dir(data_dir).map_err(io_error("cannot replace the empty folder", data_dir))?;
        }
        std::fs::rename(&building, data_dir).map_err(io_error("cannot move the restored folder to", data_dir))?;
        // The rename itself made durable.
        File::open(parent)
            .and_then(|folder| folder.sync_all())
            .map_err(io_error("cannot write", parent))
    })();
    if built.is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    built?;
    Ok(manifest)
}

/// The manifest of the backup in `from`, checked for paths that stay inside it.
fn read_manifest(from: &Path) -> Result<Manifest, BackupError> {
    let path = from.join(MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(invalid(
                from,
                format!("it has no {MANIFEST} (a backup that did not finish has none)"),
            ));
        }
        Err(err) => return Err(io_error("cannot read", &path)(err)),
    };
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|err| invalid(from, format!("{MANIFEST} does not parse: {err}")))?;
    if manifest.format != FORMAT {
        return Err(invalid(
            from,
            format!(
                "{MANIFEST} has format {}; this build reads format {FORMAT}",
                manifest.format
            ),
        ));
    }
    for entry in &manifest.files {
        let relative = Path::new(&entry.path);
        let inside = !entry.path.is_empty()
            && relative
                .components()
                .all(|component| matches!(component, Component::Normal(_)));
        if !inside || entry.path == MANIFEST {
            return Err(invalid(from, format!("{MANIFEST} names the path `{}`", entry.path)));
        }
    }
    Ok(manifest)
}

/// Copies the commit a partition is at; see the module docs.
fn copy_partition(dir: &Path, to: &Path, relative: &Path) -> Result<Vec<FileEntry>, BackupError> {
    let meta_path = dir.join("meta.json");
    let partition_error = |reason: String| BackupError::Partition {
        path: dir.to_path_buf(),
        reason,
    };
    for _ in 0..PARTITION_TRIES {
        let before = match std::fs::read(&meta_path) {
            Ok(before) => before,
            // Retention deleted the day since it was listed: nothing to keep.
            Err(err) if err.kind() == io::ErrorKind::NotFound && !dir.exists() => return Ok(Vec::new()),
            Err(err) => return Err(io_error("cannot read", &meta_path)(err)),
        };
        let index = tantivy::Index::open_in_dir(dir).map_err(|err| partition_error(err.to_string()))?;
        let metas = index.load_metas().map_err(|err| partition_error(err.to_string()))?;
        let mut opened = Vec::new();
        for name in metas.list_segment_files() {
            let path = dir.join(&name);
            // Absent with `meta.json` unchanged: a file the commit does not
            // have (the delete bitset of a segment without deletes).
            if let Some(file) = open_if_present(&path)? {
                opened.push((name, file));
            }
        }
        let after = std::fs::read(&meta_path).map_err(io_error("cannot read", &meta_path))?;
        if before != after {
            continue;
        }
        lookout_shared::process::private_dir(&to.join(relative))
            .map_err(io_error("cannot create", &to.join(relative)))?;
        let mut files = Vec::with_capacity(opened.len() + 2);
        let mut managed = Vec::with_capacity(opened.len());
        for (name, mut file) in opened {
            files.push(copy_open(&mut file, &dir.join(&name), to, &relative.join(&name))?);
            managed.push(name.to_string_lossy().into_owned());
        }
        files.push(copy_open(
            &mut &before[..],
            &meta_path,
            to,
            &relative.join("meta.json"),
        )?);
        // tantivy's list of the files it made: without it, a restored
        // index would never delete the segments a merge replaces.
        let managed = serde_json::to_vec(&managed).map_err(|err| partition_error(err.to_string()))?;
        let managed_path = dir.join(".managed.json");
        files.push(copy_open(
            &mut &managed[..],
            &managed_path,
            to,
            &relative.join(".managed.json"),
        )?);
        return Ok(files);
    }
    Err(partition_error(format!(
        "it changed under {PARTITION_TRIES} tries at a consistent copy"
    )))
}

/// `VACUUM INTO` a new file of the backup.
fn copy_sqlite(source: &Path, to: &Path, name: &str) -> Result<FileEntry, BackupError> {
    let sqlite_error = |source_error| BackupError::Sqlite {
        path: source.to_path_buf(),
        source: source_error,
    };
    let connection = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sqlite_error)?;
    let target = to.join(name);
    let target_text = target.to_str().ok_or_else(|| BackupError::Io {
        what: "cannot write to a path that is not UTF-8:",
        path: target.clone(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    connection
        .execute("VACUUM INTO ?1", [target_text])
        .map_err(sqlite_error)?;
    let (bytes, xxh3) = hash_file(&target)?;
    Ok(FileEntry {
        path: name.to_owned(),
        bytes,
        xxh3,
    })
}

/// Copies what `file` holds (read from where it is) to `to/relative`,
/// hashing it on the way.
fn copy_open(file: &mut impl Read, source: &Path, to: &Path, relative: &Path) -> Result<FileEntry, BackupError> {
    let target = to.join(relative);
    let mut out = HashingWriter {
        inner: create_new(&target)?,
        hasher: Xxh3::new(),
        bytes: 0,
    };
    io::copy(file, &mut out).map_err(io_error("cannot copy", source))?;
    out.inner.sync_all().map_err(io_error("cannot write", &target))?;
    Ok(FileEntry {
        path: relative.to_string_lossy().replace('\\', "/"),
        bytes: out.bytes,
        xxh3: format!("{:016x}", out.hasher.digest()),
    })
}

/// A file writer that hashes what passes.
struct HashingWriter {
    inner: File,
    hasher: Xxh3,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Size and XXH3 (hex) of a file.
fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = File::open(path).map_err(io_error("cannot read", path))?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let read = file.read(&mut buf).map_err(io_error("cannot read", path))?;
        if read == 0 {
            return Ok((bytes, format!("{:016x}", hasher.digest())));
        }
        hasher.update(&buf[..read]);
        bytes += read as u64;
    }
}

/// The names of the partition folders under `logs`, oldest first.
fn partition_names(logs: &Path) -> Result<Vec<String>, BackupError> {
    let entries = match std::fs::read_dir(logs) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error("cannot list", logs)(err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("cannot list", logs))?;
        if let Some(name) = entry.file_name().to_str()
            && Partition::day_of_dir_name(name).is_some()
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn open_if_present(path: &Path) -> Result<Option<File>, BackupError> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io_error("cannot read", path)(err)),
    }
}

/// Creates `dir` (private) unless it holds something.
fn new_folder(dir: &Path) -> Result<(), BackupError> {
    if dir.exists() && !is_empty_dir(dir)? {
        return Err(BackupError::NotEmpty(dir.to_path_buf()));
    }
    lookout_shared::process::private_dir(dir).map_err(io_error("cannot create", dir))
}

fn is_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    let mut entries = std::fs::read_dir(dir).map_err(io_error("cannot read", dir))?;
    Ok(entries.next().is_none())
}

/// A new file, mode 0600, never one that exists.
fn create_new(path: &Path) -> Result<File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("cannot create", path))
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut file = create_new(path)?;
    file.write_all(bytes).map_err(io_error("cannot write", path))?;
    file.sync_all().map_err(io_error("cannot write", path))
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io { what, path, source }
}

fn invalid(path: &Path, reason: String) -> BackupError {
    BackupError::Invalid {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_refuses_a_damaged_or_unfinished_backup_or_a_full_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("logs")).unwrap();
        std::fs::write(data.join(patterns::FILE_NAME), b"pattern state").unwrap();
        std::fs::write(data.join(WAL_FILE), b"").unwrap();
        let users = crate::users::UserStore::open(&data).unwrap();
        users
            .add_user("ann", "a long enough password 1", crate::users::Role::Admin)
            .unwrap();
        drop(users);

        let backup_dir = tmp.path().join("backup");
        let manifest = backup(&data, &backup_dir).unwrap();
        let names: Vec<&str> = manifest.files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(names, [WAL_FILE, users::USERS_FILE, patterns::FILE_NAME]);
        assert!(matches!(backup(&data, &backup_dir), Err(BackupError::NotEmpty(_))));

        let restored = tmp.path().join("restored");
        restore(&backup_dir, &restored).unwrap();
        assert_eq!(
            std::fs::read(restored.join(patterns::FILE_NAME)).unwrap(),
            b"pattern state"
        );
        let users = crate::users::UserStore::open(&restored).unwrap();
        assert_eq!(users.list_users().unwrap()[0].name, "ann");
        assert!(matches!(restore(&backup_dir, &restored), Err(BackupError::NotEmpty(_))));
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            3,
            "no folder left behind"
        );

        std::fs::write(backup_dir.join(patterns::FILE_NAME), b"pattern stat!").unwrap();
        let damaged = restore(&backup_dir, &tmp.path().join("again")).unwrap_err().to_string();
        assert!(damaged.contains("patterns.json.zst is damaged"), "{damaged}");
        assert!(!tmp.path().join("again").exists());

        let text = std::fs::read_to_string(backup_dir.join(MANIFEST)).unwrap();
        std::fs::write(backup_dir.join(MANIFEST), text.replace(WAL_FILE, "../escape")).unwrap();
        let escaping = restore(&backup_dir, &tmp.path().join("again")).unwrap_err().to_string();
        assert!(escaping.contains("names the path `../escape`"), "{escaping}");

        std::fs::remove_file(backup_dir.join(MANIFEST)).unwrap();
        let unfinished = restore(&backup_dir, &tmp.path().join("again")).unwrap_err().to_string();
        assert!(unfinished.contains("did not finish"), "{unfinished}");
    }
}
