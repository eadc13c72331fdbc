//! Extracted fields through the real HTTP server: JSON, logfmt and
//! access-log lines are ingested, and the fields they carry are searched by
//! name with exact values, numeric comparisons and ranges, patterns, `has:`, and
//! `fields.<name>` where a name collides with a built-in one, in search,
//! histogram, facets and live tail alike.

mod common;

use common::*;
use lookout_aggregator::query::matcher::Matcher;

const BASE_MS: i64 = 1_700_000_000_000;

const LINES: &[&str] = &[
    r#"{"time":"2023-11-14T22:13:20.100Z","level":"error","msg":"checkout failed","status":500,"user":{"id":42},"trace_id":"abc","duration_ms":320}"#,
    r#"{"time":"2023-11-14T22:13:21Z","level":"info","msg":"ok","status":200,"user":{"id":7},"duration_ms":50}"#,
    r#"ts=2023-11-14T22:13:22Z level=warn msg="slow upstream" status=503 duration_ms=800 trace_id=def"#,
    r#"10.0.0.1 - - [14/Nov/2023:22:13:23 +0000] "GET /api/cart HTTP/1.1" 404 12 "-" "curl/8.0""#,
    r#"10.0.0.2 - - [14/Nov/2023:22:13:24 +0000] "GET /api/pay HTTP/1.1" 502 0 "-" "curl/8.0""#,
    r#"{"time":"2023-11-14T22:13:25Z","host":"inner-host","msg":"collides with the built-in host"}"#,
    "2023-11-14 22:13:26 INFO a line without fields",
];

/// Expected answers: query → indexes into `LINES`.
const CASES: &[(&str, &[usize])] = &[
    ("status:500", &[0]),
    ("status:>=500", &[0, 2, 4]),
    ("status:>=400 AND NOT status:>=500", &[3]),
    ("status:{404 TO 502]", &[0, 4]),
    ("duration_ms:[100 TO 500]", &[0]),
    ("duration_ms:<100", &[1]),
    ("user.id:42", &[0]),
    ("fields.user.id:7", &[1]),
    ("has:trace_id", &[0, 2]),
    ("trace_id:*", &[0, 2]),
    ("trace_id:def", &[2]),
    ("method:GET AND path:\"/api/pay\"", &[4]),
    ("fields.host:inner-host", &[5]),
    ("host:inner-host", &[]),
    ("msg:\"slow upstream\"", &[2]),
    // Patterns look for a text value's part, or the whole when anchored.
    (r"path:/^\/api\//", &[3, 4]),
    ("path:/pay$/", &[4]),
    ("msg:/slow|ok/", &[1, 2]),
    ("trace_id:/^(abc|def)$/", &[0, 2]),
    ("status:/5/", &[]),
    ("message:/^check/", &[0]),
    ("NOT has:status", &[5, 6]),
    ("status:>=500 OR level:info", &[0, 1, 2, 4, 6]),
    ("status:[* TO *]", &[0, 1, 2, 3, 4]),
];

async fn loaded() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let lines: Vec<Line<'_>> = LINES
        .iter()
        .map(|message| Line {
            message,
            read_at_ms: BASE_MS + 60_000,
        })
        .collect();
    let chunk = chunk(&stream("web-1", 1), "/var/log/app.log", 0, &lines);
    assert_eq!(
        server.ingest_ok(&batch("web-1", vec![chunk])).await,
        (LINES.len() as u64, 0)
    );
    (server, dir)
}

/// The sum of the `count`s of a list of histogram buckets or facet values.
fn counts(list: &serde_json::Value) -> u64 {
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extracted_fields_are_typed_and_searchable_everywhere() {
    let (server, _dir) = loaded().await;
    let all = server.get_ok("/api/v1/logs/search?order=asc&limit=100").await;
    let records = records_of(&all);
    assert_eq!(records.len(), LINES.len());
    let messages: Vec<&str> = records.iter().map(|hit| hit.message.as_str()).collect();
    assert_eq!(messages, LINES, "event times put the lines in this order");

    // A line's detail shows its fields, typed.
    let first = &all["hits"][0];
    assert_eq!(first["fields"]["status"], 500.0);
    assert_eq!(first["fields"]["user.id"], 42.0);
    assert_eq!(first["fields"]["trace_id"], "abc");
    let access = &all["hits"][4]["fields"];
    assert_eq!(access["client"], "10.0.0.2");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 502.0);
    assert!(all["hits"][6].get("fields").is_none(), "a line without fields has none");

    for (query, expected) in CASES {
        let want: Vec<&str> = expected.iter().map(|&i| LINES[i]).collect();
        let got = server.messages(&format!("q={}&order=asc&limit=100", enc(query))).await;
        assert_eq!(got, want, "search {query}");

        let histogram = server
            .get_ok(&format!("/api/v1/logs/histogram?q={}&buckets=5", enc(query)))
            .await;
        assert_eq!(counts(&histogram["buckets"]), want.len() as u64, "histogram {query}");

        let facets = server
            .get_ok(&format!("/api/v1/logs/facets?field=host&q={}", enc(query)))
            .await;
        assert_eq!(counts(&facets["values"]), want.len() as u64, "facets {query}");

        let mut matcher = Matcher::new(lookout_aggregator::query::parse(query).unwrap());
        let tailed: Vec<&str> = records
            .iter()
            .filter(|hit| matcher.matches(hit))
            .map(|hit| hit.message.as_str())
            .collect();
        assert_eq!(tailed, want, "live tail {query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_queries_that_cannot_mean_anything_are_refused() {
    let (server, _dir) = loaded().await;
    for (query, needle) in [
        ("status:[a TO 500]", "takes numbers"),
        ("has:", "needs a value"),
        ("has:*", "takes a field name"),
        ("fields:x", "needs a name"),
    ] {
        let answer = server.get(&format!("/api/v1/logs/search?q={}", enc(query))).await;
        assert_eq!(answer.status, 400, "{query}: {answer:?}");
        assert!(answer.error().contains(needle), "{query}: {}", answer.error());
    }
}
