//! The pipe after a query: what `| stats`, `| top`, `| sort` and `| limit`
//! ask of the matching records, parsed into one [`Stats`] plan that the
//! store computes over its columns (`store::stats`) and [`super::aggregate`]
//! finishes into a table.
//!
//! ```text
//! pipes = ("|" pipe)+                    the first is stats or top; sort and limit
//!                                        then apply to its rows in the order written
//! pipe  = "stats" agg ("," agg)* ["by" keys]
//!       | "top" [N] ["by"] keys          count() per key, most first, N rows (10)
//!       | "sort" "by" ["("] column ["asc" | "desc"] ("," …)* [")"]
//!       | "limit" N
//! agg   = function "(" [field] ")" ["as" name]
//! keys  = ["("] key ("," key)* [")"]
//! key   = field | "_time(" duration ")"  a time bucket (`_time(1m)`), aligned to
//!                                        multiples of its width since 1970, named
//!                                        in one unit (`_time(90s)`, `_time(1h)`)
//! ```
//!
//! Functions: `count()` (records), `count(f)` (records that have `f`),
//! `count_distinct(f)`, and over the numbers of `f`: `sum`, `avg`, `min`,
//! `max` and the percentiles `p1`…`p99` (`median` is `p50`). `min` and
//! `max` also take `_time` (or `timestamp`), the event time. A field is `host`, `source`,
//! `level`, `stream`, or an extracted field (`fields.<name>` where the name
//! is taken); labels, the message and offsets are not kept as columns and
//! cannot be grouped or aggregated.

use super::{Keyword, Parser, QueryError, is_field_name};
use lookout_shared::config::HumanDuration;

/// Most group keys in `by`.
pub const MAX_KEYS: usize = 8;
/// Most aggregates in one `stats`.
pub const MAX_AGGREGATES: usize = 16;
/// Most rows a table shows: `limit` takes at most this, and a table of
/// more groups shows this many (its `groups` says how many there are).
pub const MAX_ROWS: usize = 10_000;
/// Rows of `| top` without a number.
const DEFAULT_TOP: usize = 10;
/// Narrowest time bucket.
const MIN_BUCKET_MS: i64 = 1_000;

/// What the pipes ask for: groups, what to compute per group, row order
/// and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Group keys, in order; none: one group of every matching record.
    pub by: Vec<GroupKey>,
    /// What each row computes, after its keys.
    pub aggregates: Vec<Aggregate>,
    /// Column names: the keys', then the aggregates'.
    pub columns: Vec<String>,
    /// What is done to the rows, in order, after they are put in key
    /// order: `| top`'s sort and cut, then each `| sort` and `| limit`.
    pub rows: Vec<RowStep>,
}

/// One step on a table's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum RowStep {
    /// Order by these columns (index, descending), most significant first;
    /// ties follow the keys.
    Sort(Vec<(usize, bool)>),
    /// Keep the first N rows.
    Limit(usize),
}

impl Stats {
    /// How many aggregates keep a sketch per group (percentiles): these
    /// bound the groups tighter.
    pub fn percentiles(&self) -> usize {
        self.aggregates
            .iter()
            .filter(|a| matches!(a.function, Function::Percentile(_)))
            .count()
    }
}

/// What a value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsField {
    /// `host`, `source`, `level` or `stream`.
    Keyword(Keyword),
    /// An extracted field, by name.
    Field(String),
    /// The event time (`_time`).
    Time,
}

/// One group key.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupKey {
    /// A field's value (text or number; none when the record lacks it).
    Field(StatsField),
    /// The start of the event-time bucket of this width (ms).
    TimeBucket(i64),
}

/// One computed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// What is computed.
    pub function: Function,
    /// Of which field; `None` for `count()`.
    pub field: Option<StatsField>,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Function {
    /// Records (`count()`), or records with the field (`count(f)`).
    Count,
    /// Distinct values (text and numbers).
    CountDistinct,
    /// Sum of the numbers.
    Sum,
    /// Mean of the numbers.
    Avg,
    /// Least number (or earliest time).
    Min,
    /// Greatest number (or latest time).
    Max,
    /// The number at this quantile (0.5 for `p50`), from a sketch.
    Percentile(f64),
}

impl Function {
    fn of_name(name: &str) -> Option<Function> {
        Some(match name {
            "count" => Function::Count,
            "count_distinct" => Function::CountDistinct,
            "sum" => Function::Sum,
            "avg" => Function::Avg,
            "min" => Function::Min,
            "max" => Function::Max,
            "median" => Function::Percentile(0.5),
            other => {
                let digits = other.strip_prefix('p')?;
                if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let percent: u8 = digits.parse().ok()?;
                if !(1..=99).contains(&percent) {
                    return None;
                }
                Function::Percentile(f64::from(percent) / 100.0)
            }
        })
    }
}

