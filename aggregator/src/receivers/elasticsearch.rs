//! The Elasticsearch bulk API as log shippers use it (Vector, Fluent Bit,
//! Filebeat, rsyslog's `omelasticsearch`, the OpenTelemetry Collector):
//! NDJSON of action lines, each `index` or `create` followed by its
//! document.
//!
//! Pure policy: [`read_bulk`] turns a body into one [`BulkItem`] per action,
//! each a [`Line`] or the error Elasticsearch would give for it;
//! [`response`] builds the answer shippers read (`errors`, and per item its
//! `status`), so a shipper retries or drops exactly the items it should.
//! `delete` and `update` are answered as errors: Lookout keeps logs, it does
//! not edit them. A line that is not an action makes the whole request a
//! 400, as in Elasticsearch.
//!
//! A document becomes a line: its `message` (or `log`, `msg`) is the text,
//! else the whole document; `@timestamp` the time; `host.name` (or
//! `hostname`, `host`) the host, else the sender's address; `log.level`
//! (or `level`, `severity`) the level; every other value a field, nested
//! objects flattened with dots (`http.response.status_code`), plus `index`.

use super::{Budget, Line, ReadError, add_field};
use lookout_shared::parse::fields::{MAX_FIELDS_PER_LINE, MAX_NAME_BYTES};
use lookout_shared::parse::level_from_value;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Keys whose text is the message, in order of preference.
const MESSAGE_KEYS: [&str; 3] = ["message", "log", "msg"];
/// Keys naming the host, in order of preference.
const HOST_KEYS: [&str; 4] = ["host.name", "host.hostname", "hostname", "host"];
/// Keys naming the level, in order of preference.
const LEVEL_KEYS: [&str; 4] = ["log.level", "level", "severity", "log_level"];
/// Most nesting followed when flattening a document (deeper values are
/// kept as JSON text).
const MAX_DEPTH: usize = 16;

/// One action of a bulk request.
#[derive(Debug, PartialEq)]
pub struct BulkItem {
    /// `index`, `create`, `update` or `delete`: the key of its result.
    pub action: &'static str,
    /// The target index (the action's `_index`, else the URL's).
    pub index: String,
    /// The `_id` the action gave.
    pub id: Option<String>,
    /// The document as a line, or why it is refused.
    pub outcome: Result<Line, ItemError>,
}

/// Why one item is refused, as Elasticsearch words it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemError {
    /// HTTP status of the item.
    pub status: u16,
    /// Elasticsearch's error type.
    pub kind: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl ItemError {
    /// A refusal with status `status`.
    pub fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> ItemError {
        ItemError {
            status,
            kind,
            reason: reason.into(),
        }
    }
}

/// Reads a bulk body. `url_index` is the `{index}` of `POST /{index}/_bulk`;
/// `peer` is the host of documents that name none; the lines may take at
/// most `budget` bytes. An error (a line that is not an action, an action
/// without its document, the budget spent) refuses the whole request.
pub fn read_bulk(body: &[u8], url_index: Option<&str>, peer: IpAddr, budget: u64) -> Result<Vec<BulkItem>, ReadError> {
    let mut budget = Budget::new(budget);
    let mut items = Vec::new();
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.trim_ascii().is_empty());
    while let Some((number, line)) = lines.next() {
        let malformed =
            |why: &str| ReadError::Invalid(format!("line {}: malformed action/metadata line: {why}", number + 1));
        let action: Value = serde_json::from_slice(line).map_err(|err| malformed(&format!("not JSON ({err})")))?;
        let Some((name, metadata)) = action
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(malformed("expected one key: index, create, update or delete"));
        };
        let action = match name.as_str() {
            "index" => "index",
            "create" => "create",
            "update" => "update",
            "delete" => "delete",
            other => return Err(malformed(&format!("unknown action `{other}`"))),
        };
        let metadata = metadata.as_object();
        let text = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let index = text("_index")
            .or_else(|| url_index.map(str::to_owned))
            .unwrap_or_default();
        let id = text("_id");
        let source = match action {
            "delete" => None,
            _ => Some(
                lines
                    .next()
                    .ok_or_else(|| {
                        ReadError::Invalid(format!(
                            "line {}: the `{action}` action has no document line",
                            number + 1
                        ))
                    })?
                    .1,
            ),
        };
        let outcome = match (action, source) {
            _ if index.is_empty() => Err(ItemError::new(
                400,
                "action_request_validation_exception",
                "index is missing: give `_index` or POST to /<index>/_bulk",
            )),
            ("index" | "create", Some(source)) => document(source, &index, peer),
            _ => Err(ItemError::new(
                400,
                "action_request_validation_exception",
                format!("Lookout stores log lines and does not {action} them; send `index` or `create` actions"),
            )),
        };
        if let Ok(line) = &outcome {
            budget.charge(line)?;
        }
        items.push(BulkItem {
            action,
            index,
            id,
            outcome,
        });
    }
    Ok(items)
}

