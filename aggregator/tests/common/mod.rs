//! Shared test helpers: an in-process aggregator on 127.0.0.1:0 over a temp
//! dir, a real HTTP client, and builders for ingest batches.
#![allow(dead_code)] // each test binary uses a different subset

use lookout_aggregator::Aggregator;
use lookout_aggregator::config::Config;
use lookout_aggregator::store::schema::Hit;
use lookout_shared::parse::fields::FieldValue;
use lookout_shared::wire::{IngestBatch, MetricSample, StreamChunk, WireRecord, stream_id};
use serde_json::Value;
use std::path::Path;

pub const INGEST_TOKEN: &str = "agent-secret";
pub const API_TOKEN: &str = "reader-secret";

/// A config for `data_dir` with extra TOML (sections) appended.
pub fn config(data_dir: &Path, extra: &str) -> Config {
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[auth]\ningest_tokens = [\"{INGEST_TOKEN}\"]\napi_tokens = [\"{API_TOKEN}\"]\n{extra}",
        data_dir.display().to_string()
    );
    let mut config = Config::from_toml(Path::new("test.toml"), &text).unwrap();
    if !extra.contains("commit_interval") {
        // These tests check what a search finds right after an answer: every
        // batch is committed before it is answered. The write-ahead log and
        // the interval are tested in the store's own tests and end to end.
        config.ingest.commit_interval = lookout_shared::config::HumanDuration(std::time::Duration::ZERO);
    }
    config
}

/// A running aggregator and a client for it.
pub struct Server {
    aggregator: Aggregator,
    pub base: String,
    pub client: reqwest::Client,
}

/// An HTTP answer: status and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The `error` text of an error body.
    pub fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field in {:?}", self.body))
    }
}

impl Server {
    pub async fn start(config: Config) -> Server {
        lookout_shared::tls::install_crypto_provider();
        let aggregator = Aggregator::start(config).await.unwrap();
        let base = format!("http://{}", aggregator.local_addr());
        Server {
            aggregator,
            base,
            client: reqwest::Client::new(),
        }
    }

    pub async fn stop(self) {
        self.aggregator.stop().await.unwrap();
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer { status, body, headers }
    }

    /// POSTs raw bytes to the ingest endpoint.
    pub async fn post_ingest(&self, body: Vec<u8>, encoding: Option<&str>, token: Option<&str>) -> Answer {
        let mut request = self.client.post(format!("{}/api/v1/ingest", self.base)).body(body);
        if let Some(encoding) = encoding {
            request = request.header("Content-Encoding", encoding);
        }
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Self::answer(request.send().await.unwrap()).await
    }

    /// POSTs `body` to `path` with these headers.
    pub async fn post_with(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::answer(request.send().await.unwrap()).await
    }

    /// Sends `batch` as zstd JSON, as the agent does.
    pub async fn ingest(&self, batch: &IngestBatch) -> Answer {
        let json = serde_json::to_vec(batch).unwrap();
        let body = zstd::encode_all(&json[..], 3).unwrap();
        self.post_ingest(body, Some("zstd"), Some(INGEST_TOKEN)).await
    }

    /// Sends `batch` and asserts it was accepted; returns (accepted, duplicates).
    pub async fn ingest_ok(&self, batch: &IngestBatch) -> (u64, u64) {
        let answer = self.ingest(batch).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        (
            answer.body["accepted"].as_u64().unwrap(),
            answer.body["duplicates"].as_u64().unwrap(),
        )
    }

    /// GET with the API token.
    pub async fn get(&self, path_and_query: &str) -> Answer {
        self.get_with(path_and_query, Some(API_TOKEN)).await
    }

    pub async fn get_with(&self, path_and_query: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Self::answer(request.send().await.unwrap()).await
    }

    /// GET that must answer 200.
    pub async fn get_ok(&self, path_and_query: &str) -> Value {
        let answer = self.get(path_and_query).await;
        assert_eq!(answer.status, 200, "GET {path_and_query}: {answer:?}");
        answer.body
    }

    /// `total` of a search.
    pub async fn total(&self, query: &str) -> u64 {
        self.get_ok(&format!("/api/v1/logs/search?{query}")).await["total"]
            .as_u64()
            .unwrap()
    }

    /// Messages of a search's hits, in answer order.
    pub async fn messages(&self, query: &str) -> Vec<String> {
        messages(&self.get_ok(&format!("/api/v1/logs/search?{query}")).await["hits"])
    }
}

