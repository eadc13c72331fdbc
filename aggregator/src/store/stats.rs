//! `| stats` over the index: each matching record's keys and values read
//! from the columns and handed to [`crate::query::aggregate`], which does
//! the counting; here is only where the values come from.
//!
//! A segment counts text by its columns' ordinals and numbers them in the
//! table's list of texts when it is done ([`Texts`]). A table of counts by host, source, level or stream alone is
//! the facet count ([`LogStore::count_by_group`]), which answers from term
//! frequencies or a column scan without a query where it can.

use super::LogStore;
use super::scan::{PatternLines, Scan, TimeColumn, TimeRange, by_pattern};
use super::schema::{field_column, names};
use super::search::{Compiled, LogFilter, SearchError, searchers};
use crate::query::Expr;
use crate::query::aggregate::{Budget, Cell, Group, Groups, StatsError, Table, ValueMap, table};
use crate::query::pipe::{Function, GroupKey, Stats, StatsField};
use std::sync::{Arc, Mutex};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::EnableScoring;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

impl From<StatsError> for SearchError {
    fn from(err: StatsError) -> Self {
        SearchError::BadRequest(err.0)
    }
}

impl LogStore {
    /// The table `stats` asks of the records `filter` selects by its
    /// bounds and `expr` (its query without the pipes).
    pub fn stats(&self, filter: &LogFilter, expr: &Expr, stats: &Stats) -> Result<Table, SearchError> {
        let compiled = self.queries().build_expr(filter, expr);
        if let Some(fields) = counts_by_keywords(stats) {
            let counts = self.count_compiled_by_group(filter, &compiled, &fields)?;
            let mut groups = Groups::new(stats);
            for (key, records) in counts {
                // The facet count names a missing value "".
                let key = key
                    .into_iter()
                    .map(|value| {
                        if value.is_empty() {
                            Cell::Missing
                        } else {
                            Cell::Text(value)
                        }
                    })
                    .collect();
                groups.add_count(stats, key, records)?;
            }
            return Ok(table(stats, groups, |text| text));
        }
        let Compiled { query, .. } = compiled;
        let collector = StatsCollector {
            stats: Arc::new(stats.clone()),
            texts: Arc::default(),
        };
        // Each segment's groups are merged as soon as it is done, so that
        // at most one segment's are held besides the table's.
        let mut groups = Groups::new(stats);
        let mut counted = Counted::new(stats);
        for searcher in searchers(self, filter) {
            let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
            for (ord, segment) in searcher.segment_readers().iter().enumerate() {
                let ord = SegmentOrdinal::try_from(ord).unwrap_or(SegmentOrdinal::MAX);
                match collector.collect_segment(weight.as_ref(), ord, segment)?? {
                    Harvest::Named(named) => {
                        for (key, group) in named {
                            groups.merge(key, group)?;
                        }
                    }
                    Harvest::Counted { ids, missing } => counted.add(&ids, missing)?,
                }
            }
        }
        counted.into_groups(&mut groups, stats)?;
        let texts = collector
            .texts
            .lock()
            .map_or_else(|poisoned| poisoned.into_inner().take(), |mut t| t.take());
        Ok(table(stats, groups, |id| texts.text(id).to_owned()))
    }
}

impl LogStore {
    /// Lines per pattern id of the records `filter` selects by event time
    /// and exact host, source and level alone (`expr` everything): count,
    /// first and last time, and with `series` (`first`, `width` in Unix ms,
    /// `buckets`) lines per bucket, in one scan of the columns. `None` when
    /// the records cannot be scanned so (another selection, a record
    /// without a pattern, deleted records): the caller asks
    /// [`LogStore::stats`].
    pub fn pattern_lines(
        &self,
        filter: &LogFilter,
        expr: &Expr,
        series: Option<(i64, i64, usize)>,
    ) -> Result<Option<Vec<PatternLines>>, SearchError> {
        if *expr != Expr::All || filter.ingested_since.is_some() {
            return Ok(None);
        }
        let equal: Vec<(&str, &str)> = [
            (names::HOST, &filter.host),
            (names::SOURCE, &filter.source),
            (names::LEVEL, &filter.level),
        ]
        .into_iter()
        .filter_map(|(field, value)| Some((field, value.as_deref()?)))
        .collect();
        let searchers = searchers(self, filter);
        let range = TimeRange {
            start: filter.start,
            end: filter.end,
        };
        match Scan::open(&searchers, range, TimeColumn::Event)? {
            Some(scan) => Ok(by_pattern(&scan, &equal, series)?),
            None => Ok(None),
        }
    }
}

