//! The web UI's users, their login sessions and saved searches ([`saved`]),
//! in `data_dir/users.sqlite`.
//!
//! A user has a name, an argon2id password hash (a PHC string, see
//! [`secret`]) and a [`Role`]: `viewer` searches and looks, `admin` also
//! manages silences, users and tokens. The first admin comes from
//! `lookout-aggregator user add --admin NAME`, or, when the aggregator starts
//! with no user at all, from [`UserStore::create_first_admin`], whose
//! generated password is printed once.
//!
//! A session is a random 256-bit token held by the browser in a cookie; the
//! table keeps only its SHA-256, so a copy of the database does not hand out
//! logins. Each session also has a CSRF token, the time it was created (it
//! ends [`SessionPolicy::absolute`] later) and the time it was last used (it
//! ends after [`SessionPolicy::idle`] without use). Expired sessions are
//! refused at once and deleted by [`UserStore::purge_expired`].
//!
//! All methods block (SQLite, and argon2, which takes tens of milliseconds on
//! purpose): async callers run them with `spawn_blocking`.

pub mod hasher;
pub mod saved;
pub mod secret;

use lookout_shared::time::now_ms;
use rusqlite::{Connection, OptionalExtension as _, params};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The file in `data_dir`.
pub const USERS_FILE: &str = "users.sqlite";

/// Bytes of randomness in a session or CSRF token (256 bits).
const TOKEN_BYTES: usize = 32;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Searches logs and looks at hosts.
    Viewer,
    /// Everything a viewer does, plus silences, users and tokens.
    Admin,
}

impl Role {
    /// `viewer` or `admin`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Role {
        // The table's CHECK constraint allows only the two values.
        if text == "admin" { Role::Admin } else { Role::Viewer }
    }
}

/// A user as listed (without the hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created, Unix milliseconds.
    pub created_ms: i64,
}

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle: Duration,
    /// A session ends this long after its login.
    pub absolute: Duration,
}

impl From<&crate::config::SessionsConfig> for SessionPolicy {
    fn from(config: &crate::config::SessionsConfig) -> Self {
        SessionPolicy {
            idle: config.idle_timeout.get(),
            absolute: config.absolute_timeout.get(),
        }
    }
}

/// A freshly created session: the token goes into the cookie and is never stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value.
    pub token: String,
    /// The session as stored.
    pub session: Session,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who is logged in.
    pub user: String,
    /// Their role (as it is now, not as it was at login).
    pub role: Role,
    /// The token state-changing requests must echo.
    pub csrf_token: String,
    /// When the session ends at the latest (Unix ms): its absolute expiry.
    pub expires_ms: i64,
}

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The database could not be used.
    #[error("the user database failed: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database could not be opened.
    #[error("cannot open the user database: {0}")]
    Open(#[from] crate::sqlite::OpenError),
    /// The OS random generator failed.
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(getrandom::Error),
    /// Hashing failed.
    #[error("{0}")]
    Hash(String),
    /// `user add` for a name that is taken.
    #[error("a user named `{0}` already exists")]
    Exists(String),
    /// No user of that name.
    #[error("there is no user named `{0}`")]
    NoSuchUser(String),
    /// The password breaks the rules of [`secret::password_problem`].
    #[error("{0}")]
    WeakPassword(String),
    /// The name is empty, too long or has characters outside `A-Za-z0-9._@-`.
    #[error("`{0}` is not a valid user name: use 1 to 64 letters, digits, `.`, `_`, `@` or `-`")]
    BadName(String),
}

/// The user and session tables. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct UserStore {
    connection: Arc<Mutex<Connection>>,
    /// A hash to verify against when the user does not exist, so a wrong
    /// name takes as long as a wrong password.
    dummy_hash: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStore").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 BLOB PRIMARY KEY NOT NULL,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions(expires_ms);
";

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

