//! Loki's push API (`POST /loki/api/v1/push`) as Vector, Fluent Bit,
//! Promtail and Alloy send it: JSON, or snappy-compressed protobuf
//! (Loki's `push.proto`, whose messages are declared here with prost's
//! derive rather than generated, since four small messages are all it takes).
//!
//! Pure policy: [`read_json`] and [`read_protobuf`] turn a body into
//! [`Line`]s: each entry's line and time, its stream's labels and its
//! structured metadata as fields, the host from a `host`, `hostname`,
//! `host_name` or `nodename` label (else the sender's address), and the
//! level from a `level`, `detected_level`, `severity` or `lvl` label (else
//! from the line). A protobuf line that is not valid UTF-8 (Promtail sends
//! a file's bytes as they are) is kept with its bad bytes replaced.

use super::protobuf::{Schema, count_messages};
use super::{Budget, Line, ReadError, add_field, json_values};
use lookout_shared::parse::level_from_value;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Labels naming the host, in order of preference.
const HOST_LABELS: [&str; 4] = ["host", "hostname", "host_name", "nodename"];
/// Labels naming the level, in order of preference.
const LEVEL_LABELS: [&str; 4] = ["level", "detected_level", "severity", "lvl"];
/// Longest label set text read (Loki's own limit on a series is far lower).
const MAX_LABELS_BYTES: usize = 64 * 1024;

/// `PushRequest` of Loki's `pkg/push/push.proto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `StreamAdapter`: a label set in Prometheus text and its entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// `{name="value", ...}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The entries.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

/// `EntryAdapter`: one line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When it happened.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<ProtoTimestamp>,
    /// The line (a `string` in Loki's schema, read as bytes so that invalid
    /// UTF-8 costs its bad bytes, not the push).
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    /// Structured metadata.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
}

/// `LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// Name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// The message fields of [`PushRequest`] and below, for [`count_messages`].
const PUSH_SCHEMA: &Schema = &[
    &[(1, 1)],         // PushRequest.streams
    &[(2, 2)],         // StreamAdapter.entries
    &[(1, 3), (3, 4)], // EntryAdapter.timestamp, structured_metadata
    &[],               // Timestamp
    &[],               // LabelPairAdapter
];

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ProtoTimestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The JSON form: `{"streams": [{"stream": {...}, "values": [["<ns>", "<line>", {...}?], ...]}]}`.
#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    values: Vec<JsonEntry>,
}

/// `[time, line]` or `[time, line, structured metadata]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonEntry {
    Plain((JsonTime, String)),
    WithMetadata((JsonTime, String, BTreeMap<String, String>)),
}

/// Nanoseconds since the epoch, as the string Loki documents or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonTime {
    Text(String),
    Number(i64),
}

