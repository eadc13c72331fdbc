//! Whole-column scans for what selects records by event time alone: the
//! search page's first view (`q=*` over a time range: the newest hits, the
//! histogram, the facets).
//!
//! A query that matches every record in a range costs tantivy a collector
//! call per record. Here the `timestamp` (and `offset`, or a facet's
//! ordinal) columns are read a block at a time and counted in a tight loop,
//! and a segment whose value bounds lie inside the range is counted whole,
//! one outside it skipped. The answers are those of the general path
//! exactly (`aggregator/tests/query_reference.rs`-style checks in this
//! module's tests); a segment with deleted records or a column that is not
//! one value per record is not scanned, and the caller takes the general
//! path.

use super::schema::names;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use tantivy::columnar::{Cardinality, ColumnValues, StrColumn};
use tantivy::{DateTime, DocAddress, Searcher, SegmentReader};

/// Values read per block.
const BLOCK: usize = 4096;

/// An event-time range, Unix ms: `[start, end)`, either side open.
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    /// Earliest, inclusive.
    pub start: Option<i64>,
    /// Latest, exclusive.
    pub end: Option<i64>,
}

impl TimeRange {
    fn contains(&self, ms: i64) -> bool {
        self.start.is_none_or(|s| ms >= s) && self.end.is_none_or(|e| ms < e)
    }

    /// Whether every value within the bounds `[min, max]` is in range.
    fn covers(&self, min: i64, max: i64) -> bool {
        self.contains(min) && self.contains(max)
    }

    /// Whether no value within the bounds `[min, max]` is in range.
    fn misses(&self, min: i64, max: i64) -> bool {
        self.start.is_some_and(|s| max < s) || self.end.is_some_and(|e| min >= e)
    }
}

/// A segment's event times, one per record, or `None` if the segment has
/// deleted records or the column is not one value per record.
fn timestamps(segment: &SegmentReader) -> tantivy::Result<Option<Arc<dyn ColumnValues<DateTime>>>> {
    if segment.num_deleted_docs() > 0 {
        return Ok(None);
    }
    let column = segment.fast_fields().date(names::TIMESTAMP)?;
    Ok((column.get_cardinality() == Cardinality::Full).then_some(column.values))
}

/// Whether every segment of `searchers` can be scanned.
pub fn scannable(searchers: &[Searcher]) -> tantivy::Result<bool> {
    for searcher in searchers {
        for segment in searcher.segment_readers() {
            if timestamps(segment)?.is_none() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn bounds_ms(values: &dyn ColumnValues<DateTime>) -> (i64, i64) {
    (
        values.min_value().into_timestamp_millis(),
        values.max_value().into_timestamp_millis(),
    )
}

/// A segment that may hold records of a range: its event times and their
/// bounds (ms).
struct InRange<'a> {
    partition: usize,
    ord: u32,
    segment: &'a SegmentReader,
    values: Arc<dyn ColumnValues<DateTime>>,
    min: i64,
    max: i64,
}

/// The segments of `searchers` whose bounds meet `range` (callers have
/// checked [`scannable`]).
fn in_range(searchers: &[Searcher], range: TimeRange) -> tantivy::Result<Vec<InRange<'_>>> {
    let mut found = Vec::new();
    for (partition, searcher) in searchers.iter().enumerate() {
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let Some(values) = timestamps(segment)? else { continue };
            let (min, max) = bounds_ms(values.as_ref());
            if values.num_vals() > 0 && !range.misses(min, max) {
                found.push(InRange {
                    partition,
                    ord: ord as u32,
                    segment,
                    values,
                    min,
                    max,
                });
            }
        }
    }
    Ok(found)
}

/// Calls `each` with every block of a column's values in `range`, skipping
/// the scan where the column's bounds settle it.
fn for_each_block(values: &dyn ColumnValues<DateTime>, mut each: impl FnMut(u32, &[DateTime])) {
    let mut buffer = vec![DateTime::MIN; BLOCK];
    let total = values.num_vals();
    let mut at = 0u32;
    while at < total {
        let len = (total - at).min(BLOCK as u32) as usize;
        values.get_range(u64::from(at), &mut buffer[..len]);
        each(at, &buffer[..len]);
        at += len as u32;
    }
}

