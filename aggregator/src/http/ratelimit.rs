//! Failed-login counting: after [`MAX_FAILURES`] failed logins for one user
//! name, or from one client address, within [`WINDOW`], further attempts are
//! answered 429 without looking at the password, until the oldest of those
//! failures is older than the window. A successful login clears the user
//! name's count (not the address's: one good password must not unlock
//! guessing at others from the same place).
//!
//! Kept in memory and bounded ([`MAX_KEYS`] names and addresses): when full,
//! entries whose failures have all left the window go first, then the ones
//! that failed longest ago. A restart forgets the counts, which costs an
//! attacker a restart per five guesses.

use std::collections::{HashMap, VecDeque};
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

/// The failure counts.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// `Err(wait)` when `user` or `address` has used up its attempts; `wait`
    /// is how long until the next attempt is allowed.
    pub fn check(&self, user: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let failures = self.lock();
        let wait = keys(user, address)
            .filter_map(|key| failures.get(&key))
            .filter_map(|times| blocked_for(times, now))
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed login.
    pub fn failed(&self, user: &str, address: Option<IpAddr>, now: Instant) {
        let mut failures = self.lock();
        for key in keys(user, address) {
            if !failures.contains_key(&key) && failures.len() >= MAX_KEYS {
                make_room(&mut failures, now);
            }
            let times = failures.entry(key).or_default();
            times.push_back(now);
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
    }

    /// Clears the user name's count after a successful login.
    pub fn succeeded(&self, user: &str) {
        self.lock().remove(&Key::User(user_key(user)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Names are counted as typed, cut to a bounded length.
fn user_key(user: &str) -> String {
    user.chars().take(128).collect()
}

fn keys(user: &str, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
    std::iter::once(Key::User(user_key(user))).chain(address.map(Key::Address))
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

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn five_failures_block_until_the_window_passes() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for i in 0..5 {
            assert!(limiter.check("alice", HOME, start).is_ok(), "attempt {i}");
            limiter.failed("alice", HOME, start);
        }
        let wait = limiter.check("alice", HOME, start).unwrap_err();
        assert_eq!(wait, WINDOW);
        // Another address is blocked for this name too, and this address for other names.
        assert!(limiter.check("alice", None, start).is_err());
        assert!(limiter.check("bob", HOME, start).is_err());
        assert!(limiter.check("bob", None, start).is_ok());
        assert!(limiter.check("alice", HOME, start + WINDOW).is_ok());
    }

    #[test]
    fn success_clears_the_name_only() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for _ in 0..5 {
            limiter.failed("alice", HOME, now);
        }
        limiter.succeeded("alice");
        assert!(limiter.check("alice", None, now).is_ok());
        assert!(limiter.check("alice", HOME, now).is_err(), "the address still counts");
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(MAX_KEYS + 100) {
            limiter.failed(&format!("user{i}"), None, now);
        }
        assert!(limiter.lock().len() <= MAX_KEYS);
    }
}
