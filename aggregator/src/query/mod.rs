//! The log query language: what the `q` of a search, histogram, facet count,
//! live tail and alert rule means, parsed once into an [`Expr`] that the
//! store compiles into an index query and [`matcher`] checks on one record.
//!
//! Owning the grammar (rather than passing strings to tantivy's query parser)
//! gives three things the product promises: one meaning everywhere (the index
//! and live tail cannot disagree), the meaning a person expects (`a AND NOT b`
//! is `a` without `b`; tantivy's parser yields a clause that matches nothing,
//! quickwit-oss/tantivy#2317), and bounds that hold against hostile input (a
//! recursive parser on a tokio worker overflows its stack on `((((…))))`).
//!
//! Grammar, loosest first:
//!
//! ```text
//! query   = [or] [pipes]                  pipes: see [`pipe`]; they answer with a table
//! or      = and ("OR" and)*
//! and     = unary (["AND"] unary)*           juxtaposition is AND
//! unary   = ("NOT" | "-" | "+")* primary     each NOT/- flips, + does nothing
//! primary = "(" or ")" | "*" | leaf
//! leaf    = word | "phrase" | field ":" value   a bare word ends at space, `(`, `)` or `|`
//! value   = word | "phrase" | "*" | [a TO b] | {a TO b} | >=v | >v | <=v | <v
//!         | "/" pattern "/"                  closing slash ends the word; \/ is a slash
//! ```
//!
//! Words and phrases without a field search the message by its index tokens
//! (runs of letters and digits, lower-cased); a word that splits into several
//! tokens (`user@host`) is a phrase. `host`, `source`, `level`, `id` and
//! `stream` match exact values, `labels.<name>` a label's exact value,
//! `offset` and `timestamp` numbers and times (RFC 3339 or Unix ms),
//! `truncated` `true` or `false`. `field:*` means "has a value". Any other
//! name is a field extracted from the line (`status:500`, `user.id:42`,
//! ranges and comparisons on numbers); `fields.<name>` reaches one whose
//! name is taken by a built-in field, and `has:<name>` asks that a line
//! carries it. A `/pattern/` ([`pattern`]) is looked for in each message
//! word, or in the value of a keyword, label or extracted text field.
//!
//! Limits ([`MAX_QUERY_BYTES`], [`MAX_DEPTH`], [`MAX_LEAVES`], [`MAX_PHRASES`],
//! [`MAX_PATTERNS`] and those of [`pattern`]) bound the work one query can ask
//! for; beyond them the query is refused with a clear error.

pub mod aggregate;
pub mod highlight;
pub mod matcher;
pub mod pattern;
pub mod pipe;
pub mod tokens;

use pattern::{MAX_PATTERNS, Pattern};
use std::ops::Bound;
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

use crate::store::schema::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};

/// Longest query string accepted.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Deepest nesting of groups accepted.
pub const MAX_DEPTH: usize = 32;
/// Most words, phrases and field terms in one query.
pub const MAX_LEAVES: usize = 256;
/// Most phrases (and words of several tokens, such as addresses) in one
/// query: the index checks a phrase of common tokens against the stored
/// text, about a second on both cores (2 CPU-s) per 10 M records the first
/// time (`store::phrase`).
pub const MAX_PHRASES: usize = 16;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every record.
    All,
    /// One condition on one field.
    Leaf(Leaf),
    /// Records the inner query does not match.
    Not(Box<Expr>),
    /// Records every part matches.
    And(Vec<Expr>),
    /// Records at least one part matches.
    Or(Vec<Expr>),
}

/// A field whose values are matched exactly (the index's `raw` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `host`.
    Host,
    /// `source`.
    Source,
    /// `level`.
    Level,
    /// `id`.
    Id,
    /// `stream`.
    Stream,
}

