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
//! is read straight from the codec. Large scans are shared between the
//! cores in pieces ([`in_pieces`]): the first view is one person waiting.
//! A segment that lies wholly in the range gives its time span from its
//! column's bounds and its counts per host, source or level from the term
//! dictionary (each value's document frequency), reading no record.
//!
//! The answers are those of the general path exactly (this module's tests
//! compare them); a segment with deleted records or a column that is not
//! one value per record is not scanned, and the caller takes the general
//! path.

use super::collectors::OrdNames;
use super::schema::{PATTERN_FIELD, field_column, names};
use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tantivy::columnar::{Cardinality, ColumnType, ColumnValues, StrColumn};
use tantivy::{DocAddress, Searcher, SegmentReader};

/// Values read per block.
const BLOCK: usize = 4096;

/// Most counters [`count_by_values`] keeps per segment for two or more
/// fields (one per combination of their values): 8 MiB.
const MAX_SLOTS: usize = 1 << 20;

/// Most counters [`by_pattern`] keeps over all segments (per pattern of a
/// segment: its count, first, last and one per bucket), per thread: 32 MiB.
const MAX_PATTERN_SLOTS: usize = 1 << 22;

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
fn for_each_block(values: &dyn ColumnValues<u64>, each: impl FnMut(u32, &[u64])) {
    for_each_block_in(values, 0..values.num_vals(), each);
}

/// [`for_each_block`] over the rows `rows` alone.
fn for_each_block_in(values: &dyn ColumnValues<u64>, rows: Range<u32>, mut each: impl FnMut(u32, &[u64])) {
    let mut buffer = vec![0u64; BLOCK];
    for (at, len) in blocks_of(rows) {
        values.get_range(u64::from(at), &mut buffer[..len]);
        each(at, &buffer[..len]);
    }
}

/// The blocks of at most [`BLOCK`] rows that `rows` splits into: each one's
/// first row and length.
fn blocks_of(rows: Range<u32>) -> impl Iterator<Item = (u32, usize)> {
    rows.clone()
        .step_by(BLOCK)
        .map(move |at| (at, (rows.end - at).min(BLOCK as u32) as usize))
}

/// Rows per piece when a scan is shared between threads.
#[cfg(not(test))]
const PIECE_ROWS: u32 = 1 << 19;
/// Small in tests, so that their segments split into several pieces.
#[cfg(test)]
const PIECE_ROWS: u32 = 64;

/// Most threads one request's scan or phrase check uses.
pub(super) const MAX_THREADS: usize = 4;

/// The cores this process may use, asked once (the answer reads cgroup
/// files).
pub(super) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `run(0)`, …, `run(threads - 1)`, the first on this thread and the rest
/// on threads of their own; their answers in that order.
pub(super) fn on_threads<T: Send>(threads: usize, run: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if threads <= 1 {
        return vec![run(0)];
    }
    let run = &run;
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|i| scope.spawn(move || run(i))).collect();
        let mut answers = vec![run(0)];
        // A helper that panicked took its share with it: answering
        // without it would be wrong, so the panic goes on.
        answers.extend(
            helpers
                .into_iter()
                .map(|helper| helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
        );
        answers
    })
}