/// Function names, for error messages.
const FUNCTIONS: &str = "count, count_distinct, sum, avg, min, max, median, p1…p99";

impl Parser<'_> {
    /// The pipes from here to the end of the query; `self` stands on the
    /// first `|`.
    pub(super) fn pipes(&mut self) -> Result<Stats, QueryError> {
        let mut stats: Option<Stats> = None;
        while self.peek() == Some('|') {
            self.bump();
            self.skip_space();
            let start = self.pos;
            let name = self.ident();
            let at = |what: String| QueryError::syntax(self.src, start, what);
            match (name.as_str(), &mut stats) {
                ("stats" | "top", Some(_)) => {
                    return Err(at(format!(
                        "only one `| stats` or `| top` may stand in a query, and `{name}` is a second"
                    )));
                }
                ("stats", None) => stats = Some(self.stats_pipe()?),
                ("top", None) => stats = Some(self.top_pipe()?),
                ("sort" | "limit", None) => {
                    return Err(at(format!(
                        "`| {name}` orders the rows of a table: put `| stats …` or `| top …` before it"
                    )));
                }
                ("sort", Some(stats)) => {
                    let order = self.sort_pipe(&stats.columns)?;
                    stats.rows.push(RowStep::Sort(order));
                }
                ("limit", Some(stats)) => {
                    self.skip_space();
                    let limit = self.count("`| limit`", MAX_ROWS)?;
                    stats.rows.push(RowStep::Limit(limit));
                }
                ("", _) => return Err(at("a pipe name (stats, top, sort, limit) was expected after `|`".into())),
                (other, _) => {
                    return Err(at(format!(
                        "unknown pipe `{other}`: use stats, top, sort or limit (to search for `|`, quote it)"
                    )));
                }
            }
            self.skip_space();
            if let Some(c) = self.peek()
                && c != '|'
            {
                return Err(self.error(format!("unexpected `{c}`")));
            }
        }
        stats.ok_or_else(|| self.error("a pipe was expected"))
    }

    /// `agg, … [by keys]`, after `stats`.
    fn stats_pipe(&mut self) -> Result<Stats, QueryError> {
        let parsed = self.list(|parser| {
            let start = parser.pos;
            let (aggregate, name) = parser.aggregate()?;
            Ok((start, aggregate, name))
        })?;
        let mut aggregates = Vec::new();
        let mut names = Vec::new();
        for (start, aggregate, name) in parsed {
            let refuse = |what: String| Err(QueryError::syntax(self.src, start, what));
            if names.contains(&name) {
                return refuse(format!("two columns are named `{name}`: rename one with `as`"));
            }
            if aggregates.len() == MAX_AGGREGATES {
                return refuse(format!("more than {MAX_AGGREGATES} aggregates in one `stats`"));
            }
            aggregates.push(aggregate);
            names.push(name);
        }
        let (by, mut columns) = if self.keyword("by") {
            self.keys()?
        } else {
            (Vec::new(), Vec::new())
        };
        for name in names {
            if columns.contains(&name) {
                return Err(self.error(format!("`{name}` is both a key and an aggregate: rename it with `as`")));
            }
            columns.push(name);
        }
        // Without `| sort`, rows follow their keys (a time bucket first
        // makes a time line).
        Ok(Stats {
            by,
            aggregates,
            columns,
            rows: Vec::new(),
        })
    }

    /// `[N] keys`, after `top`.
    fn top_pipe(&mut self) -> Result<Stats, QueryError> {
        self.skip_space();
        let limit = if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.count("`| top`", MAX_ROWS)?
        } else {
            DEFAULT_TOP
        };
        self.skip_space();
        // `top 10 by (client)`, as VictoriaLogs writes it, reads the same.
        self.keyword("by");
        let (by, mut columns) = self.keys()?;
        if columns.iter().any(|c| c == "count") {
            return Err(self.error("`| top` names its count column `count`: use `| stats count() as n by …`"));
        }
        columns.push("count".to_owned());
        let count_column = columns.len() - 1;
        Ok(Stats {
            by,
            aggregates: vec![Aggregate {
                function: Function::Count,
                field: None,
            }],
            columns,
            rows: vec![RowStep::Sort(vec![(count_column, true)]), RowStep::Limit(limit)],
        })
    }

    /// `by col [asc|desc], …` after `sort`, as column indexes of `columns`.
    fn sort_pipe(&mut self, columns: &[String]) -> Result<Vec<(usize, bool)>, QueryError> {
        if !self.keyword("by") {
            self.skip_space();
            return Err(self.error("`| sort` is written `| sort by column [desc], …`"));
        }
        let parenthesised = self.open_paren();
        let order = self.list(|parser| {
            let start = parser.pos;
            let name = parser.column_name();
            let Some(index) = columns.iter().position(|c| *c == name) else {
                return Err(QueryError::syntax(
                    parser.src,
                    start,
                    format!("`| sort` names `{name}`, which is not a column: {}", columns.join(", ")),
                ));
            };
            let descending = if parser.keyword("desc") {
                true
            } else {
                parser.keyword("asc");
                false
            };
            Ok((index, descending))
        })?;
        if parenthesised {
            self.close_paren()?;
        }
        Ok(order)
    }

    /// One aggregate and its column name.
    fn aggregate(&mut self) -> Result<(Aggregate, String), QueryError> {
        let start = self.pos;
        let name = self.ident();
        let Some(function) = Function::of_name(&name) else {
            let what = if name.is_empty() {
                "an aggregate such as count() was expected".to_owned()
            } else {
                format!("unknown aggregate `{name}`: use {FUNCTIONS}")
            };
            return Err(QueryError::syntax(self.src, start, what));
        };
        if self.peek() != Some('(') {
            return Err(self.error(format!("`{name}` needs parentheses: `{name}(…)`")));
        }
        self.bump();
        self.skip_space();
        let field_start = self.pos;
        let field_name = self.ident();
        let field = if field_name.is_empty() {
            None
        } else {
            Some(self.stats_field(&field_name, field_start)?)
        };
        self.skip_space();
        if self.peek() != Some(')') {
            return Err(self.error(format!("`{name}(` needs a field name and a closing `)`")));
        }
        self.bump();
        let aggregate = Aggregate { function, field };
        check_aggregate(&aggregate, &name).map_err(|what| QueryError::syntax(self.src, start, what))?;
        let written = format!("{name}({field_name})");
        let column = if self.keyword("as") {
            self.skip_space();
            let alias_start = self.pos;
            let alias = self.ident();
            if alias.is_empty() {
                return Err(QueryError::syntax(self.src, alias_start, "`as` needs a column name"));
            }
            alias
        } else {
            written
        };
        Ok((aggregate, column))
    }

    /// `["("] key, … [")"]` and the keys' column names.
    fn keys(&mut self) -> Result<(Vec<GroupKey>, Vec<String>), QueryError> {
        let parenthesised = self.open_paren();
        let parsed = self.list(|parser| {
            let start = parser.pos;
            let (key, column) = parser.key()?;
            Ok((start, key, column))
        })?;
        if parenthesised {
            self.close_paren()?;
        }
        let mut keys = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        for (start, key, column) in parsed {
            let refuse = |what: String| Err(QueryError::syntax(self.src, start, what));
            if columns.contains(&column) {
                return refuse(format!("`{column}` is grouped by twice"));
            }
            if keys.len() == MAX_KEYS {
                return refuse(format!("more than {MAX_KEYS} group keys"));
            }
            keys.push(key);
            columns.push(column);
        }
        Ok((keys, columns))
    }

    /// One group key and its column name.
    fn key(&mut self) -> Result<(GroupKey, String), QueryError> {
        let start = self.pos;
        let name = self.ident();
        if name.is_empty() {
            return Err(self.error("a field name was expected"));
        }
        if name == "_time" && self.peek() == Some('(') {
            self.bump();
            let inner_start = self.pos;
            let Some(close) = self.rest().find(')') else {
                return Err(self.error("`_time(` needs a width and a closing `)`: `_time(1m)`"));
            };
            let text = self.rest()[..close].trim().to_owned();
            self.pos += close + 1;
            let width = bucket_width(&text).map_err(|what| QueryError::syntax(self.src, inner_start, what))?;
            return Ok((GroupKey::TimeBucket(width), bucket_column(width)));
        }
        match self.stats_field(&name, start)? {
            StatsField::Time => Err(QueryError::syntax(
                self.src,
                start,
                "group by time with a bucket width: `_time(1m)`",
            )),
            field => Ok((GroupKey::Field(field), name)),
        }
    }

    /// `item, item, …`, space free around the commas.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, QueryError>) -> Result<Vec<T>, QueryError> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            items.push(item(self)?);
            self.skip_space();
            if self.peek() != Some(',') {
                return Ok(items);
            }
            self.bump();
        }
    }

    /// What the field `name` (at byte `start`) is read from.
    fn stats_field(&self, name: &str, start: usize) -> Result<StatsField, QueryError> {
        let refuse = |what: String| Err(QueryError::syntax(self.src, start, what));
        Ok(match name {
            "host" => StatsField::Keyword(Keyword::Host),
            "source" => StatsField::Keyword(Keyword::Source),
            "level" => StatsField::Keyword(Keyword::Level),
            "stream" => StatsField::Keyword(Keyword::Stream),
            "_time" | "timestamp" => StatsField::Time,
            "message" | "id" | "offset" | "truncated" | "labels" | "fields" => {
                return refuse(format!(
                    "`{name}` cannot be grouped or aggregated: use host, source, level, stream, _time or an \
                     extracted field"
                ));
            }
            other if other.starts_with("labels.") => {
                return refuse(format!(
                    "labels (`{other}`) are not kept as columns: group by host, source, level, stream or an \
                     extracted field"
                ));
            }
            other => {
                let name = other.strip_prefix("fields.").unwrap_or(other);
                if !is_field_name(name) {
                    return refuse(format!("`{other}` is not a field name"));
                }
                StatsField::Field(name.to_owned())
            }
        })
    }

    /// A field or function name: `[A-Za-z_][A-Za-z0-9_.-]*`, or "".
    fn ident(&mut self) -> String {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if !is_field_name(name) {
            return String::new();
        }
        let name = name.to_owned();
        self.pos += end;
        name
    }

    /// A column name as `| sort` names it: a name, or an aggregate as
    /// written (`count()`, `avg(took)`, `_time(1m)`).
    fn column_name(&mut self) -> String {
        let start = self.pos;
        let name = self.ident();
        if self.peek() == Some('(')
            && let Some(close) = self.rest().find(')')
        {
            let inner: String = self.rest()[1..close].split_whitespace().collect();
            self.pos += close + 1;
            // A bucket is named in one unit, however it was written.
            if name == "_time"
                && let Ok(width) = bucket_width(&inner)
            {
                return bucket_column(width);
            }
            return format!("{name}({inner})");
        }
        if name.is_empty() {
            self.pos = start;
        }
        name
    }

    /// Consumes the word `word` if it stands next (after space).
    fn keyword(&mut self, word: &str) -> bool {
        let before = self.pos;
        self.skip_space();
        let follows = self.rest().strip_prefix(word).is_some_and(|after| {
            after.is_empty() || after.starts_with(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | '|'))
        });
        if follows {
            self.pos += word.len();
        } else {
            self.pos = before;
        }
        follows
    }

    fn open_paren(&mut self) -> bool {
        self.skip_space();
        let open = self.peek() == Some('(');
        if open {
            self.bump();
        }
        open
    }

    fn close_paren(&mut self) -> Result<(), QueryError> {
        self.skip_space();
        if self.peek() != Some(')') {
            return Err(self.error("missing `)`"));
        }
        self.bump();
        Ok(())
    }

    /// A whole number from 1 to `max`, for `what`.
    fn count(&mut self, what: &str, max: usize) -> Result<usize, QueryError> {
        let start = self.pos;
        let digits = self
            .rest()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.rest().len());
        let text = &self.rest()[..digits];
        match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => {
                self.pos += digits;
                Ok(n)
            }
            _ if text.is_empty() => Err(self.error(format!("{what} needs a number of rows"))),
            _ => Err(QueryError::syntax(
                self.src,
                start,
                format!("{what} takes from 1 to {max} rows, not {text}"),
            )),
        }
    }
}

