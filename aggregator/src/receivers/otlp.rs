//! OTLP/HTTP logs (`POST /v1/logs`) as OpenTelemetry SDKs and the
//! Collector export them: `ExportLogsServiceRequest` in protobuf or in
//! OTLP's JSON encoding.
//!
//! The messages are declared here, with prost's derive for protobuf and
//! serde for JSON, rather than taken from `opentelemetry-proto`, which
//! would bring the OpenTelemetry SDK and tonic along for a dozen structs.
//! Only what a log line needs is declared; unknown fields are skipped.
//!
//! Pure policy: [`read_protobuf`] and [`read_json`] give [`Line`]s: the
//! body as the text (a structured body as JSON), the record's time (else
//! the time it was observed), the level from the severity number (else its
//! text), the host from the resource's `host.name` (else the sender's
//! address), and as fields the resource's and the record's attributes,
//! the scope's name, the trace and span ids and the severity text (these
//! first, then attributes up to the bound on fields). A protobuf string
//! that is not valid UTF-8 is kept with its bad bytes replaced.
//! [`response`] is the answer, with OTLP's partial success when records
//! were refused.

use super::protobuf::{Schema, count_messages};
use super::{Budget, Line, ReadError, add_field, json_values};
use base64::Engine as _;
use lookout_shared::parse::{Level, level_from_value};
use prost::Message as _;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Attributes naming the host, in order of preference.
const HOST_KEYS: [&str; 2] = ["host.name", "host.hostname"];

/// `ExportLogsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportLogsServiceRequest {
    /// Logs by resource.
    #[prost(message, repeated, tag = "1")]
    #[serde(default, alias = "resource_logs")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `ResourceLogs`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLogs {
    /// The entity the logs come from.
    #[prost(message, optional, tag = "1")]
    #[serde(default)]
    pub resource: Option<Resource>,
    /// Logs by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    #[serde(default, alias = "scope_logs")]
    pub scope_logs: Vec<ScopeLogs>,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct Resource {
    /// Its attributes (`service.name`, `host.name`, ...).
    #[prost(message, repeated, tag = "1")]
    #[serde(default)]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeLogs`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeLogs {
    /// The instrumentation scope.
    #[prost(message, optional, tag = "1")]
    #[serde(default)]
    pub scope: Option<InstrumentationScope>,
    /// The records.
    #[prost(message, repeated, tag = "2")]
    #[serde(default, alias = "log_records")]
    pub log_records: Vec<LogRecord>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct InstrumentationScope {
    /// The logger's name.
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub name: String,
}

/// `LogRecord`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// When the event happened (0: unknown).
    #[prost(fixed64, tag = "1")]
    #[serde(default, alias = "time_unix_nano", deserialize_with = "u64_or_text")]
    pub time_unix_nano: u64,
    /// When it was observed.
    #[prost(fixed64, tag = "11")]
    #[serde(default, alias = "observed_time_unix_nano", deserialize_with = "u64_or_text")]
    pub observed_time_unix_nano: u64,
    /// 1–24 (`SeverityNumber`), 0 unspecified.
    #[prost(int32, tag = "2")]
    #[serde(default, alias = "severity_number", deserialize_with = "severity_number")]
    pub severity_number: i32,
    /// The level as the source named it.
    #[prost(string, tag = "3")]
    #[serde(default, alias = "severity_text")]
    pub severity_text: String,
    /// The message.
    #[prost(message, optional, tag = "5")]
    #[serde(default)]
    pub body: Option<AnyValue>,
    /// Its attributes.
    #[prost(message, repeated, tag = "6")]
    #[serde(default)]
    pub attributes: Vec<KeyValue>,
    /// Trace id (16 bytes; hex in JSON).
    #[prost(bytes = "vec", tag = "9")]
    #[serde(default, alias = "trace_id", deserialize_with = "hex_bytes")]
    pub trace_id: Vec<u8>,
    /// Span id (8 bytes; hex in JSON).
    #[prost(bytes = "vec", tag = "10")]
    #[serde(default, alias = "span_id", deserialize_with = "hex_bytes")]
    pub span_id: Vec<u8>,
    /// The event's name.
    #[prost(string, tag = "12")]
    #[serde(default, alias = "event_name")]
    pub event_name: String,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct KeyValue {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(message, optional, tag = "2")]
    #[serde(default)]
    pub value: Option<AnyValue>,
}