/// Earliest and latest event time in `range`, or `None` without records;
/// `None` from the outer option means the segments cannot be scanned.
pub fn time_span(searchers: &[Searcher], range: TimeRange) -> tantivy::Result<Option<(i64, i64)>> {
    let mut span: Option<(i64, i64)> = None;
    let mut widen = |ms: i64| {
        span = Some(span.map_or((ms, ms), |(a, b)| (a.min(ms), b.max(ms))));
    };
    for found in in_range(searchers, range)? {
        for_each_block(found.values.as_ref(), |_, block| {
            for ts in block {
                let ms = ts.into_timestamp_millis();
                if range.contains(ms) {
                    widen(ms);
                }
            }
        });
    }
    Ok(span)
}

/// Counts per bucket `[first + i*width, first + (i+1)*width)` of the records
/// in `range`, as `collectors::Histogram` counts them.
pub fn histogram(
    searchers: &[Searcher],
    range: TimeRange,
    first: i64,
    width: i64,
    buckets: usize,
) -> tantivy::Result<Vec<u64>> {
    let width = width.max(1);
    let mut counts = vec![0u64; buckets];
    // A multiplication instead of a division per record, corrected to the
    // exact bucket below (the estimate is off by at most one).
    let inverse = 1.0 / width as f64;
    let span = i128::from(width) * buckets as i128;
    for InRange { values, min, max, .. } in in_range(searchers, range)? {
        // All records of the segment in one bucket: counted whole.
        let (low, high) = (i128::from(min) - i128::from(first), i128::from(max) - i128::from(first));
        if range.covers(min, max) && low >= 0 && high < span && low / i128::from(width) == high / i128::from(width) {
            counts[(low / i128::from(width)) as usize] += u64::from(values.num_vals());
            continue;
        }
        for_each_block(values.as_ref(), |_, block| {
            for ts in block {
                let ms = ts.into_timestamp_millis();
                if !range.contains(ms) || ms < first {
                    continue;
                }
                // Non-negative and below 2^63: both are valid timestamps.
                let delta = ms.wrapping_sub(first);
                let mut bucket = (delta as f64 * inverse) as i64;
                while bucket > 0 && bucket.saturating_mul(width) > delta {
                    bucket -= 1;
                }
                while (bucket + 1).saturating_mul(width) <= delta {
                    bucket += 1;
                }
                if let Some(count) = usize::try_from(bucket).ok().and_then(|b| counts.get_mut(b)) {
                    *count += 1;
                }
            }
        });
    }
    Ok(counts)
}

/// Records in `range` per value of the text fast field `field` (`host`,
/// `source`, `level`); `None` if a segment's column is not one value per
/// record.
pub fn count_by_value(
    searchers: &[Searcher],
    range: TimeRange,
    field: &str,
) -> tantivy::Result<Option<HashMap<String, u64>>> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for found in in_range(searchers, range)? {
        let Some(column) = found.segment.fast_fields().str(field)? else {
            return Ok(None);
        };
        let ords = column.ords();
        if ords.get_cardinality() != Cardinality::Full {
            return Ok(None);
        }
        let mut per_ord = vec![0u64; column.num_terms()];
        let mut ord_block = vec![0u64; BLOCK];
        if range.covers(found.min, found.max) {
            // Every record counts: no time needs reading.
            let total = ords.values.num_vals();
            let mut at = 0u32;
            while at < total {
                let len = (total - at).min(BLOCK as u32) as usize;
                ords.values.get_range(u64::from(at), &mut ord_block[..len]);
                for &ord in &ord_block[..len] {
                    if let Some(count) = per_ord.get_mut(ord as usize) {
                        *count += 1;
                    }
                }
                at += len as u32;
            }
        } else {
            for_each_block(found.values.as_ref(), |at, block| {
                let ord_block = &mut ord_block[..block.len()];
                ords.values.get_range(u64::from(at), ord_block);
                for (ts, &ord) in block.iter().zip(ord_block.iter()) {
                    if range.contains(ts.into_timestamp_millis())
                        && let Some(count) = per_ord.get_mut(ord as usize)
                    {
                        *count += 1;
                    }
                }
            });
        }
        add_named(&column, &per_ord, &mut counts)?;
    }
    Ok(Some(counts))
}

