//! Prometheus remote write (protocol 1.0): every sample the metric store
//! stores is sent on to `[export] remote_write` (Prometheus with its
//! remote-write receiver, VictoriaMetrics, Mimir, Thanos receive, …), so
//! that the hosts' metrics Lookout collects reach the systems an operator
//! already runs.
//!
//! The request is what Prometheus itself sends: a snappy-compressed
//! (block format) protobuf `WriteRequest`, one time series per Lookout
//! series with its samples in time order, the headers
//! `Content-Encoding: snappy` and `X-Prometheus-Remote-Write-Version:
//! 0.1.0`. Names and labels are those of the scrape endpoint
//! ([`crate::metricstore::exposition`]): `lookout_cpu_usage_percent`,
//! `host`, the series' labels.
//!
//! Samples come from the metric writer's [`SampleFeed`] once committed, so
//! a batch an agent sends again is not forwarded twice. A request waits up
//! to [`BATCH_WAIT`] for more samples and holds at most
//! [`MAX_SAMPLES_PER_REQUEST`]. A failure worth a retry (network, 408, 429,
//! 5xx) sends the same request again after a growing delay, while new
//! samples wait in the feed (bounded: past [`FEED_CAPACITY`] the oldest are
//! dropped and counted). A refusal (other 4xx: Prometheus refuses a whole
//! request for one sample older than it accepts) sends the request again
//! in parts, by host and then in halves, so that only the samples at fault
//! are dropped, counted and logged.
//! `lookout_remote_write_samples_total{result}` in `/metrics` counts all
//! three. The feed is in memory: samples not yet sent at a stop are not
//! sent after the restart.

use crate::metrics::Metrics;
use crate::metricstore::exposition::{metric_name, series_labels};
use crate::metricstore::feed::{SampleFeed, StoredSample};
use crate::metricstore::recent::Recent;
use crate::outbound::Endpoint;
use prost::Message as _;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Samples one request holds at most (Prometheus's own default is 2,000).
pub const MAX_SAMPLES_PER_REQUEST: usize = 5_000;
/// Samples waiting at most: some ten minutes of 2,000 hosts' metrics.
pub const FEED_CAPACITY: usize = 2_000_000;
/// A refused request of one host is split no further than this.
const MIN_SPLIT: usize = 100;
/// How long the first sample of a request waits for others.
pub const BATCH_WAIT: Duration = Duration::from_secs(1);
/// Longest wait between two tries of a failing request.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// What the sender needs.
pub struct RemoteWriteParts {
    /// Where the samples go.
    pub endpoint: Endpoint,
    /// The metric writer's committed samples.
    pub feed: Arc<SampleFeed>,
    /// What each series is (name, host, labels).
    pub recent: Arc<Recent>,
    /// Counts what was sent, refused and dropped.
    pub metrics: Arc<Metrics>,
}

/// Sends what the feed brings, for ever (the task is aborted at a stop).
pub async fn run(parts: RemoteWriteParts) {
    let mut failures: u32 = 0;
    // Requests to send, the next first: a refused one comes back split.
    let mut pending: VecDeque<Vec<StoredSample>> = VecDeque::new();
    loop {
        let Some(part) = pending.front() else {
            if parts.feed.is_empty() {
                parts.feed.arrived().await;
            }
            if parts.feed.len() < MAX_SAMPLES_PER_REQUEST {
                tokio::time::sleep(BATCH_WAIT).await;
            }
            let taken = parts.feed.take(MAX_SAMPLES_PER_REQUEST);
            if !taken.is_empty() {
                pending.push_back(taken);
            }
            continue;
        };
        let (body, count) = encode(part, &parts.recent);
        let count = count as u64;
        match parts.endpoint.post("remote write", headers(), body).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(target_host = parts.endpoint.target(), "remote write works again");
                }
                failures = 0;
                parts.metrics.remote_write_samples(count, 0, 0);
                pending.pop_front();
            }
            Err(err) if err.permanent => {
                failures = 0;
                let Some(refused) = pending.pop_front() else { continue };
                match split(refused, &parts.recent) {
                    Ok(halves) => {
                        tracing::debug!(error = %err.message, "remote write refused a request; sending it in parts");
                        for half in halves.into_iter().rev() {
                            pending.push_front(half);
                        }
                    }
                    Err(_) => {
                        tracing::error!(error = %err.message, samples = count, "remote write refused samples; they are dropped");
                        parts.metrics.remote_write_samples(0, count, 0);
                    }
                }
            }
            Err(err) => {
                if failures == 0 {
                    tracing::warn!(error = %err.message, "remote write failed; trying again, less and less often");
                }
                failures = failures.saturating_add(1);
                tokio::time::sleep(retry_wait(failures)).await;
            }
        }
    }
}

/// A refused request in parts, so that only the samples at fault are
/// lost (such as an hour of one agent's spooled metrics, older than the
/// receiver takes): by host when it holds several, else in halves down
/// to [`MIN_SPLIT`] samples. `Err` gives back a request too small to split.
fn split(samples: Vec<StoredSample>, recent: &Recent) -> Result<Vec<Vec<StoredSample>>, Vec<StoredSample>> {
    let keys = recent.describe(samples.iter().map(|(id, _, _)| *id));
    let mut by_host: BTreeMap<Option<Arc<str>>, Vec<StoredSample>> = BTreeMap::new();
    for sample in samples {
        let host = keys.get(&sample.0).map(|key| key.host.clone());
        by_host.entry(host).or_default().push(sample);
    }
    if by_host.len() > 1 {
        return Ok(by_host.into_values().collect());
    }
    let mut samples = by_host.into_values().next().unwrap_or_default();
    if samples.len() < 2 * MIN_SPLIT {
        return Err(samples);
    }
    let second = samples.split_off(samples.len() / 2);
    Ok(vec![samples, second])
}

