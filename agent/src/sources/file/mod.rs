//! The log file source: discovery ([`discover`]), safe opening ([`open`]),
//! container runtimes' line formats ([`container`]),
//! identity ([`identity`]), splitting into records ([`records`]),
//! following files through rotation ([`tailer`]) and being woken when a
//! watched folder changes ([`watch`]).
pub mod container;
pub mod discover;
pub mod identity;
pub mod open;
pub mod records;
pub mod tailer;
pub mod watch;
