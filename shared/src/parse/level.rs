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

use std::sync::LazyLock;

use memchr::memmem::Finder;

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
    if let Some(level) = klog(b).or_else(|| logcat_brief(b)).or_else(|| redis(b)) {
        return Some(level);
    }
    if let Some(level) = opening_word(b).or_else(|| access_log_status(b)) {
        return Some(level);
    }
    if b.trim_ascii_start().first() == Some(&b'{') {
        return scan(b, JSON_WINDOW, true);
    }
    // An explicit word beats the syslog priority: programs that log through
    // syslog often send everything at one priority and say the real level in
    // the text.
    scan(b, WINDOW, false)
        .or_else(|| syslog_priority(b))
        .or_else(|| tabular_http_status(b))
        .or_else(|| loose_http_status(b))
}

/// A level word that opens the line and labels it (`INFO: ...`,
/// `WARNING ...`): uvicorn and Python's default format write the level
/// first even before an access log's status.
fn opening_word(b: &[u8]) -> Option<Level> {
    let len = b
        .iter()
        .take(MAX_WORD + 1)
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let word_end = b.get(len);
    if !matches!(word_end, Some(b':' | b' ')) {
        return None;
    }
    let token = &b[..len];
    let labelled = word_end == Some(&b':') || token.iter().all(u8::is_ascii_uppercase);
    word(token).filter(|_| labelled && !token.eq_ignore_ascii_case(b"log"))
}

/// The level a key's value names: a word, or the number of a numeric
/// scale. For `level_field` overrides and JSON keys.
pub(super) fn from_value(value: &str) -> Option<Level> {
    let v = value.trim().as_bytes();
    word(v).or_else(|| letter(v)).or_else(|| numeric(v))
}

/// Keys that carry a line's level (JSON, logfmt, `key: value`), in the
/// order a JSON object's are tried; MongoDB's `"s"` is tried after them.
const LEVEL_KEYS: [&str; 12] = [
    "level",
    "severity",
    "lvl",
    "loglevel",
    "log_level",
    "log.level",
    "levelname",
    "level_name",
    "severity_text",
    "severitytext",
    "@l",
    "@level",
];

/// Keys holding a syslog severity number (journald's export, ECS).
const JSON_PRIORITY_KEYS: [&str; 3] = ["PRIORITY", "syslog.severity", "log.syslog.severity.code"];

/// Keys holding an HTTP status, for JSON access logs that state no level.
const JSON_STATUS_KEYS: [&str; 9] = [
    "status",
    "status_code",
    "http.response.status_code",
    "http.status_code",
    "response.status",
    "DownstreamStatus",
    "EdgeResponseStatus",
    "httpRequest.status",
    "sc_status",
];

/// The level a JSON object states: a level key (word, letter or number),
/// a syslog priority, a level word among its `tags` (Kibana), for an access
/// log its HTTP status, or what the line it wraps (`log`, `message`) says.
pub(super) fn from_json(object: &serde_json::Map<String, serde_json::Value>) -> Option<Level> {
    let text = |key: &str| super::fields::lookup(object, key).and_then(super::fields::scalar);
    let keys = || LEVEL_KEYS.iter().chain(&["s"]);
    let named = |v: String| {
        let v = v.trim().as_bytes();
        word(v).or_else(|| letter(v))
    };
    // A word (`levelName: "ERROR"`) is clearer than a number (`level: 4`).
    keys()
        .find_map(|key| text(key).and_then(named))
        .or_else(|| keys().find_map(|key| text(key).and_then(|v| from_value(&v))))
        .or_else(|| {
            JSON_PRIORITY_KEYS
                .iter()
                .find_map(|key| syslog_severity(text(key)?.as_bytes()))
        })
        .or_else(|| {
            let tags = super::fields::lookup(object, "tags")?.as_array()?;
            tags.iter()
                .filter_map(|tag| tag.as_str())
                .find_map(|tag| word(tag.as_bytes()))
        })
        .or_else(|| {
            JSON_STATUS_KEYS
                .iter()
                .find_map(|key| http_status(text(key)?.as_bytes()))
        })
        // A wrapped line (Docker's `log`, journald's `MESSAGE`) states its own.
        .or_else(|| ["log", "message", "msg"].iter().find_map(|key| detect(&text(key)?)))
}

