//! Tantivy collectors over the `timestamp` fast field: the time span of the
//! matching records, and their counts per time bucket (the histogram); and
//! matching records counted per group of text values ([`GroupCount`]), whose
//! ordinals are named by [`OrdNames`].

use super::schema::names;
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

fn timestamps(segment: &SegmentReader) -> tantivy::Result<Arc<dyn ColumnValues<DateTime>>> {
    // Every record has a timestamp, so the default is never used.
    Ok(segment
        .fast_fields()
        .date(names::TIMESTAMP)?
        .first_or_default_col(DateTime::MIN))
}

/// Earliest and latest event time (Unix ms) of the matching records.
pub struct TimeSpan;

/// [`TimeSpan`] for one segment.
pub struct TimeSpanSegment {
    column: Arc<dyn ColumnValues<DateTime>>,
    span: Option<(i64, i64)>,
}

impl Collector for TimeSpan {
    type Fruit = Option<(i64, i64)>;
    type Child = TimeSpanSegment;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<TimeSpanSegment> {
        Ok(TimeSpanSegment {
            column: timestamps(segment)?,
            span: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Option<(i64, i64)>>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().reduce(|a, b| (a.0.min(b.0), a.1.max(b.1))))
    }
}

impl SegmentCollector for TimeSpanSegment {
    type Fruit = Option<(i64, i64)>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let ms = self.column.get_val(doc).into_timestamp_millis();
        self.span = Some(match self.span {
            Some((min, max)) => (min.min(ms), max.max(ms)),
            None => (ms, ms),
        });
    }

    fn harvest(self) -> Self::Fruit {
        self.span
    }
}

/// Counts of matching records per bucket `[start + i*width, start + (i+1)*width)`
/// (Unix ms); records outside all buckets are not counted.
pub struct Histogram {
    /// Start of the first bucket.
    pub start: i64,
    /// Width of each bucket, at least 1.
    pub width: i64,
    /// Number of buckets.
    pub buckets: usize,
}

/// [`Histogram`] for one segment.
pub struct HistogramSegment {
    column: Arc<dyn ColumnValues<DateTime>>,
    start: i64,
    width: i64,
    counts: Vec<u64>,
}

impl Collector for Histogram {
    type Fruit = Vec<u64>;
    type Child = HistogramSegment;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<HistogramSegment> {
        Ok(HistogramSegment {
            column: timestamps(segment)?,
            start: self.start,
            width: self.width.max(1),
            counts: vec![0; self.buckets],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut total = vec![0; self.buckets];
        for fruit in fruits {
            for (sum, count) in total.iter_mut().zip(fruit) {
                *sum += count;
            }
        }
        Ok(total)
    }
}

impl SegmentCollector for HistogramSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let ms = self.column.get_val(doc).into_timestamp_millis();
        // i128: the difference of two valid timestamps cannot overflow there.
        let delta = i128::from(ms) - i128::from(self.start);
        if delta < 0 {
            return;
        }
        let bucket = delta / i128::from(self.width);
        if let Some(count) = usize::try_from(bucket).ok().and_then(|b| self.counts.get_mut(b)) {
            *count += 1;
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.counts
    }
}

/// Matching records counted per group: per distinct value of each of the
/// `fields` (exact-match fast text fields such as `host` and `source`).
/// Counting through the fast-field columns' term ordinals keeps it at one
/// integer lookup per matching record; strings are resolved once per group.
pub struct GroupCount {
    /// Field names to group by, in order; none: one group of everything.
    pub fields: Vec<&'static str>,
}

/// [`GroupCount`] for one segment.
pub struct GroupCountSegment {
    columns: Vec<Option<tantivy::columnar::StrColumn>>,
    counts: std::collections::HashMap<Vec<u64>, u64>,
}

impl Collector for GroupCount {
    type Fruit = std::collections::HashMap<Vec<String>, u64>;
    type Child = GroupCountSegment;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<GroupCountSegment> {
        let columns = self
            .fields
            .iter()
            .map(|field| segment.fast_fields().str(field))
            .collect::<tantivy::Result<_>>()?;
        Ok(GroupCountSegment {
            columns,
            counts: std::collections::HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut merged = std::collections::HashMap::new();
        for fruit in fruits {
            for (key, count) in fruit {
                *merged.entry(key).or_insert(0) += count;
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for GroupCountSegment {
    type Fruit = std::collections::HashMap<Vec<String>, u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        // Each grouped field holds exactly one value per record; u64::MAX
        // stands for a missing one and resolves to "".
        let key = self
            .columns
            .iter()
            .map(|column| {
                column
                    .as_ref()
                    .and_then(|c| c.term_ords(doc).next())
                    .unwrap_or(u64::MAX)
            })
            .collect();
        *self.counts.entry(key).or_insert(0) += 1;
    }

    fn harvest(self) -> Self::Fruit {
        // Each column's ordinals named in one pass over its dictionary; a
        // dictionary that cannot be read names its values "" (as a missing
        // value), since a harvest cannot fail.
        let names: Vec<Option<OrdNames>> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let column = column.as_ref()?;
                let ords = self
                    .counts
                    .keys()
                    .map(|key| key[i])
                    .filter(|&ord| ord != u64::MAX)
                    .collect();
                OrdNames::read(column, ords).ok()
            })
            .collect();
        let mut fruit = std::collections::HashMap::with_capacity(self.counts.len());
        for (ords, count) in self.counts {
            let key = names
                .iter()
                .zip(ords)
                .map(|(names, ord)| names.as_ref().map_or("", |names| names.name(ord)).to_owned())
                .collect();
            *fruit.entry(key).or_insert(0) += count;
        }
        fruit
    }
}

/// The values of some ordinals of a text column, read in one pass over its
/// dictionary: looking each up alone decodes a dictionary block per
/// ordinal, which cost more than the counting that found them.
pub struct OrdNames {
    /// Sorted, distinct.
    ords: Vec<u64>,
    /// The value of each of `ords`.
    names: Vec<String>,
}

impl OrdNames {
    /// Reads the values of `ords` (any order, repeats allowed) from
    /// `column`'s dictionary; an error if one is not in it.
    pub fn read(column: &tantivy::columnar::StrColumn, mut ords: Vec<u64>) -> tantivy::Result<OrdNames> {
        ords.sort_unstable();
        ords.dedup();
        let mut names = Vec::with_capacity(ords.len());
        let all_found = column
            .dictionary()
            .sorted_ords_to_term_cb(&ords, |bytes| names.push(String::from_utf8_lossy(bytes).into_owned()))?;
        if !all_found || names.len() != ords.len() {
            return Err(tantivy::TantivyError::InternalError(
                "a term ordinal of a text column is not in its dictionary".to_owned(),
            ));
        }
        Ok(OrdNames { ords, names })
    }

    /// The value of `ord`; "" if it was not asked for (or is `u64::MAX`,
    /// a missing value).
    pub fn name(&self, ord: u64) -> &str {
        self.ords.binary_search(&ord).map_or("", |at| self.names[at].as_str())
    }
}
