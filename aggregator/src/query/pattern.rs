//! Regular expressions in queries (`message:/time(d)?out/`,
//! `host:/web-[0-9]+/`): one compiled automaton, run by the index over its
//! terms and by live tail over the same values, so both give a pattern one
//! meaning.
//!
//! A pattern is looked for in each value as the index holds it: each word
//! of the message (lower case, letters and digits), or the whole of a host,
//! source, level, label or extracted text field. It matches anywhere in the
//! value, as grep's does, unless a branch starts with `^` or ends with `$`,
//! which anchor that branch there. tantivy-fst compiles it to a DFA over
//! whole values; a pattern not anchored at the start cannot skip any of the
//! dictionary, so every term of the field is run through it.
//!
//! What a pattern may cost is bounded before tantivy-fst sees it: at most
//! [`MAX_PATTERN_BYTES`], [`MAX_NESTING`] groups deep, and an estimated
//! [`MAX_SIZE`] steps once repetitions are written out (tantivy-fst writes
//! `a{1000}` out in full and follows it recursively); then tantivy-fst's own
//! bound of 1,000 DFA states. It compiles on a thread of its own with a
//! large stack. A query holds at most [`MAX_PATTERNS`].

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look, Repetition};
use std::sync::Arc;
use tantivy_fst::{Automaton, Regex};

/// Most patterns one query holds.
pub const MAX_PATTERNS: usize = 4;
/// Longest pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Deepest nesting of groups and repetitions.
pub const MAX_NESTING: u32 = 32;
/// Most steps a pattern may compile to, estimated: a literal's bytes, a
/// class's ranges, times each repetition's count.
pub const MAX_SIZE: u64 = 2_000;
/// Stack of the thread a pattern compiles on: tantivy-fst follows a
/// pattern's empty steps recursively, about one call per step.
const COMPILE_STACK_BYTES: usize = 16 << 20;

/// A compiled pattern and its source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Arc<Regex>,
}