/// The level an HTTP status stands for: 5xx error, 4xx warning, else info.
fn http_status(digits: &[u8]) -> Option<Level> {
    if digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(match digits[0] {
        b'5' => Level::Error,
        b'4' => Level::Warn,
        b'1'..=b'3' => Level::Info,
        _ => return None,
    })
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
        if b[i] == 0x1b {
            // A terminal colour (`ESC[31m`), as `docker compose` passes on.
            i = skip_ansi_escape(b, i);
            continue;
        }
        if is_separator(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < limit && !is_separator(b[i]) && b[i] != 0x1b {
            i += 1;
        }
        // A token cut off at `limit` is longer than MAX_WORD, so `word`
        // rejects it: no truncated prefix (`INFO` of `INFORMATIONAL_X`) matches.
        let token = &b[start..i];
        if let Some(level) = word(token) {
            let found = if json_only {
                after_level_key(b, start, true).is_some()
            } else if token.eq_ignore_ascii_case(b"log") {
                // PostgreSQL's `LOG:` is a level only as a message's label
                // (its `LOG:` is followed by two spaces), or as the field of
                // its CSV log before the SQLSTATE code.
                labels_message(b, start, i) || b[i..].starts_with(b":  ") || postgres_csv(b, start, i)
            } else if token.eq_ignore_ascii_case(b"system") {
                // MySQL 8's `[System]`.
                bracketed(b, start, i)
            } else {
                after_timestamp
                    || token.iter().all(u8::is_ascii_uppercase)
                    || bracketed(b, start, i)
                    || labels_message(b, start, i)
                    || after_level_key(b, start, false).is_some()
            };
            if found {
                return Some(level);
            }
        } else if follows_separator(b, start)
            && let Some((key, quoted)) = after_level_key(b, start, json_only)
        {
            // A value no word names: a number (pino's 30, GELF's 6) or a
            // letter (MongoDB's `"s":"I"`), only as a JSON value: in text,
            // `lvl=2` or `Priority: 1` mean something else.
            let level = match key {
                LevelKey::Level if quoted => numeric(token).or_else(|| letter(token)),
                LevelKey::Level => None,
                LevelKey::Priority => syslog_severity(token).filter(|_| quoted),
                LevelKey::Letter => letter(token),
            };
            if level.is_some() {
                return level;
            }
        } else if !json_only && let Some(level) = qualified(token, after_timestamp) {
            return Some(level);
        } else if !json_only && let Some(level) = bracketed_letter(b, start, i) {
            return Some(level);
        }
        timestamp_tokens &= token
            .iter()
            .all(|&c| c.is_ascii_digit() || matches!(c, b'-' | b'/' | b'.' | b'+' | b'T' | b'Z'));
        after_timestamp = timestamp_tokens;
    }
    None
}

/// Whether a `:` or `=` stands just before the token (a quote and spaces
/// between allowed): the cheap test before [`after_level_key`] looks for a
/// key.
fn follows_separator(b: &[u8], start: usize) -> bool {
    b[start.saturating_sub(4)..start]
        .iter()
        .rev()
        .find(|&&c| c != b'"' && c != b' ')
        .is_some_and(|&c| c == b':' || c == b'=')
}

