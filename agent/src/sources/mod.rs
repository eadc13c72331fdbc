//! Sources: where the agent's data comes from. Today, log files ([`file`]).
pub mod file;