/// `AnyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct AnyValue {
    /// One of the kinds.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    #[serde(flatten)]
    pub value: Option<Value>,
}

/// `AnyValue.value`.
#[derive(Clone, PartialEq, prost::Oneof, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Value {
    /// Text (a `string` in OTLP's schema, read as bytes so that invalid
    /// UTF-8 costs its bad bytes, not the request).
    #[prost(bytes = "vec", tag = "1")]
    #[serde(alias = "string_value", deserialize_with = "text_bytes")]
    StringValue(Vec<u8>),
    /// A boolean.
    #[prost(bool, tag = "2")]
    #[serde(alias = "bool_value")]
    BoolValue(bool),
    /// An integer.
    #[prost(int64, tag = "3")]
    #[serde(alias = "int_value", deserialize_with = "i64_or_text")]
    IntValue(i64),
    /// A float.
    #[prost(double, tag = "4")]
    #[serde(alias = "double_value", deserialize_with = "f64_or_text")]
    DoubleValue(f64),
    /// A list.
    #[prost(message, tag = "5")]
    #[serde(alias = "array_value")]
    ArrayValue(ArrayValue),
    /// A map.
    #[prost(message, tag = "6")]
    #[serde(alias = "kvlist_value")]
    KvlistValue(KeyValueList),
    /// Bytes (base64 in JSON).
    #[prost(bytes = "vec", tag = "7")]
    #[serde(alias = "bytes_value", deserialize_with = "base64_bytes")]
    BytesValue(Vec<u8>),
}

/// `ArrayValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct ArrayValue {
    /// The items.
    #[prost(message, repeated, tag = "1")]
    #[serde(default)]
    pub values: Vec<AnyValue>,
}

/// `KeyValueList`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct KeyValueList {
    /// The entries.
    #[prost(message, repeated, tag = "1")]
    #[serde(default)]
    pub values: Vec<KeyValue>,
}

/// `ExportLogsServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceResponse {
    /// Set when some records were refused.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

/// `ExportLogsPartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsPartialSuccess {
    /// How many records were not stored.
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    /// Why.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// The message fields of [`ExportLogsServiceRequest`] and below, for
/// [`count_messages`].
const REQUEST_SCHEMA: &Schema = &[
    &[(1, 1)],         // 0 ExportLogsServiceRequest.resource_logs
    &[(1, 2), (2, 3)], // 1 ResourceLogs.resource, scope_logs
    &[(1, 5)],         // 2 Resource.attributes
    &[(1, 4), (2, 6)], // 3 ScopeLogs.scope, log_records
    &[],               // 4 InstrumentationScope
    &[(2, 7)],         // 5 KeyValue.value
    &[(5, 7), (6, 5)], // 6 LogRecord.body, attributes
    &[(5, 8), (6, 9)], // 7 AnyValue.array_value, kvlist_value
    &[(1, 7)],         // 8 ArrayValue.values
    &[(1, 5)],         // 9 KeyValueList.values
];

/// Reads a protobuf `ExportLogsServiceRequest`; its lines may take at most
/// `budget` bytes.
pub fn read_protobuf(body: &[u8], peer: IpAddr, budget: u64) -> Result<Vec<Line>, ReadError> {
    count_messages(body, REQUEST_SCHEMA)?;
    let request = ExportLogsServiceRequest::decode(body)
        .map_err(|err| ReadError::Invalid(format!("not an OTLP ExportLogsServiceRequest: {err}")))?;
    lines(request, peer, budget)
}

/// Reads a JSON-encoded `ExportLogsServiceRequest`; its lines may take at
/// most `budget` bytes.
pub fn read_json(body: &[u8], peer: IpAddr, budget: u64) -> Result<Vec<Line>, ReadError> {
    json_values(body)?;
    let request: ExportLogsServiceRequest = serde_json::from_slice(body)
        .map_err(|err| ReadError::Invalid(format!("not an OTLP ExportLogsServiceRequest: {err}")))?;
    lines(request, peer, budget)
}