/// A level joined to another word:
/// - after the time, a letter or level word before a `/` and a tag or
///   component (Android's `I/ActivityManager`, Icinga's `debug/Checker`),
///   or a lone letter (logcat's threadtime `... 2395 D Tag:`, MongoDB's
///   `... I NETWORK`);
/// - anywhere, an uppercase level after a channel (Monolog's
///   `local.ERROR:`), or any level after a syslog facility (`user.error`).
fn qualified(token: &[u8], after_timestamp: bool) -> Option<Level> {
    // Telegraf's `2022-01-26T20:08:15Z W! ...`.
    if after_timestamp && token.len() == 2 && token[1] == b'!' {
        return letter(&token[..1]);
    }
    if token.len() > 1 && !token.iter().any(|&c| c == b'/' || c == b'.') {
        return None;
    }
    if after_timestamp {
        if token.len() == 1 {
            return letter(token);
        }
        if let Some(slash) = token.iter().position(|&c| c == b'/')
            && slash + 1 < token.len()
        {
            let head = &token[..slash];
            return if head.len() == 1 { letter(head) } else { word(head) };
        }
    }
    let dot = token.iter().rposition(|&c| c == b'.')?;
    let (channel, level) = (&token[..dot], &token[dot + 1..]);
    let found = word(level)?;
    let facility = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "local0",
        "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ]
    .iter()
    .any(|f| channel.eq_ignore_ascii_case(f.as_bytes()));
    let monolog = !channel.is_empty() && level.iter().all(u8::is_ascii_uppercase);
    (facility || monolog).then_some(found)
}

/// A level letter in brackets: `[I]`, `(W)` (Gitea, qBittorrent), or
/// opening the line's bracket before the time (`[I 2020-03-23 ...]`,
/// Tornado, whose `C` is critical).
fn bracketed_letter(b: &[u8], start: usize, end: usize) -> Option<Level> {
    if end != start + 1 {
        return None;
    }
    let token = &b[start..end];
    match (start.checked_sub(1).map(|p| b[p]), b.get(end), b.get(end + 1)) {
        (Some(b'['), Some(b']'), _) | (Some(b'('), Some(b')'), _) => letter(token),
        (Some(b'['), Some(b' '), Some(c)) if start == 1 && c.is_ascii_digit() => match token {
            [b'C'] => Some(Level::Error),
            _ => letter(token),
        },
        _ => None,
    }
}

/// Skips a terminal escape sequence starting at `i` (`ESC [ 31 ; 1 m`).
fn skip_ansi_escape(b: &[u8], mut i: usize) -> usize {
    i += 1;
    if b.get(i) == Some(&b'[') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b';') {
            i += 1;
        }
        if b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
        }
    }
    i
}

/// PostgreSQL's CSV log: `...,0,LOG,00000,"message"`: the severity field
/// is followed by the five-character SQLSTATE.
fn postgres_csv(b: &[u8], start: usize, end: usize) -> bool {
    start > 0
        && b[start - 1] == b','
        && b.get(end) == Some(&b',')
        && b.get(end + 6) == Some(&b',')
        && b[end + 1..end + 6].iter().all(u8::is_ascii_alphanumeric)
}

/// How far into a line an access log's `"GET /path HTTP/1.1" 200` may end:
/// client, ident, user and time come first, then a request line with a URL
/// of any length, so the window is generous.
const ACCESS_WINDOW: usize = 4096;

/// An access log states no level but an HTTP status: 5xx is an error of the
/// server, 4xx a warning, anything else information, as log platforms map
/// them (a 5xx burst is what an error-rate alert on an access log is for).
/// These shapes place the status unmistakably:
/// - `"GET /path HTTP/1.1" 503` and `] "<any request>" 408` (Common and
///   Combined Log Format, Apache and nginx, even for a garbled request);
/// - `HTTP/1.1 200` unquoted (Atlassian, uWSGI's `(HTTP/1.1 200)`);
fn access_log_status(b: &[u8]) -> Option<Level> {
    let window = &b[..b.len().min(ACCESS_WINDOW)];
    let status_after = |rest: &[u8]| -> Option<Level> {
        let digits = rest.get(..3)?;
        if rest.get(3).is_some_and(|&c| !matches!(c, b' ' | b')' | b'\t')) {
            return None;
        }
        http_status(digits)
    };
    // `HTTP/1.1" 503`, `HTTP/2.0 200`, `(HTTP/1.1 200)`.
    static HTTP: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"HTTP/"));
    static REQUEST: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"] \""));
    for at in HTTP.find_iter(window) {
        let rest = &window[at + 5..];
        let version = rest
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_digit() || **c == b'.')
            .count();
        let rest = &rest[version..];
        let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
        if version > 0
            && let Some(rest) = rest.strip_prefix(b" ")
            && let Some(level) = status_after(rest)
        {
            return Some(level);
        }
    }
    // `[time] "request" 408`: the status follows the request's closing quote.
    if let Some(at) = REQUEST.find(window) {
        let request = &window[at + 3..];
        if let Some(close) = memchr::memchr(b'"', request)
            && let Some(rest) = request[close + 1..].strip_prefix(b" ")
            && let Some(level) = status_after(rest)
        {
            return Some(level);
        }
    }
    None
}

