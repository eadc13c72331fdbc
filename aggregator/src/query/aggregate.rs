//! What `| stats` computes per group, apart from where the values come
//! from: accumulators that take one record's value at a time and merge,
//! the bounds on what a table may hold, and the finished, sorted table.
//!
//! Values are generic over how text is held ([`Cell`]): the store counts a
//! segment's text by its column's ordinals (`Cell<u64>`), numbers them in
//! the table's list of texts when the segment is done (`Cell<u32>`), and
//! [`table`] names them, so the per-record work is integer lookups.
//!
//! Counts, minima, maxima and distinct counts are exact; sums and averages
//! are double-precision; percentiles come from a DDSketch
//! ([`PERCENTILE_RELATIVE_ERROR`]): `pN` is within 1 % of the value at rank
//! ⌊N/100 · (n − 1)⌋ of the group's numbers in ascending order.

use super::pipe::{Aggregate, Function, GroupKey, MAX_ROWS, RowStep, Stats, StatsField};
use lookout_shared::time::rfc3339;
use serde::Serialize;
use sketches_ddsketch::{Config, DDSketch};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// A hash set of values from log lines (see [`ValueMap`]).
pub type ValueSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Relative accuracy of percentiles (DDSketch's α).
pub const PERCENTILE_RELATIVE_ERROR: f64 = 0.01;
/// Most groups one table may gather.
pub const MAX_GROUPS: usize = 100_000;
/// Most percentile sketches one table may keep (groups × percentile
/// aggregates); each holds up to [`SKETCH_BINS`] bins of 8 bytes per sign.
pub const MAX_SKETCHES: usize = 10_000;
/// Bins of one sketch: at 1 % they span values over a ratio of about 10^8
/// (from 1 ms to a day); a group spread wider loses accuracy at its
/// smallest values, whose bins are merged.
pub const SKETCH_BINS: u32 = 1024;
/// Most distinct values `count_distinct` may hold, over all groups.
pub const MAX_DISTINCT: usize = 1_000_000;

/// One value as the stats see it: a field's text (`T`: a column ordinal,
/// or the text), a number, an event time (Unix ms), or none.
#[derive(Debug, Clone, Copy)]
pub enum Cell<T> {
    /// The record has no such value.
    Missing,
    /// Text.
    Text(T),
    /// A number.
    Number(f64),
    /// An event time, Unix ms.
    Time(i64),
}

impl<T> Cell<T> {
    /// The same cell with its text mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Cell<U> {
        match self {
            Cell::Missing => Cell::Missing,
            Cell::Text(text) => Cell::Text(f(text)),
            Cell::Number(n) => Cell::Number(n),
            Cell::Time(ms) => Cell::Time(ms),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(n) => Some(*n),
            // Times are below 2^53 ms: exact as f64.
            Cell::Time(ms) => Some(*ms as f64),
            Cell::Missing | Cell::Text(_) => None,
        }
    }

    /// A number's bits, with -0 as 0 (they are one value).
    fn bits(n: f64) -> u64 {
        if n == 0.0 { 0 } else { n.to_bits() }
    }
}

impl<T: PartialEq> PartialEq for Cell<T> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cell::Missing, Cell::Missing) => true,
            (Cell::Text(a), Cell::Text(b)) => a == b,
            (Cell::Number(a), Cell::Number(b)) => Self::bits(*a) == Self::bits(*b),
            (Cell::Time(a), Cell::Time(b)) => a == b,
            _ => false,
        }
    }
}

impl<T: Eq> Eq for Cell<T> {}

impl<T: Hash> Hash for Cell<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Cell::Missing => {}
            Cell::Text(text) => text.hash(state),
            Cell::Number(n) => Self::bits(*n).hash(state),
            Cell::Time(ms) => ms.hash(state),
        }
    }
}

/// Why a table cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StatsError(pub String);

/// What one aggregate holds for one group.
#[derive(Clone)]
pub enum Accumulator<T> {
    /// `count()`: the group's record count says it all.
    Records,
    /// `count(f)`: records with a value.
    Present(u64),
    /// `count_distinct(f)`.
    Distinct(ValueSet<Cell<T>>),
    /// `sum` and `avg`: the sum of the numbers and how many there were.
    Sum {
        /// Sum.
        sum: f64,
        /// Numbers added.
        numbers: u64,
    },
    /// `min`.
    Min(Option<f64>),
    /// `max`.
    Max(Option<f64>),
    /// Percentiles.
    Sketch(Box<DDSketch>),
}

