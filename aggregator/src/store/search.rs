//! Searches over all partitions: matching records in time order, counts per
//! time bucket, and the lines around one record.
//!
//! Each partition has its own searcher; results are merged here. Partitions
//! whose event-time range cannot meet the query's are skipped. Everything here
//! is blocking CPU and disk work: callers run it off the async runtime.

use super::LogStore;
use super::collectors::{GroupCount, Histogram, TimeSpan};
use super::pattern::JsonPathRegexQuery;
use super::phrase::{PhraseCache, VerifiedPhraseQuery};
use super::scan::{self, Scan, TimeColumn, TimeRange};
use super::schema::{Hit, LogSchema, MetaColumns, NumbersLayout, PATTERN_FIELD, json_path, names};
use crate::query::{self, Expr, Keyword, Leaf, RegexTarget};
use lookout_shared::time::rfc3339;
use lookout_shared::wire::parse_record_id;
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use tantivy::collector::sort_key::SortByStaticFastValue;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, EnableScoring, ExistsQuery, Occur, Query, RangeQuery, RegexQuery, TermQuery,
    Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DateTime, DocAddress, Order, Searcher, TantivyDocument, Term};

/// Most buckets a histogram may have.
pub const MAX_BUCKETS: usize = 2000;

/// What records to consider; shared by search and histogram.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Query string (tantivy syntax, default field `message`, AND by default); empty: all.
    pub q: String,
    /// Earliest event time, Unix ms, inclusive.
    pub start: Option<i64>,
    /// Latest event time, Unix ms, exclusive.
    pub end: Option<i64>,
    /// Exact host.
    pub host: Option<String>,
    /// Exact source path.
    pub source: Option<String>,
    /// Exact level.
    pub level: Option<String>,
    /// Only records that arrived at or after this time (Unix ms): alert
    /// windows count by arrival, not by the time a line states.
    pub ingested_since: Option<i64>,
}

/// Time order of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Newest first.
    #[default]
    Desc,
    /// Oldest first.
    Asc,
}

/// One page of a search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Which records.
    pub filter: LogFilter,
    /// Page size.
    pub limit: usize,
    /// Hits to skip.
    pub offset: usize,
    /// By timestamp, then by file offset.
    pub order: SortOrder,
}

/// Matching count and one page of hits.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// Exact number of matching records.
    pub total: u64,
    /// The page.
    pub hits: Vec<Hit>,
    /// The query as parsed (what the hits' marks come from).
    pub query: Expr,
}

/// Bucketing of a histogram.
#[derive(Debug, Clone, Copy)]
pub enum HistogramSpec {
    /// About this many equal buckets over the range.
    Buckets(usize),
    /// Buckets of this width (ms), aligned to multiples of it.
    Interval(i64),
}

/// One histogram bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Start of the bucket, RFC 3339.
    pub start: String,
    /// Matching records in it.
    pub count: u64,
}

/// The lines around one record of a file.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// Up to N lines before, in file order.
    pub before: Vec<Hit>,
    /// The record itself.
    pub hit: Hit,
    /// Up to M lines after, in file order.
    pub after: Vec<Hit>,
}

/// Why a search has no answer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// The record asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The index failed (500).
    #[error("search failed: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// Turns filters and query strings ([`crate::query`]) into tantivy queries.
pub struct QueryBuilder {
    schema: LogSchema,
    pub(super) phrases: Arc<PhraseCache>,
    /// Every id a pattern id stands with ([`LogStore::follow_pattern_aliases`]).
    pattern_aliases: std::sync::OnceLock<PatternAliases>,
}

/// The ids that stand for the same pattern as an id.
pub type PatternAliases = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

impl QueryBuilder {
    /// A builder for `schema`.
    pub fn new(schema: LogSchema) -> Self {
        QueryBuilder {
            schema,
            phrases: Arc::default(),
            pattern_aliases: std::sync::OnceLock::new(),
        }
    }

    /// Makes `pattern:<id>` find every id that stands for the same pattern.
    pub fn follow_pattern_aliases(&self, aliases: PatternAliases) {
        // Set once, at start; a second call keeps the first.
        let _ = self.pattern_aliases.set(aliases);
    }

