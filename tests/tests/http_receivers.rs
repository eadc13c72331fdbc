//! The HTTP receivers against real senders: Debian's rsyslog with its
//! `omelasticsearch` module (`rsyslog-elasticsearch`) posting to `_bulk`
//! with the ingest token as the password of HTTP Basic; the OpenTelemetry
//! Python SDK's OTLP/HTTP exporter (`tests/otel_logs.py`); and a Loki push
//! client built here from Loki's published format (`pkg/push/push.proto`
//! and the JSON of its API docs), independently of the receiver's own
//! declarations. Every numbered line is searchable once, with its host,
//! time and level.

use lookout_tests::{Aggregator, INGEST_TOKEN, assert_recent, hit_number, numbered, rsyslog, test_dir};
use std::fs;
use std::process::Command;

const LINES: u64 = 500;

#[test]
fn rsyslog_omelasticsearch_posts_to_bulk() {
    let dir = test_dir("bulk_omelasticsearch");
    let aggregator = Aggregator::start(&dir);
    let port = aggregator.url.rsplit(':').next().expect("the URL has a port");
    let input = dir.join("input.log");
    let text: String = (0..LINES).map(|n| format!("lktbulk {}\n", numbered(n))).collect();
    fs::write(&input, text).unwrap();
    let config = format!(
        r#"global(workDirectory="WORKDIR" localHostName="relay-es")
module(load="imfile" mode="polling" PollingInterval="1")
module(load="omelasticsearch")
template(name="lookout-json" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="program" name="programname" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
input(type="imfile" File="{input}" Tag="lktbulk:" Severity="warning" ruleset="es")
ruleset(name="es") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" searchIndex="rsyslog-lines"
         template="lookout-json" bulkmode="on" esVersion.major="8" uid="rsyslog" pwd="{INGEST_TOKEN}"
         errorFile="{errors}" action.resumeRetryCount="-1")
}}
"#,
        input = input.display(),
        errors = dir.join("es-errors.json").display(),
    );
    let _rsyslogd = rsyslog::start(&dir, "rsyslogd", &config);
    let hits = aggregator.numbered_once("lktbulk", LINES);
    for hit in &hits {
        assert_eq!(hit["host"], "relay-es", "{hit}");
        assert_eq!(hit["level"], "warn", "{hit}");
        assert_eq!(hit["source"], "elasticsearch", "{hit}");
        assert_eq!(hit["fields"]["index"], "rsyslog-lines", "{hit}");
        assert_eq!(hit["fields"]["program"], "lktbulk", "{hit}");
        assert_recent(hit);
    }
    assert!(!dir.join("es-errors.json").exists(), "rsyslog saw no errors");
}

