//! The aggregator's own counters, served as Prometheus text on `GET /metrics`.
//!
//! Plain atomics: the hot path only adds to them, and the exposition is
//! rendered on demand.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Why a request was refused; one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Missing or wrong bearer token or session (401).
    Unauthorized,
    /// Not allowed for this caller: CSRF, origin or role (403).
    Forbidden,
    /// Body over a size limit (413).
    TooLarge,
    /// Unsupported `Content-Encoding` (415).
    UnsupportedEncoding,
    /// Body that does not decompress (400).
    BadEncoding,
    /// Body that is not a valid ingest batch (400).
    BadBatch,
    /// Bad query string or query syntax (400).
    BadQuery,
    /// Unknown route or method (404, 405).
    NotFound,
    /// Shutting down or a failed commit (503).
    Unavailable,
    /// A failure on our side (500).
    Internal,
}

impl RejectReason {
    const ALL: [RejectReason; 10] = [
        RejectReason::Unauthorized,
        RejectReason::Forbidden,
        RejectReason::TooLarge,
        RejectReason::UnsupportedEncoding,
        RejectReason::BadEncoding,
        RejectReason::BadBatch,
        RejectReason::BadQuery,
        RejectReason::NotFound,
        RejectReason::Unavailable,
        RejectReason::Internal,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::Forbidden => "forbidden",
            RejectReason::TooLarge => "too_large",
            RejectReason::UnsupportedEncoding => "unsupported_encoding",
            RejectReason::BadEncoding => "bad_encoding",
            RejectReason::BadBatch => "bad_batch",
            RejectReason::BadQuery => "bad_query",
            RejectReason::NotFound => "not_found",
            RejectReason::Unavailable => "unavailable",
            RejectReason::Internal => "internal",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A receiver of what other shippers and devices send (`receiver` label);
/// also the `source` of the records it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// Syslog over TCP, TLS or UDP.
    Syslog,
    /// OTLP/HTTP logs.
    Otlp,
    /// The Elasticsearch bulk API.
    Elasticsearch,
    /// Loki's push API.
    Loki,
}

impl Receiver {
    const ALL: [Receiver; 4] = [
        Receiver::Syslog,
        Receiver::Otlp,
        Receiver::Elasticsearch,
        Receiver::Loki,
    ];

    /// The `receiver` label value, and the `source` of its records.
    pub fn label(self) -> &'static str {
        match self {
            Receiver::Syslog => "syslog",
            Receiver::Otlp => "otlp",
            Receiver::Elasticsearch => "elasticsearch",
            Receiver::Loki => "loki",
        }
    }
}

/// What became of a message a receiver read (`result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored and committed.
    Accepted,
    /// Not readable as the protocol's message: counted and dropped.
    Invalid,
    /// Readable, but dropped: refused for its host, or lost to a full queue
    /// (UDP, which has no way to slow a sender down).
    Dropped,
}

impl Received {
    const ALL: [Received; 3] = [Received::Accepted, Received::Invalid, Received::Dropped];

    fn label(self) -> &'static str {
        match self {
            Received::Accepted => "accepted",
            Received::Invalid => "invalid",
            Received::Dropped => "dropped",
        }
    }
}

/// All counters of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    batches: AtomicU64,
    records_accepted: AtomicU64,
    records_duplicate: AtomicU64,
    body_bytes: AtomicU64,
    decompressed_bytes: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    commit_micros: AtomicU64,
    samples_accepted: AtomicU64,
    samples_duplicate: AtomicU64,
    samples_expired: AtomicU64,
    metric_commits: AtomicU64,
    metric_commit_failures: AtomicU64,
    metric_commit_micros: AtomicU64,
    metric_rows_expired: AtomicU64,
    metric_samples_compacted: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    fields_dropped: AtomicU64,
    received: [[AtomicU64; Received::ALL.len()]; Receiver::ALL.len()],
    connections_refused: [AtomicU64; Receiver::ALL.len()],
    remote_write_sent: AtomicU64,
    remote_write_refused: AtomicU64,
    remote_write_dropped: AtomicU64,
    reloads_applied: AtomicU64,
    reloads_refused: AtomicU64,
    last_reload_refused: AtomicBool,
    archive_days_written: AtomicU64,
    archive_days_failed: AtomicU64,
}