impl Keyword {
    /// The field's name in queries and in the index.
    pub fn name(self) -> &'static str {
        match self {
            Keyword::Host => "host",
            Keyword::Source => "source",
            Keyword::Level => "level",
            Keyword::Id => "id",
            Keyword::Stream => "stream",
        }
    }
}

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// The message holds these tokens at these relative positions: one
    /// token is a word, several a phrase.
    Message(Vec<(usize, String)>),
    /// A keyword field equals the value.
    Keyword(Keyword, String),
    /// A keyword field lies in the range (byte order).
    KeywordRange(Keyword, Bound<String>, Bound<String>),
    /// A label has exactly this value.
    Label(String, String),
    /// The byte offset lies in the range.
    Offset(Bound<u64>, Bound<u64>),
    /// The event time (Unix ms) lies in the range.
    Timestamp(Bound<i64>, Bound<i64>),
    /// The record was (or was not) cut short by the agent.
    Truncated(bool),
    /// The record has a level (`level:*`).
    HasLevel,
    /// An extracted field equals the value: as text, or as a number when
    /// the value reads as one (`status:500` matches 500 and "500").
    Field(String, String),
    /// An extracted field is a number in the range.
    FieldRange(String, Bound<f64>, Bound<f64>),
    /// The record has an extracted field of this name (`has:trace_id`,
    /// `trace_id:*`).
    HasField(String),
    /// A value of the field holds a match of the pattern, anchored where
    /// it says (`message:/time(d)?out/`, `host:/^web-/`; see [`pattern`]).
    Regex(RegexTarget, Pattern),
}

/// What a pattern is matched against: each value as the index holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum RegexTarget {
    /// Each word of the message.
    Message,
    /// The keyword field's value.
    Keyword(Keyword),
    /// The label's value.
    Label(String),
    /// The extracted field's text value (numbers are not text).
    Field(String),
}

/// Why a query string was refused; the text is for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(String);

impl QueryError {
    fn syntax(source: &str, byte: usize, what: impl std::fmt::Display) -> Self {
        // Positions count characters, as an editor (and the UI's caret) does.
        let position = source.get(..byte).map_or(byte, |s| s.chars().count());
        QueryError(format!("query syntax error at position {position}: {what}"))
    }
}

/// The fields a query may name, for error messages.
const FIELDS: &str = "message, host, source, level, id, stream, offset, timestamp, truncated, labels.<name>, \
                      has:<field> and any extracted field by name (fields.<name> where it collides)";

/// A query string read whole: which records, and what the pipes after
/// them ask (`error | stats count() by host`).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which records.
    pub filter: Expr,
    /// The text before the first pipe, trimmed: the query of the lines
    /// behind a table's rows.
    pub filter_text: String,
    /// The text from the first pipe on (`| stats …`), or "".
    pub pipes_text: String,
    /// What the pipes ask, if there are any.
    pub stats: Option<pipe::Stats>,
}

/// `expr` with each `name:value` (an exact field value) replaced by any of
/// `values(value)`: a record's pattern is found under every id that stands
/// for it (`crate::ingest::patterns`).
pub fn expand_field(expr: Expr, name: &str, values: &dyn Fn(&str) -> Vec<String>) -> Expr {
    match expr {
        Expr::Leaf(Leaf::Field(field, value)) if field == name => {
            let mut alternatives: Vec<Expr> = values(&value)
                .into_iter()
                .map(|value| Expr::Leaf(Leaf::Field(field.clone(), value)))
                .collect();
            match alternatives.len() {
                0 => Expr::Leaf(Leaf::Field(field, value)),
                1 => alternatives.remove(0),
                _ => Expr::Or(alternatives),
            }
        }
        Expr::Not(inner) => Expr::Not(Box::new(expand_field(*inner, name, values))),
        Expr::And(parts) => Expr::And(parts.into_iter().map(|part| expand_field(part, name, values)).collect()),
        Expr::Or(parts) => Expr::Or(parts.into_iter().map(|part| expand_field(part, name, values)).collect()),
        other => other,
    }
}

/// Parses a query string that answers with lines (search, histogram,
/// facets, live tail, alert rules on lines). Empty (or blank) means every
/// record. A pipe is refused: it answers with a table.
pub fn parse(q: &str) -> Result<Expr, QueryError> {
    let query = parse_query(q)?;
    if query.stats.is_some() {
        return Err(QueryError(
            "the query has a pipe (`| stats`, `| top`): a table is asked of /api/v1/logs/stats; to search for `|`, \
             quote it"
                .to_owned(),
        ));
    }
    Ok(query.filter)
}