/// Runs `work` over the rows of `segments`, in pieces of [`PIECE_ROWS`]
/// taken in order, on as many threads as there are cores (at most
/// [`MAX_THREADS`], and one for a scan of one piece's rows), each
/// thread folding its pieces into its own state from `start`; returns
/// those states. The busiest view scans millions of values per request,
/// and one core alone took some 50 ms at 10 M records.
fn in_pieces<'s, T: Send>(
    segments: &[&'s InRange<'s>],
    start: impl Fn() -> T + Sync,
    work: impl Fn(&mut T, &'s InRange<'s>, Range<u32>) + Sync,
) -> Vec<T> {
    let pieces: Vec<(&InRange<'_>, Range<u32>)> = segments
        .iter()
        .flat_map(|&found| {
            let rows = found.values.num_vals();
            (0..rows)
                .step_by(PIECE_ROWS as usize)
                .map(move |at| (found, at..rows.min(at.saturating_add(PIECE_ROWS))))
        })
        .collect();
    // A scan of a few pieces' worth of rows is not worth a thread.
    let rows: u64 = segments.iter().map(|found| u64::from(found.values.num_vals())).sum();
    let threads = if rows > u64::from(PIECE_ROWS) {
        cores().min(MAX_THREADS).min(pieces.len()).max(1)
    } else {
        1
    };
    let next = AtomicUsize::new(0);
    on_threads(threads, |_| {
        let mut state = start();
        while let Some((found, rows)) = pieces.get(next.fetch_add(1, Ordering::Relaxed)) {
            work(&mut state, found, rows.clone());
        }
        state
    })
}

/// Earliest and latest event time (Unix ms) in `range`, or `None` without
/// records.
pub fn time_span(scan: &Scan<'_>) -> Option<(i64, i64)> {
    let keys = scan.keys;
    let mut span: Option<(u64, u64)> = None;
    for found in &scan.segments {
        let (mut low, mut high) = span.unwrap_or((u64::MAX, u64::MIN));
        // A segment inside the range spans its bounds: nothing to read.
        if keys.covers(found.min, found.max) {
            span = Some((low.min(found.min), high.max(found.max)));
            continue;
        }
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
    let (keys, bucketing) = Buckets::new(scan.keys, first, width, buckets)?;
    let bucket_of = |k: u64| bucketing.of(k);
    let mut counts = vec![0u64; buckets];
    let mut scanned = Vec::new();
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
        scanned.push(found);
    }
    let parts = in_pieces(
        &scanned,
        || vec![0u64; buckets],
        |counts, found, rows| {
            let whole = keys.covers(found.min, found.max);
            for_each_block_in(found.values.as_ref(), rows, |_, block| {
                for &k in block {
                    if (whole || keys.contains(k))
                        && let Some(count) = counts.get_mut(bucket_of(k))
                    {
                        *count += 1;
                    }
                }
            });
        },
    );
    for part in parts {
        for (count, more) in counts.iter_mut().zip(part) {
            *count += more;
        }
    }
    Some(counts)
}

/// Buckets `[first + i*width, first + (i+1)*width)` (Unix ms) of keys.
#[derive(Clone, Copy)]
struct Buckets {
    first_key: u64,
    width_nanos: u64,
    /// `1 / width_nanos`: a multiplication instead of a division per
    /// record, corrected to the exact bucket (the estimate is off by at
    /// most one).
    inverse: f64,
}

impl Buckets {
    /// The buckets, and `keys` narrowed to what is in one of them; `None`
    /// when their nanoseconds do not fit the keys.
    fn new(mut keys: Keys, first: i64, width: i64, buckets: usize) -> Option<(Keys, Buckets)> {
        let width_nanos = u64::try_from(width.max(1)).ok()?.checked_mul(NANOS as u64)?;
        let first_nanos = first.checked_mul(NANOS)?;
        let first_key = (first_nanos as u64) ^ (1 << 63);
        keys.low = keys.low.max(first_key);
        if let Some(buckets_end) = (buckets as u64)
            .checked_mul(width_nanos)
            .and_then(|span| first_key.checked_add(span))
        {
            keys.high = keys.high.min(buckets_end);
        }
        let inverse = 1.0 / width_nanos as f64;
        Some((
            keys,
            Buckets {
                first_key,
                width_nanos,
                inverse,
            },
        ))
    }

    /// The bucket of `k`. Called only for keys in the narrowed range
    /// (`first_key <= k`); the f64 estimate is within one bucket of the
    /// truth, whatever the distance (times 1678 to 2262 apart pass 2^63 ns).
    fn of(&self, k: u64) -> usize {
        let delta = k - self.first_key;
        let mut bucket = (delta as f64 * self.inverse) as u64;
        let low = bucket.wrapping_mul(self.width_nanos);
        if low > delta {
            bucket -= 1;
        } else if delta - low >= self.width_nanos {
            bucket += 1;
        }
        bucket as usize
    }
}

/// The lines of one pattern in a [`Scan`]'s range ([`by_pattern`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternLines {
    /// The pattern id.
    pub pattern: String,
    /// Its lines.
    pub count: u64,
    /// The first of them, Unix ms.
    pub first: i64,
    /// The last of them, Unix ms.
    pub last: i64,
    /// Its lines per bucket, when buckets were asked.
    pub series: Vec<u64>,
}

/// What one thread gathers of one segment's pattern ordinals.
struct OrdTally {
    counts: Vec<u64>,
    low: Vec<u64>,
    high: Vec<u64>,
    /// `ords × buckets`, ordinal-major.
    series: Vec<u64>,
}

