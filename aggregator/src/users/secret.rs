//! Passwords and random tokens: argon2id hashing, the strength rule, and
//! random values from the operating system's generator.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use sha2::{Digest as _, Sha256};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted, in bytes (argon2 takes any length; this
/// only bounds the work an attacker can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Characters of generated passwords: letters and digits without the ones
/// that look alike (0/O, 1/l/I), so a password read off a terminal can be typed.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Why a password is refused.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(format!(
            "the password is too short: at least {MIN_PASSWORD_CHARS} characters are required"
        ))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!("the password is too long: at most {MAX_PASSWORD_BYTES} bytes"))
    } else if password.chars().any(char::is_control) {
        Some("the password must not contain control characters".into())
    } else {
        None
    }
}

/// The argon2id PHC string (`$argon2id$v=19$...`) of `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let hash: Result<PasswordHash, _> = Argon2::default().hash_password(password.as_bytes());
    hash.map(|hash| hash.to_string())
        .map_err(|err| format!("cannot hash the password: {err}"))
}

#[cfg(test)]
thread_local! {
    /// Verifications run on this thread: what the timing tests count.
    pub static VERIFICATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether `password` matches the PHC string `phc`; a malformed hash matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    #[cfg(test)]
    VERIFICATIONS.with(|count| count.set(count.get() + 1));
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// `bytes` random bytes from the OS generator, as lowercase hex.
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(hex(&buffer))
}

/// A random password of `length` characters of [`PASSWORD_ALPHABET`].
pub fn generate_password(length: usize) -> Result<String, getrandom::Error> {
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % PASSWORD_ALPHABET.len();
    let mut password = String::with_capacity(length);
    let mut buffer = [0u8; 64];
    while password.len() < length {
        getrandom::fill(&mut buffer)?;
        for &byte in &buffer {
            if usize::from(byte) < limit && password.len() < length {
                password.push(char::from(
                    PASSWORD_ALPHABET[usize::from(byte) % PASSWORD_ALPHABET.len()],
                ));
            }
        }
    }
    Ok(password)
}

/// The SHA-256 of a token: what the session table stores instead of the token.
pub fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Equality that takes the same time wherever the first difference is (for
/// equal lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(password_problem("short").unwrap().contains("at least 12"));
        assert!(password_problem("twelve chars").is_none());
        assert!(password_problem("with\nnewline!!").is_some());
    }

    #[test]
    fn random_values_have_the_asked_length() {
        let token = random_hex(32).unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, random_hex(32).unwrap());
        let password = generate_password(20).unwrap();
        assert_eq!(password.len(), 20);
        assert!(password.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
    }
}