/// The answer: empty when everything was stored, else the partial success.
/// In protobuf or JSON, as the request was.
pub fn response(rejected: u64, error_message: &str, json: bool) -> Vec<u8> {
    let partial_success = (rejected > 0).then(|| ExportLogsPartialSuccess {
        rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: error_message.to_owned(),
    });
    if json {
        let body = match &partial_success {
            None => serde_json::json!({}),
            Some(partial) => serde_json::json!({"partialSuccess": {
                "rejectedLogRecords": partial.rejected_log_records.to_string(),
                "errorMessage": partial.error_message,
            }}),
        };
        body.to_string().into_bytes()
    } else {
        ExportLogsServiceResponse { partial_success }.encode_to_vec()
    }
}

fn lines(request: ExportLogsServiceRequest, peer: IpAddr, budget: u64) -> Result<Vec<Line>, ReadError> {
    let mut budget = Budget::new(budget);
    let mut lines = Vec::new();
    for resource_logs in request.resource_logs {
        let attributes = resource_logs.resource.map(|r| r.attributes).unwrap_or_default();
        let resource = texts(attributes);
        let host = HOST_KEYS
            .iter()
            .find_map(|key| resource.iter().find(|(k, v)| k == key && !v.trim().is_empty()))
            .map_or_else(|| peer.to_string(), |(_, v)| v.clone());
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.map(|s| s.name).filter(|name| !name.is_empty());
            for record in scope_logs.log_records {
                let line = line(record, host.clone(), scope.as_deref(), &resource);
                budget.charge(&line)?;
                lines.push(line);
            }
        }
    }
    Ok(lines)
}

/// Attributes as `(key, text)`, in their order.
fn texts(attributes: Vec<KeyValue>) -> Vec<(String, String)> {
    attributes
        .into_iter()
        .filter_map(|kv| Some((kv.key, text_of_value(kv.value?.value?))))
        .collect()
}

/// One record as a line. Its fields, bounded as ingest bounds them, in the
/// order of priority: what identifies it (trace and span ids, severity,
/// event name, scope), then its own attributes, then its resource's.
fn line(record: LogRecord, host: String, scope: Option<&str>, resource: &[(String, String)]) -> Line {
    let mut fields = BTreeMap::new();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let ids = [("trace_id", &record.trace_id), ("span_id", &record.span_id)];
    for (name, bytes) in ids {
        if !bytes.is_empty() && bytes.len() <= 32 && bytes.iter().any(|b| *b != 0) {
            add_field(&mut fields, name, &hex(bytes));
        }
    }
    add_field(&mut fields, "severity_text", &record.severity_text);
    add_field(&mut fields, "event_name", &record.event_name);
    add_field(&mut fields, "scope.name", scope.unwrap_or_default());
    fields.retain(|_, value| !value.is_empty());
    for (key, value) in texts(record.attributes).iter().chain(resource) {
        if !fields.contains_key(key) {
            add_field(&mut fields, key, value);
        }
    }
    let nanos = if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    };
    let level = severity_level(record.severity_number).or_else(|| level_from_value(&record.severity_text));
    Line {
        host,
        message: record.body.map(text_of).unwrap_or_default(),
        truncated: false,
        time_ms: (nanos != 0).then(|| i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)),
        level,
        fields,
    }
}

/// OTLP's `SeverityNumber` ranges: TRACE 1–4, DEBUG 5–8, INFO 9–12, WARN
/// 13–16, ERROR 17–20, FATAL 21–24.
fn severity_level(number: i32) -> Option<Level> {
    match number {
        1..=4 => Some(Level::Trace),
        5..=8 => Some(Level::Debug),
        9..=12 => Some(Level::Info),
        13..=16 => Some(Level::Warn),
        17..=24 => Some(Level::Error),
        _ => None,
    }
}

/// A value as text: strings as they are, the rest as JSON.
fn text_of(value: AnyValue) -> String {
    value.value.map(text_of_value).unwrap_or_default()
}