/// Whether `function` can apply to its field (`name` is the function as
/// written).
fn check_aggregate(aggregate: &Aggregate, name: &str) -> Result<(), String> {
    match (aggregate.function, &aggregate.field) {
        (Function::Count, None | Some(StatsField::Keyword(_) | StatsField::Field(_))) => Ok(()),
        (_, None) => Err(format!("`{name}()` needs a field: `{name}(duration_ms)`")),
        (Function::Min | Function::Max, Some(StatsField::Time)) => Ok(()),
        (_, Some(StatsField::Time)) => Err(format!("`{name}` does not take `_time`; min and max do")),
        (Function::CountDistinct, Some(_)) => Ok(()),
        (_, Some(StatsField::Keyword(keyword))) => Err(format!(
            "`{name}` works on numbers, and `{}` is text: count or count_distinct it",
            keyword.name()
        )),
        (_, Some(StatsField::Field(_))) => Ok(()),
    }
}

/// The column name of a time bucket `width` ms wide, in its largest whole
/// unit (`_time(90s)`, `_time(5m)`, `_time(1d)`), whatever was written.
fn bucket_column(width: i64) -> String {
    let (n, unit) = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m")]
        .into_iter()
        .find(|(unit_ms, _)| width % unit_ms == 0)
        .map_or((width / 1000, "s"), |(unit_ms, unit)| (width / unit_ms, unit));
    format!("_time({n}{unit})")
}

/// A time bucket's width in ms: whole seconds, at least one.
fn bucket_width(text: &str) -> Result<i64, String> {
    let duration: HumanDuration = text.parse()?;
    let ms = i64::try_from(duration.get().as_millis()).unwrap_or(i64::MAX);
    if ms < MIN_BUCKET_MS || ms % 1000 != 0 {
        return Err(format!(
            "a time bucket is a whole number of seconds, at least 1s, not `{text}`"
        ));
    }
    Ok(ms)
}
