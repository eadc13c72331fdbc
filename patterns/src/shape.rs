//! A message's shape: its tokens with the variable parts masked.
//!
//! The message is split at whitespace. Then, in order:
//! - a date written out (`Mon Jun 20 03:40:59 2005`) is one variable;
//! - a bracketed aside with a digit before its first space, closed within
//!   20 characters of it, or empty (`(1.16 KB)`, `[1]`, `[Thread-1]`, `()`),
//!   is one variable;
//! - a `key=value` token keeps its key and masks its value as a token of
//!   its own would be (`rhost=10.0.0.1` is `rhost=<*>`, `user=root` stays);
//! - a token holding a digit is a variable (numbers, addresses, times, hex
//!   and UUIDs, `blk_-1608…`), except a protocol-like upper-case word with a
//!   one- or two-digit version (`SOCKS5`);
//! - a host name (three or more lower-case labels) and a path (`/a/b`) are
//!   variables;
//! - a unit after a variable (`1190 bytes`, `<1 sec`) belongs to it, and
//!   variables in a row are one.
//!
//! Collapsing variables in a row gives lines of one template one shape
//! whatever the number of tokens their values take (`403 bytes sent` and
//! `1190 bytes (1.16 KB) sent`).

/// One token of a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tok<'a> {
    /// A variable part.
    Wild,
    /// A word as written.
    Text(&'a str),
    /// `key=` of a `key=value` token whose value is variable.
    KeyWild(&'a str),
}

/// Units that belong to the number before them.
const UNITS: [&str; 20] = [
    "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "bytes", "ms", "us", "ns", "s", "sec", "secs", "seconds", "min",
    "mins", "minutes", "%",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// How far past its first digit a bracketed aside may close.
const MAX_ASIDE: usize = 20;
/// Tokens of a shape: the rest of a longer message is one variable, so a
/// hostile line cannot make a cluster of a million places.
pub const MAX_TOKENS: usize = 256;
/// A longer word is a variable (a blob, a token): kept words stay small.
const MAX_WORD_BYTES: usize = 256;

/// A message's shape as [`shape`] makes it, so at most [`MAX_TOKENS`] tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape<'a>(Vec<Tok<'a>>);

impl<'a> Shape<'a> {
    /// The shape of `message`.
    pub fn of(message: &'a str) -> Shape<'a> {
        let mut toks = Vec::new();
        shape(message, &mut toks);
        Shape(toks)
    }

    /// Its tokens.
    pub fn toks(&self) -> &[Tok<'a>] {
        &self.0
    }
}

/// Appends the shape of `message` to `out` (cleared first).
pub fn shape<'a>(message: &'a str, out: &mut Vec<Tok<'a>>) {
    out.clear();
    let mut words = message.split_ascii_whitespace();
    while let Some(word) = words.next() {
        if out.len() >= MAX_TOKENS {
            // The rest is one variable (a step may have pushed two tokens).
            out.truncate(MAX_TOKENS - 1);
            push(out, Tok::Wild, "");
            return;
        }
        if is_date(word, words.clone()) {
            push(out, Tok::Wild, word);
            words.next();
            continue;
        }
        if let Some((rest, after)) = aside(word, words.clone()) {
            push(out, Tok::Wild, word);
            if !rest.is_empty() {
                push(out, classify(rest), rest);
            }
            words = after;
            continue;
        }
        push(out, classify(word), word);
    }
    if out.len() > MAX_TOKENS {
        out.truncate(MAX_TOKENS - 1);
        push(out, Tok::Wild, "");
    }
}

/// Adds `tok` (read from `word`) unless it is a unit of the variable
/// before it or a variable right after one.
fn push<'a>(out: &mut Vec<Tok<'a>>, tok: Tok<'a>, word: &str) {
    if out.last() == Some(&Tok::Wild) && (tok == Tok::Wild || UNITS.contains(&word)) {
        return;
    }
    out.push(tok);
}

/// `Mon Jun 20 …`: a weekday, then a month, then a number.
fn is_date<'a>(day: &str, mut next: impl Iterator<Item = &'a str>) -> bool {
    WEEKDAYS.contains(&day)
        && next.next().is_some_and(|month| MONTHS.contains(&month))
        && next.next().is_some_and(|date| date.bytes().all(|b| b.is_ascii_digit()))
}

