//! `lookout-bench fleet HOSTS [SECONDS [LINES]]`: HOSTS simulated agents
//! against one release aggregator with the built-in alert rules and one
//! `error_rate` rule on.
//!
//! Each host does what an agent does: one `POST /api/v1/ingest` a second
//! (zstd JSON, LINES log lines, 1 % errors and 4 % warnings) and, every
//! 10 s, a real agent's metric set in the same request (41 samples: a 4-core
//! host with 3 mounts, 2 disks and 2 interfaces). Hosts are spread over the
//! second on [`SENDERS`] threads with keep-alive connections. Every 2 s a
//! probe asks what the UI's first pages ask. Prints ingest latency, errors,
//! late starts, the aggregator's CPU and RSS (and the generator's CPU), each
//! rule's evaluation time from `/metrics`, the probe's latencies and the
//! metric database's bytes per sample; asserts that every line sent is found.
//! With `LOOKOUT_BENCH_REMOTE_WRITE=URL` the aggregator also sends every
//! sample there by remote write, and the counts of what it sent are printed.
//!
//! `lookout-bench metric-storage HOSTS HOURS`: the same metric sets, HOURS
//! of them per host 10 s apart in hours that have passed, sent as an agent
//! back from an outage sends its spool; then, once the aggregator has
//! compacted them all into hourly blocks, its metric database's bytes per
//! sample after a clean stop.

use super::{
    API_TOKEN, INGEST_TOKEN, current_rss_kb, http, process_usage, search_total, start_aggregator_with, status_kb,
    wait_until, work_dir,
};
use lookout_shared::wire::{IngestBatch, MetricSample, StreamChunk, WireRecord};
use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Sender threads; each serves HOSTS / SENDERS hosts in turn.
const SENDERS: usize = 1000;
/// Seconds between two metric sets of one host, as the agent's default.
const METRIC_PERIOD: u64 = 10;

/// The rules file: one `error_rate` rule beside the built-in ones.
const RULES: &str = r#"
[[rules]]
name = "ServiceErrors"
kind = "error_rate"
query = "level:error"
window = "5m"
ratio = 0.05
min_lines = 100
group_by = ["host", "source"]
"#;

/// What one sender thread measured.
#[derive(Default)]
struct Sent {
    latencies_ms: Vec<f64>,
    errors: u64,
    late: u64,
    lines: u64,
    samples: u64,
}

/// Metric sets per request of [`bench_metric_storage`]: ten minutes of one host.
const SETS_PER_REQUEST: i64 = 60;