/// The fields of a `stats` of `count()` alone by keyword fields alone.
fn counts_by_keywords(stats: &Stats) -> Option<Vec<&'static str>> {
    let counts_only = stats
        .aggregates
        .iter()
        .all(|a| a.function == Function::Count && a.field.is_none());
    if !counts_only {
        return None;
    }
    stats
        .by
        .iter()
        .map(|key| match key {
            GroupKey::Field(StatsField::Keyword(keyword)) => Some(keyword.name()),
            _ => None,
        })
        .collect()
}

/// Groups with their text numbered in the table's [`Texts`], as segments
/// hand them over.
type Named = Vec<(Vec<Cell<u32>>, Group<u32>)>;

/// What one segment hands over.
enum Harvest {
    /// Its groups.
    Named(Named),
    /// `count()` alone by one text key: records per text (numbered in
    /// [`Texts`]) and without a value. No group is made per segment: a
    /// `| top` of a field of 50,000 values over 16 segments would make
    /// 800,000 of them.
    Counted { ids: Vec<(u32, u64)>, missing: u64 },
}

/// The records per text of every [`Harvest::Counted`] segment, by the
/// text's number in [`Texts`]; made into groups once at the end.
struct Counted {
    records: Vec<u64>,
    missing: u64,
    /// Bounds the groups as segments come (the groups of other segments,
    /// if any, are counted with these at the end).
    budget: Budget,
}

impl Counted {
    fn new(stats: &Stats) -> Self {
        Counted {
            records: Vec::new(),
            missing: 0,
            budget: Budget::new(stats),
        }
    }

    fn add(&mut self, ids: &[(u32, u64)], missing: u64) -> Result<(), StatsError> {
        for &(id, records) in ids {
            let at = id as usize;
            if at >= self.records.len() {
                self.records.resize(at + 1, 0);
            }
            if self.records[at] == 0 && records > 0 {
                self.budget.new_group()?;
            }
            self.records[at] += records;
        }
        if self.missing == 0 && missing > 0 {
            self.budget.new_group()?;
        }
        self.missing += missing;
        Ok(())
    }

    fn into_groups(self, groups: &mut Groups<u32>, stats: &Stats) -> Result<(), StatsError> {
        for (id, records) in self.records.into_iter().enumerate() {
            if records > 0 {
                // Far below 2^32: numbers of texts.
                let id = u32::try_from(id).unwrap_or(u32::MAX);
                groups.add_count(stats, vec![Cell::Text(id)], records)?;
            }
        }
        if self.missing > 0 {
            groups.add_count(stats, vec![Cell::Missing], self.missing)?;
        }
        Ok(())
    }
}

/// Every text one table's groups hold, each once: a segment names its
/// ordinals by these numbers, so that segments merge by comparing integers
/// and a text is held once per table, not once per segment.
#[derive(Default)]
struct Texts {
    ids: ValueMap<Box<str>, u32>,
    texts: Vec<Box<str>>,
}

impl Texts {
    /// The number of `text`, new or known.
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        // Bounded by the table's groups and distinct values, far below 2^32.
        let id = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        self.texts.push(text.into());
        self.ids.insert(text.into(), id);
        id
    }

    /// The text numbered `id`.
    fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("", |text| text)
    }

    fn take(&mut self) -> Texts {
        std::mem::take(self)
    }
}

/// Gathers the groups of one partition's matching records.
struct StatsCollector {
    stats: Arc<Stats>,
    texts: Arc<Mutex<Texts>>,
}

