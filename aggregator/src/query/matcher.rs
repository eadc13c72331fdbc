//! Whether one record matches a query, without the index: what live tail runs
//! on every committed record. It gives each [`Leaf`] the meaning the store's
//! compiled query gives it (the same tokens, positions and exact values), so a
//! live tail shows exactly the lines a search of the same moment would.

use super::{Expr, Keyword, Leaf, message_analyzer, message_tokens, parse_number, parse_time};
use crate::store::schema::Hit;
use lookout_shared::parse::fields::FieldValue;
use lookout_shared::wire::parse_record_id;
use std::ops::{Bound, RangeBounds};
use tantivy::tokenizer::TextAnalyzer;

/// A compiled query for matching records one at a time.
pub struct Matcher {
    expr: Expr,
    analyzer: TextAnalyzer,
}

impl Matcher {
    /// A matcher for `expr`.
    pub fn new(expr: Expr) -> Self {
        Matcher {
            expr,
            analyzer: message_analyzer(),
        }
    }

    /// Whether `hit` matches.
    pub fn matches(&mut self, hit: &Hit) -> bool {
        let mut record = Record {
            hit,
            tokens: None,
            analyzer: &mut self.analyzer,
        };
        record.eval(&self.expr)
    }
}

/// One record being matched; its message is tokenized at most once.
struct Record<'a> {
    hit: &'a Hit,
    /// The message's tokens by position (`None` where a long token was dropped).
    tokens: Option<Vec<Option<String>>>,
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
        }
    }

    /// Whether the message holds `wanted`'s tokens at its relative positions.
    fn has_phrase(&mut self, wanted: &[(usize, String)]) -> bool {
        let hit = self.hit;
        let analyzer = &mut *self.analyzer;
        let by_position = self.tokens.get_or_insert_with(|| {
            let tokens = message_tokens(analyzer, &hit.message);
            let mut by_position = vec![None; tokens.last().map_or(0, |(position, _)| position + 1)];
            for (position, token) in tokens {
                by_position[position] = Some(token);
            }
            by_position
        });
        let Some((_, first)) = wanted.first() else {
            return false;
        };
        let at = |position: usize, token: &str| by_position.get(position).and_then(Option::as_deref) == Some(token);
        (0..by_position.len())
            .any(|start| at(start, first) && wanted.iter().all(|(offset, token)| at(start + offset, token)))
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
