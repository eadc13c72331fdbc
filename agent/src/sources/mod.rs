//! Sources: where the agent's data comes from: log files ([`file`]), the
//! systemd journal ([`journald`]) and host metrics ([`metrics`]).
//!
//! A log source hands the batcher [`Record`]s with the range of its stream
//! they settle, and counts what it did in its [`SourceHealth`], which the
//! metrics source reports as `agent.*` metrics.

pub mod file;
pub mod journald;
pub mod metrics;

use crate::health::ReportsHealth;
use lookout_shared::parse::Level;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// One record read by a log source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Its position in its stream: a file's byte offset of its first byte,
    /// a journal entry's sequence number.
    pub offset: u64,
    /// Its text (invalid UTF-8 replaced), without line terminators.
    pub message: String,
    /// Whether it was cut at the maximum record size.
    pub truncated: bool,
    /// The event time the source states outside the text, Unix ms.
    pub time_ms: Option<i64>,
    /// The level the source states outside the text.
    pub level: Option<Level>,
    /// Fields the source states outside the text.
    pub fields: BTreeMap<String, String>,
}

/// What one log source reports about itself; shared between the source's
/// thread (which counts) and the metrics thread (which reads, as
/// `agent.lines_read`, `agent.bytes_read` and `agent.records_missed`).
#[derive(Debug, Default)]
pub struct SourceHealth {
    /// Records handed to the batcher (`agent.lines_read`).
    pub records_read: AtomicU64,
    /// Bytes read (`agent.bytes_read`).
    pub bytes_read: AtomicU64,
    /// Records the source knows it could not read because they were gone
    /// before it got to them, such as journal entries vacuumed while the
    /// agent was down (`agent.records_missed`).
    pub records_missed: AtomicU64,
}

impl ReportsHealth for SourceHealth {
    fn report(&self, report: &mut dyn FnMut(&'static str, f64)) {
        report("agent.lines_read", self.records_read.load(Ordering::Relaxed) as f64);
        report("agent.bytes_read", self.bytes_read.load(Ordering::Relaxed) as f64);
        report(
            "agent.records_missed",
            self.records_missed.load(Ordering::Relaxed) as f64,
        );
    }
}

impl SourceHealth {
    /// Adds `records` records of `bytes` bytes to what was read.
    pub fn count_read(&self, records: usize, bytes: usize) {
        self.records_read.fetch_add(records as u64, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}
