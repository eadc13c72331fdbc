//! Fields of a line: every key and value of a JSON or logfmt line (and the
//! `key=value` pairs of plain text), the parts of an access-log line, and one
//! key's value for the per-source `timestamp = { field }` and `level_field`
//! overrides.
//!
//! Extraction is bounded per line ([`MAX_FIELDS_PER_LINE`], name and value
//! lengths) so that one hostile line cannot make the index grow without
//! bound; the number of distinct names per source is bounded by the
//! aggregator, which sees every line of a source.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::wire::Layout;

/// Most fields taken from one line; the rest are dropped.
pub const MAX_FIELDS_PER_LINE: usize = 64;
/// Longest field name kept (dotted path included).
pub const MAX_NAME_BYTES: usize = 128;
/// Longest text value kept; a longer one stays searchable in the message.
pub const MAX_TEXT_BYTES: usize = 512;
/// How far into a plain-text line `key=value` pairs are looked for.
const PLAIN_PAIRS_WINDOW: usize = 4096;

/// The first `max` bytes of `text`, cut at a character boundary.
pub fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How many keys of a JSON line are looked at, kept or not: a line of a
/// million keys costs no more than one of this many.
const MAX_KEYS_VISITED: usize = 1024;

/// How deep nested JSON objects are walked.
const MAX_DEPTH: usize = 8;

/// One field's value, typed: numbers compare as numbers (`status:>=500`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A JSON number, or a bare value that reads as one.
    Number(f64),
    /// Anything else (booleans as `true` / `false`).
    Text(String),
}

/// The line as a JSON object, when the layout says it is one (or, for
/// plain text, when it starts with `{`) and it parses.
pub(super) fn json_object(line: &str, layout: Layout) -> Option<serde_json::Map<String, Value>> {
    let trimmed = line.trim_start();
    let json = match layout {
        Layout::Json => true,
        Layout::Plain => trimmed.starts_with('{'),
        Layout::Logfmt => false,
    };
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(object)) if json => Some(object),
        _ => None,
    }
}

/// The scalars of a JSON object, nested keys dotted.
pub(super) fn from_json(object: &serde_json::Map<String, Value>) -> BTreeMap<String, FieldValue> {
    let mut fields = BTreeMap::new();
    flatten(&mut fields, "", object, 0, &mut 0);
    fields
}

/// The fields of a text line: an access log's parts and `key=value` pairs.
pub(super) fn from_text(line: &str, layout: Layout) -> BTreeMap<String, FieldValue> {
    let mut fields = BTreeMap::new();
    if layout == Layout::Plain {
        access_log(&mut fields, line);
    }
    // In plain text, pairs are looked for in the line's head: past it they
    // are more often data of the message (a query string, a dump) than the
    // program's own fields.
    let scanned = match layout {
        Layout::Plain => head(line, PLAIN_PAIRS_WINDOW),
        _ => line,
    };
    if !scanned.contains('=') {
        return fields;
    }
    for (key, value) in logfmt_pairs(scanned) {
        if fields.len() >= MAX_FIELDS_PER_LINE {
            break;
        }
        if !is_key(key) || value.starts_with('=') {
            continue;
        }
        // Plain text writes `a=1, b=2`: the separator is not the value.
        let value = if layout == Layout::Plain {
            value.trim_end_matches([',', ';'])
        } else {
            value.as_str()
        };
        insert(&mut fields, key, typed(value));
    }
    fields
}

/// The value at `key` of a JSON object: a top-level key of that exact name
/// (ECS writes `"log.level"` flat), else the dotted path into nested objects
/// (`event.created`); names compare without regard to case.
pub(super) fn lookup<'a>(object: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    let get = |object: &'a serde_json::Map<String, Value>, name: &str| {
        object.get(name).or_else(|| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    };
    get(object, key).or_else(|| {
        let mut parts = key.split('.');
        let mut value = get(object, parts.next()?)?;
        for part in parts {
            value = get(value.as_object()?, part)?;
        }
        Some(value)
    })
}

/// A logfmt key as programs write them: a letter or `_`, then letters,
/// digits, `_`, `.` and `-`. Keeps prose (`a==b`, `x=`) out.
fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A bare value: a number when it reads as a finite one, else text.
pub fn typed(value: &str) -> FieldValue {
    let numeric = value.bytes().next().is_some_and(|c| c.is_ascii_digit() || c == b'-')
        && value
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'e' | b'E' | b'+'));
    match value.parse::<f64>() {
        Ok(n) if numeric && n.is_finite() && !inexact_integer(value, n) => FieldValue::Number(n),
        _ => FieldValue::Text(value.to_owned()),
    }
}