/// One document as a line.
fn document(source: &[u8], index: &str, peer: IpAddr) -> Result<Line, ItemError> {
    let parsed: Value = serde_json::from_slice(source).map_err(|err| {
        ItemError::new(
            400,
            "document_parsing_exception",
            format!("the document is not JSON: {err}"),
        )
    })?;
    let Value::Object(document) = parsed else {
        return Err(ItemError::new(
            400,
            "document_parsing_exception",
            "the document is not a JSON object",
        ));
    };
    let message = first_text(&document, &MESSAGE_KEYS);
    let host = first_text(&document, &HOST_KEYS).filter(|(_, host)| !host.trim().is_empty());
    let level = first_text(&document, &LEVEL_KEYS);
    let time_ms = lookup(&document, "@timestamp").and_then(time_ms);
    let mut taken: Vec<&str> = [&message, &host, &level]
        .into_iter()
        .flatten()
        .map(|(key, _)| *key)
        .collect();
    if time_ms.is_some() {
        taken.push("@timestamp");
    }
    let mut fields = BTreeMap::new();
    add_field(&mut fields, "index", index);
    if let Some((_, level)) = level {
        add_field(&mut fields, "log.level", level);
    }
    flatten("", &document, 0, &taken, &mut fields);
    // Fluent Bit's `log` keeps the line end the container runtime wrote.
    let message = match message {
        Some((_, message)) => message.trim_end_matches(['\n', '\r']).to_owned(),
        None => Value::Object(document.clone()).to_string(),
    };
    Ok(Line {
        host: host.map_or_else(|| peer.to_string(), |(_, host)| host.to_owned()),
        message,
        truncated: false,
        time_ms,
        level: level.and_then(|(_, level)| level_from_value(level)),
        fields,
    })
}

/// The first of `keys` whose value is text, with it.
fn first_text<'a>(document: &'a Map<String, Value>, keys: &[&'static str]) -> Option<(&'static str, &'a str)> {
    keys.iter()
        .find_map(|key| Some((*key, lookup(document, key)?.as_str()?)))
}

/// The value at a dotted path, written as one key (`"host.name"`) or nested
/// (`{"host": {"name": …}}`).
fn lookup<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = object.get(path) {
        return Some(value);
    }
    let (head, rest) = path.split_once('.')?;
    lookup(object.get(head)?.as_object()?, rest)
}

/// Adds the non-object values of `object` as fields by dotted path, but
/// those `taken` for the line itself, while there is room (ingest's bound on
/// fields); paths longer than a field name may be are skipped before they
/// are built.
fn flatten(
    prefix: &str,
    object: &Map<String, Value>,
    depth: usize,
    taken: &[&str],
    fields: &mut BTreeMap<String, String>,
) {
    for (key, value) in object {
        if fields.len() >= MAX_FIELDS_PER_LINE {
            return;
        }
        if prefix.len() + 1 + key.len() > MAX_NAME_BYTES {
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if depth < MAX_DEPTH => flatten(&path, inner, depth + 1, taken, fields),
            Value::Null => {}
            _ if taken.contains(&path.as_str()) => {}
            Value::String(text) => add_field(fields, &path, text),
            other => add_field(fields, &path, &other.to_string()),
        }
    }
}