    /// The query for `filter`, whose `q` answers with lines (no pipe).
    pub fn build(&self, filter: &LogFilter) -> Result<Compiled, SearchError> {
        let expr = query::parse(&filter.q).map_err(|err| SearchError::BadRequest(err.to_string()))?;
        Ok(self.build_expr(filter, &expr))
    }

    /// The query for `filter` with `expr` in place of its `q`.
    pub fn build_expr(&self, filter: &LogFilter, expr: &Expr) -> Compiled {
        let expanded;
        let expr = match self.pattern_aliases.get() {
            Some(aliases) => {
                expanded = query::expand_field(expr.clone(), PATTERN_FIELD, &|id| aliases(id));
                &expanded
            }
            None => expr,
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if filter.start.is_some() || filter.end.is_some() {
            let lower = filter.start.map_or(Bound::Unbounded, Bound::Included);
            let upper = filter.end.map_or(Bound::Unbounded, Bound::Excluded);
            clauses.push((Occur::Must, self.time_range(self.schema.timestamp, lower, upper)));
        }
        if let Some(since) = filter.ingested_since {
            clauses.push((
                Occur::Must,
                self.time_range(self.schema.ingested, Bound::Included(since), Bound::Unbounded),
            ));
        }
        for (field, value) in [
            (self.schema.host, &filter.host),
            (self.schema.source, &filter.source),
            (self.schema.level, &filter.level),
        ] {
            if let Some(value) = value {
                clauses.push((Occur::Must, exact(field, value)));
            }
        }
        // Last: tantivy makes a segment's clauses in order and stops at one
        // that matches nothing there, so a segment outside the time range
        // never has a phrase worked out (`phrase`).
        let any_text = *expr == Expr::All;
        if !any_text {
            clauses.push((Occur::Must, self.compile(expr)));
        }
        let query: Box<dyn Query> = match clauses.len() {
            0 => Box::new(AllQuery),
            1 => clauses.remove(0).1,
            _ => Box::new(BooleanQuery::new(clauses)),
        };
        Compiled { query, any_text }
    }

    /// The index query with `expr`'s meaning. A part that only excludes
    /// (`NOT b`, alone or under `OR`) is "everything but", never the empty
    /// clause tantivy makes of a lone must-not.
    fn compile(&self, expr: &Expr) -> Box<dyn Query> {
        match expr {
            Expr::All => Box::new(AllQuery),
            Expr::Leaf(leaf) => self.leaf(leaf),
            Expr::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery)),
                (Occur::MustNot, self.compile(inner)),
            ])),
            Expr::And(parts) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = parts
                    .iter()
                    .map(|part| match part {
                        Expr::Not(inner) => (Occur::MustNot, self.compile(inner)),
                        other => (Occur::Must, self.compile(other)),
                    })
                    .collect();
                if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(clauses))
            }
            Expr::Or(parts) => Box::new(BooleanQuery::new(
                parts.iter().map(|part| (Occur::Should, self.compile(part))).collect(),
            )),
        }
    }

    fn leaf(&self, leaf: &Leaf) -> Box<dyn Query> {
        let schema = &self.schema;
        match leaf {
            Leaf::Message(tokens) => match tokens.as_slice() {
                [(_, token)] => exact(schema.message, token),
                _ => Box::new(VerifiedPhraseQuery::new(tokens, self.phrases.clone())),
            },
            Leaf::Keyword(Keyword::Id, id) => by_record_id(schema, id),
            Leaf::Keyword(keyword, value) => exact(self.keyword(*keyword), value),
            Leaf::KeywordRange(keyword, lower, upper) => {
                let field = self.keyword(*keyword);
                let term = |value: &String| Term::from_field_text(field, value);
                Box::new(RangeQuery::new(lower.as_ref().map(term), upper.as_ref().map(term)))
            }
            Leaf::Label(name, value) => {
                let mut term = schema.path_term(schema.labels, name);
                term.append_type_and_str(value);
                Box::new(TermQuery::new(term, IndexRecordOption::Basic))
            }
            Leaf::Offset(lower, upper) => {
                let term = |offset: &u64| Term::from_field_u64(schema.offset, *offset);
                Box::new(RangeQuery::new(lower.as_ref().map(term), upper.as_ref().map(term)))
            }
            Leaf::Timestamp(lower, upper) => self.time_range(schema.timestamp, *lower, *upper),
            Leaf::Truncated(value) => Box::new(TermQuery::new(
                Term::from_field_bool(schema.truncated, *value),
                IndexRecordOption::Basic,
            )),
            Leaf::HasLevel => Box::new(BooleanQuery::new(
                ["error", "warn", "info", "debug", "trace"]
                    .into_iter()
                    .map(|level| (Occur::Should, exact(schema.level, level)))
                    .collect(),
            )),
            Leaf::Field(name, value) => {
                let mut text = schema.path_term(schema.fields, name);
                text.append_type_and_str(value);
                let text: Box<dyn Query> = Box::new(TermQuery::new(text, IndexRecordOption::Basic));
                match query::parse_number(value) {
                    Some(n) => Box::new(BooleanQuery::new(vec![
                        (Occur::Should, text),
                        (
                            Occur::Should,
                            self.number_range(name, Bound::Included(n), Bound::Included(n)),
                        ),
                    ])),
                    None => text,
                }
            }
            Leaf::FieldRange(name, lower, upper) => self.number_range(name, *lower, *upper),
            Leaf::Regex(target, pattern) => match target {
                RegexTarget::Message => Box::new(RegexQuery::from_regex(pattern.regex(), schema.message)),
                RegexTarget::Keyword(keyword) => {
                    Box::new(RegexQuery::from_regex(pattern.regex(), self.keyword(*keyword)))
                }
                RegexTarget::Label(name) => Box::new(JsonPathRegexQuery::new(
                    schema.path_term(schema.labels, name),
                    pattern.regex(),
                )),
                RegexTarget::Field(name) => Box::new(JsonPathRegexQuery::new(
                    schema.path_term(schema.fields, name),
                    pattern.regex(),
                )),
            },
            Leaf::HasField(name) => {
                let exists = |field: &str| -> Box<dyn Query> {
                    Box::new(ExistsQuery::new(format!("{field}.{}", json_path(name)), false))
                };
                Box::new(ByNumbersLayout {
                    apart: Box::new(BooleanQuery::new(vec![
                        (Occur::Should, exists(names::FIELDS)),
                        (Occur::Should, exists(names::NUMBERS)),
                    ])),
                    in_fields: exists(names::FIELDS),
                })
            }
        }
    }

    /// Records whose extracted field `name` is a number in the range (on
    /// the fast column, whatever numeric type it was stored as).
    fn number_range(&self, name: &str, lower: Bound<f64>, upper: Bound<f64>) -> Box<dyn Query> {
        let range = |field: Field| -> Box<dyn Query> {
            let term = |n: f64| {
                let mut term = self.schema.path_term(field, name);
                term.append_type_and_fast_value(n);
                term
            };
            Box::new(RangeQuery::new(lower.map(term), upper.map(term)))
        };
        Box::new(ByNumbersLayout {
            apart: range(self.schema.numbers),
            in_fields: range(self.schema.fields),
        })
    }

    fn keyword(&self, keyword: Keyword) -> Field {
        match keyword {
            Keyword::Host => self.schema.host,
            Keyword::Source => self.schema.source,
            Keyword::Level => self.schema.level,
            // Ids are matched by stream and offset (`by_record_id`); as a
            // string they are not indexed.
            Keyword::Id | Keyword::Stream => self.schema.stream,
        }
    }

    fn time_range(&self, field: Field, lower: Bound<i64>, upper: Bound<i64>) -> Box<dyn Query> {
        let term = |ms: i64| Term::from_field_date(field, DateTime::from_timestamp_millis(ms));
        Box::new(RangeQuery::new(lower.map(term), upper.map(term)))
    }
}

