//! Bad requests get a precise 4xx with a JSON error, never a 500, and the
//! server keeps serving afterwards.

mod common;

use common::*;
use std::io::Write as _;

const BASE_MS: i64 = 1_700_000_000_000;

/// Small limits so that oversized bodies are cheap to make.
const LIMITS: &str = "[ingest]\nmax_body_bytes = \"1MiB\"\nmax_decompressed_bytes = \"4MiB\"\n";

fn good_batch(n: u64) -> lookout_shared::wire::IngestBatch {
    batch(
        "web-1",
        vec![fixed_lines(
            &stream("web-1", n),
            "/var/log/a.log",
            "good",
            BASE_MS,
            0,
            3,
        )],
    )
}

/// The server still answers health checks and stores a good batch.
async fn still_serving(server: &Server, n: u64) {
    let health = server.get_with("/healthz", None).await;
    assert_eq!((health.status, health.body.as_str()), (200, Some("ok")));
    assert_eq!(server.ingest_ok(&good_batch(n)).await, (3, 0));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_takes_the_token_as_the_password_of_http_basic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), LIMITS)).await;
    // HTTP Basic with the token as password, what most shippers can set.
    for (password, status) in [(INGEST_TOKEN, 200), ("guess", 401), (API_TOKEN, 401)] {
        let response = server
            .client
            .post(format!("{}/api/v1/ingest", server.base))
            .basic_auth("vector", Some(password))
            .body(serde_json::to_vec(&good_batch(7)).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "basic auth with {password:?}");
    }
    assert_eq!(server.total("").await, 3, "the one accepted batch is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ingest_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), LIMITS)).await;
    let good_json = serde_json::to_vec(&good_batch(1)).unwrap();

    // Tokens.
    let missing = server.post_ingest(good_json.clone(), None, None).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.error().contains("missing `Authorization: Bearer"),
        "{missing:?}"
    );
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let wrong = server.post_ingest(good_json.clone(), None, Some("guess")).await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.error().contains("guess"), "the token is not echoed");
    let api_token = server.post_ingest(good_json.clone(), None, Some(API_TOKEN)).await;
    assert_eq!(api_token.status, 401, "a read token cannot ingest");

    // Malformed JSON: serde's message with line and column.
    let answer = server
        .post_ingest(
            b"{\"host\": \"web-1\", \"streams\": [".to_vec(),
            None,
            Some(INGEST_TOKEN),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("line 1 column"), "{answer:?}");

    // A wrong type names the field.
    let text = String::from_utf8(good_json.clone())
        .unwrap()
        .replacen("\"start\":0", "\"start\":\"zero\"", 1);
    let answer = server.post_ingest(text.into_bytes(), None, Some(INGEST_TOKEN)).await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("streams[0].start"), "{answer:?}");

    // Invalid UTF-8 inside a JSON string.
    let mut bytes = good_json.clone();
    let at = bytes.windows(4).position(|w| w == b"good").unwrap();
    bytes[at] = 0xff;
    let answer = server.post_ingest(bytes, None, Some(INGEST_TOKEN)).await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("not valid UTF-8"), "{answer:?}");

    // Contract violations name the field.
    let mut b = good_batch(1);
    b.streams[0].stream = "not-a-stream-id!".into();
    let answer = server.ingest(&b).await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("streams[0].stream"), "{answer:?}");
    let mut b = good_batch(1);
    b.streams[0].records[2].offset = b.streams[0].end;
    let answer = server.ingest(&b).await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("streams[0].records[2].offset"), "{answer:?}");
    let mut b = good_batch(1);
    b.host.clear();
    assert_eq!(server.ingest(&b).await.status, 400);

    // Encodings.
    let answer = server
        .post_ingest(b"\x28\xb5\x2f\xfdgarbage".to_vec(), Some("zstd"), Some(INGEST_TOKEN))
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().starts_with("body is not valid zstd: "), "{answer:?}");
    let answer = server
        .post_ingest(b"garbage".to_vec(), Some("gzip"), Some(INGEST_TOKEN))
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().starts_with("body is not valid gzip: "), "{answer:?}");
    let answer = server
        .post_ingest(good_json.clone(), Some("br"), Some(INGEST_TOKEN))
        .await;
    assert_eq!(answer.status, 415);
    assert!(answer.error().contains("`br`"), "{answer:?}");

    // Size limits: the body as sent, and after decompression (a gzip bomb).
    let oversized = vec![b' '; 1024 * 1024 + 1];
    let answer = server.post_ingest(oversized, None, Some(INGEST_TOKEN)).await;
    assert_eq!(answer.status, 413);
    assert!(answer.error().contains("ingest.max_body_bytes"), "{answer:?}");
    let bomb = gzip(&vec![b' '; 20 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let answer = server.post_ingest(bomb, Some("gzip"), Some(INGEST_TOKEN)).await;
    assert_eq!(answer.status, 413);
    assert!(answer.error().contains("ingest.max_decompressed_bytes"), "{answer:?}");

    // Nothing of the refused batches was stored.
    assert_eq!(server.total("").await, 0);
    still_serving(&server, 2).await;

    let metrics = server.get_ok("/metrics").await;
    let text = metrics.as_str().unwrap();
    for line in [
        "lookout_http_rejected_requests_total{reason=\"unauthorized\"} 3",
        "lookout_http_rejected_requests_total{reason=\"too_large\"} 2",
        "lookout_http_rejected_requests_total{reason=\"bad_encoding\"} 2",
        "lookout_http_rejected_requests_total{reason=\"unsupported_encoding\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_line_is_accepted_within_the_default_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let mut message = String::with_capacity(10 * 1024 * 1024 + 16);
    message.push_str("needle ");
    while message.len() < 10 * 1024 * 1024 {
        message.push_str("filler words ");
    }
    let s = stream("web-1", 7);
    let line = Line {
        message: &message,
        read_at_ms: BASE_MS,
    };
    assert_eq!(
        server
            .ingest_ok(&batch("web-1", vec![chunk(&s, "/var/log/big.log", 0, &[line])]))
            .await,
        (1, 0)
    );
    let body = server.get_ok("/api/v1/logs/search?q=needle").await;
    assert_eq!(body["total"], 1);
    let hit = &body["hits"][0];
    assert_eq!(
        hit["message"].as_str().map(str::len),
        Some(16 * 1024),
        "lists show 16 KiB"
    );
    assert_eq!(hit["cut"], true);
    let id = hit["id"].as_str().unwrap();
    let context = server
        .get_ok(&format!("/api/v1/logs/context?id={id}&before=0&after=0"))
        .await;
    assert_eq!(
        context["hit"]["message"].as_str().map(str::len),
        Some(message.len()),
        "the record is whole"
    );
    assert!(context["hit"].get("cut").is_none());

    // A page of such lines is bounded in bytes: 600 lines of 64 KiB would
    // make 37.5 MiB; the answer stops at 8 MiB of messages and says so.
    let wide = "w".repeat(64 * 1024);
    let lines: Vec<Line<'_>> = (0..600)
        .map(|_| Line {
            message: &wide,
            read_at_ms: BASE_MS,
        })
        .collect();
    let s = stream("web-1", 20);
    server
        .ingest_ok(&batch("web-1", vec![chunk(&s, "/var/log/wide.log", 0, &lines)]))
        .await;
    let body = server
        .get_ok("/api/v1/logs/search?source=%2Fvar%2Flog%2Fwide.log&limit=10000")
        .await;
    assert_eq!(body["total"], 600);
    assert_eq!(body["limited"], true);
    assert_eq!(body["hits"].as_array().unwrap().len(), 512, "8 MiB / 16 KiB");
    still_serving(&server, 8).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_read_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), LIMITS)).await;
    server.ingest_ok(&good_batch(1)).await;

    let cases: &[(&str, u16, &str)] = &[
        ("/api/v1/logs/search?q=%22foo", 400, "query syntax error at position"),
        ("/api/v1/logs/search?q=labels:x", 400, "`labels:` needs a name"),
        ("/api/v1/logs/search?start=yesterday", 400, "parameter `start`"),
        ("/api/v1/logs/search?end=2024-13-45T00:00:00Z", 400, "parameter `end`"),
        ("/api/v1/logs/search?limit=abc", 400, "parameter `limit`"),
        ("/api/v1/logs/search?limit=10001", 400, "parameter `limit`"),
        ("/api/v1/logs/search?order=sideways", 400, "parameter `order`"),
        ("/api/v1/logs/search?levle=error", 400, "unknown parameter `levle`"),
        (
            "/api/v1/logs/search?start=2000&end=1000",
            400,
            "`start` must be before `end`",
        ),
        ("/api/v1/logs/histogram?buckets=0", 400, "parameter `buckets`"),
        ("/api/v1/logs/histogram?interval=soon", 400, "parameter `interval`"),
        ("/api/v1/logs/context", 400, "parameter `id` is required"),
        ("/api/v1/logs/context?id=0000000000000000-x", 400, "`id`"),
        ("/api/v1/nothing", 404, "no endpoint GET /api/v1/nothing"),
    ];
    for (path, status, expected) in cases {
        let answer = server.get(path).await;
        assert_eq!(answer.status, *status, "{path}: {answer:?}");
        assert!(
            answer.error().contains(expected),
            "{path}: {:?} should contain {expected:?}",
            answer.error()
        );
    }

    // The syntax error says where: the closing quote is missing at byte 4.
    let answer = server.get("/api/v1/logs/search?q=%22foo").await;
    assert_eq!(
        answer.error(),
        "query syntax error at position 4: the phrase started at position 0 has no closing `\"`"
    );

    // Read endpoints need the API token; /healthz does not.
    for path in [
        "/api/v1/logs/search",
        "/api/v1/logs/histogram",
        "/api/v1/logs/context?id=x",
        "/metrics",
    ] {
        assert_eq!(server.get_with(path, None).await.status, 401, "{path}");
        assert_eq!(server.get_with(path, Some(INGEST_TOKEN)).await.status, 401, "{path}");
    }
    let wrong_method = server.get("/api/v1/ingest").await;
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.error().contains("GET"), "{wrong_method:?}");

    still_serving(&server, 3).await;
    server.stop().await;
}

