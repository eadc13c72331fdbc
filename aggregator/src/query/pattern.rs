//! Regular expressions in queries (`message:/time(d)?out/`,
//! `host:/web-[0-9]+/`): one compiled automaton, run by the index over its
//! terms and by live tail over the same values, so both give a pattern one
//! meaning.
//!
//! A pattern is looked for in each value as the index holds it: each word
//! of the message (lower case, letters and digits), or the whole of a host,
//! source, level, label or extracted text field. It matches anywhere in the
//! value, as grep's does, unless it starts with `^` or ends with `$`, which
//! anchor the whole pattern there. tantivy-fst compiles it to a DFA over
//! whole values of at most 1,000 states (some 2 MB) and refuses what would
//! be larger, so a query holds at most [`MAX_PATTERNS`] of them. A pattern
//! that is not anchored at the start cannot skip any of the dictionary:
//! every term of the field is run through it.

use std::sync::Arc;
use tantivy_fst::{Automaton, Regex};

/// Most patterns one query holds.
pub const MAX_PATTERNS: usize = 4;
/// Longest pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;

/// A compiled pattern and its source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Arc<Regex>,
}

impl Pattern {
    /// Compiles `source` (without the slashes); the error is for the user.
    pub fn new(source: &str) -> Result<Pattern, String> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(format!(
                "the pattern is {} bytes long; at most {MAX_PATTERN_BYTES} are allowed",
                source.len()
            ));
        }
        // The automaton matches whole values: what is not anchored may have
        // anything before or after it.
        const ANY: &str = "(?s:.)*";
        let (start, core) = match source.strip_prefix('^') {
            Some(rest) => ("", rest),
            None => (ANY, source),
        };
        let (core, end) = match core.strip_suffix('$') {
            Some(rest) if rest.chars().rev().take_while(|&c| c == '\\').count() % 2 == 0 => (rest, ""),
            _ => (core, ANY),
        };
        let regex = Regex::new(&format!("{start}(?:{core}){end}")).map_err(|err| {
            let mut why = err.to_string();
            // tantivy-fst's words for `\b`, `\B` and inner `^` or `$`.
            if why.starts_with("Empty match operators") {
                why = "word boundaries (\\b) and anchors inside it are not supported; `^` at its start and `$` at \
                       its end anchor it"
                    .to_owned();
            }
            format!("the pattern /{source}/ cannot be used: {why}")
        })?;
        Ok(Pattern {
            source: source.to_owned(),
            regex: Arc::new(regex),
        })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The automaton, for the index.
    pub fn regex(&self) -> Arc<Regex> {
        self.regex.clone()
    }

    /// Whether the whole of `value` matches, as the index decides for a term.
    pub fn matches(&self, value: &[u8]) -> bool {
        let regex = &*self.regex;
        let mut state = regex.start();
        for &byte in value {
            if !regex.can_match(&state) {
                return false;
            }
            state = regex.accept(&state, byte);
        }
        regex.is_match(&state)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}/", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_anywhere_unless_anchored() {
        let timeout = Pattern::new("time(d)?out").unwrap();
        assert!(timeout.matches(b"timeout") && timeout.matches(b"timedout"));
        assert!(timeout.matches(b"timeouts") && timeout.matches(b"xtimeout"));
        assert!(!timeout.matches(b"time_out"));
        let api = Pattern::new("^/api/").unwrap();
        assert!(api.matches(b"/api/users") && !api.matches(b"/v1/api/users"));
        let whole = Pattern::new("^web-[0-9]+$").unwrap();
        assert!(whole.matches(b"web-12") && !whole.matches(b"web-12a") && !whole.matches(b"aweb-1"));
        let dollar = Pattern::new(r"cost\$$").unwrap();
        assert!(
            dollar.matches(b"a cost$") && !dollar.matches(b"cost$s"),
            "an escaped `$` is a character"
        );
        let newline = Pattern::new("a.c").unwrap();
        assert!(newline.matches(b"x\nabc\ny"), "values may span lines");
        assert!(Pattern::new("").unwrap().matches(b""));
        assert!(Pattern::new("é").unwrap().matches("café".as_bytes()));
    }

    #[test]
    fn what_cannot_be_compiled_is_refused_with_why() {
        for (pattern, says) in [
            ("(unclosed", "unclosed group"),
            ("a+?", "Lazy"),
            (r"\bword", "word boundaries"),
            ("a^b", "anchors inside it"),
            ("(a|b)*a(a|b){12}", "exceeds size limit"),
        ] {
            let err = Pattern::new(pattern)
                .err()
                .unwrap_or_else(|| panic!("{pattern} compiled"));
            assert!(err.contains(says) && err.contains(pattern), "{pattern}: {err}");
        }
        let long = "a".repeat(MAX_PATTERN_BYTES + 1);
        assert!(Pattern::new(&long).unwrap_err().contains("at most 256"));
    }
}