/// Reads a JSON push body; its lines may take at most `budget` bytes.
pub fn read_json(body: &[u8], peer: IpAddr, budget: u64) -> Result<Vec<Line>, ReadError> {
    json_values(body)?;
    let push: JsonPush =
        serde_json::from_slice(body).map_err(|err| ReadError::Invalid(format!("not a Loki push request: {err}")))?;
    let mut budget = Budget::new(budget);
    let mut lines = Vec::new();
    for (i, stream) in push.streams.into_iter().enumerate() {
        let labels = bounded(stream.stream.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for (j, entry) in stream.values.into_iter().enumerate() {
            let (time, line, metadata) = match entry {
                JsonEntry::Plain((time, line)) => (time, line, BTreeMap::new()),
                JsonEntry::WithMetadata((time, line, metadata)) => (time, line, metadata),
            };
            let nanos = match time {
                JsonTime::Text(text) => text.trim().parse::<i64>().map_err(|_| {
                    ReadError::Invalid(format!(
                        "streams[{i}].values[{j}][0]: {text:?} is not a time in nanoseconds"
                    ))
                })?,
                JsonTime::Number(nanos) => nanos,
            };
            let metadata = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let line = line_of(&labels, metadata, line, nanos.div_euclid(1_000_000), peer);
            budget.charge(&line)?;
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Reads a snappy-compressed protobuf push body; the decompressed size is
/// checked against `max` before anything is allocated for it, and its
/// lines may take at most `budget` bytes.
pub fn read_protobuf(body: &[u8], max: u64, peer: IpAddr, budget: u64) -> Result<Vec<Line>, ReadError> {
    let invalid = |err: &dyn std::fmt::Display| ReadError::Invalid(format!("the body is not snappy-compressed: {err}"));
    let size = snap::raw::decompress_len(body).map_err(|err| invalid(&err))?;
    if size as u64 > max {
        return Err(ReadError::TooLarge(format!(
            "the body decompresses to {size} bytes, more than ingest.max_decompressed_bytes ({max})"
        )));
    }
    let bytes = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|err| invalid(&err))?;
    count_messages(&bytes, PUSH_SCHEMA)?;
    let push = <PushRequest as prost::Message>::decode(bytes.as_slice())
        .map_err(|err| ReadError::Invalid(format!("not a Loki push request: {err}")))?;
    let mut budget = Budget::new(budget);
    let mut lines = Vec::new();
    for (i, stream) in push.streams.into_iter().enumerate() {
        let labels =
            parse_labels(&stream.labels).map_err(|err| ReadError::Invalid(format!("streams[{i}].labels: {err}")))?;
        let labels = bounded(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for entry in stream.entries {
            let time_ms = entry.timestamp.map(|t| {
                t.seconds
                    .saturating_mul(1000)
                    .saturating_add(i64::from(t.nanos) / 1_000_000)
            });
            let metadata: Vec<(String, String)> = entry
                .structured_metadata
                .iter()
                .map(|p| (lossy(&p.name), lossy(&p.value)))
                .collect();
            let metadata = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let line = line_of(&labels, metadata, lossy(&entry.line), time_ms.unwrap_or(0), peer);
            budget.charge(&line)?;
            lines.push(line);
        }
    }
    Ok(lines)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stream's labels within ingest's bounds on fields, made once per stream.
fn bounded<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for (name, value) in labels {
        add_field(&mut fields, name, value);
    }
    fields
}

/// One entry as a line. A time of 0 (none given) counts as none.
fn line_of<'a>(
    labels: &BTreeMap<String, String>,
    metadata: impl Iterator<Item = (&'a str, &'a str)>,
    line: String,
    time_ms: i64,
    peer: IpAddr,
) -> Line {
    let pick = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| labels.get(*name).filter(|v| !v.trim().is_empty()))
    };
    let host = pick(&HOST_LABELS).cloned().unwrap_or_else(|| peer.to_string());
    let level = pick(&LEVEL_LABELS).and_then(|value| level_from_value(value));
    let mut fields = labels.clone();
    for (name, value) in metadata {
        add_field(&mut fields, name, value);
    }
    Line {
        host,
        message: line,
        truncated: false,
        time_ms: (time_ms != 0).then_some(time_ms),
        level,
        fields,
    }
}

/// A Prometheus label set, `{name="value", ...}` (escapes `\\`, `\"`, `\n`).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    if text.len() > MAX_LABELS_BYTES {
        return Err(format!("longer than {MAX_LABELS_BYTES} bytes"));
    }
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or_else(|| format!("{text:?} is not `{{name=\"value\", ...}}`"))?;
    let mut labels = BTreeMap::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        // A name: Prometheus' `[a-zA-Z_][a-zA-Z0-9_]*`, or quoted (Prometheus 3).
        let name = if let Some(quoted) = rest.strip_prefix('"') {
            let (name, after) =
                unquote(quoted).ok_or_else(|| format!("a quoted label name does not end at {rest:?}"))?;
            rest = after;
            name
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            let name = rest[..end].to_owned();
            rest = &rest[end..];
            name
        };
        if name.is_empty() {
            return Err(format!("expected a label name at {rest:?}"));
        }
        rest = rest.trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected `=` after label {name}"))?
            .trim_start();
        let quoted = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a quoted value for label {name}"))?;
        let (value, after) = unquote(quoted).ok_or_else(|| format!("the value of label {name} does not end"))?;
        labels.insert(name, value);
        rest = after.trim_start();
        rest = match rest.strip_prefix(',') {
            Some(after) => after.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err("expected `,` or `}` after a label".into()),
        };
    }
    Ok(labels)
}

