//! The SQLite schema of `metrics.sqlite` and how its connections are opened.
//!
//! ```sql
//! series(id INTEGER PRIMARY KEY, host, name, labels /* canonical JSON */, UNIQUE(host, name, labels))
//! samples(series_id, ts /* unix ms */, value, PRIMARY KEY(series_id, ts)) WITHOUT ROWID
//! chunks(series_id, hour /* start, unix ms */, data /* chunk.rs */, PRIMARY KEY(series_id, hour))
//! rollup_1h(series_id, ts /* bucket start */, vmin, vmax, vsum, cnt, PRIMARY KEY(series_id, ts)) WITHOUT ROWID
//! hosts(host PRIMARY KEY, last_seen_ms) WITHOUT ROWID
//! compaction(id = 0, before_ms)
//! ```
//!
//! A sample is first a row of `samples` (the head: about 20 bytes of
//! payload each); once its hour has passed, the writer's compaction moves it
//! into that hour's compressed block in `chunks` (a few bytes a sample).
//! `compaction.before_ms` bounds the hours compaction has reached: only a
//! sample older than it can already be in a block. `WITHOUT ROWID` tables
//! are clustered on their primary key, so one series' rows lie together in
//! time order; `chunks` keeps a rowid, as SQLite advises for rows of a
//! kilobyte.

use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The database file under `data_dir`.
pub const FILE_NAME: &str = "metrics.sqlite";

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

/// What version 2 adds: the compressed blocks. Their 1-minute averages are
/// computed from the samples, so version 1's `rollup_1m` goes.
const DDL_2: &str = "
CREATE TABLE IF NOT EXISTS chunks (
    series_id INTEGER NOT NULL,
    hour      INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (series_id, hour)
);
CREATE TABLE IF NOT EXISTS compaction (
    id        INTEGER PRIMARY KEY CHECK (id = 0),
    before_ms INTEGER NOT NULL
);
INSERT OR IGNORE INTO compaction (id, before_ms) VALUES (0, -9223372036854775808);
DROP TABLE IF EXISTS rollup_1m;
";

/// Opens (creating if needed) the database for the one writer: WAL, so that
/// readers never wait for it; `synchronous = FULL`, so that a committed
/// transaction survives a power cut (the ingest answer promises durability).
pub fn open_writer(data_dir: &Path) -> anyhow::Result<Connection> {
    use anyhow::Context as _;
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join(FILE_NAME);
    // Version 2 keeps finished hours in compressed blocks; a version-1
    // file's samples stay in the head and are compacted as any others.
    let conn = crate::sqlite::open(&path, crate::sqlite::Synchronous::Full, &[DDL, DDL_2])?;
    let context = || format!("cannot configure {}", path.display());
    configure(&conn).with_context(context)?;
    // The interleaved inserts of thousands of series touch many interior
    // pages; 16 MiB of cache keeps them in memory.
    conn.pragma_update(None, "cache_size", -16_384).with_context(context)?;
    // Truncate the WAL after checkpoints instead of letting it keep its peak size.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .with_context(context)?;
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
    fn an_earlier_version_is_upgraded_keeping_its_samples() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        v1.execute_batch(&format!(
            "{DDL} CREATE TABLE rollup_1m (series_id INTEGER, ts INTEGER, vmin REAL, vmax REAL, vsum REAL, \
             cnt INTEGER, PRIMARY KEY (series_id, ts)) WITHOUT ROWID; \
             INSERT INTO series VALUES (1, 'h', 'm', '{{}}'); INSERT INTO samples VALUES (1, 5, 2.5); \
             PRAGMA user_version = 1;"
        ))
        .unwrap();
        drop(v1);
        let conn = open_writer(dir.path()).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 2);
        let value: f64 = conn.query_row("SELECT value FROM samples", [], |r| r.get(0)).unwrap();
        assert_eq!(value, 2.5);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            tables,
            ["chunks", "compaction", "hosts", "rollup_1h", "samples", "series"]
        );
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
