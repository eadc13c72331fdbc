//! One way for every part of the agent to report its health: a part (a log
//! source, the shipper, the spool) implements [`ReportsHealth`], and the
//! metrics source sends what the parts report as `agent.*` metrics, summing
//! what several parts report under one name (every log source counts
//! `agent.lines_read`). The parts and the metrics source depend on this
//! module, not on each other.

use std::sync::Arc;

/// A part of the agent that keeps `agent.*` values.
pub trait ReportsHealth: Send + Sync + std::fmt::Debug {
    /// Calls `report` with each value the part keeps, by metric name.
    fn report(&self, report: &mut dyn FnMut(&'static str, f64));
}

/// The parts whose health is reported.
pub type Parts = Vec<Arc<dyn ReportsHealth>>;
