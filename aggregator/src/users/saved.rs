//! Saved searches: a name for a search page's state (query, quick range,
//! host, source, level), kept per user in `users.sqlite`, and seen by every
//! user when shared. Searches saved with an API token belong to no user
//! (owner "") and are seen by API-token callers.

use super::{UserError, UserStore};
use lookout_shared::time::now_ms;
use rusqlite::{OptionalExtension as _, params};

/// Most searches one owner may keep.
pub const MAX_PER_OWNER: i64 = 500;

/// The table, created with the users'.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS saved_searches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    range TEXT NOT NULL,
    host TEXT NOT NULL,
    source TEXT NOT NULL,
    level TEXT NOT NULL,
    shared INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (owner, name)
);
";

/// A search as saved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedSearch {
    /// Its number.
    pub id: i64,
    /// Who saved it ("" for an API token).
    pub owner: String,
    /// Its name, unique per owner.
    pub name: String,
    /// The query (`q`).
    pub q: String,
    /// A quick range (`15m`, `1h`, `24h`, `7d`) or "".
    pub range: String,
    /// The search page's host filter, or "".
    pub host: String,
    /// Its source filter, or "".
    pub source: String,
    /// Its level filter, or "".
    pub level: String,
    /// Whether every user sees it.
    pub shared: bool,
    /// When it was saved, Unix ms.
    pub created_ms: i64,
}

/// Why a search was not saved or removed.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] UserError),
    /// The owner already has a search of that name.
    #[error("a saved search named `{0}` exists already: pick another name or remove it first")]
    Exists(String),
    /// The owner has [`MAX_PER_OWNER`] searches.
    #[error("at most {MAX_PER_OWNER} searches may be saved per user: remove some first")]
    Full,
    /// No such search that the caller may see (or remove).
    #[error("no saved search {0} that you may change")]
    NotFound(i64),
}

impl From<rusqlite::Error> for SavedError {
    fn from(err: rusqlite::Error) -> Self {
        SavedError::Store(UserError::Database(err))
    }
}

const COLUMNS: &str = "id, owner, name, query, range, host, source, level, shared, created_ms";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SavedSearch> {
    Ok(SavedSearch {
        id: row.get(0)?,
        owner: row.get(1)?,
        name: row.get(2)?,
        q: row.get(3)?,
        range: row.get(4)?,
        host: row.get(5)?,
        source: row.get(6)?,
        level: row.get(7)?,
        shared: row.get(8)?,
        created_ms: row.get(9)?,
    })
}

impl UserStore {
    /// Saves `search` for its owner (its `id` and `created_ms` are set here).
    pub fn save_search(&self, search: &SavedSearch) -> Result<i64, SavedError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let kept: i64 = connection.query_row(
            "SELECT COUNT(*) FROM saved_searches WHERE owner = ?1",
            [&search.owner],
            |row| row.get(0),
        )?;
        if kept >= MAX_PER_OWNER {
            return Err(SavedError::Full);
        }
        let inserted = connection.execute(
            "INSERT INTO saved_searches (owner, name, query, range, host, source, level, shared, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(owner, name) DO NOTHING",
            params![
                search.owner,
                search.name,
                search.q,
                search.range,
                search.host,
                search.source,
                search.level,
                search.shared,
                now_ms()
            ],
        )?;
        if inserted == 0 {
            return Err(SavedError::Exists(search.name.clone()));
        }
        Ok(connection.last_insert_rowid())
    }

    /// The searches `owner` sees: their own and the shared ones, by name.
    pub fn saved_searches(&self, owner: &str) -> Result<Vec<SavedSearch>, SavedError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut statement = connection.prepare(&format!(
            "SELECT {COLUMNS} FROM saved_searches WHERE owner = ?1 OR shared ORDER BY name, owner, id"
        ))?;
        let rows = statement.query_map([owner], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Search `id`, if `owner` sees it.
    pub fn saved_search(&self, owner: &str, id: i64) -> Result<Option<SavedSearch>, SavedError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(connection
            .query_row(
                &format!("SELECT {COLUMNS} FROM saved_searches WHERE id = ?1 AND (owner = ?2 OR shared)"),
                params![id, owner],
                row,
            )
            .optional()?)
    }

    /// Removes search `id`: the owner's own, or any shared one for an admin.
    pub fn remove_saved_search(&self, owner: &str, admin: bool, id: i64) -> Result<(), SavedError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let removed = connection.execute(
            "DELETE FROM saved_searches WHERE id = ?1 AND (owner = ?2 OR (?3 AND shared))",
            params![id, owner, admin],
        )?;
        if removed == 0 {
            return Err(SavedError::NotFound(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(owner: &str, name: &str, shared: bool) -> SavedSearch {
        SavedSearch {
            id: 0,
            owner: owner.into(),
            name: name.into(),
            q: "level:error".into(),
            range: "1h".into(),
            host: String::new(),
            source: String::new(),
            level: String::new(),
            shared,
            created_ms: 0,
        }
    }

    #[test]
    fn owners_see_their_own_and_shared_searches_and_only_remove_what_they_may() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(dir.path()).unwrap();
        let mine = store.save_search(&search("ann", "errors", false)).unwrap();
        let shared = store.save_search(&search("bob", "team", true)).unwrap();
        store.save_search(&search("bob", "private", false)).unwrap();
        assert!(matches!(
            store.save_search(&search("ann", "errors", true)),
            Err(SavedError::Exists(_))
        ));
        let seen: Vec<String> = store
            .saved_searches("ann")
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(seen, ["errors", "team"]);
        assert!(store.saved_search("ann", shared).unwrap().is_some());
        assert!(store.saved_search("carl", mine).unwrap().is_none(), "private to ann");
        // Not the owner and not an admin: refused; an admin may remove a shared one.
        assert!(matches!(
            store.remove_saved_search("ann", false, shared),
            Err(SavedError::NotFound(_))
        ));
        store.remove_saved_search("ann", true, shared).unwrap();
        store.remove_saved_search("ann", false, mine).unwrap();
        assert!(store.saved_searches("ann").unwrap().is_empty());
        for i in 0..MAX_PER_OWNER {
            store.save_search(&search("dan", &format!("s{i}"), false)).unwrap();
        }
        assert!(matches!(
            store.save_search(&search("dan", "one more", false)),
            Err(SavedError::Full)
        ));
    }
}