/// Parses a query string and its pipes, if any.
pub fn parse_query(q: &str) -> Result<Query, QueryError> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(QueryError(format!(
            "the query is {} bytes long; at most {MAX_QUERY_BYTES} are allowed",
            q.len()
        )));
    }
    let mut parser = Parser {
        src: q,
        pos: 0,
        depth: 0,
        leaves: 0,
        patterns: 0,
        analyzer: message_analyzer(),
    };
    parser.skip_space();
    let filter = if parser.at_end() || parser.peek() == Some('|') {
        Expr::All
    } else {
        check_phrases(parser.or()?)?
    };
    parser.skip_space();
    let filter_text = q[..parser.pos].trim().to_owned();
    let pipes_text = q[parser.pos..].to_owned();
    let stats = match parser.peek() {
        None => None,
        Some('|') => Some(parser.pipes()?),
        Some(')') => return Err(parser.error("`)` without a matching `(`")),
        Some(c) => return Err(parser.error(format!("unexpected `{c}`"))),
    };
    Ok(Query {
        filter,
        filter_text,
        pipes_text,
        stats,
    })
}

/// `expr`, if it holds at most [`MAX_PHRASES`] phrases.
fn check_phrases(expr: Expr) -> Result<Expr, QueryError> {
    let mut phrases = 0;
    let mut open = vec![&expr];
    while let Some(part) = open.pop() {
        match part {
            Expr::Leaf(Leaf::Message(tokens)) if tokens.len() > 1 => phrases += 1,
            Expr::Not(inner) => open.push(inner),
            Expr::And(parts) | Expr::Or(parts) => open.extend(parts),
            Expr::All | Expr::Leaf(_) => {}
        }
    }
    if phrases > MAX_PHRASES {
        return Err(QueryError(format!(
            "the query has {phrases} phrases; at most {MAX_PHRASES} are allowed (a quoted phrase counts, and so does \
             any word that splits into several tokens: an address such as 10.0.0.1, a name such as web-1 or \
             user@host, a path)"
        )));
    }
    Ok(expr)
}

/// RFC 3339 or Unix ms, clamped to the times the index can hold.
pub fn parse_time(text: &str) -> Option<i64> {
    let ms = if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        text.parse::<i64>().ok()?
    } else {
        text.parse::<jiff::Timestamp>().ok()?.as_millisecond()
    };
    Some(ms.clamp(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS))
}

/// The analyzer the index uses for `message` (tantivy's `default`: split on
/// anything but letters and digits, drop tokens of 40 bytes or more, lower-case).
pub fn message_analyzer() -> TextAnalyzer {
    TokenizerManager::default()
        .get("default")
        .expect("tantivy's default tokenizer manager has `default`")
}

/// The index tokens of `text` with their positions.
pub fn message_tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        let token = stream.token();
        tokens.push((token.position, token.text.clone()));
    }
    tokens
}

/// The leaf for message text: its index tokens, positions counted from the
/// first; an error (naming it as `shown`) when it has none.
fn message_leaf(analyzer: &mut TextAnalyzer, text: &str, shown: &str) -> Result<Leaf, String> {
    let mut tokens = message_tokens(analyzer, text);
    let Some(&(first, _)) = tokens.first() else {
        return Err(format!(
            "`{shown}` has nothing to search for: messages are indexed by words of letters and digits \
             shorter than 40 bytes"
        ));
    };
    for (position, _) in &mut tokens {
        *position -= first;
    }
    Ok(Leaf::Message(tokens))
}

struct Parser<'a> {
    src: &'a str,
    /// Byte position of the next character.
    pos: usize,
    depth: usize,
    leaves: usize,
    /// Patterns so far: each is compiled as it is read, so the bound is
    /// checked before the next one costs anything.
    patterns: usize,
    analyzer: TextAnalyzer,
}