/// A bracketed aside starting at `first`: `(`/`[` then a digit before any
/// space, closed within [`MAX_ASIDE`] characters of it, or `()` / `[]`; the
/// close must end its word or come before one of `,.;:`. `next` are the
/// words after `first`. Answers what follows the bracket in the word that
/// closes it and the words after that one.
fn aside<'a, I>(first: &'a str, mut next: I) -> Option<(&'a str, I)>
where
    I: Iterator<Item = &'a str>,
{
    let opened = first.strip_prefix(['(', '['])?;
    let closes = |rest: &str| rest.is_empty() || rest.len() == 1 && rest.starts_with([',', '.', ';', ':']);
    if let Some(rest) = opened.strip_prefix([')', ']']) {
        return closes(rest).then_some((rest, next));
    }
    let digit = opened.find(|c: char| c.is_ascii_digit() || matches!(c, '(' | ')' | '[' | ']'))?;
    if !opened.as_bytes()[digit].is_ascii_digit() {
        return None;
    }
    // Characters after the digit so far, counting one space between words.
    let mut budget = MAX_ASIDE;
    let mut text = &opened[digit + 1..];
    loop {
        if let Some(close) = text.find(['(', ')', '[', ']']) {
            if close > budget || matches!(text.as_bytes()[close], b'(' | b'[') {
                return None;
            }
            let rest = &text[close + 1..];
            return closes(rest).then_some((rest, next));
        }
        budget = budget.checked_sub(text.len() + 1)?;
        text = next.next()?;
    }
}

/// One word's token.
fn classify(word: &str) -> Tok<'_> {
    if word.len() > MAX_WORD_BYTES {
        return Tok::Wild;
    }
    // `a=b=1`: the keys in a row, then the value.
    let mut keys = 0;
    while let Some(end) = key_of(&word[keys..]) {
        keys += end;
    }
    if keys == 0 {
        return plain(word);
    }
    match plain(&word[keys..]) {
        Tok::Text(_) => Tok::Text(word),
        _ => Tok::KeyWild(&word[..keys]),
    }
}

/// The token of a word that is not `key=value`.
fn plain(word: &str) -> Tok<'_> {
    if word.bytes().any(|b| b.is_ascii_digit()) {
        return if is_versioned_word(word) {
            Tok::Text(word)
        } else {
            Tok::Wild
        };
    }
    if is_host_name(word) || is_path(word) {
        return Tok::Wild;
    }
    Tok::Text(word)
}

/// The length of `key=` when `word` is `key=value` with a value: the key
/// starts with a letter or `_` and holds letters, digits, `_`, `.`, `-`.
fn key_of(word: &str) -> Option<usize> {
    let equals = word.find('=')?;
    let key = &word.as_bytes()[..equals];
    let starts = key.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
    let rest = key
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    (starts && rest && equals + 1 < word.len()).then_some(equals + 1)
}

/// `SOCKS5`, `HTTP2`: three or more upper-case letters, then one or two
/// digits, then at most one of `.,:;`.
fn is_versioned_word(word: &str) -> bool {
    let word = word.strip_suffix(['.', ',', ':', ';']).unwrap_or(word);
    let letters = word.bytes().take_while(u8::is_ascii_uppercase).count();
    let digits = word.len() - letters;
    letters >= 3 && (1..=2).contains(&digits) && word.bytes().skip(letters).all(|b| b.is_ascii_digit())
}