/// One of two queries, by where the searched partition keeps extracted
/// numbers ([`NumbersLayout`]): a query naming `field_numbers` must not
/// reach the schema of a partition written before that field.
#[derive(Debug)]
struct ByNumbersLayout {
    apart: Box<dyn Query>,
    in_fields: Box<dyn Query>,
}

impl Clone for ByNumbersLayout {
    fn clone(&self) -> Self {
        ByNumbersLayout {
            apart: self.apart.box_clone(),
            in_fields: self.in_fields.box_clone(),
        }
    }
}

impl Query for ByNumbersLayout {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        match LogSchema::numbers_layout(scoring.schema()) {
            NumbersLayout::Apart => self.apart.weight(scoring),
            NumbersLayout::InFields => self.in_fields.weight(scoring),
        }
    }
}

/// The record `id` names: its stream and its offset (nothing for a text
/// that is not a record id).
fn by_record_id(schema: &LogSchema, id: &str) -> Box<dyn Query> {
    let Some((stream, offset)) = parse_record_id(id) else {
        return Box::new(EmptyQuery);
    };
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, exact(schema.stream, stream)),
        (Occur::Must, {
            let term = Term::from_field_u64(schema.offset, offset);
            Box::new(RangeQuery::new(Bound::Included(term.clone()), Bound::Included(term)))
        }),
    ]))
}