impl UserStore {
    /// Opens (creating if needed) `data_dir/users.sqlite`.
    pub fn open(data_dir: &Path) -> Result<UserStore, UserError> {
        lookout_shared::process::private_dir(data_dir).map_err(|err| {
            UserError::Database(rusqlite::Error::InvalidPath(
                format!("{}: {err}", data_dir.display()).into(),
            ))
        })?;
        // Version 1: the users, sessions and saved searches (files of
        // earlier builds have them at version 0, created if missing). A
        // login or a new user must not be lost to a power cut either.
        let schema = format!("{SCHEMA}\n{}", saved::SCHEMA);
        let connection = crate::sqlite::open(
            &data_dir.join(USERS_FILE),
            crate::sqlite::Synchronous::Full,
            &[schema.as_str()],
        )?;
        connection.pragma_update(None, "foreign_keys", true)?;
        Ok(UserStore {
            connection: Arc::new(Mutex::new(connection)),
            dummy_hash: Arc::new(OnceLock::new()),
        })
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, UserError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(work(&connection)?)
    }

    /// Creates a user; refuses a taken or invalid name and a weak password.
    pub fn add_user(&self, name: &str, password: &str, role: Role) -> Result<(), UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName(name.into()));
        }
        if let Some(problem) = secret::password_problem(password) {
            return Err(UserError::WeakPassword(problem));
        }
        let hash = secret::hash_password(password).map_err(UserError::Hash)?;
        let inserted = self.with(|c| {
            c.execute(
                "INSERT INTO users (name, password_hash, role, created_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(name) DO NOTHING",
                params![name, hash, role.as_str(), now_ms()],
            )
        })?;
        if inserted == 0 {
            return Err(UserError::Exists(name.into()));
        }
        Ok(())
    }

    /// Replaces a user's password and ends their sessions.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UserError> {
        if let Some(problem) = secret::password_problem(password) {
            return Err(UserError::WeakPassword(problem));
        }
        let hash = secret::hash_password(password).map_err(UserError::Hash)?;
        let changed = self.with(|c| {
            let changed = c.execute(
                "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )?;
            c.execute("DELETE FROM sessions WHERE user_name = ?1", params![name])?;
            Ok(changed)
        })?;
        if changed == 0 {
            return Err(UserError::NoSuchUser(name.into()));
        }
        Ok(())
    }

    /// Deletes a user, their sessions and their saved searches.
    pub fn remove_user(&self, name: &str) -> Result<(), UserError> {
        let removed = self.with(|c| {
            let removed = c.execute("DELETE FROM users WHERE name = ?1", params![name])?;
            if removed > 0 {
                c.execute("DELETE FROM saved_searches WHERE owner = ?1", params![name])?;
            }
            Ok(removed)
        })?;
        if removed == 0 {
            return Err(UserError::NoSuchUser(name.into()));
        }
        Ok(())
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<User>, UserError> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT name, role, created_ms FROM users ORDER BY name")?;
            let rows = statement.query_map([], |row| {
                Ok(User {
                    name: row.get(0)?,
                    role: Role::parse(&row.get::<_, String>(1)?),
                    created_ms: row.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// On a store with no user at all, creates `admin` (role admin) with a
    /// generated password and returns that password; otherwise `None`.
    pub fn create_first_admin(&self) -> Result<Option<String>, UserError> {
        let users: i64 = self.with(|c| c.query_row("SELECT count(*) FROM users", [], |row| row.get(0)))?;
        if users > 0 {
            return Ok(None);
        }
        let password = secret::generate_password(20).map_err(UserError::Random)?;
        match self.add_user("admin", &password, Role::Admin) {
            Ok(()) => Ok(Some(password)),
            // Another process won the race: it printed its own password.
            Err(UserError::Exists(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The user whose name and password these are, or `None`. Takes the same
    /// time for an unknown name as for a wrong password.
    pub fn check_password(&self, name: &str, password: &str) -> Result<Option<User>, UserError> {
        let found = self.with(|c| {
            c.query_row(
                "SELECT password_hash, role, created_ms FROM users WHERE name = ?1",
                params![name],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        Role::parse(&row.get::<_, String>(1)?),
                        row.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()
        })?;
        // Exactly one argon2 verification whatever is wrong (no such user, an
        // over-long password), so the answer's time does not tell which.
        let (hash, known) = match &found {
            Some((hash, ..)) if password.len() <= secret::MAX_PASSWORD_BYTES => (hash.clone(), true),
            _ => (self.dummy_hash()?, false),
        };
        let verified = secret::verify_password(password, &hash);
        let Some((_, role, created_ms)) = found.filter(|_| known && verified) else {
            return Ok(None);
        };
        Ok(Some(User {
            name: name.into(),
            role,
            created_ms,
        }))
    }

    /// The hash that unknown names and over-long passwords are checked
    /// against, made once.
    fn dummy_hash(&self) -> Result<String, UserError> {
        if let Some(hash) = self.dummy_hash.get() {
            return Ok(hash.clone());
        }
        let hash = secret::hash_password("not a password of anyone").map_err(UserError::Hash)?;
        Ok(self.dummy_hash.get_or_init(|| hash).clone())
    }

    /// Starts a session for `user` (and deletes expired ones).
    pub fn create_session(&self, user: &str, policy: SessionPolicy) -> Result<NewSession, UserError> {
        let token = secret::random_hex(TOKEN_BYTES).map_err(UserError::Random)?;
        let csrf_token = secret::random_hex(TOKEN_BYTES).map_err(UserError::Random)?;
        let now = now_ms();
        let expires_ms = now.saturating_add(millis(policy.absolute));
        let role = self.with(|c| {
            c.execute("DELETE FROM sessions WHERE expires_ms <= ?1", params![now])?;
            let role: String = c.query_row("SELECT role FROM users WHERE name = ?1", params![user], |row| {
                row.get(0)
            })?;
            c.execute(
                "INSERT INTO sessions (token_sha256, user_name, csrf_token, created_ms, last_used_ms, expires_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![secret::token_digest(&token), user, csrf_token, now, expires_ms],
            )?;
            Ok(Role::parse(&role))
        })?;
        Ok(NewSession {
            token,
            session: Session {
                user: user.into(),
                role,
                csrf_token,
                expires_ms,
            },
        })
    }

    /// The live session of `token`, marking it used; `None` when it is
    /// unknown or expired (an expired one is deleted).
    pub fn session(&self, token: &str, policy: SessionPolicy) -> Result<Option<Session>, UserError> {
        let digest = secret::token_digest(token);
        let now = now_ms();
        let idle = millis(policy.idle);
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT s.user_name, u.role, s.csrf_token, s.last_used_ms, s.expires_ms \
                     FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.token_sha256 = ?1",
                    params![digest],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((user, role, csrf_token, last_used_ms, expires_ms)) = row else {
                return Ok(None);
            };
            if now >= expires_ms || now >= last_used_ms.saturating_add(idle) {
                c.execute("DELETE FROM sessions WHERE token_sha256 = ?1", params![digest])?;
                return Ok(None);
            }
            // Record use now and then, not on every request: a quarter of the
            // idle time (at most a minute) is precise enough.
            if now - last_used_ms >= (idle / 4).min(60_000) {
                c.execute(
                    "UPDATE sessions SET last_used_ms = ?2 WHERE token_sha256 = ?1",
                    params![digest, now],
                )?;
            }
            Ok(Some(Session {
                user,
                role: Role::parse(&role),
                csrf_token,
                expires_ms,
            }))
        })
    }

    /// Ends the session of `token` (logout); unknown tokens are ignored.
    pub fn end_session(&self, token: &str) -> Result<(), UserError> {
        let digest = secret::token_digest(token);
        self.with(|c| c.execute("DELETE FROM sessions WHERE token_sha256 = ?1", params![digest]))?;
        Ok(())
    }

    /// Deletes every expired session; returns how many.
    pub fn purge_expired(&self, policy: SessionPolicy) -> Result<usize, UserError> {
        let now = now_ms();
        let idle_cutoff = now.saturating_sub(millis(policy.idle));
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE expires_ms <= ?1 OR last_used_ms <= ?2",
                params![now, idle_cutoff],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SessionPolicy = SessionPolicy {
        idle: Duration::from_secs(3600),
        absolute: Duration::from_secs(7200),
    };

    #[test]
    fn users_log_in_only_with_their_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(dir.path()).unwrap();
        store.add_user("alice", "a long password", Role::Admin).unwrap();
        assert!(matches!(
            store.add_user("alice", "another password", Role::Viewer),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            store.add_user("bob", "short", Role::Viewer),
            Err(UserError::WeakPassword(_))
        ));
        assert!(matches!(
            store.add_user("b o b", "a long password", Role::Viewer),
            Err(UserError::BadName(_))
        ));
        let alice = store.check_password("alice", "a long password").unwrap().unwrap();
        assert_eq!(alice.role, Role::Admin);
        assert!(store.check_password("alice", "a wrong password").unwrap().is_none());
        assert!(store.check_password("nobody", "a long password").unwrap().is_none());
        store.set_password("alice", "a new long password").unwrap();
        assert!(store.check_password("alice", "a long password").unwrap().is_none());
        assert!(store.check_password("alice", "a new long password").unwrap().is_some());
    }

    #[test]
    fn sessions_are_stored_by_digest_and_end_with_logout_or_removal() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(dir.path()).unwrap();
        store.add_user("carol", "a long password", Role::Viewer).unwrap();
        let new = store.create_session("carol", POLICY).unwrap();
        assert_eq!(new.token.len(), 64);
        let found = store.session(&new.token, POLICY).unwrap().unwrap();
        assert_eq!(found, new.session);
        assert_eq!(found.role, Role::Viewer);
        // The token itself is nowhere in the database file.
        let stored: Vec<u8> = store
            .with(|c| c.query_row("SELECT token_sha256 FROM sessions", [], |row| row.get(0)))
            .unwrap();
        assert_eq!(stored, secret::token_digest(&new.token));
        store.end_session(&new.token).unwrap();
        assert!(store.session(&new.token, POLICY).unwrap().is_none());

        let other = store.create_session("carol", POLICY).unwrap();
        store.remove_user("carol").unwrap();
        assert!(store.session(&other.token, POLICY).unwrap().is_none());
    }

    #[test]
    fn the_first_admin_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(dir.path()).unwrap();
        let password = store.create_first_admin().unwrap().unwrap();
        assert!(store.check_password("admin", &password).unwrap().is_some());
        assert_eq!(store.create_first_admin().unwrap(), None);
        let users = store.list_users().unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].role, Role::Admin);
    }

    #[test]
    fn every_failed_login_costs_exactly_one_verification() {
        // Wall-clock times are not asserted; the work is: an unknown name and
        // an over-long password cost what a wrong password costs, one argon2
        // verification, so the answer's time says nothing about which it was.
        let dir = tempfile::tempdir().unwrap();
        let users = UserStore::open(dir.path()).unwrap();
        users.add_user("alice", "correct horse battery", Role::Viewer).unwrap();
        let long = "x".repeat(2000);
        for (name, password) in [
            ("alice", "wrong password here"),
            ("nobody", "wrong password here"),
            ("alice", long.as_str()),
            ("nobody", long.as_str()),
        ] {
            secret::VERIFICATIONS.with(|count| count.set(0));
            assert!(users.check_password(name, password).unwrap().is_none());
            assert_eq!(
                secret::VERIFICATIONS.with(std::cell::Cell::get),
                1,
                "{name}, {} bytes",
                password.len()
            );
        }
    }
}