impl OrdTally {
    fn new(terms: usize, buckets: usize) -> OrdTally {
        OrdTally {
            counts: vec![0; terms],
            low: vec![u64::MAX; terms],
            high: vec![0; terms],
            series: vec![0; terms * buckets],
        }
    }

    fn add(&mut self, other: OrdTally) {
        for (at, count) in other.counts.into_iter().enumerate() {
            self.counts[at] += count;
            self.low[at] = self.low[at].min(other.low[at]);
            self.high[at] = self.high[at].max(other.high[at]);
        }
        for (mine, theirs) in self.series.iter_mut().zip(other.series) {
            *mine += theirs;
        }
    }
}

/// Records in range whose text fast fields `equal` (`host`, `source`,
/// `level`) have the values given, per pattern id (the extracted field
/// `pattern`), with the first and last time and, with `series` (`first`,
/// `width` in Unix ms, `buckets`), the records per bucket: one pass over
/// the time, pattern and those fields' columns, as `| stats count(),
/// min(_time), max(_time) by pattern` and `| stats count() by _time(…),
/// pattern` answer them. `None` if a segment's records do not all hold one
/// pattern and one value of each field, or the segments' patterns ×
/// buckets pass [`MAX_PATTERN_SLOTS`] (the caller takes the general path).
pub fn by_pattern(
    scan: &Scan<'_>,
    equal: &[(&str, &str)],
    series: Option<(i64, i64, usize)>,
) -> tantivy::Result<Option<Vec<PatternLines>>> {
    let (buckets, bucketing) = match series {
        Some((first, width, buckets)) => match Buckets::new(scan.keys, first, width, buckets) {
            Some((_, bucketing)) => (buckets, Some(bucketing)),
            None => return Ok(None),
        },
        None => (0, None),
    };
    let keys = scan.keys;
    let mut columns = Vec::with_capacity(scan.segments.len());
    // Per segment: each field's column and the ordinal of its value there.
    let mut filters: Vec<Vec<(StrColumn, u64)>> = Vec::with_capacity(scan.segments.len());
    let mut segments: Vec<&InRange<'_>> = Vec::with_capacity(scan.segments.len());
    // Counters held at once: a thread keeps one tally per segment it scans.
    let mut slots = 0usize;
    'segments: for found in &scan.segments {
        let mut wanted = Vec::with_capacity(equal.len());
        for (field, value) in equal {
            let Some(by) = found.segment.fast_fields().str(field)? else {
                return Ok(None);
            };
            if by.ords().get_cardinality() != Cardinality::Full {
                return Ok(None);
            }
            match by.dictionary().term_ord(value.as_bytes())? {
                Some(ord) => wanted.push((by, ord)),
                // No record of the segment has the value.
                None => continue 'segments,
            }
        }
        let (text, numbers) = field_column(found.segment, PATTERN_FIELD)?;
        let column = match text {
            Some(column) if numbers.is_empty() && column.ords().get_cardinality() == Cardinality::Full => column,
            _ => return Ok(None),
        };
        slots = slots.saturating_add(column.num_terms().saturating_mul(buckets + 3));
        if slots > MAX_PATTERN_SLOTS {
            return Ok(None);
        }
        columns.push(column);
        filters.push(wanted);
        segments.push(found);
    }
    let at: HashMap<(usize, u32), usize> = segments
        .iter()
        .enumerate()
        .map(|(i, found)| ((found.partition, found.ord), i))
        .collect();
    let parts = in_pieces(&segments, HashMap::<usize, OrdTally>::new, |tallies, found, rows| {
        let i = at[&(found.partition, found.ord)];
        let (column, wanted) = (&columns[i], &filters[i]);
        let tally = tallies
            .entry(i)
            .or_insert_with(|| OrdTally::new(column.num_terms(), buckets));
        let mut ords = vec![0u64; BLOCK];
        let mut keep = vec![true; BLOCK];
        let mut values = vec![0u64; BLOCK];
        for_each_block_in(found.values.as_ref(), rows, |first_row, times| {
            let ords = &mut ords[..times.len()];
            column.ords().values.get_range(u64::from(first_row), ords);
            let keep = &mut keep[..times.len()];
            keep.fill(true);
            for (by, want) in wanted {
                let values = &mut values[..times.len()];
                by.ords().values.get_range(u64::from(first_row), values);
                for (kept, value) in keep.iter_mut().zip(values.iter()) {
                    *kept &= value == want;
                }
            }
            for ((&k, &ord), &kept) in times.iter().zip(ords.iter()).zip(keep.iter()) {
                let ord = ord as usize;
                if !kept || !keys.contains(k) || ord >= tally.counts.len() {
                    continue;
                }
                tally.counts[ord] += 1;
                tally.low[ord] = tally.low[ord].min(k);
                tally.high[ord] = tally.high[ord].max(k);
                if let Some(bucketing) = &bucketing
                    && k >= bucketing.first_key
                {
                    let bucket = bucketing.of(k);
                    if bucket < buckets {
                        tally.series[ord * buckets + bucket] += 1;
                    }
                }
            }
        });
    });
    let mut tallies: HashMap<usize, OrdTally> = HashMap::new();
    for part in parts {
        for (i, tally) in part {
            match tallies.entry(i) {
                std::collections::hash_map::Entry::Occupied(mut mine) => mine.get_mut().add(tally),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(tally);
                }
            }
        }
    }
    let mut by_name: HashMap<String, PatternLines> = HashMap::new();
    for (i, tally) in tallies {
        let used: Vec<u64> = (0u64..)
            .zip(&tally.counts)
            .filter(|(_, n)| **n > 0)
            .map(|(ord, _)| ord)
            .collect();
        let names = OrdNames::read(&columns[i], used.clone())?;
        for ord in used {
            let at = ord as usize;
            let lines = by_name
                .entry(names.name(ord).to_owned())
                .or_insert_with(|| PatternLines {
                    pattern: names.name(ord).to_owned(),
                    count: 0,
                    first: i64::MAX,
                    last: i64::MIN,
                    series: vec![0; buckets],
                });
            lines.count += tally.counts[at];
            lines.first = lines.first.min(ms_of(tally.low[at]));
            lines.last = lines.last.max(ms_of(tally.high[at]));
            for (sum, n) in lines
                .series
                .iter_mut()
                .zip(&tally.series[at * buckets..(at + 1) * buckets])
            {
                *sum += n;
            }
        }
    }
    Ok(Some(by_name.into_values().collect()))
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
        let whole = keys.covers(found.min, found.max);
        if whole
            && let [field] = fields
            && let Some(by_term) = counts_by_term(found.segment, field)?
        {
            for (value, count) in by_term {
                *counts.entry(vec![value]).or_insert(0) += count;
            }
            continue;
        }
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
        let mut count_block = |at: u32, times: Option<&[u64]>, len: usize| {
            let slot_block = &mut slot_block[..len];
            let ord_block = &mut ord_block[..len];
            slot_block.fill(0);
            for (column, &stride) in columns.iter().zip(&strides) {
                column.ords().values.get_range(u64::from(at), ord_block);
                for (slot, &ord) in slot_block.iter_mut().zip(ord_block.iter()) {
                    *slot = slot.wrapping_add((ord as usize).wrapping_mul(stride));
                }
            }
            match times {
                // A segment inside the range: its times need not be read.
                None => {
                    for &slot in slot_block.iter() {
                        if let Some(count) = per_slot.get_mut(slot) {
                            *count += 1;
                        }
                    }
                }
                Some(times) => {
                    for (&k, &slot) in times.iter().zip(slot_block.iter()) {
                        if keys.contains(k)
                            && let Some(count) = per_slot.get_mut(slot)
                        {
                            *count += 1;
                        }
                    }
                }
            }
        };
        if whole {
            for (at, len) in blocks_of(0..found.values.num_vals()) {
                count_block(at, None, len);
            }
        } else {
            for_each_block(found.values.as_ref(), |at, block| {
                count_block(at, Some(block), block.len())
            });
        }
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