/// squid's `TCP_MISS/504` (its fourth field) and HAProxy's timers then
/// the status (`0/0/7/1457/1487 200`, after its syslog header, addresses,
/// accept date and frontend/backend names): tried when no level word is
/// found, as neither format writes one.
fn tabular_http_status(b: &[u8]) -> Option<Level> {
    let window = &b[..b.len().min(ACCESS_WINDOW)];
    // Both formats write a `/` in the status's token or before it.
    memchr::memchr(b'/', window)?;
    let mut tokens = tokens(window).take(24).enumerate();
    while let Some((i, token)) = tokens.next() {
        if i < 8
            && let Some(level) = squid_status(token)
        {
            return Some(level);
        }
        if haproxy_timers(token) {
            return tokens.next().and_then(|(_, t)| http_status(t));
        }
    }
    None
}

/// A status found by position in access logs without quotes or markers,
/// tried only when the line names no level: the first three-digit token
/// in the ten after an HTTP method (IIS and W3C extended logs, CloudFront),
/// or the one after three numbers (AWS load balancers' processing times),
/// among the first 32 tokens.
fn loose_http_status(b: &[u8]) -> Option<Level> {
    let window = &b[..b.len().min(ACCESS_WINDOW)];
    let method = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT"];
    // `0.010`, `-1`: a duration, not an address (`10.0.0.1`).
    let number = |t: &[u8]| {
        let digits = t.strip_prefix(b"-").unwrap_or(t);
        !digits.is_empty()
            && digits.iter().all(|c| c.is_ascii_digit() || *c == b'.')
            && digits.iter().filter(|&&c| c == b'.').count() <= 1
            && digits.first().is_some_and(u8::is_ascii_digit)
    };
    // Tokens since the method (`None` before it) and numbers in a row.
    let mut since_method: Option<usize> = None;
    let mut numbers = 0;
    for token in tokens(window).take(32) {
        if let Some(since) = since_method.as_mut() {
            *since += 1;
            if *since <= 10
                && let Some(level) = http_status(token)
            {
                return Some(level);
            }
        } else if method.iter().any(|m| token == m.as_bytes()) {
            since_method = Some(0);
        }
        if numbers >= 3
            && let Some(level) = http_status(token)
        {
            return Some(level);
        }
        numbers = if number(token) { numbers + 1 } else { 0 };
    }
    None
}

/// The space- or tab-separated tokens of `b`.
fn tokens(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&c| c == b' ' || c == b'\t').filter(|t| !t.is_empty())
}

/// squid's result code and status: `TCP_MISS/200`, `NONE/400`.
fn squid_status(token: &[u8]) -> Option<Level> {
    let slash = token.iter().position(|&c| c == b'/')?;
    let (code, status) = (&token[..slash], &token[slash + 1..]);
    let is_code = (code.starts_with(b"TCP_") || code.starts_with(b"UDP_") || code == b"NONE" || code == b"TAG_NONE")
        && code.iter().all(|c| c.is_ascii_uppercase() || *c == b'_');
    is_code.then(|| http_status(status)).flatten()
}

