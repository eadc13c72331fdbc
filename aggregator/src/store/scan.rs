//! Whole-column scans for what selects records by one time column alone:
//! the search page's first view (`q=*` over an event-time range: the newest
//! hits, the histogram, the facets), and the lines per group that arrived in
//! an alert rule's window (the `ingested` column).
//!
//! A query that matches every record in a range costs tantivy a collector
//! call per record. Here the `timestamp` (and `offset`, or a facet's
//! ordinal) columns are read a block at a time and counted in a tight loop,
//! and a segment whose value bounds lie inside the range is counted whole,
//! one outside it skipped. Times are compared as the column stores them
//! (an order-preserving `u64` of the nanoseconds, see [`key`]), so a block
//! is read straight from the codec. The answers are those of the general
//! path exactly (this module's tests compare them); a segment with deleted
//! records or a column that is not one value per record is not scanned,
//! and the caller takes the general path.

use super::collectors::OrdNames;
use super::schema::names;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use tantivy::columnar::{Cardinality, ColumnType, ColumnValues};
use tantivy::{DocAddress, Searcher, SegmentReader};

/// Values read per block.
const BLOCK: usize = 4096;

/// Most counters [`count_by_values`] keeps per segment for two or more
/// fields (one per combination of their values): 8 MiB.
const MAX_SLOTS: usize = 1 << 20;

/// The time column a [`Scan`] selects records by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeColumn {
    /// `timestamp`: when the event happened.
    Event,
    /// `ingested`: when the record arrived (alert rules' windows).
    Arrival,
}

impl TimeColumn {
    fn field(self) -> &'static str {
        match self {
            TimeColumn::Event => names::TIMESTAMP,
            TimeColumn::Arrival => names::INGESTED,
        }
    }
}

/// Nanoseconds per millisecond.
const NANOS: i64 = 1_000_000;

/// The column's `u64` for a time in Unix ms: tantivy stores a date as its
/// nanoseconds, an `i64`, with the sign bit flipped so that unsigned order
/// is time order. Times beyond what a date holds saturate, which keeps
/// their order against every stored time.
fn key(ms: i64) -> u64 {
    (ms.saturating_mul(NANOS) as u64) ^ (1 << 63)
}

/// The time in Unix ms of a stored key (stored times are whole ms).
fn ms_of(key: u64) -> i64 {
    ((key ^ (1 << 63)) as i64) / NANOS
}

/// An event-time range, Unix ms: `[start, end)`, either side open.
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    /// Earliest, inclusive.
    pub start: Option<i64>,
    /// Latest, exclusive.
    pub end: Option<i64>,
}

/// A [`TimeRange`] in keys: `[low, high)`. No stored time has the key
/// `u64::MAX` (a date's nanoseconds stop short of `i64::MAX`), so it
/// stands for an open end.
#[derive(Debug, Clone, Copy)]
struct Keys {
    low: u64,
    high: u64,
}

impl Keys {
    fn of(range: TimeRange) -> Keys {
        Keys {
            low: range.start.map_or(0, key),
            high: range.end.map_or(u64::MAX, key),
        }
    }

    fn contains(&self, k: u64) -> bool {
        k >= self.low && k < self.high
    }

    /// Whether every value within the bounds `[min, max]` is in range.
    fn covers(&self, min: u64, max: u64) -> bool {
        self.contains(min) && self.contains(max)
    }

    /// Whether no value within the bounds `[min, max]` is in range.
    fn misses(&self, min: u64, max: u64) -> bool {
        max < self.low || min >= self.high
    }
}

/// A segment's times of `column` as keys, one per record, or `None` if the
/// segment has deleted records or the column is not one value per record.
fn times(segment: &SegmentReader, column: TimeColumn) -> tantivy::Result<Option<Arc<dyn ColumnValues<u64>>>> {
    if segment.num_deleted_docs() > 0 {
        return Ok(None);
    }
    let column = segment
        .fast_fields()
        .u64_lenient_for_type(Some(&[ColumnType::DateTime]), column.field())?;
    Ok(column.and_then(|(column, _)| (column.get_cardinality() == Cardinality::Full).then_some(column.values)))
}

