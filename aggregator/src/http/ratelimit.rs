//! Login attempt limits: after [`MAX_FAILURES`] failed logins for one user
//! name, or from one client address, within [`WINDOW`], further attempts are
//! answered 429 without looking at the password, until the oldest of those
//! failures is older than the window.
//!
//! Three rules keep it sound under attack:
//!
//! - An attempt counts as a failure *before* its password is checked
//!   ([`LoginLimiter::attempt`]), and is taken back only when it succeeds: so
//!   sixty concurrent guesses get five checks, not sixty.
//! - A successful login clears the name's count, not the address's (one good
//!   password must not unlock guessing at others from the same place).
//! - An address a user has signed in from is *trusted* for that user: the
//!   name's count does not apply there (its own address count still does). So
//!   an outsider who fails five times for `admin` cannot keep `admin` out of
//!   the place they usually sign in from.
//!
//! Kept in memory and bounded ([`MAX_KEYS`] names and addresses, as many
//! trusted pairs): when full, entries whose failures have all left the window
//! go first, then the ones that failed longest ago. A restart forgets the
//! counts, which costs an attacker a restart per five guesses.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Names and addresses remembered at most.
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Default)]
struct State {
    failures: HashMap<Key, VecDeque<Instant>>,
    /// (user, address) pairs that have signed in successfully.
    trusted: HashSet<(String, IpAddr)>,
}

/// The failure counts.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    state: Mutex<State>,
}

impl LoginLimiter {
    /// Counts an attempt for `user` from `address` as failed until
    /// [`LoginLimiter::succeeded`] says otherwise; `Err(wait)`, counting
    /// nothing, when the name or the address has used up its attempts
    /// (`wait`: until the next attempt is allowed).
    pub fn attempt(&self, user: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        let name = user_key(user);
        let trusted = address.is_some_and(|a| state.trusted.contains(&(name.clone(), a)));
        let keys: Vec<Key> = (!trusted)
            .then(|| Key::User(name.clone()))
            .into_iter()
            .chain(address.map(Key::Address))
            .collect();
        let wait = keys
            .iter()
            .filter_map(|key| state.failures.get(key))
            .filter_map(|times| blocked_for(times, now))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        // The name is counted even from a trusted address: a trusted address
        // must not become a way around the limit for everyone else.
        for key in std::iter::once(Key::User(name)).chain(address.map(Key::Address)) {
            if !state.failures.contains_key(&key) && state.failures.len() >= MAX_KEYS {
                make_room(&mut state.failures, now);
            }
            let times = state.failures.entry(key).or_default();
            times.push_back(now);
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
        Ok(())
    }

    /// Takes back the attempt made at `at`, which succeeded: clears the name's
    /// count and trusts `address` for `user` from now on.
    pub fn succeeded(&self, user: &str, address: Option<IpAddr>, at: Instant) {
        let mut state = self.lock();
        let name = user_key(user);
        state.failures.remove(&Key::User(name.clone()));
        if let Some(address) = address {
            if let Some(times) = state.failures.get_mut(&Key::Address(address))
                && let Some(index) = times.iter().position(|t| *t == at)
            {
                times.remove(index);
            }
            if state.trusted.len() >= MAX_KEYS {
                state.trusted.clear();
            }
            state.trusted.insert((name, address));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Names are counted as typed, cut to a bounded length.
fn user_key(user: &str) -> String {
    user.chars().take(128).collect()
}

/// How long `times` (the latest failures, oldest first) still blocks.
fn blocked_for(times: &VecDeque<Instant>, now: Instant) -> Option<Duration> {
    let recent: Vec<&Instant> = times.iter().filter(|t| now.duration_since(**t) < WINDOW).collect();
    if recent.len() < MAX_FAILURES {
        return None;
    }
    let oldest = recent.first()?;
    Some(WINDOW.saturating_sub(now.duration_since(**oldest)))
}

fn make_room(failures: &mut HashMap<Key, VecDeque<Instant>>, now: Instant) {
    failures.retain(|_, times| times.back().is_some_and(|last| now.duration_since(*last) < WINDOW));
    if failures.len() >= MAX_KEYS {
        let stalest = failures
            .iter()
            .min_by_key(|(_, times)| times.back().copied())
            .map(|(key, _)| key.clone());
        if let Some(key) = stalest {
            failures.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    const AWAY: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    const THIRD: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));

    #[test]
    fn five_attempts_block_until_the_window_passes() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for i in 0..5 {
            assert!(limiter.attempt("alice", HOME, start).is_ok(), "attempt {i}");
        }
        let wait = limiter.attempt("alice", HOME, start).unwrap_err();
        assert_eq!(wait, WINDOW);
        // Another address is blocked for this name too, and this address for other names.
        assert!(limiter.attempt("alice", None, start).is_err());
        assert!(limiter.attempt("bob", HOME, start).is_err());
        assert!(limiter.attempt("bob", None, start).is_ok());
        assert!(limiter.attempt("alice", HOME, start + WINDOW).is_ok());
    }

    #[test]
    fn success_clears_the_name_and_its_own_attempt_only() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for _ in 0..4 {
            limiter.attempt("alice", HOME, now).unwrap();
        }
        let good = now + Duration::from_secs(1);
        limiter.attempt("alice", HOME, good).unwrap();
        limiter.succeeded("alice", HOME, good);
        assert!(limiter.attempt("alice", AWAY, good).is_ok());
        // HOME keeps its 4 failures: one more attempt, then it is blocked.
        assert!(limiter.attempt("bob", HOME, good).is_ok());
        assert!(
            limiter.attempt("carol", HOME, good).is_err(),
            "the address still counts"
        );
    }

    #[test]
    fn an_outsider_cannot_lock_a_user_out_of_a_trusted_address() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        limiter.attempt("admin", HOME, now).unwrap();
        limiter.succeeded("admin", HOME, now);
        for _ in 0..5 {
            limiter.attempt("admin", AWAY, now).unwrap();
        }
        assert!(limiter.attempt("admin", AWAY, now).is_err());
        assert!(
            limiter.attempt("admin", THIRD, now).is_err(),
            "untrusted addresses are blocked for the name"
        );
        assert!(
            limiter.attempt("admin", HOME, now).is_ok(),
            "the user's own address is not"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(MAX_KEYS + 100) {
            let _ = limiter.attempt(&format!("user{i}"), None, now);
        }
        assert!(limiter.lock().failures.len() <= MAX_KEYS);
    }
}
