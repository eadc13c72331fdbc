//! The SQLite schema of `metrics.sqlite` and how its connections are opened.
//!
//! ```sql
//! series(id INTEGER PRIMARY KEY, host, name, labels /* canonical JSON */, UNIQUE(host, name, labels))
//! samples(series_id, ts /* unix ms */, value, PRIMARY KEY(series_id, ts)) WITHOUT ROWID
//! rollup_1m(series_id, ts /* bucket start */, vmin, vmax, vsum, cnt, PRIMARY KEY(series_id, ts)) WITHOUT ROWID
//! rollup_1h(same as rollup_1m) WITHOUT ROWID
//! hosts(host PRIMARY KEY, last_seen_ms) WITHOUT ROWID
//! ```
//!
//! `WITHOUT ROWID` tables are clustered on their primary key: one series'
//! samples lie together in time order, so a range query is a single index
//! range scan, and no separate rowid B-tree doubles the size. Series ids are
//! small integers, so each sample row costs about 20 bytes of payload.

use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The database file under `data_dir`.
pub const FILE_NAME: &str = "metrics.sqlite";

/// Bumped on every incompatible schema change; stored as `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for a lock before failing. Readers in WAL mode
/// wait only while a checkpoint or recovery holds the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: every statement of this module
/// fits, so none is ever compiled twice on one connection.
const STATEMENT_CACHE: usize = 64;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS series (
    id     INTEGER PRIMARY KEY,
    host   TEXT NOT NULL,
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    UNIQUE (host, name, labels)
);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1m (
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    vmin      REAL NOT NULL,
    vmax      REAL NOT NULL,
    vsum      REAL NOT NULL,
    cnt       INTEGER NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1h (
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    vmin      REAL NOT NULL,
    vmax      REAL NOT NULL,
    vsum      REAL NOT NULL,
    cnt       INTEGER NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hosts (
    host         TEXT PRIMARY KEY,
    last_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Opens (creating if needed) the database for the one writer: WAL, so that
/// readers never wait for it; `synchronous = FULL`, so that a committed
/// transaction survives a power cut (the ingest answer promises durability).
pub fn open_writer(data_dir: &Path) -> anyhow::Result<Connection> {
    use anyhow::Context as _;
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join(FILE_NAME);
    let conn = Connection::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let context = || format!("cannot configure {}", path.display());
    configure(&conn).with_context(context)?;
    // Answers the mode now in force; anything but "wal" means WAL is unavailable here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .with_context(context)?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "{}: cannot use WAL mode (journal_mode is {mode})",
        path.display()
    );
    conn.pragma_update(None, "synchronous", "FULL").with_context(context)?;
    // The interleaved inserts of thousands of series touch many interior
    // pages; 16 MiB of cache keeps them in memory.
    conn.pragma_update(None, "cache_size", -16_384).with_context(context)?;
    // Truncate the WAL after checkpoints instead of letting it keep its peak size.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .with_context(context)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .with_context(|| format!("cannot read the schema version of {}", path.display()))?;
    match version {
        0 => {
            conn.execute_batch(&format!("BEGIN; {DDL} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
                .with_context(|| format!("cannot create the schema in {}", path.display()))?;
        }
        SCHEMA_VERSION => {}
        other => anyhow::bail!(
            "{} has schema version {other}, but this aggregator knows only version {SCHEMA_VERSION}",
            path.display()
        ),
    }
    Ok(conn)
}

/// Opens a read-only connection (the schema must exist: open the writer first).
pub fn open_reader(data_dir: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(data_dir.join(FILE_NAME))?;
    configure(&conn)?;
    // Read-write open with `query_only`: a truly read-only connection cannot
    // create the WAL index it needs when the writer has not yet made it.
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Sorting for GROUP BY (downsampling) stays in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// The canonical text of a label set, the `series.labels` column: a JSON
/// object with keys in sorted order (a `BTreeMap` serialises sorted), no
/// spaces. Equal label sets always give equal text, so the UNIQUE constraint
/// identifies a series.
pub fn canonical_labels(labels: &BTreeMap<String, String>) -> serde_json::Result<String> {
    serde_json::to_string(labels)
}

/// Parses a `series.labels` column back into a map.
pub fn parse_labels(text: &str) -> serde_json::Result<BTreeMap<String, String>> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_created_once_and_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(dir.path()).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL");
        drop(conn);
        // Reopening keeps the schema; a reader sees it and cannot write.
        let conn = open_writer(dir.path()).unwrap();
        conn.execute("INSERT INTO hosts VALUES ('h', 1)", []).unwrap();
        let reader = open_reader(dir.path()).unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM hosts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(reader.execute("DELETE FROM hosts", []).is_err());
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = open_writer(dir.path()).unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[test]
    fn labels_are_canonical() {
        let a = BTreeMap::from([("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())]);
        let text = canonical_labels(&a).unwrap();
        assert_eq!(text, r#"{"a":"1","b":"2"}"#);
        assert_eq!(parse_labels(&text).unwrap(), a);
        assert_eq!(canonical_labels(&BTreeMap::new()).unwrap(), "{}");
    }
}