/// Requests refused as too large so far.
async fn too_large(server: &Server) -> u64 {
    let metrics = server.get_ok("/metrics").await;
    metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("lookout_http_rejected_requests_total{reason=\"too_large\"} "))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// The attacks of the hostile-input review, each answered with a precise 400
/// (or 413) and a JSON body, the server serving on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_bodies_and_paths_get_json_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), LIMITS)).await;
    server.ingest_ok(&good_batch(1)).await;

    // A 700-deep group used to overflow a worker's stack and abort the process.
    let deep = enc(&format!("{}a{}", "(".repeat(700), ")".repeat(700)));
    for route in ["search", "histogram", "facets?field=host&", "tail"] {
        let separator = if route.ends_with('&') { "" } else { "?" };
        let answer = server.get(&format!("/api/v1/logs/{route}{separator}q={deep}")).await;
        assert_eq!(answer.status, 400, "{route}: {answer:?}");
        assert!(
            answer.error().contains("nested more than 32 deep"),
            "{}",
            answer.error()
        );
    }
    // `field:*` on fields that are not fast fields used to answer 500.
    for q in ["message:*", "id:*", "truncated:*", "level:*", "host:*"] {
        let answer = server.get(&format!("/api/v1/logs/search?q={}", enc(q))).await;
        assert_eq!(answer.status, 200, "{q}: {answer:?}");
    }
    let answer = server
        .get(&format!("/api/v1/logs/search?q={}", enc("labels.env:*")))
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");

    // A path that is not UTF-8: JSON, not axum's plain text.
    let answer = server
        .client
        .delete(format!("{}/api/v1/silences/%FF%FE", server.base))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).expect("a JSON error body");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");

    // A 3 MB silence: 413 with a JSON body.
    let refused_before = too_large(&server).await;
    let huge = format!("{{\"comment\": \"{}\"}}", "x".repeat(3 << 20));
    // A client of its own: the server closes a connection whose body it did
    // not read, and the shared client's pool must not reuse it.
    let sent = reqwest::Client::new()
        .post(format!("{}/api/v1/silences", server.base))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .body(huge)
        .send()
        .await;
    // The server answers 413 and closes while the client may still be
    // sending: the closed socket resets the rest, and with it, at times,
    // the answer. Refused all the same, as its count of refusals shows.
    match sent {
        Ok(answer) => {
            assert_eq!(answer.status().as_u16(), 413);
            match answer.bytes().await {
                Ok(body) => {
                    let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error body");
                    assert!(body["error"].is_string(), "{body}");
                }
                Err(err) => assert!(err.is_body() || err.is_decode(), "{err:?}"),
            }
        }
        Err(err) => assert!(err.is_request(), "{err:?}"),
    }
    assert_eq!(too_large(&server).await, refused_before + 1, "the refusal is counted");

    // A silence from the beginning to the end of time used to wrap around and silence forever.
    let forever = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "DiskFull"}],
        "comment": "forever",
        "startsAt": i64::MIN,
        "endsAt": i64::MAX,
    });
    let answer = server
        .client
        .post(format!("{}/api/v1/silences", server.base))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .body(forever.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert!(body["error"].as_str().unwrap().contains("within a year"), "{body}");

    still_serving(&server, 9).await;
    server.stop().await;
}

