//! The log file source: discovery ([`discover`]), safe opening ([`open`]),
//! identity ([`identity`]), splitting into records ([`records`]) and
//! following files through rotation ([`tailer`]).
pub mod discover;
pub mod identity;
pub mod open;
pub mod records;
pub mod tailer;
