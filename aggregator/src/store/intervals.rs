//! Which bytes of which file the aggregator already holds: the basis of
//! exactly-once ingest.
//!
//! Each accepted [`StreamChunk`](lookout_shared::wire::StreamChunk) covers bytes
//! `[start, end)` of one stream. A record whose offset falls inside a held range
//! is a re-send and is dropped. Ranges rather than a single watermark, because
//! the agent keeps several batches in flight and re-sends after a crash, so
//! chunks arrive out of order and overlapping.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashMap;

/// Disjoint, sorted, non-adjacent half-open ranges `[start, end)` of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IntervalSet {
    ranges: Vec<(u64, u64)>,
}

impl IntervalSet {
    /// Adds `[start, end)`, merging with overlapping or touching ranges.
    /// Returns whether the set changed (false when it already covered the range).
    pub fn insert(&mut self, start: u64, end: u64) -> bool {
        if start >= end || self.covers(start, end) {
            return false;
        }
        // Ranges that overlap or touch [start, end) form one contiguous run
        // [first, last) of the sorted vector: replace the run with their union.
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        let mut merged = (start, end);
        if first < last {
            merged.0 = merged.0.min(self.ranges[first].0);
            merged.1 = merged.1.max(self.ranges[last - 1].1);
        }
        self.ranges.splice(first..last, [merged]);
        true
    }

    /// Whether byte `offset` lies in a held range.
    pub fn contains(&self, offset: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e <= offset);
        self.ranges.get(i).is_some_and(|&(s, _)| s <= offset)
    }

    /// Whether any byte of `[start, end)` is held.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return false;
        }
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges.get(i).is_some_and(|&(s, _)| s < end)
    }

    /// Whether every byte of `[start, end)` is held (true for an empty range).
    fn covers(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges.get(i).is_some_and(|&(s, e)| s <= start && end <= e)
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }
}

impl<'de> Deserialize<'de> for IntervalSet {
    /// Re-inserts every range, so a hand-edited or older payload still yields a
    /// well-formed set.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Vec::<(u64, u64)>::deserialize(deserializer)?;
        let mut set = IntervalSet::default();
        for (start, end) in raw {
            set.insert(start, end);
        }
        Ok(set)
    }
}

/// Held ranges per `host/stream` (payloads written before ranges were kept
/// per host are keyed by the stream id alone; those keys are still read).
pub type StreamIntervals = HashMap<String, IntervalSet>;

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u64, u64)]) -> IntervalSet {
        let mut set = IntervalSet::default();
        for &(s, e) in ranges {
            set.insert(s, e);
        }
        set
    }

    #[test]
    fn disjoint_ranges_stay_sorted() {
        assert_eq!(
            set(&[(20, 30), (0, 10), (40, 50)]).ranges(),
            &[(0, 10), (20, 30), (40, 50)]
        );
    }

    #[test]
    fn touching_and_overlapping_ranges_merge() {
        assert_eq!(set(&[(0, 10), (10, 20)]).ranges(), &[(0, 20)]);
        assert_eq!(set(&[(0, 10), (5, 15)]).ranges(), &[(0, 15)]);
        assert_eq!(set(&[(0, 10), (20, 30), (40, 50), (5, 45)]).ranges(), &[(0, 50)]);
        assert_eq!(set(&[(10, 20), (0, 100)]).ranges(), &[(0, 100)]);
        assert_eq!(set(&[(0, 10), (20, 30), (10, 20)]).ranges(), &[(0, 30)]);
    }

    #[test]
    fn insert_reports_change() {
        let mut s = set(&[(0, 10)]);
        assert!(!s.insert(2, 8), "already covered");
        assert!(!s.insert(5, 5), "empty range");
        assert!(s.insert(8, 12));
        assert_eq!(s.ranges(), &[(0, 12)]);
    }

    #[test]
    fn contains_is_half_open() {
        let s = set(&[(10, 20), (30, 40)]);
        for (offset, held) in [
            (9, false),
            (10, true),
            (19, true),
            (20, false),
            (29, false),
            (30, true),
            (40, false),
        ] {
            assert_eq!(s.contains(offset), held, "offset {offset}");
        }
        assert!(!IntervalSet::default().contains(0));
    }

    #[test]
    fn overlaps_detects_any_shared_byte() {
        let s = set(&[(10, 20)]);
        assert!(!s.overlaps(0, 10));
        assert!(s.overlaps(0, 11));
        assert!(s.overlaps(15, 16));
        assert!(s.overlaps(19, 100));
        assert!(!s.overlaps(20, 100));
        assert!(!s.overlaps(12, 12));
    }

    #[test]
    fn json_round_trip_normalises() {
        let parsed: IntervalSet = serde_json::from_str("[[20,30],[0,10],[5,12]]").unwrap();
        assert_eq!(parsed.ranges(), &[(0, 12), (20, 30)]);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "[[0,12],[20,30]]");
    }
}
