//! Level detection: finds the token that states a line's severity.
//!
//! The line is split into tokens at the punctuation that log formats put
//! around a level (spaces, brackets, quotes, `:`, `=`, ...), and the first
//! token that is a level word *in a position where formats put a level* wins.
//! A bare lowercase word is not enough: "user error in input" is prose, so a
//! lowercase or capitalised level word only counts when it is bracketed
//! (`[error]`), labels a message (`sshd[1]: error: ...`), follows nothing but a
//! timestamp, or is the value of a `level` key (`level=warn`,
//! `"level":"error"`). An all-uppercase level word (`INFO`, `WARN`, `FATAL`)
//! counts anywhere in the window: that is how log4j, logback, Python logging,
//! HDFS, Spark and BGL write the level, and prose rarely shouts those words.

use super::Level;

/// How far into a line a level token may start. Real formats put the level
/// within the first ~110 bytes (after a timestamp, a host, a node or thread
/// name); looking further would mostly find words of the message.
const WINDOW: usize = 160;

/// JSON objects put their fields in any order, often the message first, so
/// the `level` key is looked for further in. Only `"key": value` pairs count
/// there, which keeps words inside the message from matching.
const JSON_WINDOW: usize = 1024;

/// Length of the longest level word, `informational`.
const MAX_WORD: usize = 13;

/// See [`super::detect_level`].
pub(super) fn detect(line: &str) -> Option<Level> {
    let b = line.as_bytes();
    if let Some(level) = klog(b) {
        return Some(level);
    }
    if let Some(level) = access_log_status(b) {
        return Some(level);
    }
    if b.trim_ascii_start().first() == Some(&b'{') {
        return scan(b, JSON_WINDOW, true);
    }
    // An explicit word beats the syslog priority: programs that log through
    // syslog often send everything at one priority and say the real level in
    // the text.
    scan(b, WINDOW, false).or_else(|| syslog_priority(b))
}

/// Bytes that separate tokens: whitespace and the punctuation formats put
/// around or after a level. `.`, `_`, `-`, `/` and `$` are not separators, so
/// `ERROR_CODE`, `org.example.Error` and `no-error` stay single tokens.
fn is_separator(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'[' | b']' | b'(' | b')' | b'<' | b'>' | b'{' | b'}' | b'"' | b'\'' | b':' | b',' | b';' | b'=' | b'|'
        )
}

/// Walks the tokens that start within `window` bytes and returns the first
/// level word in a level position. With `json_only`, only the value of a
/// quoted `level`-like key counts.
fn scan(b: &[u8], window: usize, json_only: bool) -> Option<Level> {
    // A token that starts inside the window may end after it; scanning a few
    // bytes past is enough to tell whether it is short enough to be a level
    // word, without walking a huge token to its end.
    let limit = b.len().min(window + MAX_WORD + 1);
    // Whether every token so far looked like part of a timestamp (and there
    // was one): a level word right after a timestamp is a level in any case.
    let mut timestamp_tokens = true;
    let mut after_timestamp = false;
    let mut i = 0;
    while i < window.min(b.len()) {
        if is_separator(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < limit && !is_separator(b[i]) {
            i += 1;
        }
        // A token cut off at `limit` is longer than MAX_WORD, so `word`
        // rejects it: no truncated prefix (`INFO` of `INFORMATIONAL_X`) matches.
        let token = &b[start..i];
        if let Some(level) = word(token) {
            let found = if json_only {
                after_level_key(b, start, true)
            } else {
                after_timestamp
                    || token.iter().all(u8::is_ascii_uppercase)
                    || bracketed(b, start, i)
                    || labels_message(b, start, i)
                    || after_level_key(b, start, false)
            };
            if found {
                return Some(level);
            }
        }
        timestamp_tokens &= token
            .iter()
            .all(|&c| c.is_ascii_digit() || matches!(c, b'-' | b'/' | b'.' | b'+' | b'T' | b'Z'));
        after_timestamp = timestamp_tokens;
    }
    None
}

/// How far into a line an access log's `"GET /path HTTP/1.1" 200` may end:
/// client, ident, user and time come first, then a request line with a URL
/// of any length, so the window is generous.
const ACCESS_WINDOW: usize = 4096;

/// An access log line (Common / Combined Log Format, as Apache and nginx
/// write it) states no level but an HTTP status: 5xx is an error of the
/// server, 4xx a warning, anything else information, as log platforms map
/// them (a 5xx burst is what an error-rate alert on an access log is for).
fn access_log_status(b: &[u8]) -> Option<Level> {
    let window = &b[..b.len().min(ACCESS_WINDOW)];
    let at = memchr::memmem::find(window, b" HTTP/")?;
    // `HTTP/1.1" 503 ` : the protocol, a closing quote, the status.
    let rest = &window[at + 6..];
    let quote = rest.iter().take(4).position(|&c| c == b'"')?;
    let status = rest.get(quote + 1..quote + 5)?;
    let digits = &status[1..4];
    if status[0] != b' ' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if rest.get(quote + 5).is_some_and(|&c| c != b' ') {
        return None;
    }
    Some(match digits[0] {
        b'5' => Level::Error,
        b'4' => Level::Warn,
        b'1'..=b'3' => Level::Info,
        _ => return None,
    })
}

/// The level a word names, case-insensitively, if it names one.
fn word(token: &[u8]) -> Option<Level> {
    if !(3..=MAX_WORD).contains(&token.len()) {
        return None;
    }
    let mut lower = [0u8; MAX_WORD];
    for (dst, src) in lower.iter_mut().zip(token) {
        *dst = src.to_ascii_lowercase();
    }
    Some(match &lower[..token.len()] {
        b"error" | b"err" | b"fatal" | b"crit" | b"critical" | b"alert" | b"emerg" | b"emergency" | b"severe"
        | b"failure" | b"panic" => Level::Error,
        b"warn" | b"warning" => Level::Warn,
        b"info" | b"notice" | b"informational" => Level::Info,
        b"debug" => Level::Debug,
        b"trace" => Level::Trace,
        _ => return None,
    })
}

/// `[error]`, `<warn>`, `(info)`, and Apache 2.4's `[core:error]`.
fn bracketed(b: &[u8], start: usize, end: usize) -> bool {
    let (Some(prev), Some(&next)) = (start.checked_sub(1).map(|p| b[p]), b.get(end)) else {
        return false;
    };
    match (prev, next) {
        (b'[', b']') | (b'<', b'>') | (b'(', b')') => true,
        (b':', b']') => {
            // `[module:level]`: walk back over the module name to the bracket.
            let colon = start - 1;
            let mut j = colon;
            while j > 0 && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] == b'_') {
                j -= 1;
            }
            j > 0 && j < colon && b[j - 1] == b'['
        }
        _ => false,
    }
}