impl<T: Hash + Eq> Accumulator<T> {
    /// An empty accumulator for `aggregate`.
    pub fn new(aggregate: &Aggregate) -> Self {
        match (aggregate.function, &aggregate.field) {
            (Function::Count, None) => Accumulator::Records,
            (Function::Count, Some(_)) => Accumulator::Present(0),
            (Function::CountDistinct, _) => Accumulator::Distinct(ValueSet::default()),
            (Function::Sum | Function::Avg, _) => Accumulator::Sum { sum: 0.0, numbers: 0 },
            (Function::Min, _) => Accumulator::Min(None),
            (Function::Max, _) => Accumulator::Max(None),
            (Function::Percentile(_), _) => Accumulator::Sketch(Box::new(sketch())),
        }
    }

    /// Adds one record's value; answers how many distinct values it added
    /// (for [`MAX_DISTINCT`]).
    pub fn add(&mut self, value: Cell<T>) -> usize {
        match self {
            Accumulator::Records => {}
            Accumulator::Present(n) => *n += u64::from(!matches!(value, Cell::Missing)),
            Accumulator::Distinct(set) => {
                if !matches!(value, Cell::Missing) {
                    return usize::from(set.insert(value));
                }
            }
            Accumulator::Sum { sum, numbers } => {
                if let Some(n) = value.number() {
                    *sum += n;
                    *numbers += 1;
                }
            }
            Accumulator::Min(least) => {
                if let Some(n) = value.number() {
                    *least = Some(least.map_or(n, |l| l.min(n)));
                }
            }
            Accumulator::Max(most) => {
                if let Some(n) = value.number() {
                    *most = Some(most.map_or(n, |m| m.max(n)));
                }
            }
            Accumulator::Sketch(sketch) => {
                if let Some(n) = value.number() {
                    sketch.add(n);
                }
            }
        }
        0
    }

    /// Folds `other` (of the same aggregate) in; answers how many distinct
    /// values it added.
    pub fn merge(&mut self, other: Accumulator<T>) -> usize {
        match (self, other) {
            (Accumulator::Present(a), Accumulator::Present(b)) => *a += b,
            (Accumulator::Distinct(a), Accumulator::Distinct(b)) => {
                let before = a.len();
                a.extend(b);
                return a.len() - before;
            }
            (Accumulator::Sum { sum, numbers }, Accumulator::Sum { sum: s, numbers: n }) => {
                *sum += s;
                *numbers += n;
            }
            (Accumulator::Min(a), Accumulator::Min(b)) => *a = min_of(*a, b, f64::min),
            (Accumulator::Max(a), Accumulator::Max(b)) => *a = min_of(*a, b, f64::max),
            // Sketches of one configuration always merge.
            (Accumulator::Sketch(a), Accumulator::Sketch(b)) => {
                let _ = a.merge(&b);
            }
            _ => {}
        }
        0
    }

    /// The same accumulator with its text values mapped.
    pub fn resolve<U: Hash + Eq>(self, mut f: impl FnMut(T) -> U) -> Accumulator<U> {
        match self {
            Accumulator::Records => Accumulator::Records,
            Accumulator::Present(n) => Accumulator::Present(n),
            Accumulator::Distinct(set) => Accumulator::Distinct(set.into_iter().map(|cell| cell.map(&mut f)).collect()),
            Accumulator::Sum { sum, numbers } => Accumulator::Sum { sum, numbers },
            Accumulator::Min(n) => Accumulator::Min(n),
            Accumulator::Max(n) => Accumulator::Max(n),
            Accumulator::Sketch(sketch) => Accumulator::Sketch(sketch),
        }
    }

    /// The text values held (`count_distinct`'s).
    pub fn texts(&self) -> impl Iterator<Item = &T> {
        let set = match self {
            Accumulator::Distinct(set) => Some(set),
            _ => None,
        };
        set.into_iter().flatten().filter_map(|cell| match cell {
            Cell::Text(text) => Some(text),
            _ => None,
        })
    }

    /// Distinct values held.
    pub fn distinct(&self) -> usize {
        match self {
            Accumulator::Distinct(set) => set.len(),
            _ => 0,
        }
    }