impl Collector for StatsCollector {
    type Fruit = Result<Harvest, SearchError>;
    type Child = StatsSegment;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<StatsSegment> {
        let keys: Vec<Reader> = self
            .stats
            .by
            .iter()
            .map(|key| match key {
                GroupKey::Field(field) => Reader::open(segment, field),
                GroupKey::TimeBucket(width) => Ok(Reader::Bucket(time_column(segment)?, *width)),
            })
            .collect::<tantivy::Result<_>>()?;
        let values: Vec<Option<Reader>> = self
            .stats
            .aggregates
            .iter()
            .map(|aggregate| {
                aggregate
                    .field
                    .as_ref()
                    .map(|field| Reader::open(segment, field))
                    .transpose()
            })
            .collect::<tantivy::Result<_>>()?;
        let counts_only = values.iter().all(Option::is_none);
        // One key of text alone: a count, or a group, per ordinal, found by index.
        let gathered = match keys.as_slice() {
            [key]
                if let Some(terms) = key.text_only_terms()
                    && terms < MAX_ORDINAL_SLOTS =>
            {
                if self
                    .stats
                    .aggregates
                    .iter()
                    .all(|a| a.function == Function::Count && a.field.is_none())
                {
                    Gathered::Counts(vec![0; terms + 1])
                } else {
                    Gathered::ByOrd {
                        slots: vec![NO_GROUP; terms + 1],
                        groups: Vec::new(),
                    }
                }
            }
            _ => Gathered::ByKey(ValueMap::default()),
        };
        Ok(StatsSegment {
            counts_only,
            budget: Budget::new(&self.stats),
            texts: self.texts.clone(),
            stats: self.stats.clone(),
            keys,
            values,
            gathered,
            key: Vec::new(),
            error: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, _: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        // The store merges each segment's harvest as it goes (`LogStore::stats`).
        Err(tantivy::TantivyError::InternalError(
            "the stats collector's segments are merged by the store".to_owned(),
        ))
    }
}

/// A key's column has fewer terms than this for [`Gathered::ByOrd`] (4
/// bytes a slot).
const MAX_ORDINAL_SLOTS: usize = 1 << 20;
/// A slot without a group.
const NO_GROUP: u32 = u32::MAX;

/// A segment's groups so far.
enum Gathered {
    /// By the ordinal of the one key's text column: `slots[ord]` is the
    /// index of its group in `groups`; the last slot is for records
    /// without a value.
    ByOrd {
        /// Per ordinal, and one for no value: an index in `groups`, or [`NO_GROUP`].
        slots: Vec<u32>,
        /// The key cell and the group.
        groups: Vec<(Cell<u64>, Group<u64>)>,
    },
    /// By key.
    ByKey(ValueMap<Vec<Cell<u64>>, Group<u64>>),
    /// `count()` alone by one text key: records per ordinal, the last for
    /// records without a value.
    Counts(Vec<u32>),
}

/// [`StatsCollector`] for one segment.
struct StatsSegment {
    stats: Arc<Stats>,
    texts: Arc<Mutex<Texts>>,
    /// A reader per group key.
    keys: Vec<Reader>,
    /// A reader per aggregate that takes a field.
    values: Vec<Option<Reader>>,
    /// Every aggregate is `count()`, which reads no field.
    counts_only: bool,
    gathered: Gathered,
    budget: Budget,
    /// The key of the record at hand (kept to spare an allocation each).
    key: Vec<Cell<u64>>,
    /// A bound crossed: nothing more is gathered.
    error: Option<StatsError>,
}

impl StatsSegment {
    fn gather(&mut self, doc: DocId) -> Result<(), StatsError> {
        if let Gathered::Counts(counts) = &mut self.gathered {
            let slot = ord_slot(self.keys[0].read(doc), counts.len() - 1);
            // A segment holds fewer than 2^31 records.
            counts[slot] += 1;
            return Ok(());
        }
        let values = self
            .values
            .iter()
            .map(|reader| reader.as_ref().map_or(Cell::Missing, |reader| reader.read(doc)));
        let group = match &mut self.gathered {
            Gathered::ByOrd { slots, groups } => {
                let key = self.keys[0].read(doc);
                let slot = ord_slot(key, slots.len() - 1);
                let index = match slots[slot] {
                    NO_GROUP => {
                        self.budget.new_group()?;
                        groups.push((key, Group::new(&self.stats)));
                        // At most 2^20 slots, so far below NO_GROUP.
                        let index = u32::try_from(groups.len() - 1).unwrap_or(NO_GROUP);
                        slots[slot] = index;
                        index
                    }
                    index => index,
                };
                &mut groups[index as usize].1
            }
            Gathered::Counts(_) => return Ok(()),
            Gathered::ByKey(groups) => {
                self.key.clear();
                self.key.extend(self.keys.iter().map(|reader| reader.read(doc)));
                match groups.get_mut(self.key.as_slice()) {
                    Some(group) => group,
                    None => {
                        self.budget.new_group()?;
                        groups
                            .entry(self.key.clone())
                            .or_insert_with(|| Group::new(&self.stats))
                    }
                }
            }
        };
        if self.counts_only {
            // `count()` alone (`| top`): the record count is all there is.
            group.records += 1;
            return Ok(());
        }
        group.add(values, &mut self.budget)
    }
}

/// The slot of a key in a table by ordinal: its ordinal (below the
/// column's term count), or `missing` for no text value.
fn ord_slot(key: Cell<u64>, missing: usize) -> usize {
    match key {
        Cell::Text(ord) => usize::try_from(ord).map_or(missing, |ord| ord.min(missing)),
        _ => missing,
    }
}

impl SegmentCollector for StatsSegment {
    type Fruit = Result<Harvest, SearchError>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if self.error.is_none()
            && let Err(err) = self.gather(doc)
        {
            self.error = Some(err);
        }
    }

    fn harvest(self) -> Self::Fruit {
        if let Some(err) = self.error {
            return Err(err.into());
        }
        let groups: Vec<(Vec<Cell<u64>>, Group<u64>)> = match self.gathered {
            Gathered::ByOrd { groups, .. } => groups.into_iter().map(|(key, group)| (vec![key], group)).collect(),
            Gathered::ByKey(groups) => groups.into_iter().collect(),
            Gathered::Counts(mut counts) => {
                let missing = counts.pop().map_or(0, u64::from);
                let (ords, records): (Vec<u64>, Vec<u64>) = (0u64..)
                    .zip(counts)
                    .filter(|&(_, records)| records > 0)
                    .map(|(ord, records)| (ord, u64::from(records)))
                    .unzip();
                let mut texts = self.texts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // Ascending and distinct, as `ids` hands them back.
                let numbered = self.keys[0].ids(ords, &mut texts)?;
                let ids = numbered.ids.into_iter().zip(records).collect();
                return Ok(Harvest::Counted { ids, missing });
            }
        };
        // Each text column's ordinals numbered in one pass over its dictionary.
        let mut texts = self.texts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key_ids = self
            .keys
            .iter()
            .enumerate()
            .map(|(at, reader)| {
                let ords = groups.iter().filter_map(|(key, _)| match key[at] {
                    Cell::Text(ord) => Some(ord),
                    _ => None,
                });
                reader.ids(ords.collect(), &mut texts)
            })
            .collect::<tantivy::Result<Vec<_>>>()?;
        let value_ids = self
            .values
            .iter()
            .enumerate()
            .map(|(at, reader)| {
                let Some(reader) = reader else {
                    return Ok(OrdIds::default());
                };
                let ords = groups
                    .iter()
                    .flat_map(|(_, group)| group.accumulators[at].texts().copied())
                    .collect();
                reader.ids(ords, &mut texts)
            })
            .collect::<tantivy::Result<Vec<_>>>()?;
        drop(texts);
        Ok(Harvest::Named(
            groups
                .into_iter()
                .map(|(key, group)| {
                    let key = key
                        .into_iter()
                        .zip(&key_ids)
                        .map(|(cell, ids)| cell.map(|ord| ids.id(ord)))
                        .collect();
                    (key, group.resolve(|at, ord| value_ids[at].id(ord)))
                })
                .collect(),
        ))
    }
}

/// Where one segment's values of a key or an aggregate's field are.
enum Reader {
    /// A keyword field's column, and the ordinal of "" in it: a line
    /// without a level has the level "", which the stats count as none.
    Keyword(Option<StrColumn>, Option<u64>),
    /// An extracted field's text and number columns.
    Field(Option<StrColumn>, Vec<Column<f64>>),
    /// The event time.
    Time(Column<DateTime>),
    /// The start of the event-time bucket of this width (ms).
    Bucket(Column<DateTime>, i64),
}

impl Reader {
    fn open(segment: &SegmentReader, field: &StatsField) -> tantivy::Result<Reader> {
        Ok(match field {
            StatsField::Keyword(keyword) => {
                let column = segment.fast_fields().str(keyword.name())?;
                let empty = match &column {
                    Some(column) => column.dictionary().term_ord(b"")?,
                    None => None,
                };
                Reader::Keyword(column, empty)
            }
            StatsField::Field(name) => {
                let (text, numbers) = field_column(segment, name)?;
                Reader::Field(text, numbers)
            }
            StatsField::Time => Reader::Time(time_column(segment)?),
        })
    }