impl Pattern {
    /// Compiles `source` (without the slashes); the error is for the user.
    pub fn new(source: &str) -> Result<Pattern, String> {
        let refuse = |why: String| format!("the pattern /{source}/ cannot be used: {why}");
        if source.len() > MAX_PATTERN_BYTES {
            return Err(refuse(format!(
                "it is {} bytes long; at most {MAX_PATTERN_BYTES} are allowed",
                source.len()
            )));
        }
        let hir = regex_syntax::ParserBuilder::new()
            .nest_limit(MAX_NESTING)
            .build()
            .parse(source)
            .map_err(|err| refuse(syntax_error(source, &err)))?;
        let size = size(&hir);
        if size > MAX_SIZE {
            return Err(refuse(format!(
                "it would compile to about {size} steps; at most {MAX_SIZE} are allowed (a repetition counts \
                 its content that many times; \\w and \\d are hundreds of Unicode ranges each, [a-z0-9] one)"
            )));
        }
        // Printed from the parsed form: balanced, without comments or
        // flags that could reach past it.
        let whole = whole_values(hir).to_string();
        let compiled = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("pattern-compile".into())
                .stack_size(COMPILE_STACK_BYTES)
                .spawn_scoped(scope, || Regex::new(&whole).map_err(|err| err.to_string()))
                .map_err(|err| format!("no thread to compile it on: {err}"))?
                .join()
                .map_err(|_| "compiling it failed".to_owned())?
        });
        let regex = compiled.map_err(|why| {
            // tantivy-fst's words for `\b`, `\B` and inner `^` or `$`.
            if why.starts_with("Empty match operators") {
                refuse(
                    "word boundaries (\\b) and anchors inside a branch are not supported; `^` at a branch's start \
                     and `$` at its end anchor it"
                        .to_owned(),
                )
            } else {
                refuse(why)
            }
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

/// A syntax error on one line: what, and at which character of the pattern.
fn syntax_error(source: &str, err: &regex_syntax::Error) -> String {
    let (what, offset) = match err {
        regex_syntax::Error::Parse(err) => (err.kind().to_string(), err.span().start.offset),
        regex_syntax::Error::Translate(err) => (err.kind().to_string(), err.span().start.offset),
        other => return other.to_string(),
    };
    let position = source.get(..offset).map_or(offset, |s| s.chars().count());
    format!("{what} (at character {position} of the pattern)")
}

/// Estimated steps `hir` compiles to, repetitions written out.
fn size(hir: &Hir) -> u64 {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => 1,
        HirKind::Literal(literal) => literal.0.len() as u64,
        HirKind::Class(Class::Unicode(class)) => class.ranges().len() as u64,
        HirKind::Class(Class::Bytes(class)) => class.ranges().len() as u64,
        HirKind::Repetition(repetition) => {
            let count = repetition.max.unwrap_or(repetition.min).max(repetition.min);
            size(&repetition.sub).saturating_mul(u64::from(count) + 1)
        }
        HirKind::Capture(capture) => size(&capture.sub),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().map(size).fold(0, u64::saturating_add),
    }
}

/// The pattern as tantivy-fst matches it, against whole values: each
/// top-level branch may have anything before it unless it starts with `^`,
/// and after it unless it ends with `$`.
fn whole_values(hir: Hir) -> Hir {
    let branches = match hir.kind() {
        HirKind::Alternation(branches) => branches.clone(),
        _ => vec![hir],
    };
    Hir::alternation(branches.into_iter().map(anchor_branch).collect())
}

fn anchor_branch(branch: Hir) -> Hir {
    let mut parts = match branch.kind() {
        HirKind::Concat(parts) => parts.clone(),
        _ => vec![branch],
    };
    let starts = matches!(parts.first().map(Hir::kind), Some(HirKind::Look(Look::Start)));
    if starts {
        parts.remove(0);
    }
    let ends = matches!(parts.last().map(Hir::kind), Some(HirKind::Look(Look::End)));
    if ends {
        parts.pop();
    }
    if !starts {
        parts.insert(0, anything());
    }
    if !ends {
        parts.push(anything());
    }
    Hir::concat(parts)
}

/// Any text, new lines too.
fn anything() -> Hir {
    let any = ClassUnicode::new([ClassUnicodeRange::new('\0', char::MAX)]);
    Hir::repetition(Repetition {
        min: 0,
        max: None,
        greedy: true,
        sub: Box::new(Hir::class(Class::Unicode(any))),
    })
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
        assert!(
            Pattern::new("(?i)^ABC").unwrap().matches(b"abcd"),
            "flags before an anchor"
        );
    }

    #[test]
    fn each_branch_is_anchored_on_its_own() {
        let either = Pattern::new("^error|warn$").unwrap();
        assert!(either.matches(b"errors") && either.matches(b"a warn"));
        assert!(!either.matches(b"an error") && !either.matches(b"warning"));
        let mixed = Pattern::new("foo|^bar").unwrap();
        assert!(mixed.matches(b"a foo b") && mixed.matches(b"bars") && !mixed.matches(b"a bar"));
    }

    #[test]
    fn nothing_reaches_past_the_pattern() {
        // An unbalanced `)` would close a textual wrapper early.
        assert!(Pattern::new("a)|(b").unwrap_err().contains("unopened group"));
        // A comment in verbose mode would swallow a textual wrapper's end.
        let verbose = Pattern::new("(?x)ab # a comment").unwrap();
        assert!(verbose.matches(b"xaby") && !verbose.matches(b"a"));
    }

    #[test]
    fn what_cannot_be_compiled_is_refused_with_why() {
        for (pattern, says) in [
            ("(unclosed", "unclosed group (at character 0"),
            ("a+?", "Lazy"),
            (r"\bword", "word boundaries"),
            ("a^b", "anchors inside a branch"),
            ("(a|b)*a(a|b){12}", "exceeds size limit"),
            ("(?:a?){0,100000}", "about"),
            ("a{5000}", "at most 2000 are allowed"),
            (r"\w+@\w+\.\w+", "[a-z0-9] one"),
        ] {
            let err = Pattern::new(pattern)
                .err()
                .unwrap_or_else(|| panic!("{pattern} compiled"));
            assert!(err.contains(says) && err.contains(pattern), "{pattern}: {err}");
        }
        let nested = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(Pattern::new(&nested).unwrap_err().contains("nest"));
        let long = "a".repeat(MAX_PATTERN_BYTES + 1);
        assert!(Pattern::new(&long).unwrap_err().contains("at most 256"));
    }
}
