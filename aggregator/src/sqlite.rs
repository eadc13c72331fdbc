//! Opening the aggregator's SQLite files (metrics, alerts, users) one way:
//! WAL journaling, checked (readers never wait for the writer, and a file
//! system that cannot do it is an error, not a silent fallback), the
//! `synchronous` level the store promises, a busy timeout, and the schema
//! brought to the current version in one transaction.
//!
//! A store's schema is a list of migrations: migration `i` takes
//! `PRAGMA user_version` from `i` to `i + 1`, so a new file runs them all
//! and a file of an earlier build runs the ones after its version. A file
//! of a newer build (a version past the list) is refused by name: an older
//! aggregator must not write to a schema it does not know.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// A committed transaction survives a power cut (an answer promised it).
    Full,
    /// A committed transaction survives a crash of the process; a power cut
    /// may lose the last ones.
    Normal,
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite failed.
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// WAL is not available (such as on some network file systems).
    #[error("{}: cannot use WAL mode (journal_mode is {mode})", path.display())]
    NoWal {
        /// The file.
        path: PathBuf,
        /// The mode SQLite answered.
        mode: String,
    },
    /// The file was written by a newer build.
    #[error("{} has schema version {found}, but this aggregator knows only version {known}", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
}

/// Opens (creating if needed) `path` with WAL, `synchronous` and the
/// schema of `migrations` (see the module docs).
pub fn open(path: &Path, synchronous: Synchronous, migrations: &[&str]) -> Result<Connection, OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    // Answers the mode now in force; anything but "wal" means WAL is unavailable here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::NoWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    let level = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level).map_err(sqlite)?;
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite)?;
    if found > known {
        return Err(OpenError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    let pending = usize::try_from(found).map_or(&[][..], |from| &migrations[from.min(migrations.len())..]);
    if !pending.is_empty() {
        conn.execute_batch(&format!(
            "BEGIN; {} PRAGMA user_version = {known}; COMMIT;",
            pending.join("\n")
        ))
        .map_err(sqlite)?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = "CREATE TABLE a (x INTEGER);";
    const SECOND: &str = "CREATE TABLE b (y INTEGER);";

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn a_file_runs_the_migrations_after_its_version_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = open(&path, Synchronous::Full, &[FIRST]).unwrap();
        conn.execute("INSERT INTO a VALUES (1)", []).unwrap();
        assert_eq!(version(&conn), 1);
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL");
        drop(conn);

        let conn = open(&path, Synchronous::Normal, &[FIRST, SECOND]).unwrap();
        assert_eq!(version(&conn), 2);
        let kept: i64 = conn.query_row("SELECT x FROM a", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, 1, "the first migration did not run again");
        conn.execute("INSERT INTO b VALUES (2)", []).unwrap();
        drop(conn);

        let refused = open(&path, Synchronous::Full, &[FIRST]).unwrap_err().to_string();
        assert!(
            refused.contains("schema version 2") && refused.contains("only version 1"),
            "{refused}"
        );
    }
}