/// Scalars as their text (bytes as base64), lists and maps as JSON.
fn text_of_value(value: Value) -> String {
    match value {
        Value::StringValue(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        },
        other => match json_of(&other) {
            serde_json::Value::String(text) => text,
            json => json.to_string(),
        },
    }
}

/// A value as JSON (nesting is bounded by prost's and serde_json's own
/// recursion limits when it was read).
fn json_of(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::StringValue(bytes) => J::String(String::from_utf8_lossy(bytes).into_owned()),
        Value::BoolValue(b) => J::Bool(*b),
        Value::IntValue(i) => J::from(*i),
        // JSON has no NaN or infinities: those as the text OTLP's JSON uses.
        Value::DoubleValue(f) if !f.is_finite() => J::String(
            match (f.is_nan(), f.is_sign_positive()) {
                (true, _) => "NaN",
                (false, true) => "Infinity",
                (false, false) => "-Infinity",
            }
            .to_owned(),
        ),
        Value::DoubleValue(f) => J::from(*f),
        Value::BytesValue(bytes) => J::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Value::ArrayValue(array) => J::Array(
            array
                .values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, json_of))
                .collect(),
        ),
        Value::KvlistValue(list) => J::Object(
            list.values
                .iter()
                .map(|kv| {
                    let value = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .map_or(J::Null, json_of);
                    (kv.key.clone(), value)
                })
                .collect(),
        ),
    }
}

/// A 64-bit integer as OTLP's JSON writes it: a string, or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText<T> {
    Number(T),
    Text(String),
}

fn u64_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    match NumberOrText::<u64>::deserialize(deserializer)? {
        NumberOrText::Number(n) => Ok(n),
        NumberOrText::Text(text) => text.parse().map_err(de::Error::custom),
    }
}

fn i64_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match NumberOrText::<i64>::deserialize(deserializer)? {
        NumberOrText::Number(n) => Ok(n),
        NumberOrText::Text(text) => text.parse().map_err(de::Error::custom),
    }
}

/// The severity number, or 0 for a name (protobuf's JSON mapping allows
/// `"SEVERITY_NUMBER_WARN"`; the text then decides).
fn severity_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    Ok(match NumberOrText::<i32>::deserialize(deserializer)? {
        NumberOrText::Number(n) => n,
        NumberOrText::Text(name) => {
            // `SEVERITY_NUMBER_WARN3`: the base number plus the digit, less one.
            let name = name.strip_prefix("SEVERITY_NUMBER_").unwrap_or_default();
            let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
            let step = name[base.len()..].parse::<i32>().map_or(0, |n| n.clamp(1, 4) - 1);
            match base {
                "TRACE" => 1 + step,
                "DEBUG" => 5 + step,
                "INFO" => 9 + step,
                "WARN" => 13 + step,
                "ERROR" => 17 + step,
                "FATAL" => 21 + step,
                _ => 0,
            }
        }
    })
}

/// A double as JSON writes it: a number, or a string for `NaN`,
/// `Infinity`, `-Infinity` (and any number in quotes, which protobuf's
/// JSON mapping allows).
fn f64_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    match NumberOrText::<f64>::deserialize(deserializer)? {
        NumberOrText::Number(n) => Ok(n),
        NumberOrText::Text(text) => match text.as_str() {
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.parse().map_err(de::Error::custom),
        },
    }
}

/// A JSON string as the bytes of [`Value::StringValue`].
fn text_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    String::deserialize(deserializer).map(String::into_bytes)
}

fn hex_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.len() % 2 != 0 {
        return Err(de::Error::custom("a hex id has an even number of digits"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| de::Error::custom(format!("{text:?} is not a hex id")))
        })
        .collect()
}