fn exact(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// One searcher per partition that may hold records `filter` selects: its
/// event-time range meets `[start, end)`, and (partitions being ingest days)
/// its day is not before that of `ingested_since`.
pub(super) fn searchers(store: &LogStore, filter: &LogFilter) -> Vec<Searcher> {
    let first_day = filter
        .ingested_since
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|ts| ts.to_zoned(jiff::tz::TimeZone::UTC).date());
    store
        .partitions()
        .iter()
        .filter(|p| p.may_overlap(filter.start, filter.end) && first_day.is_none_or(|day| p.day() >= day))
        .map(|p| p.searcher())
        .collect()
}

/// Checks the syntax of a query string as the search API would, without a
/// store: for validating saved queries (alert rules) up front.
pub fn check_query_syntax(q: &str) -> Result<(), String> {
    let filter = LogFilter {
        q: q.to_string(),
        ..LogFilter::default()
    };
    QueryBuilder::new(LogSchema::new())
        .build(&filter)
        .map(drop)
        .map_err(|err| err.to_string())
}

/// Turns doc addresses of one answer into hits, opening each segment's
/// columns once.
struct HitFetcher<'a> {
    store: &'a LogStore,
    searchers: &'a [Searcher],
    columns: HashMap<(usize, u32), MetaColumns>,
}

impl<'a> HitFetcher<'a> {
    fn new(store: &'a LogStore, searchers: &'a [Searcher]) -> Self {
        HitFetcher {
            store,
            searchers,
            columns: HashMap::new(),
        }
    }

    /// The hit at `address` of partition `partition`'s searcher.
    fn fetch(&mut self, partition: usize, address: DocAddress) -> Result<Hit, SearchError> {
        let searcher = &self.searchers[partition];
        let doc: TantivyDocument = searcher.doc(address)?;
        let columns = match self.columns.entry((partition, address.segment_ord)) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(MetaColumns::open(searcher.segment_reader(address.segment_ord))?)
            }
        };
        Ok(self.store.schema().stored_hit(&doc, columns.read(address.doc_id)?))
    }
}

/// A filter's index query, and whether its `q` selects every record: a
/// query is parsed (and its patterns compiled) once per request.
pub struct Compiled {
    /// The index query.
    pub query: Box<dyn Query>,
    /// Whether `q` is empty or `*`.
    pub any_text: bool,
}

/// The event-time range `filter` selects by, when it selects by nothing
/// else (`q` empty or `*`, no host, source, level or arrival bound): what
/// [`scan`] answers without a query.
fn time_only(filter: &LogFilter, any_text: bool) -> Option<TimeRange> {
    let only_time = any_text
        && filter.host.is_none()
        && filter.source.is_none()
        && filter.level.is_none()
        && filter.ingested_since.is_none();
    only_time.then_some(TimeRange {
        start: filter.start,
        end: filter.end,
    })
}

/// A [`Scan`] of `searchers` for [`time_only`]'s range, when every segment
/// can be scanned.
fn scan<'a>(filter: &LogFilter, any_text: bool, searchers: &'a [Searcher]) -> Result<Option<Scan<'a>>, SearchError> {
    match time_only(filter, any_text) {
        Some(range) => Ok(Scan::open(searchers, range, TimeColumn::Event)?),
        None => Ok(None),
    }
}