/// The hits of a search answer as records (what live tail's matcher sees).
pub fn records_of(body: &Value) -> Vec<Hit> {
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| Hit {
            id: text(&hit["id"]),
            timestamp: text(&hit["timestamp"]),
            host: text(&hit["host"]),
            source: text(&hit["source"]),
            level: text(&hit["level"]),
            message: text(&hit["message"]),
            truncated: hit["truncated"] == true,
            cut: hit["cut"] == true,
            labels: hit["labels"]
                .as_object()
                .map(|labels| labels.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default(),
            pattern: hit["pattern"].as_str().map(str::to_owned),
            // The pattern is a field as the matcher sees it.
            fields: hit["fields"]
                .as_object()
                .map(|fields| {
                    fields
                        .iter()
                        .map(|(name, value)| {
                            let value = match value.as_f64() {
                                Some(n) => FieldValue::Number(n),
                                None => FieldValue::Text(text(value)),
                            };
                            (name.clone(), value)
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
                .into_iter()
                .chain(
                    hit["pattern"]
                        .as_str()
                        .map(|id| ("pattern".to_owned(), FieldValue::Text(id.to_owned()))),
                )
                .collect(),
            marks: hit["marks"]
                .as_array()
                .map(|marks| {
                    marks
                        .iter()
                        .filter_map(|m| Some([m[0].as_u64()? as usize, m[1].as_u64()? as usize]))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The `message` of each hit in a JSON array.
pub fn messages(hits: &Value) -> Vec<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["message"].as_str().unwrap().to_owned())
        .collect()
}

/// Percent-encodes a query parameter value.
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One line of a file: its message and the time it was read.
pub struct Line<'a> {
    pub message: &'a str,
    pub read_at_ms: i64,
}

/// A chunk holding `lines` as consecutive lines starting at byte `start`
/// (each line plus its newline), covering exactly their bytes.
pub fn chunk(stream: &str, source: &str, start: u64, lines: &[Line<'_>]) -> StreamChunk {
    let mut offset = start;
    let mut records = Vec::new();
    for line in lines {
        records.push(WireRecord {
            offset,
            read_at_ms: line.read_at_ms,
            message: line.message.to_owned(),
            ..Default::default()
        });
        offset += line.message.len() as u64 + 1;
    }
    StreamChunk {
        stream: stream.to_owned(),
        source: source.to_owned(),
        start,
        end: offset,
        labels: Default::default(),
        records,
        ..Default::default()
    }
}

/// A file of `count` fixed-width lines `"{prefix} line {i:04}"` read 1 s
/// apart from `base_ms`; returns the chunk for lines `[from, to)`.
pub fn fixed_lines(stream: &str, source: &str, prefix: &str, base_ms: i64, from: usize, to: usize) -> StreamChunk {
    let texts: Vec<String> = (from..to).map(|i| format!("{prefix} line {i:04}")).collect();
    let width = texts.first().map_or(0, |t| t.len() as u64 + 1);
    let lines: Vec<Line<'_>> = texts
        .iter()
        .enumerate()
        .map(|(k, message)| Line {
            message,
            read_at_ms: base_ms + (from + k) as i64 * 1000,
        })
        .collect();
    chunk(stream, source, from as u64 * width, &lines)
}

pub fn batch(host: &str, streams: Vec<StreamChunk>) -> IngestBatch {
    IngestBatch {
        host: host.to_owned(),
        streams,
        metrics: Vec::new(),
    }
}

/// A stream id for test file number `n` on `host`.
pub fn stream(host: &str, n: u64) -> String {
    stream_id(host, n, 0, 0)
}

/// Now, in Unix ms.
pub fn now_ms() -> i64 {
    lookout_shared::time::now_ms()
}

/// One metric sample.
pub fn sample(name: &str, labels: &[(&str, &str)], time_ms: i64, value: f64) -> MetricSample {
    MetricSample {
        name: name.to_owned(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        time_ms,
        value,
    }
}

/// A batch with samples only.
pub fn metrics_batch(host: &str, metrics: Vec<MetricSample>) -> IngestBatch {
    IngestBatch {
        host: host.to_owned(),
        streams: Vec::new(),
        metrics,
    }
}

/// xorshift64*: deterministic, so a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Below a bound that is itself drawn below `n`: small values are common.
    pub fn skewed(&mut self, n: usize) -> usize {
        let bound = 1 + self.below(n);
        self.below(bound)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Polls `condition` every 100 ms until it holds; fails naming `what` after `limit`.
pub async fn wait_for(what: &str, limit: std::time::Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