impl Metrics {
    /// Samples sent by remote write, refused by its receiver (and not sent
    /// again), or dropped before they could be sent.
    pub fn remote_write_samples(&self, sent: u64, refused: u64, dropped: u64) {
        self.remote_write_sent.fetch_add(sent, Ordering::Relaxed);
        self.remote_write_refused.fetch_add(refused, Ordering::Relaxed);
        self.remote_write_dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// A day of logs was archived, or could not be (and is tried again).
    pub fn archive_day(&self, written: bool) {
        let count = if written {
            &self.archive_days_written
        } else {
            &self.archive_days_failed
        };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// A configuration reload was applied, or refused.
    pub fn reload_done(&self, applied: bool) {
        let count = if applied {
            &self.reloads_applied
        } else {
            &self.reloads_refused
        };
        count.fetch_add(1, Ordering::Relaxed);
        self.last_reload_refused.store(!applied, Ordering::Relaxed);
    }

    /// A batch was acknowledged with these counts.
    pub fn batch_done(&self, accepted: u64, duplicates: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records_accepted.fetch_add(accepted, Ordering::Relaxed);
        self.records_duplicate.fetch_add(duplicates, Ordering::Relaxed);
    }

    /// An ingest body arrived: its size as sent and decompressed.
    pub fn body_received(&self, sent: u64, decompressed: u64) {
        self.body_bytes.fetch_add(sent, Ordering::Relaxed);
        self.decompressed_bytes.fetch_add(decompressed, Ordering::Relaxed);
    }

    /// A commit succeeded after `took`.
    pub fn commit_done(&self, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A commit failed and was rolled back.
    pub fn commit_failed(&self) {
        self.commit_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A metric batch was stored: its samples by outcome (new, re-sent,
    /// older than the retention period).
    pub fn metric_samples(&self, accepted: u64, duplicates: u64, expired: u64) {
        self.samples_accepted.fetch_add(accepted, Ordering::Relaxed);
        self.samples_duplicate.fetch_add(duplicates, Ordering::Relaxed);
        self.samples_expired.fetch_add(expired, Ordering::Relaxed);
    }

    /// A metric store transaction committed after `took`.
    pub fn metric_commit_done(&self, took: Duration) {
        self.metric_commits.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.metric_commit_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A metric store transaction failed and was rolled back.
    pub fn metric_commit_failed(&self) {
        self.metric_commit_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Metric retention deleted `rows` samples and roll-up buckets.
    pub fn metric_rows_expired(&self, rows: u64) {
        self.metric_rows_expired.fetch_add(rows, Ordering::Relaxed);
    }

    /// Compaction moved `samples` from the head into hourly blocks.
    pub fn metric_samples_compacted(&self, samples: u64) {
        self.metric_samples_compacted.fetch_add(samples, Ordering::Relaxed);
    }

    /// Extracted fields dropped by the bound on names per source.
    pub fn fields_dropped(&self, count: u64) {
        self.fields_dropped.fetch_add(count, Ordering::Relaxed);
    }

    /// `count` messages read by `receiver` ended as `result`.
    pub fn received(&self, receiver: Receiver, result: Received, count: u64) {
        self.received[receiver as usize][result as usize].fetch_add(count, Ordering::Relaxed);
    }

    /// A connection to `receiver`'s listener was closed at once: too many open.
    pub fn connection_refused(&self, receiver: Receiver) {
        self.connections_refused[receiver as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A request was refused.
    pub fn rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        counter(
            "lookout_ingest_batches_total",
            "Ingest batches acknowledged.",
            &[("", get(&self.batches))],
        );
        counter(
            "lookout_ingest_records_total",
            "Records received in acknowledged batches, by outcome.",
            &[
                ("{result=\"accepted\"}", get(&self.records_accepted)),
                ("{result=\"duplicate\"}", get(&self.records_duplicate)),
            ],
        );
        counter(
            "lookout_ingest_body_bytes_total",
            "Ingest request body bytes as sent (compressed).",
            &[("", get(&self.body_bytes))],
        );
        counter(
            "lookout_ingest_decompressed_bytes_total",
            "Ingest request body bytes after decompression.",
            &[("", get(&self.decompressed_bytes))],
        );
        counter(
            "lookout_fields_dropped_total",
            "Extracted fields not indexed because their source brought too many distinct names.",
            &[("", get(&self.fields_dropped))],
        );
        counter(
            "lookout_index_commits_total",
            "Log index commits.",
            &[("", get(&self.commits))],
        );
        counter(
            "lookout_index_commit_failures_total",
            "Log index commits that failed and were rolled back.",
            &[("", get(&self.commit_failures))],
        );
        counter(
            "lookout_metric_samples_total",
            "Metric samples received in acknowledged batches, by outcome.",
            &[
                ("{result=\"accepted\"}", get(&self.samples_accepted)),
                ("{result=\"duplicate\"}", get(&self.samples_duplicate)),
                ("{result=\"expired\"}", get(&self.samples_expired)),
            ],
        );
        counter(
            "lookout_metric_store_commits_total",
            "Metric store transactions committed for ingest batches.",
            &[("", get(&self.metric_commits))],
        );
        counter(
            "lookout_metric_store_commit_failures_total",
            "Metric store transactions that failed and were rolled back.",
            &[("", get(&self.metric_commit_failures))],
        );
        counter(
            "lookout_metric_retention_deleted_rows_total",
            "Head samples, hourly blocks and roll-up buckets deleted by metric retention.",
            &[("", get(&self.metric_rows_expired))],
        );
        counter(
            "lookout_metric_samples_compacted_total",
            "Metric samples moved from the head into compressed hourly blocks.",
            &[("", get(&self.metric_samples_compacted))],
        );
        let labels: Vec<String> = RejectReason::ALL
            .iter()
            .map(|r| format!("{{reason=\"{}\"}}", r.label()))
            .collect();
        let samples: Vec<(&str, u64)> = RejectReason::ALL
            .iter()
            .zip(&labels)
            .map(|(r, l)| (l.as_str(), get(&self.rejected[r.index()])))
            .collect();
        counter(
            "lookout_http_rejected_requests_total",
            "Requests refused, by reason.",
            &samples,
        );
        let labels: Vec<(String, u64)> = Receiver::ALL
            .iter()
            .flat_map(|r| {
                Received::ALL.iter().map(move |o| {
                    (
                        format!("{{receiver=\"{}\",result=\"{}\"}}", r.label(), o.label()),
                        get(&self.received[*r as usize][*o as usize]),
                    )
                })
            })
            .collect();
        counter(
            "lookout_receiver_messages_total",
            "Messages read by the syslog, OTLP, Elasticsearch bulk and Loki receivers, by outcome.",
            &labels.iter().map(|(l, v)| (l.as_str(), *v)).collect::<Vec<_>>(),
        );
        let labels: Vec<(String, u64)> = Receiver::ALL
            .iter()
            .map(|r| {
                (
                    format!("{{receiver=\"{}\"}}", r.label()),
                    get(&self.connections_refused[*r as usize]),
                )
            })
            .collect();
        counter(
            "lookout_receiver_connections_refused_total",
            "Connections to a receiver's listener closed at once because too many were open.",
            &labels.iter().map(|(l, v)| (l.as_str(), *v)).collect::<Vec<_>>(),
        );
        counter(
            "lookout_remote_write_samples_total",
            "Samples sent by Prometheus remote write, refused by the receiver, or dropped while it was away.",
            &[
                ("{result=\"sent\"}", get(&self.remote_write_sent)),
                ("{result=\"refused\"}", get(&self.remote_write_refused)),
                ("{result=\"dropped\"}", get(&self.remote_write_dropped)),
            ],
        );
        counter(
            "lookout_archive_days_total",
            "Days of logs written to the archive, or not (retention keeps those until they are).",
            &[
                ("{result=\"written\"}", get(&self.archive_days_written)),
                ("{result=\"failed\"}", get(&self.archive_days_failed)),
            ],
        );
        counter(
            "lookout_config_reloads_total",
            "Configuration reloads (SIGHUP), applied or refused.",
            &[
                ("{result=\"applied\"}", get(&self.reloads_applied)),
                ("{result=\"refused\"}", get(&self.reloads_refused)),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP lookout_config_last_reload_successful Whether the last reload was applied (1, also before any) \
             or refused (0: the configuration in force is older than the file).\n\
             # TYPE lookout_config_last_reload_successful gauge\n\
             lookout_config_last_reload_successful {}",
            u8::from(!self.last_reload_refused.load(Ordering::Relaxed))
        );
        let seconds = get(&self.commit_micros) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP lookout_index_commit_duration_seconds Time spent in log index commits.\n\
             # TYPE lookout_index_commit_duration_seconds summary\n\
             lookout_index_commit_duration_seconds_sum {seconds}\n\
             lookout_index_commit_duration_seconds_count {}",
            get(&self.commits)
        );
        let seconds = get(&self.metric_commit_micros) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP lookout_metric_store_commit_duration_seconds Time spent in metric store transactions.\n\
             # TYPE lookout_metric_store_commit_duration_seconds summary\n\
             lookout_metric_store_commit_duration_seconds_sum {seconds}\n\
             lookout_metric_store_commit_duration_seconds_count {}",
            get(&self.metric_commits)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_counts() {
        let metrics = Metrics::default();
        metrics.batch_done(5, 2);
        metrics.rejected(RejectReason::TooLarge);
        metrics.commit_done(Duration::from_millis(1500));
        metrics.metric_samples(7, 3, 1);
        let text = metrics.render();
        assert!(
            text.contains("lookout_ingest_records_total{result=\"accepted\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("lookout_ingest_records_total{result=\"duplicate\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("lookout_http_rejected_requests_total{reason=\"too_large\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lookout_index_commit_duration_seconds_sum 1.5\n"),
            "{text}"
        );
        assert!(text.contains("lookout_index_commits_total 1\n"), "{text}");
        assert!(
            text.contains("lookout_metric_samples_total{result=\"duplicate\"} 3\n"),
            "{text}"
        );
    }
}