    /// The finished value of `aggregate` for a group of `records`.
    fn finish(&self, aggregate: &Aggregate, records: u64) -> Value {
        let time = aggregate.field == Some(StatsField::Time);
        let number_or_time = |n: Option<f64>| match n {
            None => Value::Null,
            Some(ms) if time => Value::Time(ms as i64),
            Some(n) => Value::Number(n),
        };
        match self {
            Accumulator::Records => Value::Count(records),
            Accumulator::Present(n) => Value::Count(*n),
            Accumulator::Distinct(set) => Value::Count(set.len() as u64),
            Accumulator::Sum { sum, .. } if aggregate.function == Function::Sum => Value::Number(*sum),
            Accumulator::Sum { numbers: 0, .. } => Value::Null,
            Accumulator::Sum { sum, numbers } => Value::Number(sum / *numbers as f64),
            Accumulator::Min(n) | Accumulator::Max(n) => number_or_time(*n),
            Accumulator::Sketch(sketch) => {
                let Function::Percentile(q) = aggregate.function else {
                    return Value::Null;
                };
                // The sketch answers within its error of the value at the
                // rank; the true extremes bound it.
                match (sketch.quantile(q), sketch.min(), sketch.max()) {
                    (Ok(Some(v)), Some(least), Some(most)) => Value::Number(v.clamp(least, most)),
                    _ => Value::Null,
                }
            }
        }
    }
}

fn min_of(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

fn sketch() -> DDSketch {
    DDSketch::new(Config::new(PERCENTILE_RELATIVE_ERROR, SKETCH_BINS, 1.0e-9))
}

/// A hash map keyed by values from log lines: foldhash with a per-process
/// random seed, about as fast as FxHash but not open to keys chosen to
/// collide.
pub type ValueMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One group: its records and an accumulator per aggregate.
#[derive(Clone)]
pub struct Group<T> {
    /// Records in the group.
    pub records: u64,
    /// One per aggregate, in order.
    pub accumulators: Vec<Accumulator<T>>,
}

impl<T: Hash + Eq> Group<T> {
    /// An empty group for `stats`.
    pub fn new(stats: &Stats) -> Self {
        Group {
            records: 0,
            accumulators: stats.aggregates.iter().map(Accumulator::new).collect(),
        }
    }

    /// Adds one record with a value per aggregate.
    pub fn add(&mut self, values: impl Iterator<Item = Cell<T>>, budget: &mut Budget) -> Result<(), StatsError> {
        self.records += 1;
        let mut distinct = 0;
        for (accumulator, value) in self.accumulators.iter_mut().zip(values) {
            distinct += accumulator.add(value);
        }
        budget.add_distinct(distinct)
    }

    /// Folds `other` (a group of the same key) in.
    pub fn merge(&mut self, other: Group<T>, budget: &mut Budget) -> Result<(), StatsError> {
        self.records += other.records;
        let mut distinct = 0;
        for (accumulator, other) in self.accumulators.iter_mut().zip(other.accumulators) {
            distinct += accumulator.merge(other);
        }
        budget.add_distinct(distinct)
    }

    /// The same group with its text values mapped (`f` is given the
    /// aggregate's index and a text value).
    pub fn resolve<U: Hash + Eq>(self, mut f: impl FnMut(usize, T) -> U) -> Group<U> {
        Group {
            records: self.records,
            accumulators: self
                .accumulators
                .into_iter()
                .enumerate()
                .map(|(index, a)| a.resolve(|text| f(index, text)))
                .collect(),
        }
    }

    fn distinct(&self) -> usize {
        self.accumulators.iter().map(Accumulator::distinct).sum()
    }
}

/// The bounds on what one table may gather: groups, and distinct values
/// held for `count_distinct`.
pub struct Budget {
    groups: usize,
    distinct: usize,
    max_groups: usize,
}

impl Budget {
    /// Nothing gathered yet, bounded for `stats`.
    pub fn new(stats: &Stats) -> Self {
        Budget {
            groups: 0,
            distinct: 0,
            max_groups: match stats.percentiles() {
                0 => MAX_GROUPS,
                sketches => (MAX_SKETCHES / sketches).max(1),
            },
        }
    }

    /// Counts a new group; an error past the bound.
    pub fn new_group(&mut self) -> Result<(), StatsError> {
        self.groups += 1;
        if self.groups > self.max_groups {
            return Err(StatsError(format!(
                "the stats make more than {} groups: group by fewer or coarser keys, or narrow the query{}",
                self.max_groups,
                if self.max_groups < MAX_GROUPS {
                    format!(" ({MAX_SKETCHES} percentile sketches at most: groups × percentiles)")
                } else {
                    String::new()
                }
            )));
        }
        Ok(())
    }

    /// Counts distinct values held; an error past the bound.
    pub fn add_distinct(&mut self, more: usize) -> Result<(), StatsError> {
        self.distinct += more;
        if self.distinct > MAX_DISTINCT {
            return Err(StatsError(format!(
                "count_distinct would hold more than {MAX_DISTINCT} values: narrow the query or group by less"
            )));
        }
        Ok(())
    }
}

/// Groups by key, within a [`Budget`].
pub struct Groups<T> {
    /// Each group, by its key cells in `by` order.
    pub groups: ValueMap<Vec<Cell<T>>, Group<T>>,
    budget: Budget,
}

impl<T: Hash + Eq + Clone> Groups<T> {
    /// No groups yet, bounded for `stats`.
    pub fn new(stats: &Stats) -> Self {
        Groups {
            groups: ValueMap::default(),
            budget: Budget::new(stats),
        }
    }

    /// Adds one record with key `key` and a value per aggregate.
    pub fn add(
        &mut self,
        stats: &Stats,
        key: &[Cell<T>],
        values: impl Iterator<Item = Cell<T>>,
    ) -> Result<(), StatsError> {
        let group = match self.groups.get_mut(key) {
            Some(group) => group,
            None => {
                self.budget.new_group()?;
                self.groups.entry(key.to_vec()).or_insert_with(|| Group::new(stats))
            }
        };
        group.add(values, &mut self.budget)
    }

    /// Folds a group in.
    pub fn merge(&mut self, key: Vec<Cell<T>>, group: Group<T>) -> Result<(), StatsError> {
        match self.groups.get_mut(&key) {
            Some(ours) => ours.merge(group, &mut self.budget),
            None => {
                self.budget.new_group()?;
                self.budget.add_distinct(group.distinct())?;
                self.groups.insert(key, group);
                Ok(())
            }
        }
    }

    /// Adds `records` to the group of `key` for a stats of counts only.
    pub fn add_count(&mut self, stats: &Stats, key: Vec<Cell<T>>, records: u64) -> Result<(), StatsError> {
        if !self.groups.contains_key(&key) {
            self.budget.new_group()?;
        }
        self.groups.entry(key).or_insert_with(|| Group::new(stats)).records += records;
        Ok(())
    }
}

/// One cell of a finished table.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (a key the record lacked, an average of no numbers).
    Null,
    /// Text.
    Text(String),
    /// A count.
    Count(u64),
    /// A number.
    Number(f64),
    /// A time, Unix ms (shown as RFC 3339).
    Time(i64),
}