/// `@timestamp` as RFC 3339 text (Elasticsearch's `strict_date_optional_time`
/// as shippers write it; without a zone it is UTC, as in Elasticsearch) or
/// epoch milliseconds.
fn time_ms(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text
            .parse::<jiff::Timestamp>()
            .ok()
            .or_else(|| {
                let civil = text.parse::<jiff::civil::DateTime>().ok()?;
                civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
            })
            .map(|t| t.as_millisecond()),
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|ms| ms.is_finite() && ms.abs() < 1e15)
                .map(|ms| ms as i64)
        }),
        _ => None,
    }
}

/// The bulk answer: `took`, `errors`, and per item its result under its
/// action's name. `ids` holds the stored record ids of the items that were
/// lines, in order; an item's own `_id` is echoed where it gave one.
pub fn response(items: &[BulkItem], ids: &[String], took_ms: u64) -> Value {
    let mut ids = ids.iter();
    let mut errors = false;
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let result = match &item.outcome {
                Ok(_) => {
                    let stored = ids.next().cloned().unwrap_or_default();
                    json!({
                        "_index": item.index,
                        "_id": item.id.clone().unwrap_or(stored),
                        "_version": 1,
                        "result": "created",
                        "_shards": {"total": 1, "successful": 1, "failed": 0},
                        "_seq_no": 0,
                        "_primary_term": 1,
                        "status": 201,
                    })
                }
                Err(error) => {
                    errors = true;
                    json!({
                        "_index": item.index,
                        "_id": item.id,
                        "status": error.status,
                        "error": {"type": error.kind, "reason": error.reason},
                    })
                }
            };
            json!({ item.action: result })
        })
        .collect();
    json!({"took": took_ms, "errors": errors, "items": results})
}

