//! Loki's push API (`POST /loki/api/v1/push`) as Vector, Fluent Bit,
//! Promtail and Alloy send it: JSON, or snappy-compressed protobuf
//! (Loki's `push.proto`, whose messages are declared here with prost's
//! derive rather than generated, since four small messages are all it takes).
//!
//! Pure policy: [`read_json`] and [`read_protobuf`] turn a body into
//! [`Line`]s: each entry's line and time, its stream's labels and its
//! structured metadata as fields, the host from a `host`, `hostname` or
//! `nodename` label (else the sender's address), and the level from a
//! `level`, `detected_level` or `severity` label (else from the line).

use super::Line;
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
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Structured metadata.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
}

/// `LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

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

/// Reads a JSON push body.
pub fn read_json(body: &[u8], peer: IpAddr) -> Result<Vec<Line>, String> {
    let push: JsonPush = serde_json::from_slice(body).map_err(|err| format!("not a Loki push request: {err}"))?;
    let mut lines = Vec::new();
    for (i, stream) in push.streams.into_iter().enumerate() {
        for (j, entry) in stream.values.into_iter().enumerate() {
            let (time, line, metadata) = match entry {
                JsonEntry::Plain((time, line)) => (time, line, BTreeMap::new()),
                JsonEntry::WithMetadata((time, line, metadata)) => (time, line, metadata),
            };
            let nanos = match time {
                JsonTime::Text(text) => text
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("streams[{i}].values[{j}][0]: {text:?} is not a time in nanoseconds"))?,
                JsonTime::Number(nanos) => nanos,
            };
            lines.push(line_of(
                &stream.stream,
                metadata,
                line,
                nanos.div_euclid(1_000_000),
                peer,
            ));
        }
    }
    Ok(lines)
}

/// Reads a snappy-compressed protobuf push body; the decompressed size is
/// checked against `max` before anything is allocated for it.
pub fn read_protobuf(body: &[u8], max: u64, peer: IpAddr) -> Result<Vec<Line>, String> {
    let size = snap::raw::decompress_len(body).map_err(|err| format!("the body is not snappy-compressed: {err}"))?;
    if size as u64 > max {
        return Err(format!(
            "the body decompresses to {size} bytes, more than ingest.max_decompressed_bytes ({max})"
        ));
    }
    let bytes = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|err| format!("the body is not snappy-compressed: {err}"))?;
    let push = <PushRequest as prost::Message>::decode(bytes.as_slice())
        .map_err(|err| format!("not a Loki push request: {err}"))?;
    let mut lines = Vec::new();
    for (i, stream) in push.streams.into_iter().enumerate() {
        let labels = parse_labels(&stream.labels).map_err(|err| format!("streams[{i}].labels: {err}"))?;
        for entry in stream.entries {
            let time_ms = entry.timestamp.map(|t| {
                t.seconds
                    .saturating_mul(1000)
                    .saturating_add(i64::from(t.nanos) / 1_000_000)
            });
            let metadata = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            lines.push(line_of(&labels, metadata, entry.line, time_ms.unwrap_or(0), peer));
        }
    }
    Ok(lines)
}

/// One entry as a line. A time of 0 (none given) counts as none.
fn line_of(
    labels: &BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
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
    fields.extend(metadata);
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
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(format!("expected a label name at {rest:?}"));
        }
        rest = rest[name_end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected `=` after label {name}"))?
            .trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a quoted value for label {name}"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("the value of label {name} does not end")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("the value of label {name} does not end")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        rest = rest[end + 1..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(after) => after.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err(format!("expected `,` or `}}` after label {name}")),
        };
    }
    Ok(labels)
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
        let lines = read_json(body, peer()).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].host, "web-3");
        assert_eq!(lines[0].time_ms, Some(1_700_000_000_123));
        assert_eq!(lines[0].level, Some(Level::Warn));
        assert_eq!(lines[0].fields["job"], "api");
        assert_eq!(lines[1].fields["trace_id"], "abc");
        assert_eq!(lines[2].host, "192.0.2.3");
        assert_eq!(lines[2].level, None, "left to the line's own words");
        assert!(read_json(br#"{"streams":[{"stream":{},"values":[["soon","x"]]}]}"#, peer()).is_err());
        assert!(read_json(b"{}", peer()).is_err());
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
                    line: "hello".into(),
                    structured_metadata: vec![LabelPair {
                        name: "pod".into(),
                        value: "p-1".into(),
                    }],
                }],
            }],
        };
        let body = snap::raw::Encoder::new().compress_vec(&push.encode_to_vec()).unwrap();
        let lines = read_protobuf(&body, 1 << 20, peer()).unwrap();
        assert_eq!(lines[0].host, "web-4");
        assert_eq!(lines[0].time_ms, Some(1_700_000_000_005));
        assert_eq!(lines[0].fields["msg"], "a \"quoted\\ value\nx");
        assert_eq!(lines[0].fields["pod"], "p-1");
        assert!(read_protobuf(&body, 4, peer()).unwrap_err().contains("more than"));
        assert!(read_protobuf(b"\xff\xff\xff\xff\x0f", 1 << 20, peer()).is_err());
    }

    #[test]
    fn label_sets_parse_or_say_why_not() {
        assert_eq!(parse_labels("{}").unwrap().len(), 0);
        assert_eq!(parse_labels(r#"{a="1",b="2",}"#).unwrap()["b"], "2");
        for bad in [r#"a="1""#, r#"{a=1}"#, r#"{="1"}"#, r#"{a="1" b="2"}"#, r#"{a="1}"#] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }
}