#[test]
fn opentelemetry_python_sdk_exports_over_otlp_http() {
    let dir = test_dir("otlp_python_sdk");
    let aggregator = Aggregator::start(&dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/otel_logs.py");
    let output = Command::new("python3")
        .args([
            script,
            &format!("{}/v1/logs", aggregator.url),
            INGEST_TOKEN,
            "lktotel",
            &LINES.to_string(),
        ])
        .output()
        .expect("python3 runs (scripts/test.sh installs the OpenTelemetry SDK)");
    assert!(output.status.success(), "the SDK's export failed: {output:?}");
    let hits = aggregator.numbered_once("lktotel", LINES);
    for hit in &hits {
        let n = hit_number(hit);
        assert_eq!(hit["host"], "otel-host", "{hit}");
        assert_eq!(hit["level"], if n % 2 == 1 { "warn" } else { "error" }, "{hit}");
        assert_eq!(hit["source"], "otlp", "{hit}");
        assert_eq!(hit["fields"]["service.name"], "lkt-checkout", "{hit}");
        assert_eq!(hit["fields"]["scope.name"], "lkt.shop", "{hit}");
        assert_eq!(hit["fields"]["order.id"], format!("o-{n}"), "{hit}");
        assert_recent(hit);
    }
}

/// Loki's `PushRequest`, `StreamAdapter`, `EntryAdapter` and
/// `google.protobuf.Timestamp`, as `pkg/push/push.proto` numbers them.
mod loki_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<Stream>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Stream {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<Entry>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
    }

    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// Line n's time: a fixed second plus n milliseconds.
fn loki_time_ms(n: u64) -> i64 {
    1_790_000_000_000 + n as i64
}

fn post_push(aggregator: &Aggregator, content_type: &str, body: Vec<u8>) {
    let mut response = lookout_tests::http()
        .post(format!("{}/loki/api/v1/push", aggregator.url))
        .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
        .header("Content-Type", content_type)
        .send(&body[..])
        .expect("the push is answered");
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(status, 204, "{content_type}: {text}");
}

#[test]
fn loki_push_in_json_and_snappy_protobuf() {
    use prost::Message as _;
    let dir = test_dir("loki_push");
    let aggregator = Aggregator::start(&dir);
    // JSON, as Loki's API documentation shows it, in pushes of 100 lines.
    for first in (0..LINES).step_by(100) {
        let values: Vec<serde_json::Value> = (first..first + 100)
            .map(|n| {
                let nanos = (loki_time_ms(n) * 1_000_000).to_string();
                serde_json::json!([nanos, format!("lktlokijson {}", numbered(n))])
            })
            .collect();
        let body = serde_json::json!({"streams": [{
            "stream": {"job": "lkt-api", "host": "loki-json", "level": "warn"},
            "values": values,
        }]});
        post_push(&aggregator, "application/json", body.to_string().into_bytes());
    }
    // Protobuf, snappy block-compressed, in pushes of 250.
    for first in (0..LINES).step_by(250) {
        let entries = (first..first + 250)
            .map(|n| loki_proto::Entry {
                timestamp: Some(loki_proto::Timestamp {
                    seconds: loki_time_ms(n).div_euclid(1000),
                    nanos: (loki_time_ms(n).rem_euclid(1000) * 1_000_000) as i32,
                }),
                line: format!("lktlokiproto {}", numbered(n)),
            })
            .collect();
        let push = loki_proto::PushRequest {
            streams: vec![loki_proto::Stream {
                labels: r#"{job="lkt-batch", host="loki-proto", level="error"}"#.to_owned(),
                entries,
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&push.encode_to_vec())
            .expect("snappy compresses");
        post_push(&aggregator, "application/x-protobuf", body);
    }
    for (word, host, level, job) in [
        ("lktlokijson", "loki-json", "warn", "lkt-api"),
        ("lktlokiproto", "loki-proto", "error", "lkt-batch"),
    ] {
        for hit in aggregator.numbered_once(word, LINES) {
            let n = hit_number(&hit);
            assert_eq!(hit["host"], host, "{hit}");
            assert_eq!(hit["level"], level, "{hit}");
            assert_eq!(hit["source"], "loki", "{hit}");
            assert_eq!(hit["fields"]["job"], job, "{hit}");
            let time: jiff::Timestamp = hit["timestamp"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .expect("a timestamp");
            assert_eq!(time.as_millisecond(), loki_time_ms(n), "the entry's own time: {hit}");
        }
    }
}

/// What a receiver answered is durable before the index commits it: pushes
/// answered under an interval longer than the test, then SIGKILL, and the
/// restarted aggregator has every line once, from its write-ahead log.
#[test]
fn answered_pushes_outlive_a_kill_before_the_commit() {
    let dir = test_dir("wal_kill");
    let mut aggregator = Aggregator::start_with(&dir, "", "[ingest]\ncommit_interval = \"1h\"\n");
    for first in (0..LINES).step_by(100) {
        let values: Vec<serde_json::Value> = (first..first + 100)
            .map(|n| {
                let nanos = (loki_time_ms(n) * 1_000_000).to_string();
                serde_json::json!([nanos, format!("lktwalkill {}", numbered(n))])
            })
            .collect();
        let body = serde_json::json!({"streams": [{"stream": {"host": "wal-kill"}, "values": values}]});
        post_push(&aggregator, "application/json", body.to_string().into_bytes());
    }
    assert_eq!(aggregator.count("lktwalkill"), 0, "answered, not yet committed");
    assert!(fs::metadata(dir.join("data/logs.wal")).is_ok_and(|m| m.len() > 0));
    aggregator.kill();
    aggregator.restart();
    assert_eq!(aggregator.count("lktwalkill"), LINES, "every answered line, once");
    let hits = aggregator.search(&[("q", "lktwalkill"), ("limit", "1000")]);
    let mut numbers: Vec<u64> = hits["hits"].as_array().unwrap().iter().map(hit_number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..LINES).collect::<Vec<_>>());
}