/// Records per value of the text field `name` in the whole of `segment`,
/// from its term dictionary: each value's document frequency, no record
/// read. `None` unless every record holds exactly one indexed value (one
/// value each in the column, the frequencies add up to the records, and no
/// deletions), which is when they are the counts a column scan would make.
fn counts_by_term(segment: &SegmentReader, name: &str) -> tantivy::Result<Option<Vec<(String, u64)>>> {
    let Ok(field) = segment.schema().get_field(name) else {
        return Ok(None);
    };
    let one_value_each = segment
        .fast_fields()
        .str(name)?
        .is_some_and(|column| column.ords().get_cardinality() == Cardinality::Full);
    if !one_value_each || segment.num_deleted_docs() > 0 {
        return Ok(None);
    }
    let inverted = segment.inverted_index(field)?;
    let mut terms = inverted.terms().stream()?;
    let mut counts = Vec::new();
    let mut records = 0u64;
    while terms.advance() {
        let Ok(value) = std::str::from_utf8(terms.key()) else {
            return Ok(None);
        };
        let frequency = u64::from(terms.value().doc_freq);
        records += frequency;
        counts.push((value.to_owned(), frequency));
    }
    Ok((records == u64::from(segment.num_docs())).then_some(counts))
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

/// What one thread of [`newest`] found.
struct NewestPart {
    /// Records in range.
    total: u64,
    /// Its best candidates, the worst on top.
    heap: BinaryHeap<Ranked>,
    /// The offset column of the segment it last read, by partition and
    /// segment ordinal.
    offsets: Option<((usize, u32), tantivy::columnar::Column<u64>)>,
    /// The first error.
    error: Option<tantivy::TantivyError>,
}

/// How many records are in `range`, and the first `wanted` of them by event
/// time and offset (newest first when `newest_first`), best first.
pub fn newest(scan: &Scan<'_>, wanted: usize, newest_first: bool) -> tantivy::Result<(u64, Vec<Candidate>)> {
    let keys = scan.keys;
    // Segments most likely to hold the best first, so that the rest are
    // counted from their bounds without reading a value.
    let mut segments: Vec<&InRange<'_>> = scan.segments.iter().collect();
    if newest_first {
        segments.sort_by_key(|s| std::cmp::Reverse(s.max));
    } else {
        segments.sort_by_key(|s| s.min);
    }
    // The worst time a full heap holds: a record that cannot tie it is not
    // a candidate.
    let bar = |heap: &BinaryHeap<Ranked>| {
        (heap.len() >= wanted)
            .then(|| heap.peek().map(|r| key(r.candidate.ts)))
            .flatten()
    };
    let beaten = |k: u64, bar: u64| if newest_first { k < bar } else { k > bar };
    let parts = in_pieces(
        &segments,
        || NewestPart {
            total: 0,
            heap: BinaryHeap::with_capacity(wanted + 1),
            offsets: None,
            error: None,
        },
        |part, found, rows| {
            let whole = keys.covers(found.min, found.max);
            let heap = &mut part.heap;
            let hopeless = wanted == 0
                || bar(heap).is_some_and(|bar| beaten(if newest_first { found.max } else { found.min }, bar));
            if whole && hopeless {
                part.total += u64::from(rows.end - rows.start);
                return;
            }
            // Opening a column reads its block index: once per segment and
            // thread, not per piece.
            let place = (found.partition, found.ord);
            if part.offsets.as_ref().is_none_or(|(at, _)| *at != place) {
                match found.segment.fast_fields().u64(names::OFFSET) {
                    Ok(column) => part.offsets = Some((place, column)),
                    Err(err) => {
                        part.error.get_or_insert(err);
                        return;
                    }
                }
            }
            let Some((_, offsets)) = &part.offsets else { return };
            let total = &mut part.total;
            let mut worst = bar(heap);
            for_each_block_in(found.values.as_ref(), rows, |at, block| {
                *total += if whole {
                    block.len() as u64
                } else {
                    block.iter().filter(|&&k| keys.contains(k)).count() as u64
                };
                // Most blocks hold nothing that reaches a full heap: one
                // pass for the block's best time (in range or not) rules
                // them out without a comparison per record.
                let best = if newest_first {
                    block.iter().max()
                } else {
                    block.iter().min()
                };
                if wanted == 0 || worst.zip(best).is_some_and(|(bar, &best)| beaten(best, bar)) {
                    return;
                }
                for (i, &k) in block.iter().enumerate() {
                    if (!whole && !keys.contains(k)) || worst.is_some_and(|bar| beaten(k, bar)) {
                        continue;
                    }
                    let doc_id = at + i as u32;
                    heap.push(Ranked {
                        candidate: Candidate {
                            ts: ms_of(k),
                            offset: offsets.first(doc_id).unwrap_or(0),
                            partition: found.partition,
                            address: DocAddress::new(found.ord, doc_id),
                        },
                        newest_first,
                    });
                    if heap.len() > wanted {
                        heap.pop();
                    }
                    worst = bar(heap);
                }
            });
        },
    );
    let mut total = 0;
    let mut best: Vec<Ranked> = Vec::new();
    for part in parts {
        if let Some(err) = part.error {
            return Err(err);
        }
        total += part.total;
        best.extend(part.heap.into_vec());
    }
    best.sort();
    best.truncate(wanted);
    Ok((total, best.into_iter().map(|r| r.candidate).collect()))
}

#[cfg(test)]
mod tests {
    use super::super::LogStore;
    use super::super::schema::{NumbersLayout, RecordFields};
    use super::super::search::{HistogramSpec, LogFilter, SearchRequest, SortOrder};
    use jiff::civil::Date;
    use std::collections::BTreeMap;

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
                    let fields = BTreeMap::from([(
                        super::PATTERN_FIELD.to_owned(),
                        lookout_shared::parse::fields::FieldValue::Text(format!("p-{}", next() % 7)),
                    )]);
                    let doc = schema.document(
                        &RecordFields {
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
                            fields: &fields,
                        },
                        NumbersLayout::Apart,
                    );
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
    fn buckets_are_exact_across_centuries() {
        // 1700 to 2026: further apart than 2^63 ns.
        let first = -8_520_336_000_000i64;
        let day = 86_400_000i64;
        let keys = super::Keys::of(super::TimeRange { start: None, end: None });
        let (_, buckets) = super::Buckets::new(keys, first, day, 200_000).unwrap();
        for at in [
            first,
            first + day - 1,
            first + day,
            1_767_225_600_000,
            1_767_225_600_000 + day / 2,
        ] {
            let want = ((at - first) / day) as usize;
            assert_eq!(buckets.of(super::key(at)), want, "{at}");
        }
    }

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
            // Lines per pattern, with a series of 37 s buckets from 999 s.
            // By time alone, and with a host (one that is there, one that
            // is not) or a level; buckets from 1,295 s, so that lines fall
            // before and after them.
            let only = [
                (None, None),
                (Some("host-3"), None),
                (Some("host-9"), None),
                (None, Some("error")),
            ];
            for (host, level) in only {
                let filter = |q: &str| LogFilter {
                    host: host.map(str::to_owned),
                    level: level.map(str::to_owned),
                    ..filter(q)
                };
                let scanned = store
                    .pattern_lines(&filter("*"), &crate::query::Expr::All, Some((1_295_000, 37_000, 20)))
                    .unwrap()
                    .expect("every record has a pattern");
                let general_expr = crate::query::parse(GENERAL).unwrap();
                let table = |plan: &str| {
                    let plan = crate::query::parse_query(plan).unwrap().stats.unwrap();
                    store.stats(&filter(GENERAL), &general_expr, &plan).unwrap()
                };
                let totals = table("* | stats count(), min(_time), max(_time) by pattern");
                let series = table("* | stats count() by _time(37s), pattern");
                let mut want: Vec<super::PatternLines> = totals
                    .rows
                    .iter()
                    .map(|row| {
                        use crate::query::aggregate::Value;
                        let [
                            Value::Text(id),
                            Value::Count(count),
                            Value::Time(first),
                            Value::Time(last),
                        ] = row.as_slice()
                        else {
                            panic!("{row:?}")
                        };
                        let mut per_bucket = vec![0; 20];
                        for cells in &series.rows {
                            if let [Value::Time(bucket), Value::Text(of), Value::Count(n)] = cells.as_slice()
                                && of == id
                                && (1_295_000..1_295_000 + 20 * 37_000).contains(bucket)
                            {
                                per_bucket[((bucket - 1_295_000) / 37_000) as usize] += n;
                            }
                        }
                        super::PatternLines {
                            pattern: id.clone(),
                            count: *count,
                            first: *first,
                            last: *last,
                            series: per_bucket,
                        }
                    })
                    .collect();
                let mut got = scanned;
                want.sort_by(|a, b| a.pattern.cmp(&b.pattern));
                got.sort_by(|a, b| a.pattern.cmp(&b.pattern));
                assert_eq!(got, want, "{start:?}..{end:?} {host:?} {level:?}");
                assert_eq!(got.is_empty(), host == Some("host-9") || want.is_empty());
            }
        }
        // Whole segments' counts per value come from the term dictionary.
        for searcher in &searchers {
            for segment in searcher.segment_readers() {
                for field in ["host", "source", "level"] {
                    let by_term = super::counts_by_term(segment, field).unwrap().expect("one value each");
                    let records: u64 = by_term.iter().map(|(_, count)| count).sum();
                    assert_eq!(records, u64::from(segment.num_docs()), "{field}");
                }
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