/// HAProxy's timers, `Tq/Tw/Tc/Tr/Tt` (`0/0/7/1457/1487`, `-1/-1/-1/-1/6001`,
/// `+99627` when logged early).
fn haproxy_timers(token: &[u8]) -> bool {
    let parts = token.split(|&c| c == b'/');
    let mut count = 0;
    for part in parts {
        let digits = part
            .strip_prefix(b"-")
            .or_else(|| part.strip_prefix(b"+"))
            .unwrap_or(part);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return false;
        }
        count += 1;
    }
    (4..=5).contains(&count)
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
        // Serilog (`INF`), logrus (`ERRO`), log15 (`eror`, `dbug`) and zap
        // abbreviate; java.util.logging says `SEVERE` and `FINE`;
        // PostgreSQL `LOG` and `DEBUG1`..`DEBUG5`; MySQL `[Note]`.
        b"error" | b"err" | b"erro" | b"eror" | b"fatal" | b"fata" | b"ftl" | b"crit" | b"critical" | b"alert"
        | b"emerg" | b"emergency" | b"severe" | b"failure" | b"panic" | b"pani" => Level::Error,
        b"warn" | b"warning" | b"wrn" => Level::Warn,
        // .NET's Microsoft.Extensions.Logging says `Information`.
        b"info" | b"inf" | b"notice" | b"information" | b"informational" | b"note" | b"log" | b"system" => Level::Info,
        b"debug" | b"debu" | b"dbug" | b"dbg" | b"fine" | b"debug1" | b"debug2" | b"debug3" | b"debug4" | b"debug5" => {
            Level::Debug
        }
        // supervisord's `BLAT` (blather) is its most verbose level.
        b"trace" | b"trac" | b"trc" | b"verbose" | b"vrb" | b"finer" | b"finest" | b"blat" => Level::Trace,
        _ => return None,
    })
}

/// The one-letter levels: `E W I D V F` (logcat, klog, MongoDB's `"s"`,
/// which also writes `D1`..`D5` for its debug verbosities).
fn letter(token: &[u8]) -> Option<Level> {
    let (&first, rest) = token.split_first()?;
    let debug_verbosity = first == b'D' && matches!(rest, [b'1'..=b'5']);
    if !(rest.is_empty() || debug_verbosity) {
        return None;
    }
    Some(match first {
        b'E' | b'F' => Level::Error,
        b'W' => Level::Warn,
        b'I' => Level::Info,
        b'D' => Level::Debug,
        b'V' | b'T' => Level::Trace,
        _ => return None,
    })
}

/// A numeric `level`: pino and bunyan's 10 (trace) to 60 (fatal) in steps
/// of ten, or syslog severities 0-7 (GELF's `level`).
fn numeric(token: &[u8]) -> Option<Level> {
    if token.len() > 2 || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = token.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    match n {
        0..=7 => syslog_severity(token),
        10 => Some(Level::Trace),
        20 => Some(Level::Debug),
        30 => Some(Level::Info),
        40 => Some(Level::Warn),
        50 | 60 => Some(Level::Error),
        _ => None,
    }
}

/// A syslog severity number 0-7 (journald's `PRIORITY`).
fn syslog_severity(token: &[u8]) -> Option<Level> {
    match token {
        [digit @ b'0'..=b'7'] => Level::from_syslog_severity(digit - b'0'),
        _ => None,
    }
}

/// Android logcat's brief format, `D/Tag( 123): ...`.
fn logcat_brief(b: &[u8]) -> Option<Level> {
    match b {
        [c @ (b'V' | b'D' | b'I' | b'W' | b'E' | b'F'), b'/', t, ..] if t.is_ascii_alphanumeric() => letter(&[*c]),
        _ => None,
    }
}