fn add_named(column: &StrColumn, per_ord: &[u64], counts: &mut HashMap<String, u64>) -> tantivy::Result<()> {
    let mut name = String::new();
    for (ord, &count) in per_ord.iter().enumerate() {
        if count == 0 {
            continue;
        }
        name.clear();
        column.ord_to_str(ord as u64, &mut name)?;
        *counts.entry(name.clone()).or_insert(0) += count;
    }
    Ok(())
}

/// One candidate of [`newest`]: what a page is ordered by, and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Event time, Unix ms.
    pub ts: i64,
    /// Offset in its stream.
    pub offset: u64,
    /// Index of its searcher.
    pub partition: usize,
    /// Its address there.
    pub address: DocAddress,
}

/// The heap keeps the worst of the best at its top: for newest first, the
/// oldest (and, among equal times and offsets, the latest partition and
/// address, which the general path lists last).
#[derive(PartialEq, Eq)]
struct Ranked {
    candidate: Candidate,
    newest_first: bool,
}

impl Ranked {
    fn key(&self) -> (i64, u64) {
        (self.candidate.ts, self.candidate.offset)
    }
    fn place(&self) -> (usize, u32, u32) {
        let c = &self.candidate;
        (c.partition, c.address.segment_ord, c.address.doc_id)
    }
}

impl Ord for Ranked {
    /// Greater is worse.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let by_key = if self.newest_first {
            other.key().cmp(&self.key())
        } else {
            self.key().cmp(&other.key())
        };
        by_key.then_with(|| self.place().cmp(&other.place()))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// How many records are in `range`, and the first `wanted` of them by event
/// time and offset (newest first when `newest_first`), best first.
pub fn newest(
    searchers: &[Searcher],
    range: TimeRange,
    wanted: usize,
    newest_first: bool,
) -> tantivy::Result<(u64, Vec<Candidate>)> {
    let mut total = 0u64;
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(wanted + 1);
    // Segments most likely to hold the best first, so that the rest are
    // counted from their bounds without reading a value.
    let mut segments = in_range(searchers, range)?;
    if newest_first {
        segments.sort_by_key(|s| std::cmp::Reverse(s.max));
    } else {
        segments.sort_by_key(|s| s.min);
    }
    for InRange {
        partition,
        ord: segment_ord,
        segment,
        values,
        min,
        max,
    } in segments
    {
        let whole = range.covers(min, max);
        // The worst time the heap still holds, once it is full: a segment
        // that cannot beat or tie it only adds to the count.
        let bar = (heap.len() >= wanted)
            .then(|| heap.peek().map(|r| r.candidate.ts))
            .flatten();
        let hopeless = wanted == 0 || bar.is_some_and(|bar| if newest_first { max < bar } else { min > bar });
        if whole && hopeless {
            total += u64::from(values.num_vals());
            continue;
        }
        let offsets = segment.fast_fields().u64(names::OFFSET)?;
        for_each_block(values.as_ref(), |at, block| {
            for (i, ts) in block.iter().enumerate() {
                let ms = ts.into_timestamp_millis();
                if !whole && !range.contains(ms) {
                    continue;
                }
                total += 1;
                if wanted == 0 {
                    continue;
                }
                if heap.len() >= wanted
                    && let Some(worst) = heap.peek()
                {
                    let worse = if newest_first {
                        ms < worst.candidate.ts
                    } else {
                        ms > worst.candidate.ts
                    };
                    if worse {
                        continue;
                    }
                }
                let doc_id = at + i as u32;
                let candidate = Ranked {
                    candidate: Candidate {
                        ts: ms,
                        offset: offsets.first(doc_id).unwrap_or(0),
                        partition,
                        address: DocAddress::new(segment_ord, doc_id),
                    },
                    newest_first,
                };
                heap.push(candidate);
                if heap.len() > wanted {
                    heap.pop();
                }
            }
        });
    }
    let mut best: Vec<Ranked> = heap.into_vec();
    best.sort();
    Ok((total, best.into_iter().map(|r| r.candidate).collect()))
}