/// Base64 as protobuf's JSON mapping allows it: standard or URL-safe,
/// padded or not.
fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let text = String::deserialize(deserializer)?;
    let text = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> IpAddr {
        "192.0.2.5".parse().unwrap()
    }

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.as_bytes().to_vec())),
            }),
        }
    }

    #[test]
    fn protobuf_records_become_lines() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![string("service.name", "checkout"), string("host.name", "app-7")],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "shop.cart".into(),
                    }),
                    log_records: vec![LogRecord {
                        time_unix_nano: 1_700_000_000_250_000_000,
                        severity_number: 17,
                        severity_text: "ERROR".into(),
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(b"card declined \xff".to_vec())),
                        }),
                        attributes: vec![KeyValue {
                            key: "attempt".into(),
                            value: Some(AnyValue {
                                value: Some(Value::IntValue(3)),
                            }),
                        }],
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        ..LogRecord::default()
                    }],
                }],
            }],
        };
        let lines = read_protobuf(&request.encode_to_vec(), peer(), 1 << 20).unwrap();
        let line = &lines[0];
        assert_eq!(line.host, "app-7");
        assert_eq!(line.message, "card declined \u{fffd}", "invalid UTF-8 costs its bytes");
        assert_eq!(line.time_ms, Some(1_700_000_000_250));
        assert_eq!(line.level, Some(Level::Error));
        assert_eq!(line.fields["service.name"], "checkout");
        assert_eq!(line.fields["scope.name"], "shop.cart");
        assert_eq!(line.fields["attempt"], "3");
        assert_eq!(line.fields["trace_id"], "ab".repeat(16));
        assert_eq!(line.fields["span_id"], "cd".repeat(8));
        assert!(read_protobuf(b"\x0a\xff\xff\xff\xff\x0f", peer(), 1 << 20).is_err());
        assert!(matches!(
            read_protobuf(&request.encode_to_vec(), peer(), 100),
            Err(ReadError::TooLarge(_))
        ));
    }

    /// The example request of the OTLP specification's repository
    /// (`examples/logs.json` of open-telemetry/opentelemetry-proto, Apache-2.0).
    #[test]
    fn the_specification_example_reads() {
        let body = include_bytes!("../../../testdata/otlp/logs.json");
        let lines = read_json(body, peer(), 1 << 20).unwrap();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line.message, "Example log record");
        assert_eq!(line.host, "192.0.2.5", "the example names no host");
        assert_eq!(line.level, Some(Level::Info));
        assert_eq!(line.time_ms, Some(1_544_712_660_300));
        assert_eq!(line.fields["service.name"], "my.service");
        assert_eq!(line.fields["scope.name"], "my.library");
        assert_eq!(line.fields["trace_id"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(line.fields["int.attribute"], "10");
        assert_eq!(line.fields["array.attribute"], r#"["many","values"]"#);
        assert_eq!(line.fields["map.attribute"], r#"{"some.map.key":"some value"}"#);
    }

    #[test]
    fn what_ids_and_severity_say_is_kept_before_many_attributes() {
        let attributes: Vec<serde_json::Value> = (0..100)
            .map(|i| serde_json::json!({"key": format!("a{i:03}"), "value": {"doubleValue": "NaN"}}))
            .collect();
        let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
            "severityNumber": "SEVERITY_NUMBER_WARN3",
            "traceId": "0102030405060708090a0b0c0d0e0f10",
            "body": {"bytesValue": "aGk_"},
            "attributes": attributes,
        }]}]}]});
        let lines = read_json(body.to_string().as_bytes(), peer(), 1 << 20).unwrap();
        let line = &lines[0];
        assert_eq!(line.level, Some(Level::Warn));
        assert_eq!(line.fields.len(), lookout_shared::parse::fields::MAX_FIELDS_PER_LINE);
        assert_eq!(line.fields["trace_id"], "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(line.fields["a000"], "NaN");
        assert_eq!(line.message, "aGk/", "URL-safe base64 read, shown as standard");
    }

    #[test]
    fn answers_carry_the_partial_success() {
        assert_eq!(response(0, "", true), b"{}");
        assert!(response(0, "", false).is_empty());
        let json: serde_json::Value = serde_json::from_slice(&response(2, "host db-1 refused", true)).unwrap();
        assert_eq!(json["partialSuccess"]["rejectedLogRecords"], "2");
        let decoded = ExportLogsServiceResponse::decode(response(2, "why", false).as_slice()).unwrap();
        assert_eq!(decoded.partial_success.unwrap().rejected_log_records, 2);
    }
}
