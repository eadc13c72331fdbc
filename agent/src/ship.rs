//! The shipper: sends spooled batches to the aggregator, several at a time, in
//! spool order, and turns acknowledgements into checkpoint progress.
//!
//! Delivery is at-least-once: a batch is retried with exponential backoff and
//! jitter while the aggregator is unreachable or answers 429 or 5xx; only its
//! acknowledgement removes it from the spool and lets the checkpoint pass the
//! bytes it covers. A 4xx other than 429 means the batch itself is wrong: its
//! error text is logged and the batch is set aside in `rejected/` instead of
//! being retried forever (its bytes then count as delivered, or the checkpoint
//! would stall behind it).

use crate::checkpoint::AckTracker;
use crate::config::AgentConfig;
use crate::health::ReportsHealth;
use crate::spool::{Spool, SpoolEntry};
use lookout_shared::wire::{INGEST_PATH, IngestResponse};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

/// Backoff after the first failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counters the agent reports about its shipping.
#[derive(Debug, Default)]
pub struct ShipStats {
    /// Batches acknowledged.
    pub batches_acked: AtomicU64,
    /// Records acknowledged.
    pub records_acked: AtomicU64,
    /// Compressed bytes acknowledged.
    pub bytes_acked: AtomicU64,
    /// Records the aggregator already had.
    pub duplicates: AtomicU64,
    /// Batches set aside after a 4xx.
    pub batches_rejected: AtomicU64,
    /// Failed attempts (connection errors, 429, 5xx).
    pub retries: AtomicU64,
}

/// What one attempt to send a batch came to.
enum Outcome {
    Acked(Option<IngestResponse>),
    Retry(String),
    /// The token was refused (401, 403): the batch is fine, the setting is
    /// not, so it waits in the spool until the token is fixed (a reload).
    Unauthorized(String),
    Rejected(String),
}

/// Sends batches until `batches` closes and each batch is sent or, once
/// `stop` is raised, has had its last attempt.
pub struct Shipper {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// `<aggregator_url>/api/v1/ingest`.
    pub url: String,
    /// The ingest token (a reload replaces it).
    pub token: arc_swap::ArcSwap<String>,
    /// Batches at once.
    pub max_in_flight: usize,
    /// The spool the batches live in.
    pub spool: Arc<Spool>,
    /// Where acknowledgements go.
    pub acks: Arc<Mutex<AckTracker>>,
    /// Counters.
    pub stats: Arc<ShipStats>,
}