/// Integers a number cannot hold exactly (past 2^53: trace and span ids)
/// stay text, so that `dd.trace_id:<id>` finds that id and no neighbour.
fn inexact_integer(written: &str, n: f64) -> bool {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let integer = written.bytes().all(|c| c.is_ascii_digit() || c == b'-');
    integer && n.abs() > EXACT
}

fn insert(fields: &mut BTreeMap<String, FieldValue>, name: &str, value: FieldValue) {
    if fields.len() >= MAX_FIELDS_PER_LINE || name.is_empty() || name.len() > MAX_NAME_BYTES {
        return;
    }
    if let FieldValue::Number(n) = value
        && !n.is_finite()
    {
        return;
    }
    if let FieldValue::Text(text) = &value
        && (text.is_empty() || text.len() > MAX_TEXT_BYTES)
    {
        return;
    }
    fields.entry(name.to_owned()).or_insert(value);
}

fn flatten(
    fields: &mut BTreeMap<String, FieldValue>,
    prefix: &str,
    object: &serde_json::Map<String, Value>,
    depth: usize,
    visited: &mut usize,
) {
    for (key, value) in object {
        *visited += 1;
        if fields.len() >= MAX_FIELDS_PER_LINE || *visited > MAX_KEYS_VISITED {
            return;
        }
        // A name too long to keep is not built, nor is anything below it.
        if prefix.len() + 1 + key.len() > MAX_NAME_BYTES {
            continue;
        }
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if depth < MAX_DEPTH => flatten(fields, &name, inner, depth + 1, visited),
            Value::Number(n) => {
                let written = n.to_string();
                if let Some(n) = n.as_f64() {
                    let value = if inexact_integer(&written, n) {
                        FieldValue::Text(written)
                    } else {
                        FieldValue::Number(n)
                    };
                    insert(fields, &name, value);
                }
            }
            Value::String(s) => insert(fields, &name, FieldValue::Text(s.clone())),
            Value::Bool(b) => insert(fields, &name, FieldValue::Text(b.to_string())),
            // Arrays, nulls and objects too deep stay in the message only.
            _ => {}
        }
    }
}

/// Common and Combined Log Format (Apache, nginx):
/// `client ident user [time] "method path protocol" status bytes "referrer"
/// "user agent"`, and nginx's request time in seconds after them when the
/// log format adds it: `client`, `user`, `method`, `path`, `protocol`,
/// `status`, `bytes`, `referrer`, `user_agent`, `duration_ms`.
fn access_log(fields: &mut BTreeMap<String, FieldValue>, line: &str) {
    let Some((client, rest)) = line.split_once(' ') else {
        return;
    };
    let Some((_ident, rest)) = rest.split_once(' ') else {
        return;
    };
    let Some((user, rest)) = rest.split_once(' ') else {
        return;
    };
    let Some(rest) = rest.strip_prefix('[') else {
        return;
    };
    let Some((_time, rest)) = rest.split_once("] \"") else {
        return;
    };
    let Some((request, rest)) = rest.split_once("\" ") else {
        return;
    };
    let mut parts = rest.splitn(3, ' ');
    let (Some(status), Some(bytes)) = (parts.next(), parts.next()) else {
        return;
    };
    if status.len() != 3 || !status.bytes().all(|c| c.is_ascii_digit()) {
        return;
    }
    insert(fields, "client", FieldValue::Text(client.to_owned()));
    if user != "-" {
        insert(fields, "user", FieldValue::Text(user.to_owned()));
    }
    let mut request_parts = request.splitn(3, ' ');
    if let (Some(method), Some(path)) = (request_parts.next(), request_parts.next()) {
        insert(fields, "method", FieldValue::Text(method.to_owned()));
        insert(fields, "path", FieldValue::Text(path.to_owned()));
        if let Some(protocol) = request_parts.next() {
            insert(fields, "protocol", FieldValue::Text(protocol.to_owned()));
        }
    }
    insert(fields, "status", typed(status));
    if bytes != "-" {
        insert(fields, "bytes", typed(bytes));
    }
    let Some(rest) = parts.next().and_then(|r| r.strip_prefix('"')) else {
        return;
    };
    let Some((referrer, rest)) = rest.split_once("\" \"") else {
        return;
    };
    if referrer != "-" {
        insert(fields, "referrer", FieldValue::Text(referrer.to_owned()));
    }
    let Some((agent, rest)) = rest.split_once('"') else {
        return;
    };
    insert(fields, "user_agent", FieldValue::Text(agent.to_owned()));
    if let Some(seconds) = rest.split_whitespace().next()
        && seconds.contains('.')
        && let FieldValue::Number(s) = typed(seconds)
    {
        insert(
            fields,
            "duration_ms",
            FieldValue::Number((s * 1000.0 * 1000.0).round() / 1000.0),
        );
    }
}