/// Sends HOURS of every host's metric sets, waits until all are compacted,
/// stops the aggregator and measures its metric database.
pub fn bench_metric_storage(hosts: usize, hours: i64) {
    assert!(hosts > 0 && hours > 0, "HOSTS and HOURS must be positive");
    let dir = work_dir("metric-storage");
    let (mut aggregator, url) = start_aggregator_with(&dir, "", "");
    let pid = aggregator.id();
    // Hours that ended more than the aggregator's compaction grace (10 min) ago.
    let hour_ms = 3_600_000;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let end_ms = (now_ms - 11 * 60_000).div_euclid(hour_ms) * hour_ms;
    let start_ms = end_ms - hours * hour_ms;
    let requests_per_host = hours * 360 / SETS_PER_REQUEST;
    let started = Instant::now();
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = http();
                let mut samples = 0u64;
                for host in (sender..hosts).step_by(8) {
                    for request in 0..requests_per_host {
                        let metrics = (0..SETS_PER_REQUEST)
                            .flat_map(|set| {
                                let time = start_ms + (request * SETS_PER_REQUEST + set) * 10_000;
                                metric_set(host, time)
                            })
                            .collect::<Vec<_>>();
                        samples += metrics.len() as u64;
                        let batch = IngestBatch {
                            host: format!("host-{host:04}"),
                            streams: Vec::new(),
                            metrics,
                        };
                        let body = serde_json::to_vec(&batch).expect("batch encodes");
                        let response = client
                            .post(format!("{url}/api/v1/ingest"))
                            .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
                            .header("Content-Type", "application/json")
                            .send(&body[..])
                            .expect("ingest answers");
                        assert_eq!(response.status(), 200, "ingest refused a batch");
                    }
                }
                samples
            })
        })
        .collect();
    let samples: u64 = senders.into_iter().map(|s| s.join().expect("sender")).sum();
    let sent_secs = started.elapsed().as_secs_f64();
    wait_until("every sample compacted", Duration::from_secs(3600), || {
        std::thread::sleep(Duration::from_secs(1));
        counter(&url, "lookout_metric_samples_compacted_total") >= samples as f64
    });
    let compacted_secs = started.elapsed().as_secs_f64();
    let (cpu, peak) = process_usage(pid);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = aggregator.wait();
    let database = dir.join("data/metrics.sqlite");
    let bytes = fs::metadata(&database).map_or(0, |m| m.len());
    let parts = database_parts(&database).expect("the metric database reads");
    println!("| figure | value |");
    println!("|---|---|");
    println!("| samples ({hosts} hosts × {hours} h × 41 every 10 s) | {samples} |");
    println!(
        "| sent in / compacted after | {sent_secs:.1} s ({:.0} samples/s) / {compacted_secs:.1} s |",
        samples as f64 / sent_secs
    );
    println!(
        "| aggregator CPU, peak RSS | {cpu:.1} CPU-s, {:.0} MB |",
        peak as f64 / 1e3
    );
    println!(
        "| metrics.sqlite after a clean stop | {:.1} MB, {:.2} bytes per sample |",
        bytes as f64 / 1e6,
        bytes as f64 / samples as f64
    );
    println!(
        "| of it in use (the rest: free pages the head's backlog left, reused by later samples) | {:.1} MB, {:.2} bytes per sample |",
        parts.in_use as f64 / 1e6,
        parts.in_use as f64 / samples as f64
    );
    println!(
        "| block contents alone | {:.1} MB, {:.2} bytes per sample |",
        parts.block_bytes as f64 / 1e6,
        parts.block_bytes as f64 / samples as f64
    );
    for (name, bytes_per_sample) in parts.per_metric {
        println!("| `{name}` blocks | {bytes_per_sample:.2} bytes per sample |");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Where a metric database's bytes are.
struct DatabaseParts {
    /// Pages in use (not on the free list), in bytes.
    in_use: u64,
    /// The compressed blocks' own bytes.
    block_bytes: u64,
    /// Block bytes per sample per metric name, largest first (at 360
    /// samples a block: an hour every 10 s).
    per_metric: Vec<(String, f64)>,
}

fn database_parts(path: &std::path::Path) -> rusqlite::Result<DatabaseParts> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let pragma = |name: &str| -> rusqlite::Result<i64> { conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)) };
    let in_use = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
    let block_bytes: i64 = conn.query_row("SELECT coalesce(sum(length(data)), 0) FROM chunks", [], |r| r.get(0))?;
    let per_metric = conn
        .prepare(
            "SELECT name, avg(length(data)) / 360.0 AS per_sample FROM chunks JOIN series ON series.id = series_id \
             GROUP BY name ORDER BY per_sample DESC",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(DatabaseParts {
        in_use: u64::try_from(in_use).unwrap_or(0),
        block_bytes: u64::try_from(block_bytes).unwrap_or(0),
        per_metric,
    })
}

/// The aggregator's `/metrics` text; empty if it does not answer.
fn metrics_text(url: &str) -> String {
    http()
        .get(format!("{url}/metrics"))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .call()
        .ok()
        .and_then(|mut response| response.body_mut().read_to_string().ok())
        .unwrap_or_default()
}