/// Redis: `1:M 14 Jan 2019 20:12:32.116 # msg` (and before 3.0
/// `[2932] 31 May 04:32:08 * msg` or no prefix at all), where the mark after
/// the time is the level: `.` debug, `-` verbose, `*` notice, `#` warning.
fn redis(b: &[u8]) -> Option<Level> {
    let digits = |b: &[u8]| b.iter().take(8).take_while(|c| c.is_ascii_digit()).count();
    let time = if let Some(rest) = b.strip_prefix(b"[") {
        let pid = digits(rest);
        rest.get(pid..)?.strip_prefix(b"] ")?
    } else {
        let pid = digits(b);
        match b.get(pid..)? {
            [b':', b'X' | b'C' | b'S' | b'M', b' ', ..] if pid > 0 => &b[pid + 3..],
            _ => b,
        }
    };
    // `14 Jan 2019 20:12:32.116` or `31 May 04:32:08`, then the mark
    // between spaces.
    let day = digits(time);
    let month = time.get(day + 1..day + 4)?;
    if !(1..=2).contains(&day) || time.get(day) != Some(&b' ') || !month.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let window = &time[..time.len().min(40)];
    let end = window
        .windows(3)
        .position(|w| w[0] == b' ' && w[2] == b' ' && matches!(w[1], b'#' | b'*' | b'-' | b'.'))?;
    let (stamp, tail) = time.split_at(end + 1);
    if stamp.iter().filter(|&&c| c == b':').count() != 2 {
        return None;
    }
    Some(match tail[0] {
        b'.' => Level::Debug,
        b'-' => Level::Trace,
        b'*' => Level::Info,
        _ => Level::Warn,
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
            j > 0 && b[j - 1] == b'['
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

/// Which kind of key a value belongs to.
#[derive(Clone, Copy)]
enum LevelKey {
    /// `level`, `severity`, ...: a word, a letter or a numeric level.
    Level,
    /// `priority`: a syslog severity number.
    Priority,
    /// MongoDB's `"s"`: a letter.
    Letter,
}

/// The token is the value of a key such as `level`: `level=warn`,
/// `level="warn"`, `"level":"error"`, `severity: info`. With `json`, the key
/// must be quoted and the separator a colon.
fn after_level_key(b: &[u8], start: usize, json: bool) -> Option<(LevelKey, bool)> {
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
        _ => return None,
    }
    j -= 1;
    while j > 0 && b[j - 1] == b' ' {
        j -= 1;
    }
    let quoted = j > 0 && b[j - 1] == b'"';
    if quoted {
        j -= 1;
    } else if json {
        return None;
    }
    let key_end = j;
    while j > 0 && (b[j - 1].is_ascii_alphanumeric() || matches!(b[j - 1], b'_' | b'.' | b'@')) {
        j -= 1;
    }
    let key = &b[j..key_end];
    let is = |names: &[&str]| names.iter().any(|k| key.eq_ignore_ascii_case(k.as_bytes()));
    if is(&LEVEL_KEYS) {
        Some((LevelKey::Level, quoted))
    } else if is(&JSON_PRIORITY_KEYS) {
        Some((LevelKey::Priority, quoted))
    } else if quoted && key == b"s" {
        Some((LevelKey::Letter, quoted))
    } else {
        None
    }
}

/// Go's glog/klog header: `E0102 15:04:05.123456 ...` (I, W, E or F, then
/// month and day, or year, month and day). The letter is the level, so nothing else is looked at.
fn klog(b: &[u8]) -> Option<Level> {
    let head = b.get(..9)?;
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let month_day = digits(1..5) && head[5] == b' ' && digits(6..8) && head[8] == b':';
    // C++ glog writes the year too: `I20210131 14:48:54.411655`.
    let with_year = digits(1..9) && b.get(9) == Some(&b' ') && digits(10..12) && b.get(12) == Some(&b':');
    if !(month_day || with_year) {
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
    // Octet-counting framing (RFC 6587) puts the length first: `215 <86>1 ...`.
    let counted = b.iter().take(6).take_while(|c| c.is_ascii_digit()).count();
    let b = match b.get(counted) {
        Some(b' ') if counted > 0 => &b[counted + 1..],
        _ => b,
    };
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
