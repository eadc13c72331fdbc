//! Sources: where the agent's data comes from: log files ([`file`]) and host
//! metrics ([`metrics`]).
pub mod file;
pub mod metrics;
