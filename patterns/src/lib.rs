//! Log patterns: which template a message is a line of.
//!
//! Ten million lines are a few hundred message templates
//! (`PacketResponder <*> for block blk_<*> terminating`); which one appeared
//! five minutes ago, or jumped tenfold, is often the answer in an incident.
//! This crate gives each message a pattern id as it arrives, online and in
//! bounded memory and time per line, and the pattern's template text. It does no I/O and
//! keeps no time: the aggregator stores the id with each record and counts
//! patterns per partition.
//!
//! - [`shape`]: a message's tokens with numbers, addresses, ids, dates,
//!   host names, paths and bracketed values masked.
//! - [`miner`]: the fixed-depth tree (after Drain: He et al., ICWS 2017)
//!   that groups shapes into clusters, and the split of clusters by words
//!   that take few values into patterns, with stable ids.
//! - [`snapshot`]: the miner's state as data, kept across restarts.
//!
//! Accuracy is measured on the 16 Loghub systems (`tests/loghub.rs`), with
//! one setting for all of them.

pub mod miner;
pub mod shape;
pub mod snapshot;

pub use miner::{Miner, PatternId, Settings};
pub use snapshot::{Snapshot, SnapshotError};