    fn read(&self, doc: DocId) -> Cell<u64> {
        let ord = |column: &Option<StrColumn>| column.as_ref().and_then(|c| c.term_ords(doc).next());
        match self {
            Reader::Keyword(column, empty) => match ord(column) {
                Some(ord) if Some(ord) != *empty => Cell::Text(ord),
                _ => Cell::Missing,
            },
            Reader::Field(text, numbers) => match ord(text) {
                Some(ord) => Cell::Text(ord),
                None => numbers
                    .iter()
                    .find_map(|column| column.first(doc))
                    .map_or(Cell::Missing, Cell::Number),
            },
            Reader::Time(column) => column
                .first(doc)
                .map_or(Cell::Missing, |t| Cell::Time(t.into_timestamp_millis())),
            Reader::Bucket(column, width) => column.first(doc).map_or(Cell::Missing, |t| {
                let ms = t.into_timestamp_millis();
                Cell::Time(ms - ms.rem_euclid(*width))
            }),
        }
    }

    /// How many values this reader's column has, when it reads text only
    /// (a keyword, or an extracted field without numbers).
    fn text_only_terms(&self) -> Option<usize> {
        match self {
            Reader::Keyword(Some(column), _) => Some(column.num_terms()),
            Reader::Field(Some(column), numbers) if numbers.is_empty() => Some(column.num_terms()),
            _ => None,
        }
    }