/// A level word that labels the message: `error: ...` at the start of the
/// line, or right after a syslog tag (`sshd[42]: fatal: ...`, `app] warning: ...`).
fn labels_message(b: &[u8], start: usize, end: usize) -> bool {
    if b.get(end) != Some(&b':') {
        return false;
    }
    let before = &b[..start];
    let trimmed = before.trim_ascii_end();
    before.is_empty() || (trimmed.len() < before.len() && matches!(trimmed.last(), Some(b':' | b']')))
}

/// The token is the value of a key such as `level`: `level=warn`,
/// `level="warn"`, `"level":"error"`, `severity: info`. With `json`, the key
/// must be quoted and the separator a colon.
fn after_level_key(b: &[u8], start: usize, json: bool) -> bool {
    let mut j = start;
    if j > 0 && b[j - 1] == b'"' {
        j -= 1;
    }
    while j > 0 && b[j - 1] == b' ' {
        j -= 1;
    }
    match j.checked_sub(1).map(|p| b[p]) {
        Some(b':') => {}
        Some(b'=') if !json => {}
        _ => return false,
    }
    j -= 1;
    while j > 0 && b[j - 1] == b' ' {
        j -= 1;
    }
    let quoted = j > 0 && b[j - 1] == b'"';
    if quoted {
        j -= 1;
    } else if json {
        return false;
    }
    let key_end = j;
    while j > 0 && (b[j - 1].is_ascii_alphanumeric() || matches!(b[j - 1], b'_' | b'.' | b'@')) {
        j -= 1;
    }
    let key = &b[j..key_end];
    [
        "level",
        "lvl",
        "severity",
        "loglevel",
        "log_level",
        "log.level",
        "levelname",
        "severity_text",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k.as_bytes()))
}

/// Go's glog/klog header: `E0102 15:04:05.123456 ...` (I, W, E or F, then
/// month and day). The letter is the level, so nothing else is looked at.
fn klog(b: &[u8]) -> Option<Level> {
    let head = b.get(..9)?;
    let digits = |r: std::ops::Range<usize>| head[r].iter().all(u8::is_ascii_digit);
    if !(digits(1..5) && head[5] == b' ' && digits(6..8) && head[8] == b':') {
        return None;
    }
    match head[0] {
        b'I' => Some(Level::Info),
        b'W' => Some(Level::Warn),
        b'E' | b'F' => Some(Level::Error),
        _ => None,
    }
}

/// The severity in a leading syslog priority `<PRI>` (RFC 3164 / 5424):
/// `PRI = facility * 8 + severity`, severities 0-3 (emerg..err) are errors,
/// 4 warning, 5-6 notice and info, 7 debug.
fn syslog_priority(b: &[u8]) -> Option<Level> {
    let rest = b.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&c| c == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pri = digits.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    if pri > 191 {
        return None;
    }
    Some(match pri % 8 {
        0..=3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    })
}