/// A Go-quoted string after its opening quote (`strconv.Quote`'s escapes:
/// `\n \t \r \\ \"`, `\xNN`, `\uNNNN`, `\UNNNNNNNN` and the rest of C's);
/// returns it and what follows the closing quote. A `\x` byte that is not
/// UTF-8 on its own becomes U+FFFD.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => {
                let (_, escape) = chars.next()?;
                let mut hex = |digits: usize| -> Option<u32> {
                    let mut code = 0;
                    for _ in 0..digits {
                        code = code * 16 + chars.next()?.1.to_digit(16)?;
                    }
                    Some(code)
                };
                let decoded = match escape {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    'x' => char::from_u32(hex(2)?).filter(char::is_ascii).unwrap_or('\u{fffd}'),
                    'u' => char::from_u32(hex(4)?).unwrap_or('\u{fffd}'),
                    'U' => char::from_u32(hex(8)?).unwrap_or('\u{fffd}'),
                    other => other,
                };
                value.push(decoded);
            }
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_shared::parse::Level;
    use prost::Message as _;

    fn peer() -> IpAddr {
        "192.0.2.3".parse().unwrap()
    }

    #[test]
    fn json_pushes_become_lines() {
        let body = br#"{"streams":[{"stream":{"job":"api","host":"web-3","level":"warn"},"values":[
            ["1700000000123456789","slow request"],
            ["1700000001000000000","with metadata",{"trace_id":"abc"}]]},
            {"stream":{"job":"batch"},"values":[["1700000002000000000","ERROR failed"]]}]}"#;
        let lines = read_json(body, peer(), 1 << 20).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].host, "web-3");
        assert_eq!(lines[0].time_ms, Some(1_700_000_000_123));
        assert_eq!(lines[0].level, Some(Level::Warn));
        assert_eq!(lines[0].fields["job"], "api");
        assert_eq!(lines[1].fields["trace_id"], "abc");
        assert_eq!(lines[2].host, "192.0.2.3");
        assert_eq!(lines[2].level, None, "left to the line's own words");
        assert!(
            read_json(
                br#"{"streams":[{"stream":{},"values":[["soon","x"]]}]}"#,
                peer(),
                1 << 20
            )
            .is_err()
        );
        assert!(read_json(b"{}", peer(), 1 << 20).is_err());
        assert!(matches!(read_json(body, peer(), 1000), Err(ReadError::TooLarge(_))));
    }

    #[test]
    fn protobuf_pushes_become_lines() {
        let push = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="api", host="web-4", msg="a \"quoted\\ value\nx"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(ProtoTimestamp {
                        seconds: 1_700_000_000,
                        nanos: 5_000_000,
                    }),
                    line: b"hello \xff".to_vec(),
                    structured_metadata: vec![LabelPair {
                        name: b"pod".to_vec(),
                        value: b"p-1".to_vec(),
                    }],
                }],
            }],
        };
        let body = snap::raw::Encoder::new().compress_vec(&push.encode_to_vec()).unwrap();
        let lines = read_protobuf(&body, 1 << 20, peer(), 1 << 20).unwrap();
        assert_eq!(lines[0].host, "web-4");
        assert_eq!(
            lines[0].message, "hello \u{fffd}",
            "invalid UTF-8 costs its bytes, not the push"
        );
        assert_eq!(lines[0].time_ms, Some(1_700_000_000_005));
        assert_eq!(lines[0].fields["msg"], "a \"quoted\\ value\nx");
        assert_eq!(lines[0].fields["pod"], "p-1");
        assert!(matches!(
            read_protobuf(&body, 4, peer(), 1 << 20),
            Err(ReadError::TooLarge(_))
        ));
        assert!(read_protobuf(b"\xff\xff\xff\xff\x0f", 1 << 20, peer(), 1 << 20).is_err());
    }

    #[test]
    fn label_sets_parse_or_say_why_not() {
        assert_eq!(parse_labels("{}").unwrap().len(), 0);
        assert_eq!(parse_labels(r#"{a="1",b="2",}"#).unwrap()["b"], "2");
        let escaped = parse_labels(r#"{a="tab\there\x41\u00e9\xff", "dotted.name"="v"}"#).unwrap();
        assert_eq!(escaped["a"], "tab\thereAé\u{fffd}");
        assert_eq!(escaped["dotted.name"], "v");
        for bad in [
            r#"a="1""#,
            r#"{a=1}"#,
            r#"{="1"}"#,
            r#"{a="1" b="2"}"#,
            r#"{a="1}"#,
            r#"{a="\u12"}"#,
        ] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }
}
