//! `lookout-bench archive FILE HOSTS [LINES]`: what `[archive]` costs on a
//! day of FILE's lines from HOSTS hosts.
//!
//! The lines go to a release aggregator as agents send them, LINES lines
//! (default 100) per request from one host, the hosts in turn, so each
//! doc-store block holds lines of many hosts, as a fleet's day does. The day's partition is then
//! made 3 days old and the aggregator started again with `[archive] to =
//! <folder>, after_days = 1`. Prints the time and the aggregator's CPU and
//! peak RSS until the day's manifest is written, the archive's size against
//! the raw lines and the index, then the time of `archive restore` into the
//! emptied index.

use super::{
    INGEST_TOKEN, http, process_usage, release_binary, search_total, start_aggregator_with, wait_until, work_dir,
};
use lookout_shared::wire::{IngestBatch, StreamChunk, WireRecord, stream_id};
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn bench_archive(file: &Path, hosts: usize, lines_per_request: usize) {
    assert!(hosts > 0, "usage: lookout-bench archive FILE HOSTS");
    let dir = work_dir("archive");
    let (mut aggregator, url) = start_aggregator_with(&dir, "", "");
    let raw = fs::metadata(file).expect("dataset").len();
    let reader = BufReader::with_capacity(1 << 20, fs::File::open(file).expect("dataset"));
    let mut offsets = vec![0u64; hosts];
    let mut lines = reader.lines().map_while(Result::ok).peekable();
    let (mut total, mut request) = (0u64, 0usize);
    let client = http();
    while lines.peek().is_some() {
        let host = request % hosts;
        let start = offsets[host];
        let records: Vec<WireRecord> = lines
            .by_ref()
            .take(lines_per_request)
            .map(|message| {
                let record = WireRecord {
                    offset: offsets[host],
                    read_at_ms: 1_790_000_000_000,
                    message,
                    ..Default::default()
                };
                offsets[host] += record.message.len() as u64 + 1;
                record
            })
            .collect();
        total += records.len() as u64;
        let batch = IngestBatch {
            host: format!("host-{host:04}"),
            streams: vec![StreamChunk {
                stream: stream_id(&format!("host-{host:04}"), 1, 0, 0),
                source: "/var/log/app.log".into(),
                start,
                end: offsets[host],
                records,
                ..Default::default()
            }],
            metrics: Vec::new(),
        };
        let status = client
            .post(format!("{url}/api/v1/ingest"))
            .header("Authorization", format!("Bearer {INGEST_TOKEN}"))
            .header("Content-Type", "application/json")
            .send(&serde_json::to_vec(&batch).expect("serialises")[..])
            .expect("the aggregator answers")
            .status();
        assert_eq!(status, 200, "ingest");
        request += 1;
    }
    wait_until("every line searchable", Duration::from_secs(3600), || {
        std::thread::sleep(Duration::from_millis(200));
        search_total(&url, "") >= total
    });
    stop(&mut aggregator);

    let logs = dir.join("data/logs");
    let partition = fs::read_dir(&logs)
        .expect("partitions")
        .map(|entry| entry.expect("entry").path())
        .next()
        .expect("one partition");
    let index_bytes = super::scale::dir_bytes(&partition);
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let day = today.checked_sub(jiff::Span::new().days(3)).expect("a day").to_string();
    fs::rename(&partition, logs.join(&day)).expect("the partition is renamed");
    let archive = dir.join("archive");
    let sections = format!(
        "[retention]\nlogs_days = 30\n[archive]\nto = \"{}\"\nafter_days = 1\n",
        archive.display()
    );
    let started = Instant::now();
    let (mut aggregator, _) = start_aggregator_with(&dir, "", &sections);
    let pid = aggregator.id();
    let manifest = archive.join(&day).join("manifest.json");
    let mut usage = (0.0, 0);
    wait_until("the day's manifest", Duration::from_secs(3600), || {
        std::thread::sleep(Duration::from_millis(100));
        usage = process_usage(pid);
        manifest.exists()
    });
    let archived_secs = started.elapsed().as_secs_f64();
    stop(&mut aggregator);
    let archive_bytes = super::scale::dir_bytes(&archive);

    fs::remove_dir_all(logs.join(&day)).expect("the day leaves the index");
    let started = Instant::now();
    let restore = Command::new("/usr/bin/time")
        .args(["-f", "%U %S %M"])
        .arg(release_binary("lookout-aggregator"))
        .arg("--config")
        .arg(dir.join("aggregator.toml"))
        .args(["archive", "restore", "--day", &day])
        .output()
        .expect("the restore runs");
    let restore_secs = started.elapsed().as_secs_f64();
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let said = String::from_utf8_lossy(&restore.stdout);
    assert!(said.contains(&format!("{total} records, {total} stored")), "{said}");
    let measured = String::from_utf8_lossy(&restore.stderr);
    let figures: Vec<f64> = measured
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let (restore_cpu, restore_rss_kb) = match figures[..] {
        [user, system, rss] => (user + system, rss),
        _ => panic!("no figures from /usr/bin/time: {measured}"),
    };

    println!("| figure | value |");
    println!("|---|---|");
    println!("| lines, hosts | {total}, {hosts} ({lines_per_request} lines per request, hosts in turn) |");
    println!(
        "| raw bytes, index bytes | {raw}, {index_bytes} ({:.2} × raw) |",
        index_bytes as f64 / raw as f64
    );
    println!(
        "| archive: wall from start to manifest, aggregator CPU, peak RSS | {archived_secs:.1} s, {:.1} CPU-s, {} MB |",
        usage.0,
        usage.1 / 1024
    );
    println!(
        "| archive bytes | {archive_bytes} ({:.3} × raw, {:.2} × index) |",
        archive_bytes as f64 / raw as f64,
        archive_bytes as f64 / index_bytes as f64
    );
    println!(
        "| restore: wall, CPU, peak RSS | {restore_secs:.1} s, {restore_cpu:.1} CPU-s, {} MB |",
        restore_rss_kb as u64 / 1024
    );
    let _ = fs::remove_dir_all(&dir);
}

/// SIGTERM, and waits for the exit (a clean stop commits).
fn stop(aggregator: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &aggregator.id().to_string()])
        .status();
    let _ = aggregator.wait();
}
