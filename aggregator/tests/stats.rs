//! `| stats` and `| top` answer what a direct computation over the same
//! records answers. The records are nginx access-log lines made here from
//! known values (client, method, path, status, bytes, request time, event
//! time), shipped in several batches (several index segments) from three
//! hosts; the aggregator extracts the fields from the text, and every
//! table is checked against the values the lines were made from.

mod common;

use common::{Rng, Server, batch, chunk, config, enc, stream};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const HOSTS: [&str; 3] = ["web-1", "web-2", "api-1"];
const LINES_PER_HOST: usize = 700;
const BATCHES: usize = 4;
/// 2026-12-01T10:00:00Z.
const BASE_MS: i64 = 1_796_119_200_000;

/// One request as the reference sees it.
#[derive(Debug, Clone)]
struct Request {
    host: &'static str,
    client: String,
    method: &'static str,
    path: String,
    status: u32,
    /// `-` in the line when absent.
    bytes: Option<u64>,
    /// Only some lines log the request time.
    duration_ms: Option<u64>,
    time_ms: i64,
}

impl Request {
    fn line(&self) -> String {
        let time = jiff::Timestamp::from_millisecond(self.time_ms)
            .unwrap()
            .strftime("%d/%b/%Y:%H:%M:%S +0000");
        let bytes = self.bytes.map_or("-".to_owned(), |b| b.to_string());
        let mut line = format!(
            "{} - - [{time}] \"{} {} HTTP/1.1\" {} {bytes} \"-\" \"curl/8.5.0\"",
            self.client, self.method, self.path, self.status
        );
        if let Some(ms) = self.duration_ms {
            line.push_str(&format!(" {}.{:03}", ms / 1000, ms % 1000));
        }
        line
    }
}

fn requests() -> Vec<Request> {
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let paths = ["/", "/login", "/api/orders", "/api/users", "/static/app.js", "/health"];
    let mut out = Vec::new();
    for (h, host) in HOSTS.iter().enumerate() {
        for i in 0..LINES_PER_HOST {
            // Skewed: a few clients and paths are most of the traffic.
            let client = format!("10.0.{}.{}", rng.below(3), rng.skewed(40));
            let path = if rng.below(10) == 0 {
                format!("/api/orders/{}", rng.below(50))
            } else {
                paths[rng.below(6) * rng.below(6) / 5].to_owned()
            };
            let status = match rng.below(100) {
                0..=79 => 200,
                80..=86 => 304,
                87..=93 => 404,
                94..=96 => 500,
                97..=98 => 502,
                _ => 503,
            };
            out.push(Request {
                host,
                client,
                method: if rng.below(4) == 0 { "POST" } else { "GET" },
                path,
                status,
                bytes: (rng.below(8) != 0).then(|| rng.below(50_000) as u64),
                duration_ms: (rng.below(3) != 0).then(|| 1 + rng.skewed(3000) as u64),
                // Half an hour, out of order within a host.
                time_ms: BASE_MS + (h as i64 * 7 + i as i64 * 2_571 + rng.below(20_000) as i64) % 1_800_000,
            });
        }
    }
    out
}

async fn loaded() -> (Server, Vec<Request>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(config(tmp.path(), "")).await;
    let requests = requests();
    for (h, host) in HOSTS.iter().enumerate() {
        let texts: Vec<String> = requests.iter().filter(|r| r.host == *host).map(Request::line).collect();
        let mut offset = 0;
        for part in texts.chunks(LINES_PER_HOST.div_ceil(BATCHES)) {
            let lines = read_at_base(part);
            let sent = chunk(&stream(host, h as u64), "/var/log/nginx/access.log", offset, &lines);
            offset = sent.end;
            server.ingest_ok(&batch(host, vec![sent])).await;
        }
    }
    (server, requests, tmp)
}

/// An aggregator (with `extra` configuration) holding `texts` as one file's lines.
async fn one_file(texts: &[String], extra: &str) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(config(tmp.path(), extra)).await;
    let lines = read_at_base(texts);
    server
        .ingest_ok(&batch("h", vec![chunk(&stream("h", 0), "/var/log/a.log", 0, &lines)]))
        .await;
    (server, tmp)
}