/// Characters that end a bare word (`|` starts a pipe).
fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')' || c == '|'
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn error(&self, what: impl std::fmt::Display) -> QueryError {
        QueryError::syntax(self.src, self.pos, what)
    }

    /// Whether the operator `word` stands next, as a whole word.
    fn at_operator(&self, word: &str) -> bool {
        // `NOT(a)`, `a AND(b)` and `NOT "x"` are operators too; `NOTE`, `ORACLE` are words.
        self.rest().strip_prefix(word).is_some_and(|after| {
            after.is_empty() || after.starts_with(|c: char| c.is_whitespace() || c == '(' || c == '"')
        })
    }

    /// Consumes the operator `word` if it stands next.
    fn operator(&mut self, word: &str) -> bool {
        let found = self.at_operator(word);
        if found {
            self.pos += word.len();
        }
        found
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and()?];
        loop {
            self.skip_space();
            if !self.operator("OR") {
                break;
            }
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            self.skip_space();
            if self.at_end() || matches!(self.peek(), Some(')' | '|')) || self.at_operator("OR") {
                break;
            }
            self.operator("AND");
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        let mut negated = false;
        loop {
            self.skip_space();
            if self.operator("NOT") {
                negated = !negated;
                continue;
            }
            match self.peek() {
                Some(sign @ ('-' | '+')) => {
                    self.bump();
                    if self.peek().is_none_or(char::is_whitespace) {
                        return Err(self.error(format!("`{sign}` must stand right before what it applies to")));
                    }
                    negated ^= sign == '-';
                }
                _ => break,
            }
        }
        let expr = self.primary()?;
        Ok(if negated { Expr::Not(Box::new(expr)) } else { expr })
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        match self.peek() {
            None => Err(self.error("the query ends where a word, a phrase or a group was expected")),
            Some('(') => {
                if self.depth == MAX_DEPTH {
                    return Err(self.error(format!("groups are nested more than {MAX_DEPTH} deep")));
                }
                self.bump();
                self.depth += 1;
                self.skip_space();
                if self.peek() == Some(')') {
                    return Err(self.error("an empty group `()`"));
                }
                let inner = self.or()?;
                self.skip_space();
                match self.peek() {
                    Some(')') => {}
                    Some('|') => return Err(self.error("a pipe cannot stand inside parentheses")),
                    _ => return Err(self.error("missing `)`")),
                }
                self.bump();
                self.depth -= 1;
                Ok(inner)
            }
            Some(')') => Err(self.error("`)` where a word, a phrase or a group was expected")),
            Some('|') => Err(self.error("`|` where a word, a phrase or a group was expected")),
            Some('"') => {
                let start = self.pos;
                let text = self.quoted()?;
                self.message(&text, true, start)
            }
            Some(_) => {
                let start = self.pos;
                let rest = self.rest();
                let name_end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
                    .unwrap_or(rest.len());
                if rest[name_end..].starts_with(':') && is_field_name(&rest[..name_end]) {
                    let field = rest[..name_end].to_owned();
                    self.pos += name_end + 1;
                    return self.field_value(&field, start);
                }
                let word = self.word()?;
                if word == "*" {
                    return Ok(Expr::All);
                }
                if matches!(word.as_str(), "AND" | "OR") {
                    return Err(QueryError::syntax(
                        self.src,
                        start,
                        format!("`{word}` where a word, a phrase or a group was expected"),
                    ));
                }
                if word.len() > 1 && word.ends_with('*') {
                    return Err(QueryError::syntax(
                        self.src,
                        start,
                        format!("wildcards are not supported (`{word}`): search the whole word"),
                    ));
                }
                self.message(&word, false, start)
            }
        }
    }

    /// A bare word, up to white space or a parenthesis.
    fn word(&mut self) -> Result<String, QueryError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if ends_word(c) {
                break;
            }
            if c == '"' {
                return Err(self.error("a quote must start a phrase (put a space before it)"));
            }
            self.bump();
        }
        Ok(self.src[start..self.pos].to_owned())
    }

    /// A `"quoted"` text; `\"` and `\\` are escapes.
    fn quoted(&mut self) -> Result<String, QueryError> {
        let open = self.pos;
        self.bump();
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    let started = self.src[..open].chars().count();
                    return Err(self.error(format!("the phrase started at position {started} has no closing `\"`")));
                }
                Some('"') => {
                    self.bump();
                    return Ok(text);
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        Some(c @ ('"' | '\\')) => {
                            text.push(c);
                            self.bump();
                        }
                        _ => text.push('\\'),
                    }
                }
                Some(c) => {
                    text.push(c);
                    self.bump();
                }
            }
        }
    }

    fn count_leaf(&mut self, start: usize) -> Result<(), QueryError> {
        self.leaves += 1;
        if self.leaves > MAX_LEAVES {
            return Err(QueryError::syntax(
                self.src,
                start,
                format!("the query has more than {MAX_LEAVES} terms"),
            ));
        }
        Ok(())
    }

    fn message(&mut self, text: &str, quoted: bool, start: usize) -> Result<Expr, QueryError> {
        self.count_leaf(start)?;
        let shown = if quoted { format!("\"{text}\"") } else { text.to_owned() };
        message_leaf(&mut self.analyzer, text, &shown)
            .map(Expr::Leaf)
            .map_err(QueryError)
    }

    /// The value after `field:`.
    fn field_value(&mut self, field: &str, start: usize) -> Result<Expr, QueryError> {
        self.count_leaf(start)?;
        let target = Target::of(field).map_err(|what| QueryError::syntax(self.src, start, what))?;
        match self.peek() {
            None | Some('|') => Err(self.error(format!("`{field}:` needs a value"))),
            Some(c) if c.is_whitespace() => Err(self.error(format!("`{field}:` needs a value right after the colon"))),
            Some('(') => Err(self.error(format!(
                "`{field}:(…)` is not supported: write `{field}:a OR {field}:b`"
            ))),
            Some('[' | '{') => {
                let lower_inclusive = self.peek() == Some('[');
                self.bump();
                self.skip_space();
                let lower = self.bound_value()?;
                self.skip_space();
                if !self.operator("TO") {
                    return Err(self.error("a range is written `[from TO to]`"));
                }
                self.skip_space();
                let upper = self.bound_value()?;
                self.skip_space();
                let upper_inclusive = match self.peek() {
                    Some(']') => true,
                    Some('}') => false,
                    _ => return Err(self.error("a range ends with `]` or `}`")),
                };
                self.bump();
                let bound = |value: Option<String>, inclusive: bool| match value {
                    None => Bound::Unbounded,
                    Some(v) if inclusive => Bound::Included(v),
                    Some(v) => Bound::Excluded(v),
                };
                target.range(bound(lower, lower_inclusive), bound(upper, upper_inclusive), |what| {
                    QueryError::syntax(self.src, start, what)
                })
            }
            Some('>' | '<') => {
                let op: String = self
                    .rest()
                    .chars()
                    .take_while(|c| matches!(c, '<' | '>' | '='))
                    .collect();
                self.pos += op.len();
                let Some(value) = self.bound_value()? else {
                    return Err(self.error(format!("`{field}:{op}` needs a value")));
                };
                let (lower, upper) = match op.as_str() {
                    ">" => (Bound::Excluded(value), Bound::Unbounded),
                    ">=" => (Bound::Included(value), Bound::Unbounded),
                    "<" => (Bound::Unbounded, Bound::Excluded(value)),
                    "<=" => (Bound::Unbounded, Bound::Included(value)),
                    _ => {
                        return Err(QueryError::syntax(
                            self.src,
                            start,
                            format!("unknown comparison `{op}`"),
                        ));
                    }
                };
                target.range(lower, upper, |what| QueryError::syntax(self.src, start, what))
            }
            Some('"') => {
                let text = self.quoted()?;
                target.equals(&text, &mut self.analyzer, |what| {
                    QueryError::syntax(self.src, start, what)
                })
            }
            Some('/') if let Some(source) = self.slashed() => {
                self.patterns += 1;
                if self.patterns > MAX_PATTERNS {
                    return Err(QueryError::syntax(
                        self.src,
                        start,
                        format!("more than {MAX_PATTERNS} patterns (`field:/regex/`)"),
                    ));
                }
                target.regex(&source, |what| QueryError::syntax(self.src, start, what))
            }
            Some(_) => {
                let value = self.word()?;
                if value == "*" {
                    return target.exists(|what| QueryError::syntax(self.src, start, what));
                }
                target.equals(&value, &mut self.analyzer, |what| {
                    QueryError::syntax(self.src, start, what)
                })
            }
        }
    }

    /// The `/pattern/` standing next, if its closing slash ends the word
    /// (else nothing is consumed: `source:/var/log/syslog` is a value).
    /// `\/` is a slash; other escapes are the pattern's own.
    fn slashed(&mut self) -> Option<String> {
        let mut chars = self.rest().char_indices().skip(1);
        let mut source = String::new();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '/')) => source.push('/'),
                    Some((_, escaped)) => {
                        source.push('\\');
                        source.push(escaped);
                    }
                    None => source.push('\\'),
                },
                '/' => {
                    let after = at + 1;
                    if !self.rest()[after..].chars().next().is_none_or(ends_word) {
                        return None;
                    }
                    self.pos += after;
                    return Some(source);
                }
                other => source.push(other),
            }
        }
        None
    }

    /// One end of a range: a quoted text, a bare value, or `*` (`None`, open).
    fn bound_value(&mut self) -> Result<Option<String>, QueryError> {
        if self.peek() == Some('"') {
            return self.quoted().map(Some);
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ']' | '}' | '(' | ')' | '"' | '|') {
                break;
            }
            self.bump();
        }
        match &self.src[start..self.pos] {
            "" => Err(self.error("a value was expected")),
            "*" => Ok(None),
            value => Ok(Some(value.to_owned())),
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_.-]*`: what counts as a field name before a colon
/// (logfmt keys may hold `-`).
pub fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether an extracted field of this name must be queried as
/// `fields.<name>`: the name is taken by a built-in field or a prefix.
pub fn is_built_in(name: &str) -> bool {
    matches!(Target::of(name), Ok(target) if !matches!(target, Target::Field(_)))
        || name.starts_with("labels.")
        || name.starts_with("fields.")
        || matches!(name, "labels" | "fields")
}

/// The field a `field:` term names.
enum Target {
    Message,
    Keyword(Keyword),
    Label(String),
    Offset,
    Timestamp,
    Truncated,
    /// `has:<name>`.
    Has,
    /// An extracted field.
    Field(String),
}

impl Target {
    fn of(field: &str) -> Result<Target, String> {
        Ok(match field {
            "message" => Target::Message,
            "host" => Target::Keyword(Keyword::Host),
            "source" => Target::Keyword(Keyword::Source),
            "level" => Target::Keyword(Keyword::Level),
            "id" => Target::Keyword(Keyword::Id),
            "stream" => Target::Keyword(Keyword::Stream),
            "offset" => Target::Offset,
            "timestamp" => Target::Timestamp,
            "truncated" => Target::Truncated,
            "has" => Target::Has,
            "labels" | "fields" => {
                return Err(format!(
                    "`{field}:` needs a name: `{field}.<name>:value`; fields are {FIELDS} (to search the text \
                     `{field}:`, quote it)"
                ));
            }
            other => match (other.strip_prefix("labels."), other.strip_prefix("fields.")) {
                (Some(name), _) if !name.is_empty() => Target::Label(name.to_owned()),
                (_, Some(name)) if !name.is_empty() => Target::Field(name.to_owned()),
                _ => Target::Field(other.to_owned()),
            },
        })
    }

    fn equals(
        self,
        value: &str,
        analyzer: &mut TextAnalyzer,
        error: impl Fn(String) -> QueryError,
    ) -> Result<Expr, QueryError> {
        Ok(Expr::Leaf(match self {
            Target::Message => message_leaf(analyzer, value, &format!("message:{value}")).map_err(error)?,
            Target::Keyword(keyword) => Leaf::Keyword(keyword, value.to_owned()),
            Target::Label(name) => Leaf::Label(name, value.to_owned()),
            Target::Offset => {
                let offset = parse_offset(value).map_err(&error)?;
                Leaf::Offset(Bound::Included(offset), Bound::Included(offset))
            }
            Target::Timestamp => {
                let ms = parse_timestamp(value).map_err(&error)?;
                Leaf::Timestamp(Bound::Included(ms), Bound::Included(ms))
            }
            Target::Truncated => match value {
                "true" => Leaf::Truncated(true),
                "false" => Leaf::Truncated(false),
                other => return Err(error(format!("`truncated:` takes true or false, not `{other}`"))),
            },
            Target::Has => {
                let name = value.strip_prefix("fields.").unwrap_or(value);
                if !is_field_name(name) {
                    return Err(error(format!("`has:` takes a field name, not `{value}`")));
                }
                Leaf::HasField(name.to_owned())
            }
            Target::Field(name) => Leaf::Field(name, value.to_owned()),
        }))
    }

    fn range(
        self,
        lower: Bound<String>,
        upper: Bound<String>,
        error: impl Fn(String) -> QueryError,
    ) -> Result<Expr, QueryError> {
        Ok(Expr::Leaf(match self {
            // A record id is a stream and an offset, not a string to order.
            Target::Keyword(Keyword::Id) => {
                return Err(error(
                    "`id:` takes one record id, not a range (`stream:` and `offset:` take ranges)".into(),
                ));
            }
            Target::Keyword(keyword) => Leaf::KeywordRange(keyword, lower, upper),
            Target::Offset => Leaf::Offset(
                map_bound(lower, |v| parse_offset(&v)).map_err(&error)?,
                map_bound(upper, |v| parse_offset(&v)).map_err(&error)?,
            ),
            Target::Timestamp => Leaf::Timestamp(
                map_bound(lower, |v| parse_timestamp(&v)).map_err(&error)?,
                map_bound(upper, |v| parse_timestamp(&v)).map_err(&error)?,
            ),
            // `[* TO *]` bounds nothing: any value, as `name:*`.
            Target::Field(name) if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) => {
                Leaf::HasField(name)
            }
            Target::Field(name) => {
                let number =
                    |v: String| parse_number(&v).ok_or_else(|| format!("a range on `{name}` takes numbers, not `{v}`"));
                Leaf::FieldRange(
                    name.clone(),
                    map_bound(lower, number).map_err(&error)?,
                    map_bound(upper, number).map_err(&error)?,
                )
            }
            Target::Message | Target::Label(_) | Target::Truncated | Target::Has => {
                return Err(error(
                    "ranges work on host, source, level, id, stream, offset, timestamp and extracted fields".to_owned(),
                ));
            }
        }))
    }

    fn regex(self, source: &str, error: impl Fn(String) -> QueryError) -> Result<Expr, QueryError> {
        let target = match self {
            Target::Message => RegexTarget::Message,
            Target::Keyword(Keyword::Id) => {
                return Err(error("`id:` takes one record id, not a pattern".to_owned()));
            }
            Target::Keyword(keyword) => RegexTarget::Keyword(keyword),
            Target::Label(name) => RegexTarget::Label(name),
            Target::Field(name) => RegexTarget::Field(name),
            Target::Offset | Target::Timestamp | Target::Truncated | Target::Has => {
                return Err(error(
                    "patterns work on message, host, source, level, stream, labels and extracted fields".to_owned(),
                ));
            }
        };
        let pattern = Pattern::new(source).map_err(&error)?;
        Ok(Expr::Leaf(Leaf::Regex(target, pattern)))
    }

    fn exists(self, error: impl Fn(String) -> QueryError) -> Result<Expr, QueryError> {
        match self {
            Target::Keyword(Keyword::Level) => Ok(Expr::Leaf(Leaf::HasLevel)),
            Target::Label(name) => Err(error(format!(
                "`labels.{name}:*` is not supported: search for a value of the label"
            ))),
            Target::Field(name) => Ok(Expr::Leaf(Leaf::HasField(name))),
            Target::Has => Err(error("`has:` takes a field name: `has:trace_id`".to_owned())),
            // Every record has a message, host, source, id, stream, offset, time and truncation flag.
            _ => Ok(Expr::All),
        }
    }
}

fn map_bound<T>(bound: Bound<String>, f: impl Fn(String) -> Result<T, String>) -> Result<Bound<T>, String> {
    Ok(match bound {
        Bound::Included(v) => Bound::Included(f(v)?),
        Bound::Excluded(v) => Bound::Excluded(f(v)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

/// A finite number, as a field's value is compared (`500`, `-1.5`, `2e3`).
pub fn parse_number(value: &str) -> Option<f64> {
    value.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_offset(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("`offset` takes a byte offset (a whole number), not `{value}`"))
}

fn parse_timestamp(value: &str) -> Result<i64, String> {
    parse_time(value).ok_or_else(|| {
        format!("`timestamp` takes an RFC 3339 time (2024-05-01T12:00:00Z) or Unix milliseconds, not `{value}`")
    })
}

#[cfg(test)]
mod tests;
