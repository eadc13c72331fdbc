//! Ingest → search round trips through the real HTTP server: what a user of
//! the read API sees after agents have sent lines.

mod common;

use common::*;
use lookout_shared::parse::{Level, detect_level};
use lookout_shared::wire::IngestBatch;
use serde_json::Value;

const BASE_MS: i64 = 1_700_000_000_000;

/// One ingested line and what the API should say about it.
struct Sent {
    message: String,
    ts: i64,
    host: &'static str,
}

/// web-1 `/var/log/app.log` (50 lines, lines 40-44 read in the same
/// millisecond) and db-1 `/var/log/db.log` (30 lines, labelled, one truncated).
fn dataset() -> (Vec<IngestBatch>, Vec<Sent>) {
    let mut sent = Vec::new();
    let app: Vec<(String, i64)> = (0..50)
        .map(|i| {
            let message = match i % 10 {
                0 => format!("ERROR disk full on /data request {i}"),
                5 => format!("WARN disk is full soon request {i}"),
                _ if i % 2 == 0 => format!("GET /page/{i} 200 user=alice"),
                _ => format!("GET /page/{i} 200 user=bob"),
            };
            let ts = if (40..45).contains(&i) {
                BASE_MS + 40_000
            } else {
                BASE_MS + i * 1000
            };
            (message, ts)
        })
        .collect();
    let db: Vec<(String, i64)> = (0..30)
        .map(|i| (format!("query {i} took {}ms", i * 3), BASE_MS + 500 + i * 2000))
        .collect();
    for (message, ts) in &app {
        sent.push(Sent {
            message: message.clone(),
            ts: *ts,
            host: "web-1",
        });
    }
    for (message, ts) in &db {
        sent.push(Sent {
            message: message.clone(),
            ts: *ts,
            host: "db-1",
        });
    }
    let app_lines: Vec<Line<'_>> = app
        .iter()
        .map(|(m, t)| Line {
            message: m,
            read_at_ms: *t,
        })
        .collect();
    let db_lines: Vec<Line<'_>> = db
        .iter()
        .map(|(m, t)| Line {
            message: m,
            read_at_ms: *t,
        })
        .collect();
    let web_stream = stream("web-1", 1);
    // Two batches for web-1 so the data spans several commits.
    let first = chunk(&web_stream, "/var/log/app.log", 0, &app_lines[..20]);
    let second = chunk(&web_stream, "/var/log/app.log", first.end, &app_lines[20..]);
    let mut db_chunk = chunk(&stream("db-1", 1), "/var/log/db.log", 0, &db_lines);
    db_chunk.labels.insert("env".into(), "prod".into());
    db_chunk.labels.insert("k8s.app".into(), "db".into());
    db_chunk.records[3].truncated = true;
    let batches = vec![
        batch("web-1", vec![first]),
        batch("db-1", vec![db_chunk]),
        batch("web-1", vec![second]),
    ];
    (batches, sent)
}

async fn loaded() -> (Server, Vec<Sent>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let (batches, sent) = dataset();
    for b in &batches {
        let n = b.streams.iter().map(|s| s.records.len() as u64).sum();
        assert_eq!(server.ingest_ok(b).await, (n, 0));
    }
    (server, sent, dir)
}