impl Value {
    fn of(cell: Cell<String>) -> Value {
        match cell {
            Cell::Missing => Value::Null,
            Cell::Text(text) => Value::Text(text),
            Cell::Number(n) => Value::Number(n),
            Cell::Time(ms) => Value::Time(ms),
        }
    }

    /// Order within a column: numbers and times by value, then text by
    /// bytes; a missing value always last, whichever the direction.
    fn compare(&self, other: &Value, descending: bool) -> Ordering {
        let rank = |v: &Value| match v {
            Value::Count(_) | Value::Number(_) | Value::Time(_) => 0,
            Value::Text(_) => 1,
            Value::Null => 2,
        };
        let number = |v: &Value| match v {
            Value::Count(n) => *n as f64,
            Value::Number(n) => *n,
            Value::Time(ms) => *ms as f64,
            Value::Text(_) | Value::Null => 0.0,
        };
        let order = match (self, other) {
            (Value::Null, _) | (_, Value::Null) => return rank(self).cmp(&rank(other)),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Count(a), Value::Count(b)) => a.cmp(b),
            (Value::Time(a), Value::Time(b)) => a.cmp(b),
            (a, b) if rank(a) == rank(b) => number(a).total_cmp(&number(b)),
            (a, b) => rank(a).cmp(&rank(b)),
        };
        if descending { order.reverse() } else { order }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Text(text) => serializer.serialize_str(text),
            Value::Count(n) => serializer.serialize_u64(*n),
            // Whole numbers as integers (a sum of bytes reads as 1234, not 1234.0).
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
                serializer.serialize_i64(*n as i64)
            }
            Value::Number(n) if n.is_finite() => serializer.serialize_f64(*n),
            Value::Number(_) => serializer.serialize_none(),
            Value::Time(ms) => serializer.serialize_str(&rfc3339(*ms)),
        }
    }
}

