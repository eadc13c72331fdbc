//! The samples the metric writer stores, in commit order, for one reader
//! that forwards them elsewhere (Prometheus remote write, see
//! [`crate::remote_write`]).
//!
//! The writer pushes a committed transaction's new samples (never a re-sent
//! one) and never waits: the feed is bounded, and when its reader falls
//! behind by more than the capacity (the receiving end is down for long),
//! the oldest samples are dropped and counted
//! (`lookout_remote_write_samples_total{result="dropped"}`). The feed lives
//! in memory: what it holds at a stop is not sent.

use crate::metrics::Metrics;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// A stored sample: its series' id in the metric store, Unix ms, value.
pub type StoredSample = (i64, i64, f64);

/// See the module docs.
pub struct SampleFeed {
    queue: Mutex<VecDeque<StoredSample>>,
    capacity: usize,
    arrived: Notify,
    metrics: Arc<Metrics>,
}

impl SampleFeed {
    /// A feed that holds at most `capacity` samples.
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> SampleFeed {
        SampleFeed {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            arrived: Notify::new(),
            metrics,
        }
    }

    /// Adds committed samples, dropping the oldest past the capacity.
    pub fn push(&self, samples: &[StoredSample]) {
        if samples.is_empty() {
            return;
        }
        let dropped = {
            let mut queue = self.lock();
            queue.extend(samples.iter().copied());
            let over = queue.len().saturating_sub(self.capacity);
            queue.drain(..over);
            over
        };
        if dropped > 0 {
            self.metrics.remote_write_samples(0, 0, dropped as u64);
        }
        self.arrived.notify_one();
    }

    /// Takes the oldest samples, at most `max`.
    pub fn take(&self, max: usize) -> Vec<StoredSample> {
        let mut queue = self.lock();
        let count = queue.len().min(max);
        queue.drain(..count).collect()
    }

    /// How many samples wait.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Completes once samples were pushed since the last call (or at once,
    /// when some were pushed before it).
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<StoredSample>> {
        // A queue of plain values stays whole whatever a panicking holder did.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first_and_past_the_capacity_are_dropped_and_counted() {
        let metrics = Arc::new(Metrics::default());
        let feed = SampleFeed::new(3, metrics.clone());
        feed.push(&[(1, 10, 1.0), (1, 20, 2.0)]);
        feed.push(&[(2, 10, 3.0), (2, 20, 4.0)]);
        assert_eq!(feed.len(), 3);
        assert_eq!(feed.take(2), [(1, 20, 2.0), (2, 10, 3.0)]);
        assert_eq!(feed.take(5), [(2, 20, 4.0)]);
        assert!(feed.is_empty());
        assert!(
            metrics
                .render()
                .contains("lookout_remote_write_samples_total{result=\"dropped\"} 1\n")
        );
    }
}