/// `texts` as lines read at `BASE_MS`.
fn read_at_base(texts: &[String]) -> Vec<common::Line<'_>> {
    texts
        .iter()
        .map(|message| common::Line {
            message,
            read_at_ms: BASE_MS,
        })
        .collect()
}

/// The table of `q` as the API answers it: columns and rows.
async fn table(server: &Server, q: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let answer = server.get_ok(&format!("/api/v1/logs/stats?q={}", enc(q))).await;
    let columns = answer["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let rows = answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().clone())
        .collect();
    (columns, rows)
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The value at rank ⌊q·(n−1)⌋ of the sorted numbers.
fn exact_quantile(mut values: Vec<f64>, q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(q * (values.len() - 1) as f64) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aggregate_equals_a_direct_computation() {
    let (server, requests, _tmp) = loaded().await;
    assert_eq!(
        server.total("limit=0&q=has%3Astatus").await,
        requests.len() as u64,
        "every line's fields extracted"
    );

    // Every aggregate, per host.
    let (columns, rows) = table(
        &server,
        "* | stats count(), count(bytes), count_distinct(client), count_distinct(status), sum(bytes), \
         avg(duration_ms), min(duration_ms), max(duration_ms), p50(duration_ms), p95(duration_ms), \
         p99(duration_ms), min(_time), max(_time) by host",
    )
    .await;
    assert_eq!(columns.len(), 14);
    assert_eq!(columns[0], "host");
    assert_eq!(columns[13], "max(_time)");
    let mut hosts_sorted = HOSTS.to_vec();
    hosts_sorted.sort();
    let listed: Vec<&str> = rows.iter().map(|row| row[0].as_str().unwrap()).collect();
    assert_eq!(listed, hosts_sorted, "rows follow their keys without a sort");
    for row in &rows {
        let host = row[0].as_str().unwrap();
        let mine: Vec<&Request> = requests.iter().filter(|r| r.host == host).collect();
        let durations: Vec<f64> = mine.iter().filter_map(|r| r.duration_ms).map(|d| d as f64).collect();
        assert_eq!(row[1], mine.len() as u64, "{host} count()");
        assert_eq!(
            row[2],
            mine.iter().filter(|r| r.bytes.is_some()).count() as u64,
            "{host} count(bytes)"
        );
        let clients: BTreeSet<&str> = mine.iter().map(|r| r.client.as_str()).collect();
        assert_eq!(row[3], clients.len() as u64, "{host} count_distinct(client)");
        let statuses: BTreeSet<u32> = mine.iter().map(|r| r.status).collect();
        assert_eq!(row[4], statuses.len() as u64, "{host} count_distinct(status)");
        assert_eq!(
            row[5],
            mine.iter().filter_map(|r| r.bytes).sum::<u64>(),
            "{host} sum(bytes)"
        );
        let mean = durations.iter().sum::<f64>() / durations.len() as f64;
        assert!(
            (number(&row[6]) - mean).abs() <= mean * 1e-12,
            "{host} avg: {} vs {mean}",
            row[6]
        );
        assert_eq!(number(&row[7]), durations.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(
            number(&row[8]),
            durations.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
        for (at, q) in [(9, 0.5), (10, 0.95), (11, 0.99)] {
            let exact = exact_quantile(durations.clone(), q);
            let got = number(&row[at]);
            assert!(
                (got - exact).abs() <= exact * 0.01,
                "{host} {}: {got} is not within 1 % of {exact}",
                columns[at]
            );
        }
        let first = mine.iter().map(|r| r.time_ms / 1000 * 1000).min().unwrap();
        let last = mine.iter().map(|r| r.time_ms / 1000 * 1000).max().unwrap();
        assert_eq!(row[12], rfc3339(first), "{host} min(_time)");
        assert_eq!(row[13], rfc3339(last), "{host} max(_time)");
    }

    // A filter, a text key of an extracted field (the example).
    let (columns, rows) = table(&server, "status:>=500 | stats count() by path").await;
    assert_eq!(columns, ["path", "count()"]);
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.status >= 500) {
        *expected.entry(r.path.as_str()).or_default() += 1;
    }
    let got: BTreeMap<&str, u64> = rows
        .iter()
        .map(|row| (row[0].as_str().unwrap(), row[1].as_u64().unwrap()))
        .collect();
    assert_eq!(got, expected);
    assert!(expected.len() > 5, "several paths fail: {expected:?}");

    // Number keys, in number order; count(f) of a field some lines lack.
    let (_, rows) = table(&server, "* | stats count(), count(duration_ms) by status").await;
    let mut by_status: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for r in &requests {
        let entry = by_status.entry(r.status).or_default();
        entry.0 += 1;
        entry.1 += u64::from(r.duration_ms.is_some());
    }
    let got: Vec<(u32, (u64, u64))> = rows
        .iter()
        .map(|row| {
            (
                row[0].as_u64().unwrap() as u32,
                (row[1].as_u64().unwrap(), row[2].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(got, by_status.into_iter().collect::<Vec<_>>());

    // top: the most frequent first, ties by value, N rows.
    let (columns, rows) = table(&server, "method:GET | top 5 client").await;
    assert_eq!(columns, ["client", "count"]);
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for r in requests.iter().filter(|r| r.method == "GET") {
        *counts.entry(r.client.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.truncate(5);
    let got: Vec<(&str, u64)> = rows
        .iter()
        .map(|row| (row[0].as_str().unwrap(), row[1].as_u64().unwrap()))
        .collect();
    assert_eq!(got, ranked);

    // Pipes apply in the order written: the three most frequent, then by client.
    let (_, rows) = table(&server, "method:GET | top 3 client | sort by client").await;
    let mut three: Vec<(&str, u64)> = ranked.iter().take(3).copied().collect();
    three.sort();
    let got: Vec<(&str, u64)> = rows
        .iter()
        .map(|row| (row[0].as_str().unwrap(), row[1].as_u64().unwrap()))
        .collect();
    assert_eq!(got, three);

    // Time buckets with a second key, sorted by an alias, limited.
    let answer = server
        .get_ok(&format!(
            "/api/v1/logs/stats?q={}",
            enc("path:/^\\/api\\// | stats count() as n, sum(bytes) by _time(5m), host | sort by n desc | limit 4")
        ))
        .await;
    let mut buckets: HashMap<(i64, &str), (u64, u64)> = HashMap::new();
    for r in requests.iter().filter(|r| r.path.starts_with("/api/")) {
        let start = (r.time_ms / 1000 * 1000) / 300_000 * 300_000;
        let entry = buckets.entry((start, r.host)).or_default();
        entry.0 += 1;
        entry.1 += r.bytes.unwrap_or(0);
    }
    assert_eq!(answer["groups"], buckets.len() as u64);
    assert_eq!(answer["filter"], "path:/^\\/api\\//");
    let mut ranked: Vec<_> = buckets.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let want: Vec<Value> = ranked
        .iter()
        .take(4)
        .map(|((start, host), (n, bytes))| serde_json::json!([rfc3339(*start), host, n, bytes]))
        .collect();
    assert_eq!(answer["rows"].as_array().unwrap(), &want);

    // Counts by keyword fields alone (the facet count's fast path) and the
    // same counts through the general one (with another aggregate) agree.
    let (_, fast) = table(&server, "status:404 | stats count() by host").await;
    let (_, general) = table(&server, "status:404 | stats count(), count(status) by host").await;
    for (host, row) in HOSTS.iter().zip(&fast) {
        let want = requests.iter().filter(|r| r.status == 404 && r.host == row[0]).count() as u64;
        assert_eq!(row[1], want, "{host}");
    }
    assert_eq!(
        fast.iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
        general.iter().map(|r| r[1].clone()).collect::<Vec<_>>()
    );

    // No keys: one row, even when nothing matches.
    let (_, rows) = table(&server, "nosuchword | stats count(), avg(bytes)").await;
    assert_eq!(rows, [vec![Value::from(0), Value::Null]]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_cannot_be_made_is_refused_with_the_reason() {
    let (server, _requests, _tmp) = loaded().await;
    for (q, needle) in [
        ("error", "has no pipe"),
        ("| stats nope(x)", "position 8: unknown aggregate"),
        ("| stats count() by labels.env", "not kept as columns"),
        (
            "| stats count() by _time(1m), client, path, status, bytes, duration_ms, method, host, level",
            "more than 8 group keys",
        ),
    ] {
        let answer = server.get(&format!("/api/v1/logs/stats?q={}", enc(q))).await;
        assert_eq!(answer.status, 400, "{q}: {answer:?}");
        assert!(answer.error().contains(needle), "{q}: {}", answer.error());
    }
    // Lines are asked of search, tables of stats: each names the other.
    let answer = server
        .get(&format!("/api/v1/logs/search?q={}", enc("* | top client")))
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("/api/v1/logs/stats"), "{}", answer.error());
    server.stop().await;
}

/// The cells of a CSV text (RFC 4180: quoted cells, doubled quotes, CRLF).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_hold_the_matching_lines_and_tables() {
    let (server, requests, _tmp) = loaded().await;
    let failing: Vec<&Request> = requests.iter().filter(|r| r.status >= 500).collect();
    let server = &server;
    let export = |query: &str| {
        let path = format!("/api/v1/logs/export?{query}");
        async move { server.get(&path).await }
    };

    // NDJSON, oldest first: every failing request once, as search shows it.
    let answer = export(&format!("q={}&order=asc", enc("status:>=500"))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "application/x-ndjson");
    assert!(
        answer.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"lookout-")
    );
    assert_eq!(answer.headers["x-lookout-total"], failing.len().to_string().as_str());
    let body = answer.body.as_str().expect("NDJSON is not one JSON value");
    let lines: Vec<Value> = body.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), failing.len());
    let mut exported: Vec<&str> = lines.iter().map(|hit| hit["message"].as_str().unwrap()).collect();
    let times: Vec<&str> = lines.iter().map(|hit| hit["timestamp"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert!(
        lines
            .iter()
            .all(|hit| hit["fields"]["status"].as_f64().unwrap() >= 500.0)
    );
    let mut made: Vec<String> = failing.iter().map(|r| r.line()).collect();
    exported.sort();
    made.sort();
    assert_eq!(exported, made);

    // CSV with field columns; cells that would be formulas are defused.
    let answer = export(&format!(
        "q={}&format=csv&columns=status,path,bytes&limit=40",
        enc("method:POST")
    ))
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "text/csv; charset=utf-8");
    let posts: Vec<&Request> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(answer.headers["x-lookout-total"], posts.len().to_string().as_str());
    let rows = csv_rows(answer.body.as_str().unwrap());
    assert_eq!(
        rows[0],
        [
            "timestamp",
            "host",
            "source",
            "level",
            "message",
            "status",
            "path",
            "bytes"
        ]
    );
    assert_eq!(rows.len(), 41, "a header and `limit` rows");
    for row in &rows[1..] {
        let made = posts
            .iter()
            .find(|r| r.line() == row[4])
            .unwrap_or_else(|| panic!("{row:?} is not a POST line"));
        assert_eq!(row[5], made.status.to_string());
        assert_eq!(row[6], made.path);
        assert_eq!(row[7], made.bytes.map_or(String::new(), |b| b.to_string()));
        assert_eq!(row[1], made.host);
    }

    // A table: the stats answer's rows.
    let answer = export(&format!("q={}&format=csv", enc("* | top 3 client"))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let (_, top) = table(server, "* | top 3 client").await;
    let rows = csv_rows(answer.body.as_str().unwrap());
    assert_eq!(rows[0], ["client", "count"]);
    let want: Vec<Vec<String>> = top
        .iter()
        .map(|row| vec![row[0].as_str().unwrap().to_owned(), row[1].to_string()])
        .collect();
    assert_eq!(rows[1..], want[..]);
    let answer = export(&format!("q={}", enc("* | stats count() as n by host"))).await;
    let objects: Vec<Value> = answer
        .body
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), HOSTS.len());
    assert!(objects.iter().all(|o| o["n"] == LINES_PER_HOST as u64), "{objects:?}");

    for (query, needle) in [
        ("format=xml", "neither `ndjson` nor `csv`"),
        ("format=csv&columns=a,b%20c", "not a field name"),
        ("columns=status", "NDJSON lines carry all their fields"),
        ("format=csv&columns=status,fields.status", "named twice"),
        ("q=%22open", "position"),
    ] {
        let answer = export(query).await;
        assert_eq!(answer.status, 400, "{query}: {answer:?}");
        assert!(answer.error().contains(needle), "{query}: {}", answer.error());
    }
    let answer = server.get_with("/api/v1/logs/export", None).await;
    assert_eq!(answer.status, 401, "an export needs a token or a session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_stops_at_its_configured_bound() {
    let texts: Vec<String> = (0..25).map(|i| format!("line {i} of a small file")).collect();
    let (server, _tmp) = one_file(&texts, "[export]\nmax_lines = 10\n").await;
    let answer = server.get("/api/v1/logs/export").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-lookout-total"], "25");
    assert_eq!(answer.body.as_str().unwrap().lines().count(), 10);
    let answer = server.get("/api/v1/logs/export?limit=11").await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("limit"), "{}", answer.error());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_without_a_level_group_under_null_whichever_way_they_are_counted() {
    let texts: Vec<String> = (0..8)
        .map(|i| {
            if i < 3 {
                format!("ERROR disk {i} failed")
            } else {
                format!("plain line {i}")
            }
        })
        .collect();
    let (server, _tmp) = one_file(&texts, "").await;
    // Counts alone (the facet count) and with other aggregates (the columns).
    let (_, counted) = table(&server, "* | stats count() by level").await;
    assert_eq!(
        counted,
        [
            vec![Value::from("error"), Value::from(3)],
            vec![Value::Null, Value::from(5)]
        ]
    );
    let (_, aggregated) = table(
        &server,
        "* | stats count(), count(level), count_distinct(level) by level",
    )
    .await;
    assert_eq!(
        aggregated,
        [
            vec![Value::from("error"), Value::from(3), Value::from(3), Value::from(1)],
            vec![Value::Null, Value::from(5), Value::from(0), Value::from(0)],
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_by_an_extracted_field_keep_records_without_it_under_null() {
    let texts: Vec<String> = (0..9)
        .map(|i| match i % 3 {
            0 => format!("login user=ann attempt={i}"),
            1 if i < 5 => format!("login user=bob attempt={i}"),
            _ => format!("heartbeat {i}"),
        })
        .collect();
    let (server, _tmp) = one_file(&texts, "").await;
    // `count()` alone by one text key (counted per ordinal), then with another aggregate (groups).
    let (_, counted) = table(&server, "* | stats count() by user").await;
    let (_, grouped) = table(&server, "* | stats count(), count(user) by user").await;
    let expected = [("ann", 3), ("bob", 2)];
    let mut want: Vec<Vec<Value>> = expected
        .iter()
        .map(|(user, n)| vec![Value::from(*user), Value::from(*n)])
        .collect();
    want.push(vec![Value::Null, Value::from(4)]);
    assert_eq!(counted, want);
    let with_count_of_field: Vec<Vec<Value>> = want
        .iter()
        .map(|row| {
            let present = if row[0].is_null() { 0 } else { row[1].as_u64().unwrap() };
            vec![row[0].clone(), row[1].clone(), Value::from(present)]
        })
        .collect();
    assert_eq!(grouped, with_count_of_field);
    let (_, top) = table(&server, "* | top 1 user").await;
    assert_eq!(top, [vec![Value::Null, Value::from(4)]], "no value is a row of its own");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_beyond_four_at_once_wait_their_turn_with_429() {
    // Each export is far larger than what the connection and the body's
    // queue buffer (tens of MB against a few), so one whose client reads
    // nothing holds its place until the client goes.
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(config(tmp.path(), "")).await;
    let filler = "x".repeat(200);
    for part in 0..20u64 {
        let texts: Vec<String> = (0..10_000).map(|i| format!("line {part}-{i} {filler}")).collect();
        let lines = read_at_base(&texts);
        server
            .ingest_ok(&batch(
                "h",
                vec![chunk(&stream("h", part), "/var/log/big.log", 0, &lines)],
            ))
            .await;
    }
    let client = reqwest::Client::new();
    let open = || {
        client
            .get(format!("{}/api/v1/logs/export?limit=100000", server.base))
            .header("Authorization", format!("Bearer {}", common::API_TOKEN))
            .send()
    };
    // Four exports under way, their bodies unread.
    let mut running = Vec::new();
    for _ in 0..4 {
        let response = open().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["x-lookout-total"], "200000");
        running.push(response);
    }
    let refused = open().await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let body: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("4 exports are running"),
        "{body}"
    );
    // A client that goes frees its place.
    drop(running.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = open().await.unwrap();
        if response.status().as_u16() == 200 {
            let lines = response.text().await.unwrap().lines().count();
            assert_eq!(lines, 100_000, "a whole export once a place is free");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no place freed within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(running);
    server.stop().await;
}