    /// The numbers in `texts` of `ords` of this reader's text column.
    fn ids(&self, mut ords: Vec<u64>, texts: &mut Texts) -> tantivy::Result<OrdIds> {
        let (Reader::Keyword(Some(column), _) | Reader::Field(Some(column), _)) = self else {
            return Ok(OrdIds::default());
        };
        ords.sort_unstable();
        ords.dedup();
        let mut ids = Vec::with_capacity(ords.len());
        let all_found = column
            .dictionary()
            .sorted_ords_to_term_cb(&ords, |bytes| ids.push(texts.id(&String::from_utf8_lossy(bytes))))?;
        if !all_found || ids.len() != ords.len() {
            return Err(tantivy::TantivyError::InternalError(
                "a term ordinal of a text column is not in its dictionary".to_owned(),
            ));
        }
        Ok(OrdIds { ords, ids })
    }
}

/// Some ordinals of a segment's text column and their numbers in [`Texts`].
#[derive(Default)]
struct OrdIds {
    /// Sorted, distinct.
    ords: Vec<u64>,
    ids: Vec<u32>,
}

impl OrdIds {
    fn id(&self, ord: u64) -> u32 {
        // Every ordinal asked was read; an unknown one names "".
        self.ords.binary_search(&ord).map_or(u32::MAX, |at| self.ids[at])
    }
}

fn time_column(segment: &SegmentReader) -> tantivy::Result<Column<DateTime>> {
    segment.fast_fields().date(names::TIMESTAMP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::aggregate::MAX_GROUPS;

    #[test]
    fn counts_by_ordinal_keep_the_group_bound_as_segments_come() {
        let stats = crate::query::parse_query("* | top client").unwrap().stats.unwrap();
        let mut counted = Counted::new(&stats);
        let first: Vec<(u32, u64)> = (0..60_000).map(|id| (id, 1)).collect();
        counted.add(&first, 0).unwrap();
        // The same texts again in another segment make no new groups.
        counted.add(&first, 5).unwrap();
        let more: Vec<(u32, u64)> = (60_000..100_000).map(|id| (id, 2)).collect();
        let refused = counted.add(&more, 0).unwrap_err();
        assert!(refused.to_string().contains(&MAX_GROUPS.to_string()), "{refused}");

        let mut counted = Counted::new(&stats);
        counted.add(&[(3, 2), (1, 1)], 0).unwrap();
        counted.add(&[(3, 1)], 4).unwrap();
        let mut groups = Groups::new(&stats);
        counted.into_groups(&mut groups, &stats).unwrap();
        let mut got: Vec<(Vec<Cell<u32>>, u64)> = groups.groups.into_iter().map(|(k, g)| (k, g.records)).collect();
        got.sort_by_key(|(_, records)| *records);
        assert_eq!(
            got,
            [
                (vec![Cell::Text(1)], 1),
                (vec![Cell::Text(3)], 3),
                (vec![Cell::Missing], 4)
            ]
        );
    }
}
