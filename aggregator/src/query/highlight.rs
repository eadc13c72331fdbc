//! Which parts of a message a query's words found, for the search page to
//! mark: the message's tokens (from the index's own analyzer) that are
//! tokens of the query's words and phrases outside a `NOT`. The UI draws
//! these ranges and tokenizes nothing itself, so a mark is always a token
//! the index matched.

use super::{Expr, Leaf, message_analyzer};
use std::collections::HashSet;
use tantivy::tokenizer::TextAnalyzer;

/// Most ranges marked in one message.
const MAX_MARKS: usize = 256;

/// The tokens a query looks for, ready to mark messages with.
pub struct Highlighter {
    tokens: HashSet<String>,
    analyzer: TextAnalyzer,
}

impl Highlighter {
    /// The highlighter of `expr`'s message words and phrases.
    pub fn new(expr: &Expr) -> Self {
        let mut tokens = HashSet::new();
        let mut open = vec![expr];
        while let Some(part) = open.pop() {
            match part {
                Expr::Leaf(Leaf::Message(words)) => tokens.extend(words.iter().map(|(_, token)| token.clone())),
                Expr::And(parts) | Expr::Or(parts) => open.extend(parts),
                // What a query excludes is not what it found.
                Expr::Not(_) | Expr::All | Expr::Leaf(_) => {}
            }
        }
        Highlighter {
            tokens,
            analyzer: message_analyzer(),
        }
    }

    /// The `[from, to)` ranges of `message`, counted in characters (Unicode
    /// scalar values), of its tokens among the query's; at most
    /// [`MAX_MARKS`].
    pub fn marks(&mut self, message: &str) -> Vec<[usize; 2]> {
        let mut marks = Vec::new();
        if self.tokens.is_empty() {
            return marks;
        }
        let mut stream = self.analyzer.token_stream(message);
        // Byte offsets grow token by token: characters are counted once.
        let (mut byte, mut chars) = (0, 0);
        let mut to_chars = |offset: usize| {
            chars += message.get(byte..offset).map_or(0, |part| part.chars().count());
            byte = offset.max(byte);
            chars
        };
        while stream.advance() && marks.len() < MAX_MARKS {
            let token = stream.token();
            if self.tokens.contains(&token.text) {
                let from = to_chars(token.offset_from);
                let to = to_chars(token.offset_to);
                marks.push([from, to]);
            }
        }
        marks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;

    fn marks(q: &str, message: &str) -> Vec<[usize; 2]> {
        Highlighter::new(&parse(q).unwrap()).marks(message)
    }

    #[test]
    fn marks_the_tokens_the_query_found_in_characters() {
        assert_eq!(marks("error", "An ERROR, then error."), [[3, 8], [15, 20]]);
        // Characters, not bytes: "é" is one.
        assert_eq!(marks("fehler", "Grüße: Fehler"), [[7, 13]]);
        // A phrase's tokens, a word inside a longer token is not one.
        assert_eq!(
            marks("\"connection refused\"", "connection refused by reconnection"),
            [[0, 10], [11, 18]]
        );
        // Excluded words, field terms and patterns mark nothing.
        assert!(marks("-error level:error host:x message:/err/", "error here").is_empty());
        assert!(marks("*", "anything").is_empty());
        assert_eq!(marks("(a OR b) NOT c", "a b c"), [[0, 1], [2, 3]]);
        // A token of 40 bytes or more is not indexed, so not marked.
        let long = "x".repeat(40);
        assert!(marks("x", &long).is_empty());
    }
}