/// A segment that may hold records of a range: its times and their bounds.
struct InRange<'a> {
    partition: usize,
    ord: u32,
    segment: &'a SegmentReader,
    values: Arc<dyn ColumnValues<u64>>,
    min: u64,
    max: u64,
}

/// The segments of some searchers that may hold records of a range, with
/// their time columns opened once for every answer about it.
pub struct Scan<'a> {
    keys: Keys,
    segments: Vec<InRange<'a>>,
}

impl<'a> Scan<'a> {
    /// The segments of `searchers` whose bounds of `column` meet `range`;
    /// `None` if any segment cannot be scanned (the caller takes the general
    /// path). Only [`TimeColumn::Event`] scans order hits ([`newest`]).
    pub fn open(searchers: &'a [Searcher], range: TimeRange, column: TimeColumn) -> tantivy::Result<Option<Scan<'a>>> {
        let keys = Keys::of(range);
        let mut segments = Vec::new();
        for (partition, searcher) in searchers.iter().enumerate() {
            for (ord, segment) in searcher.segment_readers().iter().enumerate() {
                let Some(values) = times(segment, column)? else {
                    return Ok(None);
                };
                let (min, max) = (values.min_value(), values.max_value());
                if values.num_vals() > 0 && !keys.misses(min, max) {
                    segments.push(InRange {
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
        Ok(Some(Scan { keys, segments }))
    }
}

/// Calls `each` with every block of a column's values and its first row.
fn for_each_block(values: &dyn ColumnValues<u64>, mut each: impl FnMut(u32, &[u64])) {
    let mut buffer = vec![0u64; BLOCK];
    let total = values.num_vals();
    let mut at = 0u32;
    while at < total {
        let len = (total - at).min(BLOCK as u32) as usize;
        values.get_range(u64::from(at), &mut buffer[..len]);
        each(at, &buffer[..len]);
        at += len as u32;
    }
}

/// Earliest and latest event time (Unix ms) in `range`, or `None` without
/// records.
pub fn time_span(scan: &Scan<'_>) -> Option<(i64, i64)> {
    let keys = scan.keys;
    let mut span: Option<(u64, u64)> = None;
    for found in &scan.segments {
        let (mut low, mut high) = span.unwrap_or((u64::MAX, u64::MIN));
        for_each_block(found.values.as_ref(), |_, block| {
            for &k in block {
                if keys.contains(k) {
                    low = low.min(k);
                    high = high.max(k);
                }
            }
        });
        if low <= high {
            span = Some((low, high));
        }
    }
    span.map(|(low, high)| (ms_of(low), ms_of(high)))
}

/// Counts per bucket `[first + i*width, first + (i+1)*width)` (Unix ms) of
/// the records in `range`, as `collectors::Histogram` counts them; `None`
/// when the buckets' nanoseconds do not fit the keys (the caller takes the
/// general path).
pub fn histogram(scan: &Scan<'_>, first: i64, width: i64, buckets: usize) -> Option<Vec<u64>> {
    let width_nanos = u64::try_from(width.max(1)).ok()?.checked_mul(NANOS as u64)?;
    let first_nanos = first.checked_mul(NANOS)?;
    let first_key = (first_nanos as u64) ^ (1 << 63);
    // Only what is in range and in a bucket is counted.
    let mut keys = scan.keys;
    keys.low = keys.low.max(first_key);
    if let Some(buckets_end) = (buckets as u64)
        .checked_mul(width_nanos)
        .and_then(|span| first_key.checked_add(span))
    {
        keys.high = keys.high.min(buckets_end);
    }
    let mut counts = vec![0u64; buckets];
    // A multiplication instead of a division per record, corrected to the
    // exact bucket below (the estimate is off by at most one).
    let inverse = 1.0 / width_nanos as f64;
    // Called only for keys in range: `first_key <= k`, and the difference
    // of two keys of valid times is below 2^63 (exact as i64, and the f64
    // estimate is within one bucket of the truth).
    let bucket_of = |k: u64| {
        let delta = k - first_key;
        let mut bucket = ((delta as i64) as f64 * inverse) as u64;
        let low = bucket.wrapping_mul(width_nanos);
        if low > delta {
            bucket -= 1;
        } else if delta - low >= width_nanos {
            bucket += 1;
        }
        bucket as usize
    };
    for found in &scan.segments {
        if keys.misses(found.min, found.max) {
            continue;
        }
        // All records of the segment in one bucket: counted whole.
        if keys.covers(found.min, found.max) && bucket_of(found.min) == bucket_of(found.max) {
            if let Some(count) = counts.get_mut(bucket_of(found.min)) {
                *count += u64::from(found.values.num_vals());
            }
            continue;
        }
        for_each_block(found.values.as_ref(), |_, block| {
            for &k in block {
                if keys.contains(k)
                    && let Some(count) = counts.get_mut(bucket_of(k))
                {
                    *count += 1;
                }
            }
        });
    }
    Some(counts)
}

/// Records in range per combination of values of the text fast fields
/// `fields` (`host`, `source`, `level`), each key listing the values in
/// that order, as `collectors::GroupCount` counts them; `None` if a
/// segment's column is not one value per record, or with two or more fields
/// when a segment has more than [`MAX_SLOTS`] combinations.
pub fn count_by_values(scan: &Scan<'_>, fields: &[&str]) -> tantivy::Result<Option<HashMap<Vec<String>, u64>>> {
    let keys = scan.keys;
    let mut counts: HashMap<Vec<String>, u64> = HashMap::new();
    for found in &scan.segments {
        let mut columns = Vec::with_capacity(fields.len());
        for field in fields {
            match found.segment.fast_fields().str(field)? {
                Some(column) if column.ords().get_cardinality() == Cardinality::Full => columns.push(column),
                _ => return Ok(None),
            }
        }
        // A record's slot numbers its combination: the ordinals of its
        // values in mixed radix, one digit per field.
        let mut strides = Vec::with_capacity(columns.len());
        let mut slots = 1usize;
        for column in &columns {
            strides.push(slots);
            slots = slots.saturating_mul(column.num_terms().max(1));
        }
        if columns.len() > 1 && slots > MAX_SLOTS {
            return Ok(None);
        }
        let mut per_slot = vec![0u64; slots];
        let mut slot_block = vec![0usize; BLOCK];
        let mut ord_block = vec![0u64; BLOCK];
        let whole = keys.covers(found.min, found.max);
        for_each_block(found.values.as_ref(), |at, block| {
            let slot_block = &mut slot_block[..block.len()];
            let ord_block = &mut ord_block[..block.len()];
            slot_block.fill(0);
            for (column, &stride) in columns.iter().zip(&strides) {
                column.ords().values.get_range(u64::from(at), ord_block);
                for (slot, &ord) in slot_block.iter_mut().zip(ord_block.iter()) {
                    *slot = slot.wrapping_add((ord as usize).wrapping_mul(stride));
                }
            }
            for (&k, &slot) in block.iter().zip(slot_block.iter()) {
                if (whole || keys.contains(k))
                    && let Some(count) = per_slot.get_mut(slot)
                {
                    *count += 1;
                }
            }
        });
        let used: Vec<(usize, u64)> = per_slot
            .into_iter()
            .enumerate()
            .filter(|(_, count)| *count > 0)
            .collect();
        let names = columns
            .iter()
            .zip(&strides)
            .map(|(column, &stride)| {
                let ords = used
                    .iter()
                    .map(|&(slot, _)| ((slot / stride) % column.num_terms().max(1)) as u64)
                    .collect();
                OrdNames::read(column, ords)
            })
            .collect::<tantivy::Result<Vec<_>>>()?;
        for (slot, count) in used {
            let key = names
                .iter()
                .zip(columns.iter().zip(&strides))
                .map(|(names, (column, &stride))| {
                    names
                        .name(((slot / stride) % column.num_terms().max(1)) as u64)
                        .to_owned()
                })
                .collect();
            *counts.entry(key).or_insert(0) += count;
        }
    }
    Ok(Some(counts))
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
pub fn newest(scan: &Scan<'_>, wanted: usize, newest_first: bool) -> tantivy::Result<(u64, Vec<Candidate>)> {
    let keys = scan.keys;
    let mut total = 0u64;
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(wanted + 1);
    // Segments most likely to hold the best first, so that the rest are
    // counted from their bounds without reading a value.
    let mut segments: Vec<&InRange<'_>> = scan.segments.iter().collect();
    if newest_first {
        segments.sort_by_key(|s| std::cmp::Reverse(s.max));
    } else {
        segments.sort_by_key(|s| s.min);
    }
    for &InRange {
        partition,
        ord: segment_ord,
        segment,
        ref values,
        min,
        max,
    } in segments
    {
        let whole = keys.covers(min, max);
        // The worst time the heap holds, once it is full: a record that
        // cannot tie it is not a candidate.
        let bar = |heap: &BinaryHeap<Ranked>| {
            (heap.len() >= wanted)
                .then(|| heap.peek().map(|r| key(r.candidate.ts)))
                .flatten()
        };
        let beaten = |k: u64, bar: u64| if newest_first { k < bar } else { k > bar };
        let hopeless = wanted == 0 || bar(&heap).is_some_and(|bar| beaten(if newest_first { max } else { min }, bar));
        if whole && hopeless {
            total += u64::from(values.num_vals());
            continue;
        }
        let offsets = segment.fast_fields().u64(names::OFFSET)?;
        let mut worst = bar(&heap);
        for_each_block(values.as_ref(), |at, block| {
            for (i, &k) in block.iter().enumerate() {
                if !whole && !keys.contains(k) {
                    continue;
                }
                total += 1;
                if wanted == 0 || worst.is_some_and(|bar| beaten(k, bar)) {
                    continue;
                }
                let doc_id = at + i as u32;
                heap.push(Ranked {
                    candidate: Candidate {
                        ts: ms_of(k),
                        offset: offsets.first(doc_id).unwrap_or(0),
                        partition,
                        address: DocAddress::new(segment_ord, doc_id),
                    },
                    newest_first,
                });
                if heap.len() > wanted {
                    heap.pop();
                }
                worst = bar(&heap);
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
                    // Arrival trails the event by up to a minute.
                    let ingested = ts + (next() % 60_000) as i64;
                    range = Some(range.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
                    let message = format!("line {segment} {i}");
                    let host = format!("host-{}", next() % 5);
                    let doc = schema.document(&RecordFields {
                        stream: "00000000000000aa",
                        offset: segment * 1_000 + i,
                        timestamp_ms: ts,
                        ingested_ms: ingested,
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
            super::Scan::open(
                &searchers,
                super::TimeRange { start: None, end: None },
                super::TimeColumn::Event
            )
            .unwrap()
            .is_some(),
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
            for fields in GROUPINGS {
                let scanned = store.count_by_group(&filter("*"), fields).unwrap();
                let general = store.count_by_group(&filter(GENERAL), fields).unwrap();
                assert_eq!(scanned, general, "{fields:?} {start:?}..{end:?}");
            }
        }
        // Alert windows: lines that arrived since a time, per group.
        for since in [-5_000, 0, 1_200_000, 1_500_000, 1_999_999, 2_100_000, 9_000_000] {
            let window = |q: &str| LogFilter {
                q: q.to_owned(),
                ingested_since: Some(since),
                ..LogFilter::default()
            };
            let range = super::TimeRange {
                start: Some(since),
                end: None,
            };
            let scan = super::Scan::open(&searchers, range, super::TimeColumn::Arrival)
                .unwrap()
                .expect("every segment scans");
            for fields in GROUPINGS {
                let scanned = super::count_by_values(&scan, fields)
                    .unwrap()
                    .expect("few combinations");
                let general = store.count_by_group(&window(GENERAL), fields).unwrap();
                assert_eq!(scanned, general, "{fields:?} since {since}");
                assert_eq!(store.count_by_group(&window("*"), fields).unwrap(), general);
            }
        }
    }

    /// Groupings compared: none, each field, two and three fields.
    const GROUPINGS: [&[&str]; 6] = [
        &[],
        &["host"],
        &["level"],
        &["source"],
        &["host", "source"],
        &["level", "host", "source"],
    ];
}
