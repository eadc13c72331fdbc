//! A message's index tokens with their positions, in buffers kept from one
//! message to the next, and whether they hold a phrase: the one check that
//! both live tail ([`super::matcher`]) and the index (which keeps no
//! positions, `store::phrase`) give a phrase its meaning by.

use std::ops::Range;
use tantivy::tokenizer::TextAnalyzer;

/// Token text kept allocated between messages.
const KEPT_BYTES: usize = 16 * 1024;
/// Tokens kept allocated between messages.
const KEPT_TOKENS: usize = 2048;

/// The tokens of the last message read, in position order.
#[derive(Default)]
pub struct MessageTokens {
    /// Every token's text, one after another.
    text: String,
    /// Each token's position and its bytes in `text`. Positions grow; they
    /// skip where the analyzer dropped a token (40 bytes or longer).
    tokens: Vec<(usize, Range<usize>)>,
}

impl MessageTokens {
    /// Replaces the tokens with those of `message`.
    pub fn read(&mut self, analyzer: &mut TextAnalyzer, message: &str) {
        self.text.clear();
        self.tokens.clear();
        let mut stream = analyzer.token_stream(message);
        while stream.advance() {
            let token = stream.token();
            let start = self.text.len();
            self.text.push_str(&token.text);
            self.tokens.push((token.position, start..self.text.len()));
        }
    }

    /// Whether the tokens hold `wanted`: each `(offset, token)` at the
    /// position of the first plus its offset. Offsets grow, the first is 0.
    /// Each start walks the tokens once, so a check costs at most the
    /// message's tokens times the phrase's, whatever either holds.
    pub fn has_phrase(&self, wanted: &[(usize, String)]) -> bool {
        let Some((_, first)) = wanted.first() else {
            return false;
        };
        (0..self.tokens.len()).any(|start| {
            self.token(start) == first.as_str() && {
                let origin = self.tokens[start].0;
                let mut at = start;
                wanted[1..].iter().all(|(offset, token)| {
                    let position = origin + offset;
                    // Positions grow, so the walk only goes forward.
                    while at < self.tokens.len() && self.tokens[at].0 < position {
                        at += 1;
                    }
                    at < self.tokens.len() && self.tokens[at].0 == position && self.token(at) == token.as_str()
                })
            }
        })
    }

    /// Whether any token satisfies `test`.
    pub fn any(&self, mut test: impl FnMut(&str) -> bool) -> bool {
        (0..self.tokens.len()).any(|i| test(self.token(i)))
    }

    /// Forgets the message read and lets go of what a long one made the
    /// buffers grow to, beyond 16 KiB of text and 2,048 tokens.
    pub fn trim(&mut self) {
        self.text.clear();
        self.tokens.clear();
        self.text.shrink_to(KEPT_BYTES);
        self.tokens.shrink_to(KEPT_TOKENS);
    }

    fn token(&self, index: usize) -> &str {
        &self.text[self.tokens[index].1.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Expr, Leaf, message_analyzer, parse};

    fn phrase(q: &str) -> Vec<(usize, String)> {
        match parse(q).expect("query parses") {
            Expr::Leaf(Leaf::Message(tokens)) => tokens,
            other => panic!("not a message leaf: {other:?}"),
        }
    }

    fn holds(message: &str, q: &str) -> bool {
        let mut tokens = MessageTokens::default();
        tokens.read(&mut message_analyzer(), message);
        tokens.has_phrase(&phrase(q))
    }

    #[test]
    fn a_phrase_is_its_tokens_in_order_and_adjacent() {
        assert!(holds("Connection reset by peer", "\"reset by\""));
        assert!(holds("Connection reset by peer", "\"RESET BY PEER\""));
        assert!(!holds("Connection reset by peer", "\"by reset\""));
        assert!(!holds("reset the link by peer", "\"reset by\""));
        assert!(holds("from 10.0.0.1 port 22", "10.0.0.1"));
        assert!(!holds("from 10.0.0.12 port 22", "10.0.0.1"));
        assert!(!holds("from 1.10.0.0 port 1", "10.0.0.1"));
        assert!(holds("a reset, then reset by peer", "\"reset by\""));
        assert!(holds("a b a a", "\"a a\""));
        assert!(!holds("a b a b", "\"a a\""));
        assert!(holds("x a a a b", "\"a a b\""));
    }

    #[test]
    fn a_dropped_long_token_keeps_its_place() {
        let long = "x".repeat(45);
        // The query's own long token leaves the same gap as the message's.
        assert!(holds(
            &format!("key {long} expired"),
            &format!("\"key {long} expired\"")
        ));
        assert!(holds(
            &format!("key {long} expired"),
            &format!("\"key {} expired\"", "y".repeat(41))
        ));
        assert!(!holds(&format!("key {long} expired"), "\"key expired\""));
        assert!(!holds("key expired", &format!("\"key {long} expired\"")));
    }
}