impl ReportsHealth for ShipStats {
    fn report(&self, report: &mut dyn FnMut(&'static str, f64)) {
        report("agent.bytes_shipped", self.bytes_acked.load(Ordering::Relaxed) as f64);
    }
}

impl Shipper {
    /// Sends `leftovers` first, then what arrives on `batches`.
    pub async fn run(
        self: Arc<Self>,
        leftovers: Vec<SpoolEntry>,
        mut batches: mpsc::UnboundedReceiver<SpoolEntry>,
        stop: watch::Receiver<bool>,
    ) {
        let slots = Arc::new(Semaphore::new(self.max_in_flight));
        let mut sending = JoinSet::new();
        let mut leftovers = leftovers.into_iter();
        loop {
            let next = match leftovers.next() {
                Some(entry) => Some(entry),
                None => batches.recv().await,
            };
            let Some(entry) = next else {
                break;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let shipper = Arc::clone(&self);
            let stop = stop.clone();
            sending.spawn(async move {
                shipper.deliver(entry, stop).await;
                drop(slot);
            });
            while sending.try_join_next().is_some() {}
        }
        // Everything is dispatched. Once stopping, a batch gets one more
        // attempt and no backoff: what fails stays in the spool for next time.
        while sending.join_next().await.is_some() {}
    }

    async fn deliver(&self, entry: SpoolEntry, mut stop: watch::Receiver<bool>) {
        let body = match self.spool.body(&entry) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(file = %entry.path.display(), error = %err, "cannot read a spooled batch; setting it aside");
                self.settle(&entry);
                self.spool.set_aside(&entry);
                return;
            }
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.attempt(&body).await {
                Outcome::Acked(response) => {
                    self.stats.batches_acked.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .records_acked
                        .fetch_add(entry.records as u64, Ordering::Relaxed);
                    self.stats.bytes_acked.fetch_add(body.len() as u64, Ordering::Relaxed);
                    if let Some(response) = response {
                        self.stats.duplicates.fetch_add(response.duplicates, Ordering::Relaxed);
                    }
                    self.settle(&entry);
                    self.spool.remove(&entry);
                    return;
                }
                Outcome::Rejected(reason) => {
                    tracing::error!(batch = entry.seq, records = entry.records, %reason, "the aggregator rejected a batch; it is kept in the spool's rejected/ folder");
                    self.stats.batches_rejected.fetch_add(1, Ordering::Relaxed);
                    self.settle(&entry);
                    self.spool.set_aside(&entry);
                    return;
                }
                outcome @ (Outcome::Retry(_) | Outcome::Unauthorized(_)) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = jittered(backoff);
                    match outcome {
                        Outcome::Unauthorized(reason) => {
                            tracing::error!(batch = entry.seq, %reason, retry_in_ms = wait.as_millis() as u64, "the aggregator refused the token; the batch waits in the spool: fix `token` (or `token_file`) and reload the agent")
                        }
                        Outcome::Retry(reason) => {
                            tracing::warn!(batch = entry.seq, %reason, retry_in_ms = wait.as_millis() as u64, "sending a batch failed; will retry")
                        }
                        _ => {}
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|stopping| *stopping) => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn attempt(&self, body: &[u8]) -> Outcome {
        let request = self
            .client
            .post(&self.url)
            .bearer_auth(self.token.load().as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "zstd")
            .body(body.to_vec());
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Outcome::Retry(describe(&err)),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            Outcome::Acked(serde_json::from_str(&text).ok())
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Outcome::Retry(format!("{status}: {}", error_text(&text)))
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            Outcome::Unauthorized(format!("{status}: {}", error_text(&text)))
        } else {
            Outcome::Rejected(format!("{status}: {}", error_text(&text)))
        }
    }

    fn settle(&self, entry: &SpoolEntry) {
        let mut acks = self.acks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for range in &entry.ranges {
            acks.ack(&range.stream, range.start, range.end);
        }
    }
}

/// The ingest URL for an aggregator base URL.
pub fn ingest_url(base: &str) -> String {
    format!("{}{INGEST_PATH}", base.trim_end_matches('/'))
}

/// Full jitter between half and all of `backoff`, so agents that lost the
/// aggregator together do not come back in lockstep.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64() * 0.5)
}

fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `error` field of a JSON error body, or the body itself, shortened.
fn error_text(body: &str) -> String {
    let text = serde_json::from_str::<lookout_shared::wire::ErrorBody>(body)
        .map(|error| error.error)
        .unwrap_or_else(|_| body.to_string());
    text.chars().take(500).collect()
}

/// Why the shipping client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    /// `ca_file` could not be used.
    #[error("ca_file: {0}")]
    CaFile(String),
}