fn count(sent: &[Sent], keep: impl Fn(&Sent) -> bool) -> u64 {
    sent.iter().filter(|s| keep(s)).count() as u64
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_searchable_as_soon_as_it_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let s = stream("web-1", 9);
    let line = Line {
        message: "hello searchable world",
        read_at_ms: BASE_MS,
    };
    server
        .ingest_ok(&batch("web-1", vec![chunk(&s, "/var/log/x.log", 0, &[line])]))
        .await;
    // No waiting: the answer comes after commit and reader reload.
    let body = server.get_ok("/api/v1/logs/search?q=searchable").await;
    assert_eq!(body["total"], 1);
    let hit = &body["hits"][0];
    assert_eq!(hit["message"], "hello searchable world");
    assert_eq!(hit["host"], "web-1");
    assert_eq!(hit["source"], "/var/log/x.log");
    assert_eq!(hit["timestamp"], rfc3339(BASE_MS));
    assert_eq!(hit["id"], format!("{s}-0"));
    assert!(body["took_ms"].is_u64());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_filters_and_totals_are_exact() {
    let (server, sent, _dir) = loaded().await;
    assert_eq!(server.total("").await, 80);
    let web = count(&sent, |s| s.host == "web-1");
    assert_eq!(web, 50);
    assert_eq!(server.total("q=host:web-1").await, web);
    assert_eq!(server.total("host=web-1").await, web);
    assert_eq!(server.total("host=web-2").await, 0);
    assert_eq!(
        server.total(&format!("q={}", enc("source:\"/var/log/db.log\""))).await,
        30
    );
    assert_eq!(server.total(&format!("source={}", enc("/var/log/db.log"))).await, 30);
    assert_eq!(server.total("q=labels.env:prod").await, 30);
    assert_eq!(server.total(&format!("q={}", enc("labels.env:/^pr/"))).await, 30);
    assert_eq!(server.total(&format!("q={}", enc("labels.env:/^rod/"))).await, 0);
    // A label's name is one key, dots and all.
    assert_eq!(server.total("q=labels.k8s.app:db").await, 30);
    assert_eq!(server.total(&format!("q={}", enc("labels.k8s.app:/^d/"))).await, 30);
    assert_eq!(server.total(&format!("q={}", enc("source:/db\\.log$/"))).await, 30);
    assert_eq!(
        server.total(&format!("q={}", enc("source:/var/log/db.log"))).await,
        30,
        "a path, not a pattern"
    );
    let phrase = count(&sent, |s| s.message.contains("disk full"));
    assert_eq!(server.total(&format!("q={}", enc("\"disk full\""))).await, phrase);
    let both_words = count(&sent, |s| s.message.contains("disk") && s.message.contains("full"));
    assert!(both_words > phrase);
    assert_eq!(
        server.total(&format!("q={}", enc("disk full"))).await,
        both_words,
        "words AND by default"
    );
    let disk_or_query = count(&sent, |s| s.message.contains("disk") || s.message.contains("query"));
    assert_eq!(
        server.total(&format!("q={}", enc("disk OR query"))).await,
        disk_or_query
    );
    assert_eq!(
        server.total(&format!("q={}", enc("NOT disk"))).await,
        80 - count(&sent, |s| s.message.contains("disk"))
    );
    let alice = count(&sent, |s| s.message.contains("alice"));
    assert_eq!(server.total(&format!("q={}", enc("alice AND host:web-1"))).await, alice);
    assert_eq!(server.total(&format!("q={}&host=db-1", enc("alice"))).await, 0);
    // Levels come from the shared detector, whatever it recognises today.
    for level in [Level::Error, Level::Warn] {
        let expected = count(&sent, |s| detect_level(&s.message) == Some(level));
        assert_eq!(server.total(&format!("q=level:{level}")).await, expected);
        assert_eq!(server.total(&format!("level={level}")).await, expected);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_ranges_take_rfc3339_and_unix_ms() {
    let (server, sent, _dir) = loaded().await;
    let (start, end) = (BASE_MS + 10_000, BASE_MS + 20_000);
    let expected = count(&sent, |s| s.ts >= start && s.ts < end);
    assert!(expected > 0);
    let query = format!("start={start}&end={}", enc(&rfc3339(end)));
    assert_eq!(server.total(&query).await, expected);
    let body = server.get_ok(&format!("/api/v1/logs/search?{query}&limit=1000")).await;
    for hit in body["hits"].as_array().unwrap() {
        let ts: jiff::Timestamp = hit["timestamp"].as_str().unwrap().parse().unwrap();
        assert!((start..end).contains(&ts.as_millisecond()), "{hit}");
    }
    assert_eq!(server.total(&format!("start={}", BASE_MS + 1_000_000)).await, 0);
    server.stop().await;
}

fn timestamps(body: &Value) -> Vec<i64> {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            h["timestamp"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_millisecond()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_by_time_then_file_order_and_pages_tile() {
    let (server, _sent, _dir) = loaded().await;
    let desc = server.get_ok("/api/v1/logs/search").await;
    let ts = timestamps(&desc);
    assert_eq!(ts.len(), 80);
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "desc by default");
    let asc = server.get_ok("/api/v1/logs/search?order=asc").await;
    let ts = timestamps(&asc);
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(ts[0], BASE_MS);

    // Lines 40-44 share one timestamp: they keep file order (reversed in desc).
    let same = format!("start={0}&end={1}&host=web-1", BASE_MS + 40_000, BASE_MS + 40_001);
    let expected = [
        "ERROR disk full on /data request 40",
        "GET /page/41 200 user=bob",
        "GET /page/42 200 user=alice",
        "GET /page/43 200 user=bob",
        "GET /page/44 200 user=alice",
    ];
    assert_eq!(server.messages(&format!("{same}&order=asc")).await, expected);
    let mut reversed = expected;
    reversed.reverse();
    assert_eq!(server.messages(&same).await, reversed);

    // Pages of 7 tile the full answer, in both orders.
    for order in ["asc", "desc"] {
        let all = server.messages(&format!("order={order}&limit=100")).await;
        let mut paged = Vec::new();
        for page in 0..12 {
            let body = server
                .get_ok(&format!(
                    "/api/v1/logs/search?order={order}&limit=7&offset={}",
                    page * 7
                ))
                .await;
            assert_eq!(body["total"], 80, "total is independent of paging");
            paged.extend(messages(&body["hits"]));
        }
        assert_eq!(paged, all, "{order}");
    }
    let none = server.get_ok("/api/v1/logs/search?limit=0").await;
    assert_eq!(
        (none["total"].as_u64(), none["hits"].as_array().map(Vec::len)),
        (Some(80), Some(0))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_carry_labels_fields_and_truncation_only_when_set() {
    let (server, _sent, _dir) = loaded().await;
    let body = server.get_ok("/api/v1/logs/search?host=db-1&order=asc&limit=5").await;
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits[0]["labels"], serde_json::json!({"env": "prod", "k8s.app": "db"}));
    assert_eq!(hits[3]["truncated"], true);
    assert!(hits[2].get("truncated").is_none(), "{}", hits[2]);
    let web = server.get_ok("/api/v1/logs/search?host=web-1&limit=1").await;
    let hit = web["hits"][0].as_object().unwrap();
    let mut keys: Vec<&str> = hit.keys().map(String::as_str).collect();
    keys.sort_unstable();
    // `GET /page/49 200 user=bob`: its `key=value` pair is a field.
    assert_eq!(
        keys,
        [
            "fields",
            "host",
            "id",
            "level",
            "message",
            "pattern",
            "source",
            "timestamp"
        ]
    );
    assert_eq!(hit["fields"], serde_json::json!({"user": "bob"}));
    assert!(
        hit["pattern"].as_str().is_some_and(|id| id.contains('-')),
        "{}",
        hit["pattern"]
    );
    let db = server.get_ok("/api/v1/logs/search?host=db-1&limit=1").await;
    assert!(db["hits"][0].get("fields").is_none(), "a line without fields has none");
    server.stop().await;
}

fn bucket_counts(body: &Value) -> Vec<u64> {
    body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_counts_add_up() {
    let (server, sent, _dir) = loaded().await;
    let all = server.get_ok("/api/v1/logs/histogram?buckets=10").await;
    let counts = bucket_counts(&all);
    assert!(counts.len() <= 10 && !counts.is_empty());
    assert_eq!(counts.iter().sum::<u64>(), 80);
    assert_eq!(
        all["buckets"][0]["start"],
        rfc3339(BASE_MS),
        "starts at the earliest record"
    );

    let db = server.get_ok("/api/v1/logs/histogram?q=host:db-1").await;
    assert_eq!(bucket_counts(&db).iter().sum::<u64>(), 30);

    // Fixed interval over an explicit range: aligned buckets, exact counts.
    let (start, end) = (BASE_MS + 5_000, BASE_MS + 35_000);
    let body = server
        .get_ok(&format!("/api/v1/logs/histogram?interval=10s&start={start}&end={end}"))
        .await;
    let buckets = body["buckets"].as_array().unwrap();
    let starts: Vec<&str> = buckets.iter().map(|b| b["start"].as_str().unwrap()).collect();
    assert_eq!(
        starts,
        [
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:30Z",
            "2023-11-14T22:13:40Z",
            "2023-11-14T22:13:50Z"
        ]
    );
    for (i, bucket) in buckets.iter().enumerate() {
        let from = (BASE_MS + i as i64 * 10_000).max(start);
        let to = (BASE_MS + (i as i64 + 1) * 10_000).min(end);
        assert_eq!(
            bucket["count"].as_u64().unwrap(),
            count(&sent, |s| s.ts >= from && s.ts < to),
            "bucket {i}"
        );
    }

    let too_many = server
        .get("/api/v1/logs/histogram?interval=1ms&start=0&end=1700000000000")
        .await;
    assert_eq!(too_many.status, 400);
    assert!(too_many.error().contains("at most 2000"), "{too_many:?}");
    let both = server.get("/api/v1/logs/histogram?interval=1m&buckets=3").await;
    assert_eq!(both.status, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_returns_neighbours_in_file_order() {
    let (server, _sent, _dir) = loaded().await;
    let web = stream("web-1", 1);
    // Fetch line 25's id through a search, as the UI would.
    let hit = server
        .get_ok(&format!("/api/v1/logs/search?q={}", enc("\"request 25\"")))
        .await;
    assert_eq!(hit["total"], 1);
    let id = hit["hits"][0]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&web));
    let body = server
        .get_ok(&format!("/api/v1/logs/context?id={id}&before=3&after=2"))
        .await;
    assert_eq!(body["hit"]["message"], "WARN disk is full soon request 25");
    let before = messages(&body["before"]);
    assert_eq!(
        before,
        [
            "GET /page/22 200 user=alice",
            "GET /page/23 200 user=bob",
            "GET /page/24 200 user=alice"
        ]
    );
    let after = messages(&body["after"]);
    assert_eq!(after, ["GET /page/26 200 user=alice", "GET /page/27 200 user=bob"]);

    // At the start of the file there is less before; other files never mix in.
    let first = format!("{web}-0");
    let body = server
        .get_ok(&format!("/api/v1/logs/context?id={first}&before=5&after=1"))
        .await;
    assert_eq!(messages(&body["before"]).len(), 0);
    assert_eq!(messages(&body["after"]), ["GET /page/1 200 user=bob"]);

    // `id:` finds that one record (by its stream and offset); a range of ids is refused.
    let by_id = server
        .get_ok(&format!("/api/v1/logs/search?q={}", enc(&format!("id:{id}"))))
        .await;
    assert_eq!(by_id["total"], 1);
    assert_eq!(by_id["hits"][0]["id"], id.as_str());
    assert_eq!(server.total(&format!("q={}", enc("id:nonsense"))).await, 0);
    let range = server
        .get(&format!("/api/v1/logs/search?q={}", enc(&format!("id:[{id} TO *]"))))
        .await;
    assert_eq!(range.status, 400, "{range:?}");

    let missing = server.get(&format!("/api/v1/logs/context?id={web}-3")).await;
    assert_eq!(missing.status, 404, "{missing:?}");
    let malformed = server.get("/api/v1/logs/context?id=nonsense").await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.error().contains("`id`"), "{malformed:?}");
    server.stop().await;
}
