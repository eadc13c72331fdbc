//! A miner's state as plain data, to keep across restarts: pattern ids must
//! mean the same lines after a restart, or every pattern would look new.
//!
//! [`crate::Miner::snapshot`] takes one and [`crate::Miner::restore`]
//! rebuilds the miner from it, checking every number and link in it first,
//! so a damaged file is refused rather than trusted. The tree and the lookup
//! tables are not kept: they follow from the clusters.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The layout's version; a snapshot of another version is refused.
pub const VERSION: u32 = 1;

/// Everything a miner knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub(crate) version: u32,
    /// The settings the tree's layout follows: prefix, children per node, distinct values.
    pub(crate) shape: (usize, usize, usize),
    pub(crate) sources: Vec<SourceState>,
    pub(crate) patterns: Vec<PatternState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceState {
    pub(crate) name: String,
    /// Each word's kind (0 variable, 1 word, 2 key of a variable) and text, by number.
    pub(crate) words: Vec<(u8, String)>,
    pub(crate) clusters: Vec<ClusterState>,
    pub(crate) catch_all: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClusterState {
    pub(crate) path: Vec<u32>,
    pub(crate) template: Vec<u32>,
    pub(crate) places: Vec<(Vec<u32>, bool)>,
    pub(crate) patterns: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PatternState {
    /// `None`: an id skipped, never given.
    pub(crate) source: Option<u32>,
    pub(crate) cluster: Option<u32>,
    pub(crate) exemplar: Vec<u32>,
    pub(crate) canonical: u32,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError(pub(crate) String);

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pattern snapshot refused: {}", self.0)
    }
}

impl std::error::Error for SnapshotError {}