/// A data file that is not a database, or one another process holds locked,
/// stops the start with an error that names the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_locked_databases_are_named_at_start() {
    lookout_shared::tls::install_crypto_provider();
    for name in ["metrics.sqlite", "users.sqlite", "alerts.sqlite"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), vec![0x5a; 8192]).unwrap();
        let err = match lookout_aggregator::Aggregator::start(config(dir.path(), "")).await {
            Ok(_) => panic!("started on a corrupt {name}"),
            Err(err) => format!("{err:#}"),
        };
        let file = dir.path().join(name).display().to_string();
        assert!(err.contains(&file), "{name}: {err}");
        assert!(err.contains("not a database"), "{name}: {err}");
    }

    // Locked by another process (made by a first start, then held).
    let dir = tempfile::tempdir().unwrap();
    Server::start(config(dir.path(), "")).await.stop().await;
    let lock = lock_exclusively(&dir.path().join("metrics.sqlite"));
    let err = match lookout_aggregator::Aggregator::start(config(dir.path(), "")).await {
        Ok(_) => panic!("started on a locked metrics.sqlite"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("metrics.sqlite"), "{err}");
    assert!(err.contains("locked"), "{err}");
    drop(lock);
}

/// Takes an exclusive lock on the SQLite file at `path`, in a Python process
/// (another process, as a stray tool would be) that holds it until dropped.
fn lock_exclusively(path: &std::path::Path) -> LockHolder {
    let script = format!(
        "import sqlite3,sys,time\nc=sqlite3.connect({:?},isolation_level=None)\nc.execute('PRAGMA locking_mode=EXCLUSIVE')\nc.execute('BEGIN EXCLUSIVE')\nc.execute('CREATE TABLE IF NOT EXISTS lock_probe(x)')\nprint('locked',flush=True)\nsys.stdin.read()\n",
        path.display().to_string()
    );
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    LockHolder(child)
}

/// The process holding a lock; dropping it ends the process (and the lock).
struct LockHolder(std::process::Child);

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}
