//! The HTTP receivers' protocols, in process: Elasticsearch bulk answers
//! per item (stored, refused for its host, not a document), the probes
//! clients send before they do, and what every receiver refuses whole.

mod common;

use base64::Engine as _;
use common::*;
use lookout_aggregator::config::Config;
use std::path::Path;

/// A config with a second ingest token that may send only as `web-*`;
/// batches are searchable when answered (see `common::config`).
fn bound_config(dir: &Path) -> Config {
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[auth]\ningest_tokens = [\"{INGEST_TOKEN}\", {{ token = \"web-only-token\", hosts = [\"web-*\"] }}]\napi_tokens = [\"{API_TOKEN}\"]\n[ingest]\ncommit_interval = \"0s\"\n",
        dir.display().to_string()
    );
    Config::from_toml(Path::new("test.toml"), &text).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_answers_per_item_and_stores_the_documents() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(bound_config(dir.path())).await;
    let body = concat!(
        "{\"index\":{\"_index\":\"app\"}}\n",
        "{\"@timestamp\":\"2026-01-02T03:04:05Z\",\"message\":\"bulkone ok\",\"host\":{\"name\":\"web-1\"},\"log\":{\"level\":\"warn\"}}\n",
        "{\"create\":{\"_index\":\"app\",\"_id\":\"given\"}}\n",
        "{\"msg\":\"bulktwo ok\",\"hostname\":\"db-1\",\"level\":\"error\"}\n",
        "{\"index\":{\"_index\":\"app\"}}\n",
        "not a document\n",
        "{\"delete\":{\"_index\":\"app\",\"_id\":\"x\"}}\n",
    );
    let token = bearer(INGEST_TOKEN);
    let answer = server
        .post_with(
            "/_bulk",
            body.into(),
            &[("Authorization", &token), ("Content-Type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["x-elastic-product"], "Elasticsearch");
    let items = answer.body["items"].as_array().unwrap();
    let statuses: Vec<u64> = items
        .iter()
        .map(|item| {
            item.as_object().unwrap().values().next().unwrap()["status"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, [201, 201, 400, 400]);
    assert_eq!(answer.body["errors"], true);
    assert_eq!(items[1]["create"]["_id"], "given");

    let hits = server.get_ok("/api/v1/logs/search?q=bulkone").await;
    let hit = &hits["hits"][0];
    assert_eq!(hit["host"], "web-1");
    assert_eq!(hit["level"], "warn");
    assert_eq!(hit["timestamp"], "2026-01-02T03:04:05Z");
    assert_eq!(hit["source"], "elasticsearch");
    let stored_id = items[0]["index"]["_id"].as_str().unwrap();
    assert_eq!(hit["id"], stored_id, "the answer names the stored record");
    assert_eq!(server.total("q=bulktwo%20AND%20host:db-1%20AND%20level:error").await, 1);

    // A token bound to web-* gets 403 for db-1's document, and the rest stored.
    let body = concat!(
        "{\"index\":{}}\n{\"message\":\"boundweb\",\"host\":\"web-2\"}\n",
        "{\"index\":{}}\n{\"message\":\"bounddb\",\"host\":\"db-2\"}\n",
    );
    let answer = server
        .post_with(
            "/logs-2026/_bulk",
            body.into(),
            &[("Authorization", &bearer("web-only-token"))],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["items"][0]["index"]["status"], 201);
    assert_eq!(answer.body["items"][0]["index"]["_index"], "logs-2026");
    assert_eq!(answer.body["items"][1]["index"]["status"], 403);
    assert_eq!(server.total("q=boundweb").await, 1);
    assert_eq!(server.total("q=bounddb").await, 0);

    // The whole request is refused for a line that is not an action, and without a token.
    let answer = server
        .post_with(
            "/_bulk",
            b"{\"index\":{}}\n{}\n[]\n".to_vec(),
            &[("Authorization", &token)],
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("line 3: malformed action"), "{answer:?}");
    let answer = server.post_with("/_bulk", body.into(), &[]).await;
    assert_eq!(answer.status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipper_probes_are_answered_for_ingest_credentials_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("filebeat:{INGEST_TOKEN}"))
    );
    for path in ["/", "/_cluster/health", "/_cat/health", "/ready"] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .header("Authorization", &basic)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
        let text = response.text().await.unwrap();
        assert!(
            ["8.11.0", "green", "ready"].iter().any(|word| text.contains(word)),
            "{path}: {text}"
        );
    }
    let head = server
        .client
        .head(format!("{}/", server.base))
        .header("Authorization", bearer(INGEST_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    // A browser still gets the UI: without a session, the login page.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 302);
    // A wrong token is not an Elasticsearch client.
    let wrong = server.get_with("/", Some("not-a-token-at-all")).await;
    assert_eq!(wrong.status, 401);
    // A receiver's path takes only writes: read, it is a page behind the login.
    let page = client.get(format!("{}/hosts/_bulk", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 302, "no page without a session");
    server.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An OTLP JSON request with one record per `(host, message)`.
fn otlp_json(records: &[(&str, &str)]) -> Vec<u8> {
    let resource_logs: Vec<serde_json::Value> = records
        .iter()
        .map(|(host, message)| {
            serde_json::json!({
                "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": host}}]},
                "scopeLogs": [{"logRecords": [{
                    "timeUnixNano": "1700000000000000000",
                    "severityNumber": 13,
                    "body": {"stringValue": message},
                }]}],
            })
        })
        .collect();
    serde_json::json!({ "resourceLogs": resource_logs })
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_refuses_other_hosts_through_partial_success() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(bound_config(dir.path())).await;
    let body = gzip(&otlp_json(&[
        ("web-5", "otlpweb"),
        ("db-5", "otlpdb"),
        ("web-6", "otlpweb"),
    ]));
    let token = bearer("web-only-token");
    let headers = [
        ("Authorization", token.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    let answer = server.post_with("/v1/logs", body, &headers).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["partialSuccess"]["rejectedLogRecords"], "1");
    assert!(
        answer.body["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("db-5")
    );
    assert_eq!(server.total("q=otlpweb%20AND%20level:warn").await, 2);
    assert_eq!(server.total("q=otlpdb").await, 0);

    // All accepted: an empty answer. Garbage: 400, in either encoding.
    let all_token = bearer(INGEST_TOKEN);
    let json = [
        ("Authorization", all_token.as_str()),
        ("Content-Type", "application/json"),
    ];
    let answer = server
        .post_with("/v1/logs", otlp_json(&[("db-5", "otlpall")]), &json)
        .await;
    assert_eq!((answer.status, answer.body.clone()), (200, serde_json::json!({})));
    let answer = server
        .post_with("/v1/logs", b"{\"resourceLogs\": 7}".to_vec(), &json)
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.error().contains("not an OTLP ExportLogsServiceRequest"),
        "{answer:?}"
    );
    let protobuf = [
        ("Authorization", all_token.as_str()),
        ("Content-Type", "application/x-protobuf"),
    ];
    let answer = server
        .post_with("/v1/logs", b"\x0a\xff\xff\xff\xff\x0f".to_vec(), &protobuf)
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_refuses_a_push_with_another_host_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(bound_config(dir.path())).await;
    let push = |host: &str, word: &str| {
        serde_json::json!({"streams": [{"stream": {"host": host}, "values": [["1700000000000000000", word]]}]})
            .to_string()
            .into_bytes()
    };
    let token = bearer("web-only-token");
    let json = [("Authorization", token.as_str()), ("Content-Type", "application/json")];
    let answer = server
        .post_with("/loki/api/v1/push", push("web-8", "lokiweb"), &json)
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    let answer = server
        .post_with("/loki/api/v1/push", push("db-8", "lokidb"), &json)
        .await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.error().contains("db-8"));
    assert_eq!(server.total("q=lokiweb").await, 1);
    assert_eq!(server.total("q=lokidb").await, 0);
    // Not snappy, and not a push: 400 with the reason.
    let protobuf = [
        ("Authorization", token.as_str()),
        ("Content-Type", "application/x-protobuf"),
    ];
    let answer = server
        .post_with("/loki/api/v1/push", b"plain text".to_vec(), &protobuf)
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let answer = server
        .post_with("/loki/api/v1/push", b"{\"streams\": {}}".to_vec(), &json)
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.error().contains("not a Loki push request"), "{answer:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_would_expand_are_refused() {
    use lookout_aggregator::receivers::otlp::{ExportLogsServiceRequest, LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let token = bearer(INGEST_TOKEN);
    // 600,000 empty records: 2 bytes each on the wire, a few hundred decoded.
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: vec![LogRecord::default(); 600_000],
            }],
        }],
    };
    let protobuf = [
        ("Authorization", token.as_str()),
        ("Content-Type", "application/x-protobuf"),
    ];
    let answer = server.post_with("/v1/logs", request.encode_to_vec(), &protobuf).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(answer.error().contains("protobuf messages"), "{answer:?}");
    // Bulk through PUT too; a body of many documents within the limits is stored.
    let body = "{\"index\":{}}\n{\"message\":\"putbulk\"}\n".repeat(1000);
    let put = server
        .client
        .put(format!("{}/many/_bulk", server.base))
        .header("Authorization", &token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(server.total("q=putbulk").await, 1000);
    server.stop().await;
}