/// 1 s after the first failure, doubling up to [`MAX_RETRY_WAIT`].
fn retry_wait(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.clamp(1, 6).saturating_sub(1)).min(MAX_RETRY_WAIT)
}

fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert(
        HeaderName::from_static("x-prometheus-remote-write-version"),
        HeaderValue::from_static("0.1.0"),
    );
    headers
}

/// The request body for `samples` (a `WriteRequest`, snappy-compressed)
/// and how many samples it holds. Samples are grouped by the Prometheus
/// series they become (two Lookout series can become one, as `a.b` and
/// `a_b`, or a label whose value is empty and none), in time order, one per
/// time; samples of series retention has dropped meanwhile are left out.
pub fn encode(samples: &[StoredSample], recent: &Recent) -> (Vec<u8>, usize) {
    let keys = recent.describe(samples.iter().map(|(id, _, _)| *id));
    let mut by_series: BTreeMap<BTreeMap<String, String>, Vec<Sample>> = BTreeMap::new();
    for &(id, time_ms, value) in samples {
        let Some(key) = keys.get(&id) else {
            continue;
        };
        let mut labels = series_labels(&key.host, &key.labels);
        labels.insert("__name__".to_owned(), metric_name(&key.name));
        by_series.entry(labels).or_default().push(Sample {
            value,
            timestamp: time_ms,
        });
    }
    let mut count = 0;
    let timeseries = by_series
        .into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|sample| sample.timestamp);
            samples.dedup_by_key(|sample| sample.timestamp);
            count += samples.len();
            TimeSeries {
                // A BTreeMap's order: sorted by name, as the protocol asks.
                labels: labels.into_iter().map(|(name, value)| Label { name, value }).collect(),
                samples,
            }
        })
        .collect();
    let request = WriteRequest { timeseries };
    let bytes = request.encode_to_vec();
    // Block-format snappy of a buffer in memory does not fail.
    (
        snap::raw::Encoder::new().compress_vec(&bytes).unwrap_or_default(),
        count,
    )
}

/// `prometheus.WriteRequest` (remote.proto), the fields protocol 1.0 uses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries` (types.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name; `__name__` is the metric's.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// In time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix ms.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_holds_each_series_once_its_samples_in_order_and_prometheus_names() {
        let recent = Recent::default();
        recent.ensure_series(1, "web-1", "cpu.usage_percent", "{}");
        recent.ensure_series(2, "web-1", "fs.used_percent", r#"{"host":"x","mount":"/"}"#);
        let (body, count) = encode(
            &[
                (1, 2_000, 7.5),
                (2, 1_000, 80.0),
                (1, 1_000, 5.0),
                (1, 2_000, 7.5),
                (3, 1_000, 1.0),
            ],
            &recent,
        );
        assert_eq!(count, 3);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let request = WriteRequest::decode(raw.as_slice()).unwrap();
        type Shown = (Vec<(String, String)>, Vec<(i64, f64)>);
        let shown: Vec<Shown> = request
            .timeseries
            .iter()
            .map(|series| {
                (
                    series
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                    series.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
                )
            })
            .collect();
        let pairs = |list: &[(&str, &str)]| list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        assert_eq!(
            shown,
            [
                (
                    pairs(&[("__name__", "lookout_cpu_usage_percent"), ("host", "web-1")]),
                    vec![(1_000, 5.0), (2_000, 7.5)]
                ),
                (
                    pairs(&[
                        ("__name__", "lookout_fs_used_percent"),
                        ("exported_host", "x"),
                        ("host", "web-1"),
                        ("mount", "/")
                    ]),
                    vec![(1_000, 80.0)]
                ),
            ],
            "series 3 is unknown (gone with retention) and left out"
        );
    }

    #[test]
    fn series_that_come_out_alike_in_prometheus_are_one_in_time_order() {
        let recent = Recent::default();
        recent.ensure_series(1, "h", "app.depth", "{}");
        recent.ensure_series(2, "h", "app_depth", "{}");
        recent.ensure_series(3, "h", "app.depth", r#"{"queue":""}"#);
        let (body, count) = encode(
            &[(1, 3_000, 3.0), (2, 1_000, 1.0), (3, 2_000, 2.0), (2, 3_000, 9.0)],
            &recent,
        );
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let request = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(request.timeseries.len(), 1);
        let times: Vec<i64> = request.timeseries[0].samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(times, [1_000, 2_000, 3_000], "one sample per time, in order");
        assert_eq!(count, 3);
    }

    #[test]
    fn a_refused_request_splits_by_host_then_in_halves() {
        let recent = Recent::default();
        recent.ensure_series(1, "a", "cpu.usage_percent", "{}");
        recent.ensure_series(2, "b", "cpu.usage_percent", "{}");
        let mixed: Vec<StoredSample> = (0..800).map(|i| (1 + i % 2, i, 1.0)).collect();
        let parts = split(mixed, &recent).unwrap();
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [400, 400], "by host");
        let halves = split(parts[0].clone(), &recent).unwrap();
        assert_eq!(halves.iter().map(Vec::len).collect::<Vec<_>>(), [200, 200]);
        let quarters = split(halves[0].clone(), &recent).unwrap();
        assert_eq!(quarters.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100]);
        assert!(split(quarters[0].clone(), &recent).is_err(), "too small to split");
    }

    #[test]
    fn retries_wait_longer_and_longer_up_to_half_a_minute() {
        let waits: Vec<u64> = (1..9).map(|n| retry_wait(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