/// The client that ships batches: HTTPS through rustls with the ring
/// provider, trusting the system's roots plus `ca_file`'s certificates.
pub fn http_client(config: &AgentConfig) -> Result<reqwest::Client, ClientError> {
    lookout_shared::tls::install_crypto_provider();
    let certificates = config.ca_certificates().map_err(ClientError::CaFile)?;
    let mut builder = reqwest::Client::builder().timeout(config.shipper.request_timeout.get());
    if !certificates.is_empty() {
        builder = builder.tls_certs_merge(certificates);
    }
    Ok(builder.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{CoveredRange, SealedBatch};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::AtomicBool;

    /// An HTTP server on loopback that answers each request with the next
    /// (status, body) of `answers`, and counts the requests.
    fn scripted_server(answers: Vec<(u16, &'static str)>) -> (String, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    if line != "\r\n" {
                        break;
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    counter.fetch_add(1, Ordering::SeqCst);
                    let (status, text) = answers.next().unwrap_or((200, "{\"accepted\":1,\"duplicates\":0}"));
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    writer.write_all(response.as_bytes()).unwrap();
                }
            }
        });
        (url, requests)
    }

    /// Ships one spooled batch to `url`; returns the spool folder and the acked offset.
    fn ship_one(name: &str, url: &str) -> (std::path::PathBuf, Option<u64>, Arc<ShipStats>) {
        let dir = std::env::temp_dir().join(format!("lookout-ship-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (spool, _) = Spool::open(&dir, 1 << 20).unwrap();
        let spool = Arc::new(spool);
        let batch = SealedBatch {
            body: b"{}".to_vec(),
            ranges: vec![CoveredRange {
                stream: "s".into(),
                start: 0,
                end: 100,
            }],
            records: 1,
        };
        let entry = spool.append(&batch, &AtomicBool::new(false)).unwrap().unwrap();
        let acks = Arc::new(Mutex::new(AckTracker::default()));
        let stats = Arc::new(ShipStats::default());
        let shipper = Arc::new(Shipper {
            client: {
                lookout_shared::tls::install_crypto_provider();
                reqwest::Client::new()
            },
            url: ingest_url(url),
            token: arc_swap::ArcSwap::from_pointee("t".to_owned()),
            max_in_flight: 2,
            spool,
            acks: Arc::clone(&acks),
            stats: Arc::clone(&stats),
        });
        let (sender, receiver) = mpsc::unbounded_channel();
        drop(sender);
        let (_stop, stop_rx) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(shipper.run(vec![entry], receiver, stop_rx));
        let acked = acks.lock().unwrap().acked_upto("s");
        (dir, acked, stats)
    }

    #[test]
    fn retries_429_and_5xx_then_acknowledges() {
        let (url, requests) = scripted_server(vec![(503, "{\"error\":\"busy\"}"), (429, "{}")]);
        let (dir, acked, stats) = ship_one("retry", &url);
        assert_eq!(requests.load(Ordering::SeqCst), 3, "two failures, then success");
        assert_eq!(stats.retries.load(Ordering::Relaxed), 2);
        assert_eq!(acked, Some(100), "the acknowledged range moves the checkpoint");
        let left = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .count();
        assert_eq!(left, 0, "the acknowledged batch leaves the spool");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_4xx_sets_the_batch_aside_instead_of_retrying() {
        let (url, requests) = scripted_server(vec![(400, "{\"error\":\"bad batch\"}")]);
        let (dir, acked, stats) = ship_one("reject", &url);
        assert_eq!(requests.load(Ordering::SeqCst), 1, "not retried");
        assert_eq!(stats.batches_rejected.load(Ordering::Relaxed), 1);
        assert_eq!(acked, Some(100), "the checkpoint does not stall behind it");
        let rejected = std::fs::read_dir(dir.join("rejected")).unwrap().count();
        assert_eq!(rejected, 1, "the batch is kept in rejected/ for an operator");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(2));
            assert!(
                wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2),
                "{wait:?}"
            );
        }
    }

    #[test]
    fn error_text_prefers_the_json_error() {
        assert_eq!(error_text(r#"{"error":"bad token"}"#), "bad token");
        assert_eq!(error_text("plain"), "plain");
    }

    #[test]
    fn ingest_url_joins_cleanly() {
        assert_eq!(ingest_url("http://a:1/"), "http://a:1/api/v1/ingest");
        assert_eq!(ingest_url("http://a:1"), "http://a:1/api/v1/ingest");
    }
}