/// `proxy.cse.cuhk.edu.hk`: three or more labels of lower-case letters and
/// `-`, the last of 2 to 6 letters (a class name such as `java.io.File`
/// has a capital).
fn is_host_name(word: &str) -> bool {
    let word = word.strip_suffix(['.', ',', ':', ';']).unwrap_or(word);
    let labels: Vec<&str> = word.split('.').collect();
    let Some(last) = labels.last() else {
        return false;
    };
    labels.len() >= 3
        && labels
            .iter()
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        && (2..=6).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_lowercase())
}

/// `/a/b`, `"/a/`: a slash, then another.
fn is_path(word: &str) -> bool {
    let word = word.strip_prefix(['\'', '"']).unwrap_or(word);
    word.strip_prefix('/').is_some_and(|rest| rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(message: &str) -> String {
        let mut out = Vec::new();
        shape(message, &mut out);
        out.iter()
            .map(|tok| match tok {
                Tok::Wild => "<*>".to_owned(),
                Tok::Text(text) => (*text).to_owned(),
                Tok::KeyWild(key) => format!("{key}<*>"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn variables_are_masked_and_runs_of_them_are_one() {
        assert_eq!(
            shown("proxy.cse.cuhk.edu.hk:5070 close, 1190 bytes (1.16 KB) sent, 403 bytes sent, lifetime <1 sec"),
            "<*> close, <*> sent, <*> sent, lifetime <*>"
        );
        assert_eq!(
            shown("connection from 24.54.76.216 () at Fri Jun 17 07:07:00 2005"),
            "connection from <*> at <*>"
        );
        assert_eq!(
            shown("authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root"),
            "authentication failure; logname= uid=<*> euid=<*> tty=NODEVssh ruser= rhost=<*> user=root"
        );
        assert_eq!(
            shown("Receiving block blk_-562317 src: /10.251.75.228:53725 dest: /10.251.75.228:50010"),
            "Receiving block <*> src: <*> dest: <*>"
        );
        assert_eq!(
            shown("183.62.156.108:22 open through proxy socks.cse.cuhk.edu.hk:5070 SOCKS5"),
            "<*> open through proxy <*> SOCKS5"
        );
        assert_eq!(
            shown("Reading [file=/etc/xinetd.conf] [line=15] a=b=12 java.io.File GET /v2/x/servers"),
            "Reading [file=/etc/xinetd.conf] <*> a=b=<*> java.io.File GET <*>"
        );
        assert_eq!(shown("LOCAL(0), stratum 10"), "<*> stratum <*>");
        assert_eq!(shown("exited abnormally with [1]"), "exited abnormally with <*>");
        assert_eq!(shown("(not a number) here"), "(not a number) here");
        assert_eq!(
            shown("(1 and a very long aside that never closes"),
            "<*> and a very long aside that never closes"
        );
        assert_eq!(shown(""), "");
    }

    #[test]
    fn hostile_lines_make_small_shapes() {
        let chained = format!("{}1", "a=".repeat(100_000));
        assert_eq!(shown(&chained), "<*>", "longer than a word may be");
        let keys = format!("{}1", "ab=".repeat(50));
        assert_eq!(shown(&keys), format!("{}<*>", "ab=".repeat(50)));
        let long = "word ".repeat(10_000);
        let mut out = Vec::new();
        shape(&long, &mut out);
        assert_eq!(out.len(), MAX_TOKENS);
        assert_eq!(out.last(), Some(&Tok::Wild), "the rest is one variable");
        let two_at_a_step = ["(1), ".repeat(10_000), "x (1), ".repeat(10_000)];
        for text in &two_at_a_step {
            shape(text, &mut out);
            assert!(out.len() <= MAX_TOKENS, "{}", out.len());
        }
        let exact = "word ".repeat(MAX_TOKENS);
        shape(&exact, &mut out);
        assert_eq!(out.len(), MAX_TOKENS);
        assert_eq!(out.last(), Some(&Tok::Text("word")));
        for odd in [
            "(é1 ü)",
            "[\u{1F600}5]",
            "=1",
            "é=1",
            "a=é",
            "((1))",
            "[1",
            "(",
            "é.ü.com",
        ] {
            shape(odd, &mut out);
        }
    }
}