/// A JSON value as text: strings as they are, numbers and booleans as
/// written, one-key objects (MongoDB's `{"$date": ...}`) by their value.
pub(super) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        // MongoDB's `{"$date": ...}` and similar one-key wrappers.
        Value::Object(o) if o.len() == 1 => o.values().next().and_then(scalar),
        _ => None,
    }
}

/// The value of `key` in a logfmt line (`key=value`, `key="quoted value"`,
/// with `\"` and `\\` escapes inside quotes).
pub(super) fn logfmt_value(line: &str, key: &str) -> Option<String> {
    logfmt_pairs(line).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The `key=value` pairs of a logfmt line, in order. Bare words (keys
/// without `=`) are skipped; so is anything that does not parse.
pub(super) fn logfmt_pairs(line: &str) -> impl Iterator<Item = (&str, String)> {
    let mut rest = line;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                return None;
            }
            let key_len = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
            let key = &rest[..key_len];
            rest = &rest[key_len..];
            let Some(after) = rest.strip_prefix('=') else {
                continue;
            };
            let value;
            if let Some(quoted) = after.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                out.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => out.push(c),
                    }
                }
                value = out;
                rest = &quoted[end.min(quoted.len())..];
            } else {
                let len = after.find(char::is_whitespace).unwrap_or(after.len());
                value = after[..len].to_owned();
                rest = &after[len..];
            }
            if !key.is_empty() {
                return Some((key, value));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `line` as `LineRules::detect` extracts them.
    fn extract(line: &str, layout: Layout) -> BTreeMap<String, FieldValue> {
        match json_object(line, layout) {
            Some(object) => from_json(&object),
            None => from_text(line, layout),
        }
    }

    fn text(s: &str) -> FieldValue {
        FieldValue::Text(s.to_owned())
    }

    #[test]
    fn json_lines_give_their_scalars_dotted_and_typed() {
        let line = r#"{"level":"info","user":{"id":42,"name":"ann","admin":true},"tags":["a"],"n":null,"ms":1.5}"#;
        let fields = extract(line, Layout::Plain);
        assert_eq!(fields.get("user.id"), Some(&FieldValue::Number(42.0)));
        assert_eq!(fields.get("user.name"), Some(&text("ann")));
        assert_eq!(fields.get("user.admin"), Some(&text("true")));
        assert_eq!(fields.get("ms"), Some(&FieldValue::Number(1.5)));
        assert_eq!(fields.get("level"), Some(&text("info")));
        assert!(!fields.contains_key("tags") && !fields.contains_key("n"));
    }

    #[test]
    fn logfmt_and_key_value_pairs_in_text() {
        let fields = extract(
            r#"ts=2024-01-01T00:00:00Z level=warn msg="slow query" duration_ms=250 trace_id=abc123"#,
            Layout::Logfmt,
        );
        assert_eq!(fields.get("duration_ms"), Some(&FieldValue::Number(250.0)));
        assert_eq!(fields.get("msg"), Some(&text("slow query")));
        assert_eq!(fields.get("trace_id"), Some(&text("abc123")));
        let fields = extract(
            "acquire lock=233570404, flags=0x1, tag=\"View Lock\" a==b",
            Layout::Plain,
        );
        assert_eq!(fields.get("lock"), Some(&FieldValue::Number(233570404.0)));
        assert_eq!(fields.get("flags"), Some(&text("0x1")));
        assert_eq!(fields.get("tag"), Some(&text("View Lock")));
        assert_eq!(fields.len(), 3, "{fields:?}");
    }

    #[test]
    fn access_log_parts() {
        let line = r#"10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 503 2326 "http://r/" "curl/8.0 (x)" 0.250"#;
        let fields = extract(line, Layout::Plain);
        assert_eq!(fields.get("client"), Some(&text("10.0.0.1")));
        assert_eq!(fields.get("user"), Some(&text("frank")));
        assert_eq!(fields.get("method"), Some(&text("GET")));
        assert_eq!(fields.get("path"), Some(&text("/a?b=1")));
        assert_eq!(fields.get("status"), Some(&FieldValue::Number(503.0)));
        assert_eq!(fields.get("bytes"), Some(&FieldValue::Number(2326.0)));
        assert_eq!(fields.get("referrer"), Some(&text("http://r/")));
        assert_eq!(fields.get("user_agent"), Some(&text("curl/8.0 (x)")));
        assert_eq!(fields.get("duration_ms"), Some(&FieldValue::Number(250.0)));
        let common = extract(
            r#"::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 -"#,
            Layout::Plain,
        );
        assert_eq!(common.get("status"), Some(&FieldValue::Number(200.0)));
        assert!(!common.contains_key("bytes") && !common.contains_key("user"));
    }

    #[test]
    fn extraction_is_bounded() {
        let many: String = (0..500).map(|i| format!("k{i}={i} ")).collect();
        assert_eq!(extract(&many, Layout::Plain).len(), MAX_FIELDS_PER_LINE);
        let long = format!("a={} b={}", "x".repeat(MAX_TEXT_BYTES + 1), "y");
        assert_eq!(extract(&long, Layout::Plain).len(), 1);
        let wide_under_long = format!(
            "{{\"{}\":{{{}}}}}",
            "k".repeat(200_000),
            (0..20_000).map(|i| format!("\"a{i}\":0")).collect::<Vec<_>>().join(",")
        );
        assert!(extract(&wide_under_long, Layout::Json).is_empty());
        let ids = extract(r#"{"trace":1234567890123456789,"n":42}"#, Layout::Json);
        assert_eq!(ids.get("n"), Some(&FieldValue::Number(42.0)));
        assert_eq!(ids.get("trace"), Some(&text("1234567890123456789")));
        let pairs = extract("dd.trace_id=1234567890123456789 small=42", Layout::Logfmt);
        assert_eq!(pairs.get("dd.trace_id"), Some(&text("1234567890123456789")));
        assert_eq!(pairs.get("small"), Some(&FieldValue::Number(42.0)));
        let deep = format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100));
        assert!(extract(&deep, Layout::Json).is_empty());
        for line in [
            "",
            "=",
            "==",
            "a=",
            "\"",
            "{",
            "a=\"",
            "- - - [",
            "x y z [t] \"GET\" 2000 1",
        ] {
            let _ = extract(line, Layout::Plain);
        }
    }

    #[test]
    fn json_keys_flat_dotted_and_wrapped() {
        let line = r#"{"log.level":"warn","event":{"created":"2024-01-01T00:00:00Z","n":5},"t":{"$date":"x"}}"#;
        let json_value = |line: &str, key: &str| {
            let object = json_object(line, Layout::Plain)?;
            lookup(&object, key).and_then(scalar)
        };
        assert_eq!(json_value(line, "log.level").as_deref(), Some("warn"));
        assert_eq!(
            json_value(line, "event.created").as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(json_value(line, "EVENT.N").as_deref(), Some("5"));
        assert_eq!(json_value(line, "t").as_deref(), Some("x"));
        assert_eq!(json_value(line, "event").as_deref(), None);
        assert_eq!(json_value("not json", "a"), None);
        assert_eq!(json_value("[1]", "a"), None);
    }

    #[test]
    fn logfmt_pairs_with_quotes_and_bare_words() {
        let line = r#"ts=2024-01-01T00:00:00Z level=warn msg="slow \"disk\" here" bare dur=5ms ="x" k="unterminated"#;
        let pairs: Vec<(&str, String)> = logfmt_pairs(line).collect();
        assert_eq!(
            pairs,
            vec![
                ("ts", "2024-01-01T00:00:00Z".to_owned()),
                ("level", "warn".to_owned()),
                ("msg", "slow \"disk\" here".to_owned()),
                ("dur", "5ms".to_owned()),
                ("k", "unterminated".to_owned()),
            ]
        );
        assert_eq!(logfmt_value(line, "level").as_deref(), Some("warn"));
        assert_eq!(logfmt_value("a=1 é=ü", "é").as_deref(), Some("ü"));
    }
}
