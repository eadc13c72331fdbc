//! The log file source: discovery ([`discover`]), identity ([`identity`]),
//! splitting into records ([`records`]) and following files through rotation
//! ([`tailer`]).
pub mod discover;
pub mod identity;
pub mod records;
pub mod tailer;