/// The query of the lines behind a table's row: `filter` (the query before
/// the pipe) and each key's value (`host:"web-1"`, `status:500`, `NOT
/// has:user` for a missing one). Time buckets are left out: a row's time
/// range is the caller's.
pub fn row_query(stats: &Stats, filter: &str, row: &[Value]) -> String {
    let mut parts = Vec::new();
    let filter = filter.trim();
    if !filter.is_empty() && filter != "*" {
        parts.push(format!("({filter})"));
    }
    for (key, value) in stats.by.iter().zip(row) {
        let GroupKey::Field(field) = key else {
            continue;
        };
        let (name, has) = match field {
            StatsField::Keyword(keyword) => (keyword.name().to_owned(), format!("{}:*", keyword.name())),
            StatsField::Field(name) if super::is_built_in(name) => (format!("fields.{name}"), format!("has:{name}")),
            StatsField::Field(name) => (name.clone(), format!("has:{name}")),
            StatsField::Time => continue,
        };
        parts.push(match value {
            Value::Null => format!("NOT {has}"),
            Value::Count(n) => format!("{name}:{n}"),
            // As the table shows it: whole numbers without `.0`.
            Value::Number(_) => format!("{name}:{}", serde_json::to_string(value).unwrap_or_default()),
            Value::Text(text) => format!("{name}:\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
            Value::Time(_) => continue,
        });
    }
    if parts.is_empty() {
        "*".to_owned()
    } else {
        parts.join(" ")
    }
}

/// A finished table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// Column names: keys, then aggregates.
    pub columns: Vec<String>,
    /// How many of the columns are keys.
    pub keys: usize,
    /// Rows in order, each a value per column.
    pub rows: Vec<Vec<Value>>,
    /// Groups found; more than the rows when `limit` (or the row bound) cut them.
    pub groups: usize,
}