/// The answer to `GET /` that clients probe before sending: an
/// Elasticsearch 8 cluster, which every current shipper speaks to.
pub fn root() -> Value {
    json!({
        "name": "lookout",
        "cluster_name": "lookout",
        "cluster_uuid": "lookout",
        "version": {
            "number": "8.11.0",
            "build_flavor": "default",
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })
}

/// The answer to `GET /_cluster/health`: a healthy single-node cluster.
pub fn cluster_health() -> Value {
    json!({
        "cluster_name": "lookout",
        "status": "green",
        "timed_out": false,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": 1,
        "active_shards": 1,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0
    })
}

/// The answer to `GET /_cat/health`: its one line of text.
pub fn cat_health() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{} {} lookout green 1 1 1 1 0 0 0 0 - 100.0%\n",
        now.as_second(),
        now.strftime("%H:%M:%S")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_shared::parse::Level;

    fn peer() -> IpAddr {
        "192.0.2.9".parse().unwrap()
    }

    #[test]
    fn actions_and_documents_become_items() {
        let body = br#"{"index":{"_index":"app-logs","_id":"a1"}}
{"@timestamp":"2024-05-06T07:08:09.123Z","message":"payment failed","host":{"name":"web-1"},"log":{"level":"ERROR"},"http":{"response":{"status_code":502}},"tags":["a","b"],"empty":null}
{"create":{}}
{"log":"plain line from fluent bit\n","stream":"stderr","kubernetes":{"pod_name":"p-1"}}
{"delete":{"_id":"x"}}
{"update":{"_id":"y"}}
{"doc":{"a":1}}
{"index":{}}
[1,2]
"#;
        let items = read_bulk(body, Some("fallback"), peer(), 1 << 20).unwrap();
        assert_eq!(items.len(), 5);
        let line = items[0].outcome.as_ref().unwrap();
        assert_eq!(
            (items[0].action, items[0].index.as_str(), items[0].id.as_deref()),
            ("index", "app-logs", Some("a1"))
        );
        assert_eq!(line.message, "payment failed");
        assert_eq!(line.host, "web-1");
        assert_eq!(line.level, Some(Level::Error));
        assert_eq!(line.time_ms, Some(1_714_979_289_123));
        assert_eq!(line.fields["http.response.status_code"], "502");
        assert_eq!(line.fields["tags"], r#"["a","b"]"#);
        assert_eq!(line.fields["index"], "app-logs");
        assert!(!line.fields.contains_key("empty") && !line.fields.contains_key("message"));

        let line = items[1].outcome.as_ref().unwrap();
        assert_eq!(items[1].index, "fallback");
        assert_eq!(line.message, "plain line from fluent bit", "without its line end");
        assert_eq!(line.host, "192.0.2.9", "the sender's address");
        assert_eq!(line.fields["kubernetes.pod_name"], "p-1");

        for (item, action) in items[2..4].iter().zip(["delete", "update"]) {
            assert_eq!(item.action, action);
            assert_eq!(item.outcome.as_ref().unwrap_err().status, 400);
        }
        assert_eq!(
            items[4].outcome.as_ref().unwrap_err().kind,
            "document_parsing_exception"
        );

        let answer = response(&items, &["s-1".to_owned(), "s-2".to_owned()], 3);
        assert_eq!(answer["errors"], true);
        assert_eq!(answer["items"][0]["index"]["status"], 201);
        assert_eq!(answer["items"][0]["index"]["_id"], "a1");
        assert_eq!(answer["items"][1]["create"]["_id"], "s-2");
        assert_eq!(answer["items"][2]["delete"]["status"], 400);
        assert_eq!(
            answer["items"][4]["index"]["error"]["type"],
            "document_parsing_exception"
        );
    }

    #[test]
    fn a_document_without_a_message_is_kept_whole() {
        let items = read_bulk(
            b"{\"index\":{\"_index\":\"i\"}}\n{\"event\":\"login\",\"user\":\"ann\"}\n",
            None,
            peer(),
            1 << 20,
        )
        .unwrap();
        let line = items[0].outcome.as_ref().unwrap();
        assert_eq!(line.message, r#"{"event":"login","user":"ann"}"#);
        assert_eq!(line.fields["user"], "ann");
    }

    #[test]
    fn requests_that_are_not_bulk_are_refused_whole() {
        for (body, expected) in [
            (&b"not json\n"[..], "line 1: malformed action"),
            (b"{\"index\":{}}\n", "line 1: the `index` action has no document line"),
            (b"{\"upsert\":{}}\n{}\n", "unknown action `upsert`"),
            (b"{\"index\":{},\"create\":{}}\n{}\n", "expected one key"),
            (b"\n\n{}\n", "line 3: malformed action"),
        ] {
            let err = read_bulk(body, Some("i"), peer(), 1 << 20).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let items = read_bulk(b"{\"index\":{}}\n{\"message\":\"m\"}\n", None, peer(), 1 << 20).unwrap();
        assert!(
            items[0]
                .outcome
                .as_ref()
                .unwrap_err()
                .reason
                .contains("index is missing")
        );
        assert!(read_bulk(b"", None, peer(), 1 << 20).unwrap().is_empty());
        let many = "{\"index\":{}}\n{\"message\":\"m\"}\n".repeat(100);
        assert!(matches!(
            read_bulk(many.as_bytes(), Some("i"), peer(), 10_000),
            Err(ReadError::TooLarge(_))
        ));
    }

    #[test]
    fn documents_cannot_make_fields_grow_past_their_bounds() {
        let long_key = "k".repeat(1 << 16);
        let inner: Map<String, Value> = (0..1000).map(|i| (format!("f{i}"), json!(i))).collect();
        let document =
            json!({ long_key: inner.clone(), "wide": inner, "message": "m", "@timestamp": "2024-01-01 00:00:00" });
        let body = format!("{{\"index\":{{}}}}\n{document}\n");
        let items = read_bulk(body.as_bytes(), Some("i"), peer(), 1 << 24).unwrap();
        let line = items[0].outcome.as_ref().unwrap();
        assert_eq!(line.fields.len(), MAX_FIELDS_PER_LINE);
        assert!(line.fields.keys().all(|k| k.len() <= MAX_NAME_BYTES));
        assert_eq!(line.time_ms, Some(1_704_067_200_000), "a time without a zone is UTC");
    }
}