#[cfg(test)]
mod tests {
    use super::super::LogStore;
    use super::super::schema::RecordFields;
    use super::super::search::{HistogramSpec, LogFilter, SearchRequest, SortOrder};
    use jiff::civil::Date;

    /// Two partitions of several segments each, times spread and repeated.
    fn store(dir: &std::path::Path) -> LogStore {
        let (store, _) = LogStore::open(dir).unwrap();
        let schema = store.schema().clone();
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        for (day, base) in [
            (Date::new(2024, 5, 1).unwrap(), 1_000_000i64),
            (Date::new(2024, 5, 2).unwrap(), 1_500_000),
        ] {
            let partition = store.create_partition(day).unwrap();
            let mut writer: tantivy::IndexWriter = partition.index().writer(15_000_000).unwrap();
            let mut range: Option<(i64, i64)> = None;
            for segment in 0..4u64 {
                for i in 0..300u64 {
                    let ts = base + (next() % 1_000_000) as i64;
                    range = Some(range.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
                    let message = format!("line {segment} {i}");
                    let host = format!("host-{}", next() % 5);
                    let doc = schema.document(&RecordFields {
                        stream: "00000000000000aa",
                        offset: segment * 1_000 + i,
                        timestamp_ms: ts,
                        ingested_ms: ts,
                        host: &host,
                        source: "/s",
                        level: ["", "error", "info"][(i % 3) as usize],
                        message: &message,
                        labels: None,
                        truncated: false,
                        fields: None,
                    });
                    writer.add_document(doc).unwrap();
                }
                writer.commit().unwrap();
            }
            partition.set_time_range(range);
            partition.reload().unwrap();
            assert!(partition.searcher().segment_readers().len() > 1);
        }
        store
    }

    /// The general path's query for the same records: never matches a term.
    const GENERAL: &str = "NOT zzzznotthere";

    #[test]
    fn scans_answer_exactly_what_the_general_path_does() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        let searchers: Vec<_> = store.partitions().iter().map(|p| p.searcher()).collect();
        assert!(
            super::scannable(&searchers).unwrap(),
            "the fast path is what is compared"
        );
        let ranges = [
            (None, None),
            (Some(1_200_000), None),
            (None, Some(1_700_000)),
            (Some(1_400_123), Some(1_600_456)),
            (Some(1_999_000), Some(2_000_000)),
            (Some(5_000_000), None),
        ];
        for (start, end) in ranges {
            let filter = |q: &str| LogFilter {
                q: q.to_owned(),
                start,
                end,
                ..LogFilter::default()
            };
            for order in [SortOrder::Desc, SortOrder::Asc] {
                for (limit, offset) in [(7, 3), (100, 0), (0, 0)] {
                    let request = |q: &str| SearchRequest {
                        filter: filter(q),
                        limit,
                        offset,
                        order,
                    };
                    let scanned = store.search(&request("*")).unwrap();
                    let general = store.search(&request(GENERAL)).unwrap();
                    assert_eq!(scanned.total, general.total, "{start:?}..{end:?}");
                    let ids = |r: &super::super::search::SearchResult| {
                        r.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>()
                    };
                    assert_eq!(ids(&scanned), ids(&general), "{start:?}..{end:?} {order:?}");
                    assert_eq!(scanned.hits, general.hits);
                }
            }
            for spec in [
                HistogramSpec::Buckets(13),
                HistogramSpec::Buckets(1),
                HistogramSpec::Interval(37_000),
            ] {
                let scanned = store.histogram(&filter(""), spec);
                let general = store.histogram(&filter(GENERAL), spec);
                match (scanned, general) {
                    (Ok(scanned), Ok(general)) => assert_eq!(scanned, general, "{start:?}..{end:?}"),
                    (scanned, general) => assert_eq!(scanned.is_ok(), general.is_ok()),
                }
            }
            for field in ["host", "level", "source"] {
                let scanned = store.count_by_group(&filter("*"), &[field]).unwrap();
                let general = store.count_by_group(&filter(GENERAL), &[field]).unwrap();
                assert_eq!(scanned, general, "{field} {start:?}..{end:?}");
            }
        }
    }
}