/// The table of `groups`, their text named by `text`: one row per group,
/// sorted and cut as `stats` says.
pub fn table<T: Hash + Eq>(stats: &Stats, groups: Groups<T>, mut text: impl FnMut(T) -> String) -> Table {
    let keys = stats.by.len();
    let total = groups.groups.len();
    let mut rows: Vec<Vec<Value>> = groups
        .groups
        .into_iter()
        .map(|(key, group)| {
            let mut row: Vec<Value> = key.into_iter().map(|cell| Value::of(cell.map(&mut text))).collect();
            row.extend(
                group
                    .accumulators
                    .iter()
                    .zip(&stats.aggregates)
                    .map(|(accumulator, aggregate)| accumulator.finish(aggregate, group.records)),
            );
            row
        })
        .collect();
    // `stats` without keys answers one row, even over no records.
    if keys == 0 && rows.is_empty() {
        let empty = Group::<T>::new(stats);
        rows.push(
            empty
                .accumulators
                .iter()
                .zip(&stats.aggregates)
                .map(|(accumulator, aggregate)| accumulator.finish(aggregate, 0))
                .collect(),
        );
    }
    let by_keys = |a: &Vec<Value>, b: &Vec<Value>| {
        (0..keys)
            .map(|column| a[column].compare(&b[column], false))
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    rows.sort_by(by_keys);
    let mut steps = stats.rows.iter().peekable();
    while let Some(step) = steps.next() {
        match step {
            RowStep::Sort(columns) => {
                // Ties follow the keys: a total order, as `select_nth` needs.
                let order = |a: &Vec<Value>, b: &Vec<Value>| {
                    columns
                        .iter()
                        .map(|&(column, descending)| a[column].compare(&b[column], descending))
                        .find(|order| order.is_ne())
                        .unwrap_or(Ordering::Equal)
                        .then_with(|| by_keys(a, b))
                };
                // `| top 10` of 50,000 groups orders ten rows, not all of them.
                if let Some(RowStep::Limit(limit)) = steps.peek()
                    && *limit < rows.len()
                {
                    rows.select_nth_unstable_by(*limit, order);
                    rows.truncate(*limit);
                }
                rows.sort_by(order);
            }
            RowStep::Limit(limit) => rows.truncate(*limit),
        }
    }
    rows.truncate(MAX_ROWS);
    Table {
        columns: stats.columns.clone(),
        keys,
        rows,
        groups: total.max(usize::from(keys == 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Expr, Leaf, parse_query};

    fn stats(q: &str) -> Stats {
        parse_query(q).unwrap().stats.unwrap()
    }

    #[test]
    fn groups_and_distinct_values_are_bounded() {
        let by_client = stats("| stats count() by client");
        let mut groups = Groups::<u64>::new(&by_client);
        for ord in 0..MAX_GROUPS as u64 {
            groups.add(&by_client, &[Cell::Text(ord)], std::iter::empty()).unwrap();
        }
        // An existing group still counts; a new one is refused.
        groups.add(&by_client, &[Cell::Text(7)], std::iter::empty()).unwrap();
        let err = groups
            .add(&by_client, &[Cell::Text(u64::MAX)], std::iter::empty())
            .unwrap_err();
        assert!(err.0.contains("more than 100000 groups"), "{err}");

        // Two percentiles: half as many groups.
        let percentiles = stats("| stats p99(took), p50(took), max(took) by client");
        let mut groups = Groups::<u64>::new(&percentiles);
        let values = || [Cell::Number(1.0), Cell::Number(1.0), Cell::Number(1.0)].into_iter();
        for ord in 0..(MAX_SKETCHES / 2) as u64 {
            groups.add(&percentiles, &[Cell::Text(ord)], values()).unwrap();
        }
        let err = groups.add(&percentiles, &[Cell::Text(u64::MAX)], values());
        assert!(err.unwrap_err().0.contains("more than 5000 groups"));

        let distinct = stats("| stats count_distinct(client) by host");
        let mut groups = Groups::<u64>::new(&distinct);
        for value in 0..MAX_DISTINCT as u64 {
            groups
                .add(&distinct, &[Cell::Text(value % 3)], [Cell::Text(value)].into_iter())
                .unwrap();
        }
        let err = groups.add(&distinct, &[Cell::Text(0)], [Cell::Text(u64::MAX)].into_iter());
        assert!(err.unwrap_err().0.contains("count_distinct"));
    }

    #[test]
    fn a_rows_query_selects_its_keys_values_as_the_parser_reads_them() {
        let by = stats("| stats count() by host, level, path, fields.host, status, _time(1m), user");
        let row = [
            Value::Text("web-1".into()),
            Value::Null,
            Value::Text("/a \"b\" \\c".into()),
            Value::Text("x".into()),
            Value::Number(500.0),
            Value::Time(60_000),
            Value::Null,
            Value::Count(3),
        ];
        let q = row_query(&by, "error OR warn", &row);
        assert_eq!(
            q,
            r#"(error OR warn) host:"web-1" NOT level:* path:"/a \"b\" \\c" fields.host:"x" status:500 NOT has:user"#
        );
        // It parses, and means what it says.
        let parsed = crate::query::parse(&q).unwrap();
        let Expr::And(parts) = parsed else { panic!("{parsed:?}") };
        assert_eq!(parts.len(), 7, "{parts:?}");
        assert_eq!(parts[3], Expr::Leaf(Leaf::Field("path".into(), "/a \"b\" \\c".into())));
        assert_eq!(parts[4], Expr::Leaf(Leaf::Field("host".into(), "x".into())));
        assert_eq!(row_query(&stats("| stats count()"), "", &[Value::Count(1)]), "*");
    }

    #[test]
    fn cells_are_one_value_whatever_their_zero_and_rows_keep_missing_values_last() {
        assert_eq!(Cell::<u64>::Number(0.0), Cell::Number(-0.0));
        let by = stats("| stats count() by path | sort by path desc");
        let mut groups = Groups::<String>::new(&by);
        for key in [
            Cell::Missing,
            Cell::Text("b".to_owned()),
            Cell::Number(5.0),
            Cell::Text("a".to_owned()),
        ] {
            groups.add(&by, &[key], std::iter::empty()).unwrap();
        }
        let rows = table(&by, groups, |text| text).rows;
        let keys: Vec<&Value> = rows.iter().map(|row| &row[0]).collect();
        assert_eq!(
            keys,
            [
                &Value::Text("b".into()),
                &Value::Text("a".into()),
                &Value::Number(5.0),
                &Value::Null
            ]
        );
        let json = serde_json::to_string(&[
            Value::Number(1234.0),
            Value::Number(0.5),
            Value::Number(f64::NAN),
            Value::Time(0),
            Value::Count(3),
        ])
        .unwrap();
        assert_eq!(json, r#"[1234,0.5,null,"1970-01-01T00:00:00Z",3]"#);
    }
}
