//! Host metrics through the real HTTP server and a real SQLite file: ingest →
//! `/api/v1/metrics/series` and `/api/v1/hosts`, re-sends, roll-ups, refusals.

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The `[t, v]` points of series `i` of an answer.
fn points(body: &Value, i: usize) -> Vec<(i64, f64)> {
    body["series"][i]["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no series {i} in {body}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// A counter's value in the `/metrics` text.
async fn counter(server: &Server, line_start: &str) -> u64 {
    let text = server.get_ok("/metrics").await;
    let text = text.as_str().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_round_trip_once_each_alongside_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let now = now_ms();
    let t0 = now - 10 * MINUTE;
    let mut b = batch(
        "web-1",
        vec![fixed_lines(&stream("web-1", 1), "/var/log/a.log", "hello", t0, 0, 3)],
    );
    for i in 0..60 {
        let ts = t0 + i * 10_000;
        b.metrics
            .push(sample("fs.used_percent", &[("mount", "/")], ts, 40.0 + i as f64));
        b.metrics
            .push(sample("fs.used_percent", &[("mount", "/data")], ts, 80.0));
    }
    // Older than the 30 days kept: dropped, not refused.
    b.metrics
        .push(sample("fs.used_percent", &[("mount", "/")], now - 31 * DAY, 1.0));
    assert_eq!(server.ingest_ok(&b).await, (3, 0));
    // The agent re-sends the whole batch (say the answer was lost).
    assert_eq!(server.ingest_ok(&b).await, (0, 3));

    let query = format!("/api/v1/metrics/series?host=web-1&name=fs.used_percent&start={t0}&end={now}");
    let body = server.get_ok(&query).await;
    assert_eq!(body["resolution"], "raw");
    assert_eq!(body["step_ms"], Value::Null);
    assert_eq!(body["series"].as_array().unwrap().len(), 2, "one series per mount");
    assert_eq!(body["series"][0]["labels"], serde_json::json!({"mount": "/"}));
    assert_eq!(body["series"][1]["labels"], serde_json::json!({"mount": "/data"}));
    let root = points(&body, 0);
    assert_eq!(root.len(), 60, "each sample once");
    assert_eq!(root[0], (t0, 40.0));
    assert_eq!(root[59], (t0 + 590_000, 99.0));
    assert!(root.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");

    // Label filter, RFC 3339 times and a step.
    let start = jiff::Timestamp::from_millisecond(t0).unwrap();
    let body = server
        .get_ok(&format!(
            "/api/v1/metrics/series?host=web-1&name=fs.used_percent&label.mount=%2F&start={}&end={now}&step=1m",
            enc(&start.to_string())
        ))
        .await;
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    assert_eq!(body["step_ms"], 60_000);
    let minutes = points(&body, 0);
    assert!(minutes.iter().all(|(t, _)| t % MINUTE == 0), "{minutes:?}");
    let sum: f64 = minutes.iter().map(|p| p.1).sum();
    assert!(minutes.len() >= 10 && sum > 0.0);

    // Unknown host or name: no series, not an error.
    let body = server
        .get_ok("/api/v1/metrics/series?host=nobody&name=fs.used_percent")
        .await;
    assert_eq!(body["series"], serde_json::json!([]));

    let samples = "lookout_metric_samples_total";
    assert_eq!(
        counter(&server, &format!("{samples}{{result=\"accepted\"}}")).await,
        120
    );
    assert_eq!(
        counter(&server, &format!("{samples}{{result=\"duplicate\"}}")).await,
        120
    );
    assert_eq!(counter(&server, &format!("{samples}{{result=\"expired\"}}")).await, 2);
    server.stop().await;

    // Durable: a restarted aggregator answers the same.
    let server = Server::start(config(dir.path(), "")).await;
    let body = server.get_ok(&query).await;
    assert_eq!(points(&body, 0), root);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_only_metrics_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let now = now_ms();
    let b = metrics_batch("db-1", vec![sample("memory.used_percent", &[], now - 1000, 55.5)]);
    assert_eq!(server.ingest_ok(&b).await, (0, 0));
    let body = server
        .get_ok("/api/v1/metrics/series?host=db-1&name=memory.used_percent")
        .await;
    assert_eq!(points(&body, 0), vec![(now - 1000, 55.5)]);
    assert_eq!(body["series"][0]["labels"], serde_json::json!({}));
    let hosts = server.get_ok("/api/v1/hosts").await;
    assert_eq!(hosts["hosts"][0]["host"], "db-1");
    assert_eq!(hosts["hosts"][0]["memory_used_percent"], 55.5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_day_range_is_served_from_hourly_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let now = now_ms();
    let t0 = (now - 29 * DAY) / HOUR * HOUR;
    // Every 5 minutes, the value is the minute of the hour: an hour averages
    // to 27.5, a minute to itself.
    let times: Vec<i64> = (t0..now - HOUR).step_by(5 * MINUTE as usize).collect();
    let samples = times
        .iter()
        .map(|&t| sample("cpu.usage_percent", &[], t, ((t / MINUTE) % 60) as f64))
        .collect();
    assert_eq!(server.ingest_ok(&metrics_batch("web-1", samples)).await, (0, 0));
    let base = "/api/v1/metrics/series?host=web-1&name=cpu.usage_percent";

    let month = server
        .get_ok(&format!("{base}&start={}&end={now}", now - 30 * DAY))
        .await;
    assert_eq!(
        (month["resolution"].as_str(), month["step_ms"].as_i64()),
        (Some("1h"), Some(HOUR))
    );
    let hourly = points(&month, 0);
    let mut hours: Vec<i64> = times.iter().map(|t| t / HOUR * HOUR).collect();
    hours.dedup();
    assert_eq!(hourly.iter().map(|p| p.0).collect::<Vec<_>>(), hours);
    // The first and last hours may be partial; the whole ones average to 27.5.
    assert!(
        hourly[1..hourly.len() - 1].iter().all(|p| p.1 == 27.5),
        "{:?}",
        &hourly[..3]
    );

    let days = server
        .get_ok(&format!("{base}&start={}&end={now}", now - 3 * DAY))
        .await;
    assert_eq!(days["resolution"], "1m");
    let minutes = points(&days, 0);
    assert!(minutes.iter().all(|(t, v)| ((t / MINUTE) % 60) as f64 == *v));
    assert_eq!(
        minutes.len(),
        times
            .iter()
            .filter(|&&t| t >= (now - 3 * DAY) / MINUTE * MINUTE)
            .count()
    );

    let recent = server
        .get_ok(&format!("{base}&start={}&end={now}", now - 2 * HOUR))
        .await;
    assert_eq!(recent["resolution"], "raw");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_samples_and_bad_queries_get_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let now = now_ms();
    let good = || metrics_batch("web-1", vec![sample("cpu.usage_percent", &[], now, 1.0)]);

    let cases: Vec<(lookout_shared::wire::IngestBatch, &str)> = vec![
        (
            {
                let mut b = good();
                b.metrics[0].name = "CPU Usage".into();
                b
            },
            "metrics[0].name: ",
        ),
        (
            {
                let mut b = good();
                b.metrics.push(sample("x", &[("", "v")], now, 1.0));
                b
            },
            "metrics[1].labels: key",
        ),
        (
            {
                let mut b = good();
                b.metrics[0].time_ms = now / 1000;
                b
            },
            "metrics[0].time_ms: ",
        ),
    ];
    for (b, expected) in cases {
        let answer = server.ingest(&b).await;
        assert_eq!(answer.status, 400, "{answer:?}");
        assert!(answer.error().contains(expected), "{expected}: {answer:?}");
    }
    // JSON has no NaN or infinity: such a value fails to parse, at its path.
    let json = serde_json::to_string(&good()).unwrap();
    for bad in ["NaN", "1e999", "\"12\""] {
        let body = json.replacen("\"value\":1.0", &format!("\"value\":{bad}"), 1);
        assert_ne!(body, json);
        let answer = server.post_ingest(body.into_bytes(), None, Some(INGEST_TOKEN)).await;
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert!(answer.error().contains("metrics[0].value"), "{bad}: {answer:?}");
    }
    // Nothing of a refused batch was stored.
    let body = server
        .get_ok("/api/v1/metrics/series?host=web-1&name=cpu.usage_percent")
        .await;
    assert_eq!(body["series"], serde_json::json!([]));

    let series = "/api/v1/metrics/series";
    for (query, expected) in [
        ("?name=cpu.usage_percent", "parameter `host` is required"),
        ("?host=h", "parameter `name` is required"),
        ("?host=h&name=CPU", "parameter `name`: "),
        ("?host=h&name=m&start=soon", "parameter `start`: `soon`"),
        ("?host=h&name=m&start=20&end=10", "`start` must be before `end`"),
        ("?host=h&name=m&step=fast", "parameter `step`: "),
        ("?host=h&name=m&step=1ms", "parameter `step`: 1 ms"),
        ("?host=h&name=m&label.mount=", "parameter `label.mount`"),
        ("?host=h&name=m&label.=x", "parameter `label.`"),
        ("?host=h&name=m&labels=x", "unknown parameter `labels`"),
    ] {
        let answer = server.get(&format!("{series}{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {answer:?}");
        assert!(answer.error().contains(expected), "{query}: {answer:?}");
    }
    assert_eq!(server.get("/api/v1/hosts?x=1").await.status, 400);
    for path in ["/api/v1/hosts", "/api/v1/metrics/series?host=h&name=m"] {
        assert_eq!(server.get_with(path, None).await.status, 401);
        assert_eq!(server.get_with(path, Some(INGEST_TOKEN)).await.status, 401);
    }
    assert_eq!(server.ingest_ok(&good()).await, (0, 0), "still serving");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_show_latest_values_and_fall_silent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let now = now_ms();
    let mut web = Vec::new();
    for i in 0..5 {
        let ts = now - 40_000 + i * 10_000;
        web.push(sample("cpu.usage_percent", &[], ts, 10.0 + i as f64));
        web.push(sample("cpu.usage_percent", &[("cpu", "0")], ts, 99.0));
        web.push(sample("memory.used_percent", &[], ts, 63.5));
        web.push(sample("fs.used_percent", &[("mount", "/")], ts, 40.0));
        web.push(sample("fs.used_percent", &[("mount", "/data")], ts, 91.5));
        web.push(sample("net.rx_bytes_per_sec", &[("interface", "eth0")], ts, 1000.0));
        web.push(sample("net.tx_bytes_per_sec", &[("interface", "eth0")], ts, 500.0));
        web.push(sample("net.rx_bytes_per_sec", &[("interface", "eth1")], ts, 100.0));
        web.push(sample("net.tx_bytes_per_sec", &[("interface", "eth1")], ts, 2000.0));
    }
    // Unmounted and removed ten minutes ago: no longer the fullest or busiest.
    web.push(sample("fs.used_percent", &[("mount", "/old")], now - 10 * MINUTE, 99.0));
    web.push(sample(
        "net.rx_bytes_per_sec",
        &[("interface", "veth1")],
        now - 10 * MINUTE,
        1e9,
    ));
    server.ingest_ok(&metrics_batch("web-1", web)).await;
    // db-1 samples every second.
    let db = (0..4)
        .map(|i| sample("cpu.usage_percent", &[], now - 3000 + i * 1000, 5.0))
        .collect();
    server.ingest_ok(&metrics_batch("db-1", db)).await;
    let body = server.get_ok("/api/v1/hosts").await;
    let db = &body["hosts"][0];
    assert_eq!(
        (db["host"].as_str(), db["interval_ms"].as_i64()),
        (Some("db-1"), Some(1000))
    );
    assert_eq!(db["silent"], false, "{db}");
    // logs-1 sends only logs.
    let logs = batch(
        "logs-1",
        vec![fixed_lines(&stream("logs-1", 1), "/var/log/a.log", "x", now, 0, 2)],
    );
    server.ingest_ok(&logs).await;

    // Hosts seen through logs only are written within a couple of seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let hosts = loop {
        let body = server.get_ok("/api/v1/hosts").await;
        if body["hosts"].as_array().unwrap().len() == 3 || Instant::now() > deadline {
            break body["hosts"].as_array().unwrap().clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(names, ["db-1", "logs-1", "web-1"], "sorted by host");
    let web = &hosts[2];
    assert_eq!(web["cpu_usage_percent"], 14.0, "{web}");
    assert_eq!(web["memory_used_percent"], 63.5);
    assert_eq!(
        web["fullest_filesystem"],
        serde_json::json!({"mount": "/data", "used_percent": 91.5})
    );
    assert_eq!(
        web["busiest_interface"],
        serde_json::json!({"interface": "eth1", "rx_bytes_per_sec": 100.0, "tx_bytes_per_sec": 2000.0})
    );
    assert_eq!(web["interval_ms"], 10_000);
    assert_eq!(web["silent"], false);
    let last_seen: jiff::Timestamp = web["last_seen"].as_str().unwrap().parse().unwrap();
    assert!((last_seen.as_millisecond() - now).abs() < 60_000, "{web}");
    let logs_only = &hosts[1];
    assert_eq!(logs_only["cpu_usage_percent"], Value::Null);
    assert_eq!(logs_only["fullest_filesystem"], Value::Null);
    assert_eq!(logs_only["silent"], false);

    // Three of db-1's one-second intervals without a batch: silent. web-1,
    // with 10-second intervals, is not yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let hosts = loop {
        let hosts = server.get_ok("/api/v1/hosts").await;
        if hosts["hosts"][0]["silent"] == true {
            break hosts;
        }
        assert!(std::time::Instant::now() < deadline, "db-1 never went silent: {hosts}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(hosts["hosts"][2]["silent"], false, "{hosts}");
    server.stop().await;
}

/// A day of 10-second samples for one host and metric: the answer's shape,
/// and how long it takes (printed, not asserted: CI machines vary; run with
/// `--nocapture` to see it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_ten_second_samples_in_one_query() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "")).await;
    let end = now_ms() / 10_000 * 10_000;
    let start = end - DAY;
    let samples = (0..8640)
        .map(|i| sample("memory.used_percent", &[], start + i * 10_000, (i % 100) as f64))
        .collect();
    server.ingest_ok(&metrics_batch("web-1", samples)).await;
    let query = format!("/api/v1/metrics/series?host=web-1&name=memory.used_percent&start={start}&end={end}");
    let mut took = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let body = server.get_ok(&query).await;
        took.push(started.elapsed());
        assert_eq!(body["resolution"], "raw");
        let points = points(&body, 0);
        assert_eq!(points.len(), 8640);
        assert_eq!(points[0], (start, 0.0));
        assert_eq!(points[8639], (end - 10_000, 39.0));
    }
    took.sort();
    println!(
        "24 h of 10 s samples (8640 points) over HTTP: fastest {:?}, median {:?}, slowest {:?}",
        took[0], took[2], took[4]
    );
    server.stop().await;
}

/// One ingest token cannot make the metric store (and every rule that reads
/// it) grow without bound: past its series limit a host's new series are
/// refused with a clear 400, its existing series keep being stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_beyond_its_series_limit_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path(), "[ingest]\nmax_series_per_host = 50\n")).await;
    let t = now_ms();
    let series = |from: usize, to: usize, time: i64| {
        (from..to)
            .map(|i| sample("app.requests", &[("path", &format!("/item/{i}"))], time, 1.0))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        server.ingest(&metrics_batch("web-1", series(0, 40, t))).await.status,
        200
    );
    let refused = server.ingest(&metrics_batch("web-1", series(30, 60, t + 1000))).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.error().contains("max_series_per_host"), "{}", refused.error());
    // Nothing of the refused batch was kept; the existing series still take samples.
    assert_eq!(
        server
            .ingest(&metrics_batch("web-1", series(0, 40, t + 2000)))
            .await
            .status,
        200
    );
    // Another host has its own allowance.
    assert_eq!(
        server.ingest(&metrics_batch("web-2", series(0, 50, t))).await.status,
        200
    );
    let points = server
        .get_ok(&format!(
            "/api/v1/metrics/series?host=web-1&name=app.requests&label.path=/item/35&start={}&end={}",
            t - 1000,
            t + 5000
        ))
        .await;
    assert_eq!(
        points["series"][0]["points"].as_array().map(Vec::len),
        Some(2),
        "{points}"
    );
    server.stop().await;
}