/// A [`Scan`] of `searchers` by arrival time, when `filter` selects by
/// `ingested_since` and nothing else (an alert rule's window of all lines)
/// and every segment can be scanned.
fn arrival_scan<'a>(
    filter: &LogFilter,
    any_text: bool,
    searchers: &'a [Searcher],
) -> Result<Option<Scan<'a>>, SearchError> {
    let only_arrival = any_text
        && filter.host.is_none()
        && filter.source.is_none()
        && filter.level.is_none()
        && filter.start.is_none()
        && filter.end.is_none();
    match filter.ingested_since {
        Some(since) if only_arrival => {
            let range = TimeRange {
                start: Some(since),
                end: None,
            };
            Ok(Scan::open(searchers, range, TimeColumn::Arrival)?)
        }
        _ => Ok(None),
    }
}

impl LogStore {
    /// Counts the matches and returns one page of them.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResult, SearchError> {
        let filter = &request.filter;
        let parsed = query::parse(&filter.q).map_err(|err| SearchError::BadRequest(err.to_string()))?;
        let compiled = self.queries().build_expr(filter, &parsed);
        let searchers = searchers(self, filter);
        let wanted = request.offset.saturating_add(request.limit);
        let (total, ranked) = self.ranked(filter, &compiled, &searchers, wanted, request.order)?;
        let mut fetcher = HitFetcher::new(self, &searchers);
        let hits = ranked
            .into_iter()
            .skip(request.offset)
            .take(request.limit)
            .map(|(partition, address)| fetcher.fetch(partition, address))
            .collect::<Result<_, _>>()?;
        Ok(SearchResult {
            total,
            hits,
            query: parsed,
        })
    }

    /// Hands the first `max` matches of `filter`, in `order`, to `emit` one
    /// at a time, after `start` is told how many match (and so whether
    /// they are cut); stops early when either says so (`false`). For
    /// exports: only `max` places are held, never the hits.
    pub fn export(
        &self,
        filter: &LogFilter,
        max: usize,
        order: SortOrder,
        start: impl FnOnce(u64) -> bool,
        mut emit: impl FnMut(Hit) -> bool,
    ) -> Result<(), SearchError> {
        let compiled = self.queries().build(filter)?;
        let searchers = searchers(self, filter);
        let (total, ranked) = self.ranked(filter, &compiled, &searchers, max, order)?;
        if !start(total) {
            return Ok(());
        }
        let mut fetcher = HitFetcher::new(self, &searchers);
        for (partition, address) in ranked {
            if !emit(fetcher.fetch(partition, address)?) {
                break;
            }
        }
        Ok(())
    }

    /// How many records match, and where the first `wanted` of them are
    /// (partition, address) in `order`: by event time, then offset, then
    /// partition and address, so that pages are stable.
    fn ranked(
        &self,
        filter: &LogFilter,
        compiled: &Compiled,
        searchers: &[Searcher],
        wanted: usize,
        order: SortOrder,
    ) -> Result<(u64, Vec<(usize, DocAddress)>), SearchError> {
        if let Some(scan) = scan(filter, compiled.any_text, searchers)? {
            let (total, best) = scan::newest(&scan, wanted, order == SortOrder::Desc)?;
            return Ok((total, best.into_iter().map(|c| (c.partition, c.address)).collect()));
        }
        let tantivy_order = match order {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        };
        let rank = |candidates: &mut Vec<(i64, u64, usize, DocAddress)>| match order {
            SortOrder::Asc => candidates.sort_by_key(|&(ts, offset, p, a)| (ts, offset, p, a)),
            SortOrder::Desc => candidates.sort_by(|x, y| (y.0, y.1).cmp(&(x.0, x.1)).then((x.2, x.3).cmp(&(y.2, y.3)))),
        };
        let mut total = 0;
        // (timestamp ms, file offset, partition, address) of the best so far.
        let mut candidates: Vec<(i64, u64, usize, DocAddress)> = Vec::new();
        for (partition, searcher) in searchers.iter().enumerate() {
            if wanted == 0 {
                total += searcher.search(&compiled.query, &Count)? as u64;
                continue;
            }
            let top = TopDocs::with_limit(wanted).order_by((
                (
                    SortByStaticFastValue::<DateTime>::for_field(names::TIMESTAMP),
                    tantivy_order,
                ),
                (SortByStaticFastValue::<u64>::for_field(names::OFFSET), tantivy_order),
            ));
            let (count, docs) = searcher.search(&compiled.query, &(Count, top))?;
            total += count as u64;
            candidates.extend(docs.into_iter().map(|((ts, offset), address)| {
                let ts = ts.map_or(0, DateTime::into_timestamp_millis);
                (ts, offset.unwrap_or(0), partition, address)
            }));
            // Never more than twice `wanted` held, however many partitions.
            if candidates.len() > wanted {
                rank(&mut candidates);
                candidates.truncate(wanted);
            }
        }
        rank(&mut candidates);
        candidates.truncate(wanted);
        Ok((total, candidates.into_iter().map(|(_, _, p, a)| (p, a)).collect()))
    }

    /// Counts matches per time bucket. Without `start`/`end`, the range is
    /// that of the matching records.
    pub fn histogram(&self, filter: &LogFilter, spec: HistogramSpec) -> Result<Vec<Bucket>, SearchError> {
        let Compiled { query, any_text } = self.queries().build(filter)?;
        let searchers = searchers(self, filter);
        let scan = scan(filter, any_text, &searchers)?;
        let (start, end) = match (filter.start, filter.end) {
            (Some(start), Some(end)) => (start, end),
            (start, end) => {
                let mut span: Option<(i64, i64)> = None;
                if let Some(scan) = &scan {
                    span = scan::time_span(scan);
                } else {
                    for searcher in &searchers {
                        if let Some((min, max)) = searcher.search(&query, &TimeSpan)? {
                            span = Some(span.map_or((min, max), |(a, b)| (a.min(min), b.max(max))));
                        }
                    }
                }
                let Some((min, max)) = span else {
                    return Ok(Vec::new());
                };
                (start.unwrap_or(min), end.unwrap_or(max.saturating_add(1)))
            }
        };
        if start >= end {
            if filter.start.is_some() && filter.end.is_some() {
                return Err(SearchError::BadRequest("`start` must be before `end`".into()));
            }
            return Ok(Vec::new());
        }
        let span = i128::from(end) - i128::from(start);
        let (first, width, count) = match spec {
            HistogramSpec::Buckets(buckets) => {
                let buckets = i128::try_from(buckets.max(1)).unwrap_or(1);
                let width = ((span + buckets - 1) / buckets).max(1);
                (i128::from(start), width, (span + width - 1) / width)
            }
            HistogramSpec::Interval(width) => {
                let width = i128::from(width.max(1));
                let first = i128::from(start).div_euclid(width) * width;
                let count = (i128::from(end) - first + width - 1) / width;
                if count > MAX_BUCKETS as i128 {
                    return Err(SearchError::BadRequest(format!(
                        "`interval` makes {count} buckets over this time range; at most {MAX_BUCKETS} \
                         are allowed: use a larger interval or a shorter range"
                    )));
                }
                (first, width, count)
            }
        };
        // All three fit i64: they lie between valid timestamps and their span.
        let (first, width) = (i64::try_from(first).unwrap_or(start), i64::try_from(width).unwrap_or(1));
        let count = usize::try_from(count).unwrap_or(0);
        let scanned = scan
            .as_ref()
            .and_then(|scan| scan::histogram(scan, first, width, count));
        let counts = match scanned {
            Some(counts) => counts,
            None => {
                let collector = Histogram {
                    start: first,
                    width,
                    buckets: count,
                };
                let mut counts = vec![0u64; count];
                for searcher in &searchers {
                    for (sum, n) in counts.iter_mut().zip(searcher.search(&query, &collector)?) {
                        *sum += n;
                    }
                }
                counts
            }
        };
        Ok(counts
            .into_iter()
            .enumerate()
            .map(|(i, count)| Bucket {
                start: rfc3339(first.saturating_add(width.saturating_mul(i as i64))),
                count,
            })
            .collect())
    }

    /// Counts the matches per distinct value of `group_by` (field names such
    /// as `host`, `source`); each key lists the values in that order.
    pub fn count_by_group(
        &self,
        filter: &LogFilter,
        group_by: &[&'static str],
    ) -> Result<HashMap<Vec<String>, u64>, SearchError> {
        let compiled = self.queries().build(filter)?;
        self.count_compiled_by_group(filter, &compiled, group_by)
    }

    /// [`LogStore::count_by_group`] with `filter`'s query compiled.
    pub(super) fn count_compiled_by_group(
        &self,
        filter: &LogFilter,
        compiled: &Compiled,
        group_by: &[&'static str],
    ) -> Result<HashMap<Vec<String>, u64>, SearchError> {
        let Compiled { query, any_text } = compiled;
        let any_text = *any_text;
        let searchers = searchers(self, filter);
        let scanned = match scan(filter, any_text, &searchers)? {
            Some(scan) => Some(scan),
            None => arrival_scan(filter, any_text, &searchers)?,
        };
        if let Some(scan) = scanned
            && let Some(counts) = scan::count_by_values(&scan, group_by)?
        {
            return Ok(counts);
        }
        let collector = GroupCount {
            fields: group_by.to_vec(),
        };
        let mut counts: HashMap<Vec<String>, u64> = HashMap::new();
        for searcher in searchers {
            for (key, count) in searcher.search(query, &collector)? {
                *counts.entry(key).or_insert(0) += count;
            }
        }
        Ok(counts)
    }

    /// The record `id` with up to `before` lines before and `after` lines
    /// after it in the same stream (file order).
    pub fn context(&self, id: &str, before: usize, after: usize) -> Result<Context, SearchError> {
        let Some((stream, offset)) = parse_record_id(id) else {
            return Err(SearchError::BadRequest(format!(
                "`id` {id:?} is not a record id (16 hex digits, '-', a byte offset)"
            )));
        };
        let schema = self.schema();
        let searchers = searchers(self, &LogFilter::default());
        let by_id = by_record_id(schema, id);
        let mut fetcher = HitFetcher::new(self, &searchers);
        let mut hit = None;
        for (partition, searcher) in searchers.iter().enumerate() {
            let top = TopDocs::with_limit(1).order_by_u64_field(names::OFFSET, Order::Asc);
            if let Some((_, address)) = searcher.search(&by_id, &top)?.into_iter().next() {
                hit = Some(fetcher.fetch(partition, address)?);
                break;
            }
        }
        let Some(hit) = hit else {
            return Err(SearchError::NotFound(format!("no record has the id `{id}`")));
        };
        let mut neighbours =
            |range: (Bound<u64>, Bound<u64>), limit: usize, order: Order| -> Result<Vec<Hit>, SearchError> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let query = BooleanQuery::new(vec![
                    (Occur::Must, exact(schema.stream, stream)),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            range.0.map(|o| Term::from_field_u64(schema.offset, o)),
                            range.1.map(|o| Term::from_field_u64(schema.offset, o)),
                        )),
                    ),
                ]);
                let mut found: Vec<(u64, usize, DocAddress)> = Vec::new();
                for (partition, searcher) in searchers.iter().enumerate() {
                    let top = TopDocs::with_limit(limit).order_by_u64_field(names::OFFSET, order);
                    for (offset, address) in searcher.search(&query, &top)? {
                        found.push((offset.unwrap_or(0), partition, address));
                    }
                }
                found.sort_by_key(|&(offset, ..)| offset);
                if order == Order::Desc {
                    // The `limit` closest before the record, still in file order.
                    found.drain(..found.len().saturating_sub(limit));
                } else {
                    found.truncate(limit);
                }
                found
                    .into_iter()
                    .map(|(_, partition, address)| fetcher.fetch(partition, address))
                    .collect()
            };
        Ok(Context {
            before: neighbours((Bound::Included(0), Bound::Excluded(offset)), before, Order::Desc)?,
            after: neighbours((Bound::Excluded(offset), Bound::Unbounded), after, Order::Asc)?,
            hit,
        })
    }
}
