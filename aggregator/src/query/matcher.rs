//! Whether one record matches a query, without the index: what live tail runs
//! on every committed record. It gives each [`Leaf`] the meaning the store's
//! compiled query gives it (the same tokens, positions and exact values), so a
//! live tail shows exactly the lines a search of the same moment would.

use super::tokens::MessageTokens;
use super::{Expr, Keyword, Leaf, RegexTarget, message_analyzer, parse_number, parse_time};
use crate::store::schema::Hit;
use lookout_shared::parse::fields::FieldValue;
use lookout_shared::wire::parse_record_id;
use std::ops::{Bound, RangeBounds};
use tantivy::tokenizer::TextAnalyzer;

/// A compiled query for matching records one at a time.
pub struct Matcher {
    expr: Expr,
    analyzer: TextAnalyzer,
    tokens: MessageTokens,
}

impl Matcher {
    /// A matcher for `expr`.
    pub fn new(expr: Expr) -> Self {
        Matcher {
            expr,
            analyzer: message_analyzer(),
            tokens: MessageTokens::default(),
        }
    }

    /// Whether `hit` matches.
    pub fn matches(&mut self, hit: &Hit) -> bool {
        let mut record = Record {
            hit,
            tokenized: false,
            tokens: &mut self.tokens,
            analyzer: &mut self.analyzer,
        };
        let matched = record.eval(&self.expr);
        // A live tail keeps its matcher for as long as it runs: one long
        // message must not leave its tokens allocated.
        self.tokens.trim();
        matched
    }
}

/// One record being matched; its message is tokenized at most once.
struct Record<'a> {
    hit: &'a Hit,
    /// Whether `tokens` holds this record's message yet.
    tokenized: bool,
    tokens: &'a mut MessageTokens,
    analyzer: &'a mut TextAnalyzer,
}

impl Record<'_> {
    fn eval(&mut self, expr: &Expr) -> bool {
        match expr {
            Expr::All => true,
            Expr::Not(inner) => !self.eval(inner),
            Expr::And(parts) => parts.iter().all(|part| self.eval(part)),
            Expr::Or(parts) => parts.iter().any(|part| self.eval(part)),
            Expr::Leaf(leaf) => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, leaf: &Leaf) -> bool {
        let hit = self.hit;
        match leaf {
            Leaf::Message(wanted) => self.has_phrase(wanted),
            Leaf::Keyword(field, value) => keyword(hit, *field) == Some(value.as_str()),
            Leaf::KeywordRange(field, lower, upper) => keyword(hit, *field)
                .is_some_and(|value| RangeBounds::<str>::contains(&(as_str(lower), as_str(upper)), value)),
            Leaf::Label(name, value) => hit.labels.get(name) == Some(value),
            Leaf::Offset(lower, upper) => {
                parse_record_id(&hit.id).is_some_and(|(_, offset)| (*lower, *upper).contains(&offset))
            }
            Leaf::Timestamp(lower, upper) => {
                parse_time(&hit.timestamp).is_some_and(|ms| (*lower, *upper).contains(&ms))
            }
            Leaf::Truncated(wanted) => hit.truncated == *wanted,
            Leaf::HasLevel => !hit.level.is_empty(),
            Leaf::Field(name, value) => match hit.fields.get(name) {
                Some(FieldValue::Text(text)) => text == value,
                Some(FieldValue::Number(n)) => parse_number(value) == Some(*n),
                None => false,
            },
            Leaf::FieldRange(name, lower, upper) => match hit.fields.get(name) {
                Some(FieldValue::Number(n)) => (*lower, *upper).contains(n),
                _ => false,
            },
            Leaf::HasField(name) => hit.fields.contains_key(name),
            Leaf::Regex(target, pattern) => match target {
                RegexTarget::Message => self.tokens().any(|token| pattern.matches(token.as_bytes())),
                RegexTarget::Keyword(field) => keyword(hit, *field).is_some_and(|v| pattern.matches(v.as_bytes())),
                RegexTarget::Label(name) => hit.labels.get(name).is_some_and(|v| pattern.matches(v.as_bytes())),
                RegexTarget::Field(name) => match hit.fields.get(name) {
                    Some(FieldValue::Text(text)) => pattern.matches(text.as_bytes()),
                    _ => false,
                },
            },
        }
    }

    /// Whether the message holds `wanted`'s tokens at its relative positions.
    fn has_phrase(&mut self, wanted: &[(usize, String)]) -> bool {
        self.tokens().has_phrase(wanted)
    }

    /// The message's index tokens, read on first use.
    fn tokens(&mut self) -> &MessageTokens {
        if !self.tokenized {
            self.tokens.read(self.analyzer, &self.hit.message);
            self.tokenized = true;
        }
        self.tokens
    }
}

fn keyword(hit: &Hit, field: Keyword) -> Option<&str> {
    Some(match field {
        Keyword::Host => &hit.host,
        Keyword::Source => &hit.source,
        Keyword::Level => &hit.level,
        Keyword::Id => &hit.id,
        Keyword::Stream => return parse_record_id(&hit.id).map(|(stream, _)| stream),
    })
}

fn as_str(bound: &Bound<String>) -> Bound<&str> {
    match bound {
        Bound::Included(v) => Bound::Included(v.as_str()),
        Bound::Excluded(v) => Bound::Excluded(v.as_str()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