/// The value of an unlabelled counter in `/metrics`, 0 if absent.
fn counter(url: &str, name: &str) -> f64 {
    metrics_text(url)
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Runs the fleet; see the module docs.
pub fn bench_fleet(hosts: usize, seconds: u64, lines_per_second: u64) {
    assert!(hosts > 0 && seconds > 0, "HOSTS and SECONDS must be positive");
    let dir = work_dir("fleet");
    fs::write(dir.join("rules.toml"), RULES).expect("rules file");
    let remote_write = std::env::var("LOOKOUT_BENCH_REMOTE_WRITE").ok();
    let export = remote_write
        .as_ref()
        .map(|url| format!("[export]\nremote_write = \"{url}\"\n"))
        .unwrap_or_default();
    let (mut aggregator, url) = start_aggregator_with(
        &dir,
        &format!("rules_file = \"{}\"", dir.join("rules.toml").display()),
        &export,
    );
    let pid = aggregator.id();
    println!("{hosts} hosts × {lines_per_second} lines/s and 41 samples every {METRIC_PERIOD} s, {seconds} s");

    let (generator_cpu_before, _) = process_usage(std::process::id());
    let (aggregator_cpu_before, _) = process_usage(pid);
    let started = Instant::now() + Duration::from_millis(500);
    let probing = Arc::new(AtomicBool::new(true));
    let probe = {
        let url = url.clone();
        let probing = Arc::clone(&probing);
        std::thread::spawn(move || probe_ui(&url, &probing))
    };
    let senders: Vec<_> = (0..SENDERS.min(hosts))
        .map(|sender| {
            let url = url.clone();
            let mine: Vec<usize> = (sender..hosts).step_by(SENDERS).collect();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || send_hosts(&url, &mine, hosts, started, seconds, lines_per_second))
                .expect("sender thread")
        })
        .collect();
    let mut rss_peak_during = 0;
    while senders.iter().any(|sender| !sender.is_finished()) {
        rss_peak_during = rss_peak_during.max(current_rss_kb(pid));
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut sent = Sent::default();
    for sender in senders {
        let part = sender.join().expect("sender");
        sent.latencies_ms.extend(part.latencies_ms);
        sent.errors += part.errors;
        sent.late += part.late;
        sent.lines += part.lines;
        sent.samples += part.samples;
    }
    let wall = started.elapsed().as_secs_f64();
    let (aggregator_cpu_after, aggregator_peak) = process_usage(pid);
    let (generator_cpu_after, _) = process_usage(std::process::id());
    probing.store(false, Ordering::Relaxed);
    let probed = probe.join().expect("probe");

    let requests = sent.latencies_ms.len();
    sent.latencies_ms.sort_by(f64::total_cmp);
    let at = |q: f64| sent.latencies_ms[((requests as f64 - 1.0) * q) as usize];
    println!("| figure | value |");
    println!("|---|---|");
    println!("| requests | {requests} ({:.0}/s) |", requests as f64 / wall);
    if requests > 0 {
        println!(
            "| ingest latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    println!("| errors | {} |", sent.errors);
    println!("| requests started > 1 s late | {} |", sent.late);
    println!(
        "| aggregator CPU | {:.2} cores |",
        (aggregator_cpu_after - aggregator_cpu_before) / wall
    );
    println!(
        "| generator CPU (same machine) | {:.2} cores |",
        (generator_cpu_after - generator_cpu_before) / wall
    );
    println!(
        "| aggregator RSS peak / at end | {:.0} / {:.0} MB (at end: {:.0} MB anonymous, {:.0} MB files) |",
        aggregator_peak.max(rss_peak_during) as f64 / 1e3,
        current_rss_kb(pid) as f64 / 1e3,
        status_kb(pid, "RssAnon") as f64 / 1e3,
        status_kb(pid, "RssFile") as f64 / 1e3,
    );
    for (rule, mean_ms, last_ms, count) in rule_timings(&url) {
        println!("| rule `{rule}`: mean / last evaluation ({count} runs) | {mean_ms:.1} / {last_ms:.1} ms |");
    }
    let (pending, firing, resolved) = alert_counts(&url);
    println!("| alerts at the end: pending / firing / resolved | {pending} / {firing} / {resolved} |");
    for (name, mut took) in probed {
        took.sort_by(f64::total_cmp);
        if let (Some(median), Some(max)) = (took.get(took.len() / 2), took.last()) {
            println!(
                "| {name} under load, p50 / max ({} asks) | {median:.1} / {max:.1} ms |",
                took.len()
            );
        }
    }

    wait_until("every line sent to be searchable", Duration::from_secs(120), || {
        std::thread::sleep(Duration::from_millis(200));
        search_total(&url, "") >= sent.lines
    });
    let stored = search_total(&url, "");
    assert_eq!(stored, sent.lines, "lines sent and lines stored differ");
    println!("| lines sent = stored | {stored} |");
    if remote_write.is_some() {
        let sent_by_remote_write = |url: &str| {
            metrics_text(url)
                .lines()
                .find_map(|line| {
                    line.strip_prefix("lookout_remote_write_samples_total{result=\"sent\"} ")?
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0)
        };
        wait_until("remote write to send every sample", Duration::from_secs(120), || {
            std::thread::sleep(Duration::from_millis(200));
            sent_by_remote_write(&url) >= sent.samples
        });
        let text = metrics_text(&url);
        for line in text
            .lines()
            .filter(|line| line.starts_with("lookout_remote_write_samples_total"))
        {
            println!("| {line} |");
        }
    }

    // A clean stop, so the metric database holds everything and no WAL.
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success());
    if stopped {
        let _ = aggregator.wait();
    } else {
        let _ = aggregator.kill();
        let _ = aggregator.wait();
    }
    let metrics_bytes = fs::metadata(dir.join("data/metrics.sqlite")).map_or(0, |m| m.len());
    println!(
        "| metrics.sqlite (head rows only: a run under an hour is not compacted; see metric-storage) | {:.1} MB, {:.1} bytes per sample ({} samples) |",
        metrics_bytes as f64 / 1e6,
        metrics_bytes as f64 / sent.samples.max(1) as f64,
        sent.samples
    );
    let _ = fs::remove_dir_all(&dir);
}

/// One sender thread: each of `mine` sends once a second at its own offset
/// in the second, for `seconds` seconds.
fn send_hosts(url: &str, mine: &[usize], hosts: usize, started: Instant, seconds: u64, lines: u64) -> Sent {
    let client: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut sent = Sent::default();
    let mut offsets = vec![0u64; mine.len()];
    for second in 0..seconds {
        for (slot, &host) in mine.iter().enumerate() {
            let due =
                started + Duration::from_secs(second) + Duration::from_micros(host as u64 * 1_000_000 / hosts as u64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            } else if now - due > Duration::from_secs(1) {
                sent.late += 1;
            }
            let with_metrics = (second + host as u64).is_multiple_of(METRIC_PERIOD);
            let batch = host_batch(host, second, lines, &mut offsets[slot], with_metrics);
            let samples = batch.metrics.len() as u64;
            let json = serde_json::to_vec(&batch).expect("batch encodes");
            let body = zstd::bulk::compress(&json, 1).expect("zstd");
            let asked = Instant::now();
            let answer = client
                .post(format!("{url}/api/v1/ingest"))
                .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "zstd")
                .send(&body[..]);
            match answer {
                Ok(response) if response.status() == 200 => {
                    sent.latencies_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
                    sent.lines += lines;
                    sent.samples += samples;
                }
                _ => {
                    // The agent would re-send; the bench counts it and moves on
                    // with the next chunk, so the offsets no longer tile: the
                    // stored count then differs and the run fails.
                    sent.errors += 1;
                }
            }
        }
    }
    sent
}

/// Host `host`'s request of second `second`: `lines` lines of its one file,
/// continuing at `offset`, and the metric set when `with_metrics`.
fn host_batch(host: usize, second: u64, lines: u64, offset: &mut u64, with_metrics: bool) -> IngestBatch {
    let now = jiff::Timestamp::now();
    let now_ms = now.as_millisecond();
    let start = *offset;
    let records = (0..lines)
        .map(|i| {
            let number = second * lines + i;
            let level = match number % 100 {
                0 => "ERROR",
                1..=4 => "WARN",
                _ => "INFO",
            };
            let message = format!(
                "{now} {level} api[{}]: GET /api/items/{} answered {} in {} ms request={number:08}",
                1000 + host,
                number % 997,
                if level == "ERROR" { 500 } else { 200 },
                number % 250
            );
            let record = WireRecord {
                offset: *offset,
                read_at_ms: now_ms,
                message,
                ..WireRecord::default()
            };
            *offset += record.message.len() as u64 + 1;
            record
        })
        .collect();
    IngestBatch {
        host: format!("host-{host:04}"),
        streams: vec![StreamChunk {
            stream: format!("{:016x}", 0x5eed_0000_0000_0000u64 + host as u64),
            source: "/var/log/api.log".to_owned(),
            start,
            end: *offset,
            records,
            ..StreamChunk::default()
        }],
        metrics: if with_metrics {
            metric_set(host, now_ms)
        } else {
            Vec::new()
        },
    }
}

/// A real agent's metric set (see agent/src/sources/metrics): a 4-core host
/// with 3 mounts, 2 disks and 2 interfaces. Values drift smoothly per host
/// and go out with two decimals, as the agent sends them.
fn metric_set(host: usize, time_ms: i64) -> Vec<MetricSample> {
    let phase = time_ms as f64 / 600_000.0 + host as f64;
    let wave = |scale: f64, shift: f64| scale * (0.5 + 0.4 * (phase + shift).sin());
    // One host in a hundred runs hot (CPU, memory, disks and links past the
    // built-in rules' thresholds); the others between 10 and 60 %.
    let hot = host.is_multiple_of(100);
    let percent = |shift: f64| {
        let (low, high) = if hot { (85.0, 99.0) } else { (10.0, 60.0) };
        low + (high - low) * (0.5 + 0.5 * (phase + shift).sin())
    };
    let mut samples = Vec::with_capacity(41);
    let mut push = |name: &str, label: Option<(&str, &str)>, value: f64| {
        samples.push(MetricSample {
            name: name.to_owned(),
            labels: label
                .map(|(key, value)| BTreeMap::from([(key.to_owned(), value.to_owned())]))
                .unwrap_or_default(),
            time_ms,
            value: lookout_shared::wire::round_value(value),
        });
    };
    push("cpu.usage_percent", None, percent(0.0));
    for (i, core) in ["0", "1", "2", "3"].into_iter().enumerate() {
        push("cpu.usage_percent", Some(("cpu", core)), percent(i as f64));
    }
    push("load.1m", None, wave(4.0, 0.1));
    push("load.5m", None, wave(4.0, 0.2));
    push("load.15m", None, wave(4.0, 0.3));
    push("memory.used_percent", None, percent(0.4));
    // Units as the kernel counts them: kB of memory, 4 KiB blocks, 512-byte
    // sectors and bytes over a 10 s interval.
    push(
        "memory.available_bytes",
        None,
        (wave(16e9, 0.5) / 1024.0).round() * 1024.0,
    );
    push("swap.used_percent", None, wave(10.0, 0.6));
    for (i, mount) in ["/", "/var", "/home"].into_iter().enumerate() {
        let total = 100e9 * (i + 1) as f64;
        let used = (total * percent(i as f64) / 100.0 / 4096.0).round() * 4096.0;
        push("fs.used_bytes", Some(("mount", mount)), used);
        push("fs.total_bytes", Some(("mount", mount)), total);
        push("fs.used_percent", Some(("mount", mount)), 100.0 * used / total);
    }
    for device in ["vda", "vdb"] {
        let sectors = |bytes: f64| (bytes * 10.0 / 512.0).round() * 512.0 / 10.0;
        push(
            "disk.read_bytes_per_sec",
            Some(("device", device)),
            sectors(wave(5e6, 0.7)),
        );
        push(
            "disk.write_bytes_per_sec",
            Some(("device", device)),
            sectors(wave(2e6, 0.8)),
        );
    }
    for interface in ["eth0", "eth1"] {
        push(
            "net.rx_bytes_per_sec",
            Some(("interface", interface)),
            (wave(1e7, 0.9) * 10.0).round() / 10.0,
        );
        push(
            "net.tx_bytes_per_sec",
            Some(("interface", interface)),
            (wave(5e6, 1.0) * 10.0).round() / 10.0,
        );
        push(
            "net.rx_utilization_percent",
            Some(("interface", interface)),
            percent(0.9),
        );
        push(
            "net.tx_utilization_percent",
            Some(("interface", interface)),
            percent(1.0),
        );
    }
    for (name, value) in [
        ("agent.rss_bytes", 22e6),
        ("agent.cpu_percent", wave(2.0, 1.1)),
        ("agent.spool_bytes", 0.0),
        ("agent.oldest_unacked_age_seconds", 0.0),
        ("agent.lines_read", (time_ms / 100) as f64),
        ("agent.bytes_read", (time_ms * 8) as f64),
        ("agent.bytes_shipped", (time_ms * 8) as f64),
        ("agent.records_missed", 0.0),
    ] {
        push(name, None, value);
    }
    samples
}

/// Every 2 s until `probing` ends, what the UI's first pages ask; returns
/// each request's latencies in ms.
fn probe_ui(url: &str, probing: &AtomicBool) -> Vec<(&'static str, Vec<f64>)> {
    let client = http();
    let mut took: Vec<(&'static str, Vec<f64>)> = vec![
        ("`GET /api/v1/hosts`", Vec::new()),
        ("search `q=*` newest 100, last 15 min", Vec::new()),
        ("histogram `q=*`, last 15 min", Vec::new()),
        ("`GET /api/v1/alerts`", Vec::new()),
    ];
    while probing.load(Ordering::Relaxed) {
        let start = (jiff::Timestamp::now() - jiff::SignedDuration::from_mins(15)).to_string();
        let asks: [(&str, Vec<(&str, &str)>); 4] = [
            ("/api/v1/hosts", vec![]),
            (
                "/api/v1/logs/search",
                vec![("q", "*"), ("limit", "100"), ("start", &start)],
            ),
            ("/api/v1/logs/histogram", vec![("q", "*"), ("start", &start)]),
            ("/api/v1/alerts", vec![]),
        ];
        for ((path, params), (_, times)) in asks.iter().zip(took.iter_mut()) {
            let mut request = client
                .get(format!("{url}{path}"))
                .header("Authorization", format!("Bearer {API_TOKEN}"));
            for (key, value) in params {
                request = request.query(*key, *value);
            }
            let asked = Instant::now();
            if let Ok(mut response) = request.call()
                && response.status() == 200
                && response.body_mut().read_to_vec().is_ok()
            {
                times.push(asked.elapsed().as_secs_f64() * 1000.0);
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    took
}

/// How many alert instances are pending, firing and resolved.
fn alert_counts(url: &str) -> (usize, usize, usize) {
    let mut response = http()
        .get(format!("{url}/api/v1/alerts"))
        .header("Authorization", format!("Bearer {API_TOKEN}"))
        .call()
        .expect("alerts");
    let body: serde_json::Value = response.body_mut().read_json().expect("json");
    let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
    let count = |state: &str| alerts.iter().filter(|alert| alert["state"] == state).count();
    (count("pending"), count("firing"), count("resolved"))
}

/// Each rule's mean and last evaluation time (ms) and run count, from
/// `/metrics`.
fn rule_timings(url: &str) -> Vec<(String, f64, f64, u64)> {
    let text = metrics_text(url);
    let value = |metric: &str, rule: &str| -> f64 {
        let prefix = format!("{metric}{{rule=\"{rule}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or(0.0)
    };
    let rules: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("lookout_alert_rule_evaluation_seconds_count{rule=\"")?;
            Some(rest.split_once("\"}")?.0.to_owned())
        })
        .collect();
    rules
        .into_iter()
        .map(|rule| {
            let sum = value("lookout_alert_rule_evaluation_seconds_sum", &rule);
            let count = value("lookout_alert_rule_evaluation_seconds_count", &rule) as u64;
            let last = value("lookout_alert_rule_last_evaluation_seconds", &rule);
            let mean_ms = if count > 0 { sum / count as f64 * 1000.0 } else { 0.0 };
            (rule, mean_ms, last * 1000.0, count)
        })
        .collect()
}
